"""The loss of a family's network written by hand in NumPy, from the family's definition
(``family.py``'s docstring), for the numerical variant's cross-check: nothing here comes
from the engine (no derivation, no generated code), so finite differences of this loss
are an independent route to the gradients the generated code computes."""
import numpy as np

__all__ = ["forward"]


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _log_softmax(o):
    shifted = o - o.max()
    return shifted - np.log(np.exp(shifted).sum())


ACTIVATIONS = {"tanh": np.tanh, "sigmoid": _sigmoid, "relu": lambda z: np.maximum(z, 0.0)}


def _loss(choice, o, y):
    if choice.head == "linear":
        return 0.5 * float(((o - y) ** 2).sum())
    if choice.loss == "cross-entropy":
        if choice.head == "softmax":
            return -float((y * _log_softmax(o)).sum())
        return float((_softplus(o) - y * o).sum())        # binary, on the logits o
    yhat = np.exp(_log_softmax(o)) if choice.head == "softmax" else _sigmoid(o)
    return 0.5 * float(((yhat - y) ** 2).sum())


def forward(choice, params, xs, ys, h0):
    """(loss, pre-activations) of one sequence: xs (T, N), ys (T, M), h0 (D,); the
    pre-activations are every argument of an activation (for the conditioning)."""
    p = params
    act = ACTIVATIONS[choice.activation]
    h, total, pre = np.asarray(h0, dtype=float), 0.0, []
    k = {"update": "u", "reset": "r"}.get(choice.gate)
    for x, y in zip(xs, ys):
        previous = h
        if k is not None:
            zg = p[f"W_{k}"] @ h + p[f"U_{k}"] @ x + (p[f"b_{k}"] if choice.bias else 0.0)
            gate = _sigmoid(zg)
            pre.append(zg)
            if k == "r":
                previous = gate * h
        z = p["W"] @ previous + p["U"] @ x + (p["b"] if choice.bias else 0.0)
        pre.append(z)
        a = act(z)
        h = gate * h + (1.0 - gate) * a if k == "u" else a
        o = p["V"] @ h + (p["c"] if choice.bias else 0.0)
        total += _loss(choice, o, y)
    return total, pre
