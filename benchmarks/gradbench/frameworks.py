"""The benchmark's cells in PyTorch (eager autograd) and JAX
(jit(value_and_grad) over lax.scan), from one forward written against a small
array namespace ``xp`` (tanh, sigmoid, log_softmax, cat). Both get the
benchmark's layout, (T, B, N) for a batch, and return (loss, grads) as NumPy,
keyed like symrnn's gradients.

The input projection of the first layer (x U^T + b, all steps) is one product
before the recurrence; a step applies the stacked recurrent weights of all its
gates at once.
"""
from types import SimpleNamespace



def _stack(xp, params, names):
    return xp.cat([params[n] for n in names], 0)


def _lstm_update(xp, z, s, D):
    q, f, g = xp.sigmoid(z[..., :D]), xp.sigmoid(z[..., D:2 * D]), xp.sigmoid(z[..., 2 * D:3 * D])
    a = xp.tanh(z[..., 3 * D:])
    s = f * s + g * a
    return xp.tanh(s) * q, s


def forward_pieces(xp, key, layers, params):
    """(pre, step, head): pre(x) -> per-step inputs; step(carry,
    p_t) -> (carry, h_out); head(H) -> logits."""
    if key == "elman":
        W, U, V = params["W"], params["U"], params["V"]

        def step(c, p):
            h = xp.tanh(p + c[0] @ W.T)
            return (h,), h
        return lambda x: x @ U.T, step, lambda H: H @ V.T
    if key == "lstm":
        order = ["_q", "_f", "_g", ""]
        W = _stack(xp, params, ["W" + k for k in order])
        U = _stack(xp, params, ["U" + k for k in order])
        b = _stack(xp, params, ["b" + k for k in order])
        D = params["W"].shape[0]

        def step(c, p):
            h, s = _lstm_update(xp, p + c[0] @ W.T, c[1], D)
            return (h, s), h
        return lambda x: x @ U.T + b, step, lambda H: H @ params["V"].T
    if key == "gru":
        order = ["_u", "_r", ""]
        W_ur, W = _stack(xp, params, ["W_u", "W_r"]), params["W"]
        U = _stack(xp, params, ["U" + k for k in order])
        b = _stack(xp, params, ["b" + k for k in order])
        D = W.shape[0]

        def step(c, p):
            h = c[0]
            ur = xp.sigmoid(p[..., :2 * D] + h @ W_ur.T)
            u, r = ur[..., :D], ur[..., D:]
            a = xp.tanh(p[..., 2 * D:] + (r * h) @ W.T)
            h = u * h + (1 - u) * a
            return (h,), h
        return lambda x: x @ U.T + b, step, lambda H: H @ params["V"].T
    if key == "stacked":
        order = "qfga"
        w = [_stack(xp, params, [f"w_{g}{k}" for g in order]) for k in range(1, layers + 1)]
        U = [_stack(xp, params, [f"U_{g}{k}" for g in order]) for k in range(1, layers + 1)]
        b = [_stack(xp, params, [f"b_{g}{k}" for g in order]) for k in range(1, layers + 1)]
        D = params["w_f1"].shape[0]

        def step(c, p):
            out = []
            for k in range(layers):
                h, s = c[2 * k], c[2 * k + 1]
                z = (p if k == 0 else out[-2] @ U[k].T + b[k]) + w[k] * xp.cat([h] * 4, -1)
                out += _lstm_update(xp, z, s, D)
            return tuple(out), out[-2]
        return lambda x: x @ U[0].T + b[0], step, lambda H: H @ params["V"].T + params["c"]
    raise ValueError(f"cell: unknown benchmark cell {key!r}")


def loss(xp, scan, key, layers, params, starts, state_names, x, y):
    pre, step, head = forward_pieces(xp, key, layers, params)
    H = scan(step, tuple(starts[s] for s in state_names), pre(x))
    return -(y * xp.log_softmax(head(H))).sum()


def torch_impl(torch, cell, params, x, y, starts):
    """PyTorch eager: the recurrence as a Python loop, torch.autograd.grad."""
    xp = SimpleNamespace(tanh=torch.tanh, sigmoid=torch.sigmoid,
                         log_softmax=lambda o: torch.log_softmax(o, -1),
                         cat=lambda arrays, axis: torch.cat(arrays, axis))
    tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    ts = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in starts.items()}
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    leaves = list(tp.values()) + list(ts.values())
    names = list(tp) + list(ts)

    def scan(step, carry, inputs):
        outs = []
        for p in inputs:
            carry, h = step(carry, p)
            outs.append(h)
        return torch.stack(outs)

    def call():
        value = loss(xp, scan, cell.key, cell.layers, tp, ts, cell.states, tx, ty)
        return value, torch.autograd.grad(value, leaves)

    def to_numpy(out):
        value, g = out
        return float(value.detach()), dict(zip(names, (a.numpy() for a in g)))

    return call, to_numpy


def jax_impl(jax, cell, params, x, y, starts):
    """JAX: jax.jit(jax.value_and_grad(loss)) with the recurrence in lax.scan."""
    import numpy as np
    jnp = jax.numpy
    xp = SimpleNamespace(tanh=jnp.tanh, sigmoid=jax.nn.sigmoid,
                         log_softmax=lambda o: jax.nn.log_softmax(o, axis=-1),
                         cat=lambda arrays, axis: jnp.concatenate(arrays, axis))

    def scan(step, carry, inputs):
        return jax.lax.scan(step, carry, inputs)[1]

    def f(p, s, x, y):
        return loss(xp, scan, cell.key, cell.layers, p, s, cell.states, x, y)

    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    args = [jax.device_put(a) for a in (params, starts, x, y)]

    def call():
        return jax.block_until_ready(vg(*args))

    def to_numpy(out):
        value, (gp, gs) = out
        grads = {k: np.asarray(v) for k, v in gp.items()}
        grads.update({k: np.asarray(v) for k, v in gs.items()})
        return float(value), grads

    return call, to_numpy


def numpy_namespace():
    """The forward with NumPy arrays: a check of forward_pieces without a framework."""
    import numpy as np
    return SimpleNamespace(
        tanh=np.tanh, sigmoid=lambda z: 1.0 / (1.0 + np.exp(-z)),
        log_softmax=lambda o: o - o.max(-1, keepdims=True)
        - np.log(np.exp(o - o.max(-1, keepdims=True)).sum(-1, keepdims=True)),
        cat=lambda arrays, axis: np.concatenate(arrays, axis))


def numpy_scan(step, carry, inputs):
    import numpy as np
    outs = []
    for p in inputs:
        carry, h = step(carry, p)
        outs.append(h)
    return np.stack(outs)
