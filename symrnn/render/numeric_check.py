"""Check generated gradients against finite differences and a hand-written BPTT.

``check_gradients(cell_or_derivation)`` evaluates the gradients that the
engine generated (``derivation.lambdify()``) at one random point and compares
each with

* central finite differences of the loss (any cell), and
* ``elman_bptt`` below, a plain NumPy BPTT written by hand from the textbook
  recursion for the Elman variants (activation, output head, biases). It
  imports nothing from the engine; for other cells that column is ``None``.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["GradientCheck", "check_gradients", "elman_bptt", "finite_differences",
           "relative_error"]


# ---- an independent BPTT for the Elman network, by hand --------------------
def _activation(name):
    if name == "tanh":
        return np.tanh, lambda z, h: 1.0 - h * h
    if name == "sigmoid":
        return (lambda z: 1.0 / (1.0 + np.exp(-z))), (lambda z, h: h * (1.0 - h))
    if name == "relu":
        return (lambda z: np.where(z > 0, z, 0.0)), (lambda z, h: (z > 0).astype(float))
    if name == "identity":
        return (lambda z: z), (lambda z, h: np.ones_like(z))
    raise ValueError(f"no hand-written activation {name!r}")


def _head(name, o, y):
    """(loss of one step, dL/do) for the output head ``name``."""
    if name == "softmax_ce":
        shifted = o - o.max()
        log_p = shifted - np.log(np.exp(shifted).sum())
        return -float(y @ log_p), np.exp(log_p) * y.sum() - y
    if name == "mse":
        r = o - y
        return 0.5 * float(r @ r), r
    if name == "upstream":  # o feeds another network that passes back y = dL/do
        return float(y @ o), y.copy()
    raise ValueError(f"no hand-written output {name!r}")


def elman_bptt(params, x, y, h0, activation="tanh", output="softmax_ce"):
    """Loss and gradients of the Elman network, one sequence (x: (T, N), y: (T, M))."""
    W, U, V = params["W"], params["U"], params["V"]
    b = params["b"] if "b" in params else np.zeros(len(W))
    c = params["c"] if "c" in params else np.zeros(len(V))
    f, df = _activation(activation)
    hs, zs, dos, loss = [np.array(h0, dtype=float)], [], [], 0.0
    for t in range(len(x)):                      # forward
        zs.append(W @ hs[t] + U @ x[t] + b)
        hs.append(f(zs[t]))
        step_loss, do = _head(output, V @ hs[t + 1] + c, y[t])
        loss += step_loss
        dos.append(do)
    grads = {k: np.zeros_like(v, dtype=float) for k, v in params.items()}
    carry = np.zeros(len(W))                     # W^T delta^(t+1), zero after step T
    for t in reversed(range(len(x))):            # backward
        grads["V"] += np.outer(dos[t], hs[t + 1])
        if "c" in grads:
            grads["c"] += dos[t]
        dh = V.T @ dos[t] + carry
        delta = df(zs[t], hs[t + 1]) * dh
        grads["W"] += np.outer(delta, hs[t])
        grads["U"] += np.outer(delta, x[t])
        if "b" in grads:
            grads["b"] += delta
        carry = W.T @ delta
    grads["h0"] = carry
    return loss, grads


# ---- finite differences ------------------------------------------------------
def finite_differences(loss, arrays, eps=1e-6):
    """Central differences of ``loss(arrays)`` in every entry of every array."""
    out = {}
    for name, a in arrays.items():
        g = np.zeros_like(a, dtype=float)
        for i in np.ndindex(a.shape):
            saved = a[i]
            a[i] = saved + eps
            plus = loss(arrays)
            a[i] = saved - eps
            minus = loss(arrays)
            a[i] = saved
            g[i] = (plus - minus) / (2 * eps)
        out[name] = g
    return out


def relative_error(a, b):
    """||a - b|| / max(||a||, ||b||) in the Frobenius norm (0 when both are 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


# ---- the check ---------------------------------------------------------------
@dataclass
class GradientCheck:
    """One row of the table: a gradient and its relative errors."""
    name: str
    rel_err_fd: float
    rel_err_independent: object   # float, or None when there is no hand-written BPTT

    def __iter__(self):  # unpacks as (name, rel_err_fd, rel_err_independent)
        return iter((self.name, self.rel_err_fd, self.rel_err_independent))


def _random_point(cell, T, sizes, seed):
    rng = np.random.default_rng(seed)
    dims = dict(zip(cell.sizes, sizes))
    missing = [str(s) for s in cell.sizes if s not in dims]
    if missing:
        raise ValueError(f"sizes: need {len(cell.sizes)} values for "
                         f"{', '.join(map(str, cell.sizes))}, got {len(sizes)}")

    def shape(sym):
        return tuple(int(d.subs(dims)) for d in (sym.shape[:1] if sym.shape[1] == 1
                                                 else sym.shape))

    params = {p.name: rng.normal(scale=0.5, size=shape(p)) for p in cell.params}
    x = rng.normal(size=(T,) + shape(cell.inputs[0]))
    (m,) = shape(cell.targets[0])
    if cell.targets_are_distributions:
        y = np.eye(m)[rng.integers(0, m, size=T)]
    else:
        y = rng.normal(size=(T, m))
    initial = {f"{s.name}0": rng.normal(scale=0.5, size=shape(s)) for s in cell.states}
    return params, x, y, initial


def check_gradients(cell_or_derivation, T=5, sizes=(3, 4, 2), seed=0, eps=1e-6):
    """Rows ``(name, rel_err_fd, rel_err_independent)`` for every parameter and
    initial state, in the order of the generated gradients."""
    from ..derivation import derive
    d = cell_or_derivation if hasattr(cell_or_derivation, "gradients") \
        else derive(cell_or_derivation)
    cell = d.cell
    f = d.lambdify()
    params, x, y, initial = _random_point(cell, T, sizes, seed)
    _, grads = f(params, x, y, **initial)

    loss_only = getattr(f, "loss", None) or (lambda *a, **k: f(*a, **k)[0])
    names = list(params)

    def loss(arrays):
        return loss_only({k: arrays[k] for k in names}, x, y,
                         **{k: arrays[k] for k in initial})

    numeric = finite_differences(loss, {k: v.copy() for k, v in {**params, **initial}.items()},
                                 eps)
    independent = None
    if all(hasattr(cell, a) for a in ("activation", "output", "bias")) \
            and [s.name for s in cell.states] == ["h"]:
        _, independent = elman_bptt(params, x, y, initial["h0"],
                                    activation=cell.activation, output=cell.output)
    rows = []
    for name in list(params) + list(initial):
        g = np.asarray(grads[name], dtype=float).reshape(numeric[name].shape)
        rows.append(GradientCheck(
            name, relative_error(g, numeric[name]),
            relative_error(g, independent[name]) if independent is not None else None))
    return rows
