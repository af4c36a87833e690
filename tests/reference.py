"""Independent NumPy BPTT, written by hand step by step (no symrnn code), and
central finite differences: the two yardsticks for the generated gradients."""
import numpy as np

ACT = {
    "tanh": (np.tanh, lambda z, h: 1 - h ** 2),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, h: h * (1 - h)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, h: (z > 0).astype(float)),
    "identity": (lambda z: z, lambda z, h: np.ones_like(z)),
}


def _loss_and_dlogits(output, o, y):
    if output == "softmax_ce":
        m = o.max()
        logp = o - m - np.log(np.exp(o - m).sum())
        return -(y * logp).sum(), np.exp(logp) * y.sum() - y
    if output == "mse":
        return 0.5 * ((o - y) ** 2).sum(), o - y
    if output == "upstream":
        return (y * o).sum(), y
    raise ValueError(output)


def elman_bptt(params, x, y, h0=None, activation="tanh", output="softmax_ce"):
    """One sequence (x: (T, N), y: (T, M), h0: (D,)), column vectors, per step."""
    W, U, V = params["W"], params["U"], params["V"]
    b = params.get("b", np.zeros(W.shape[0]))
    c = params.get("c", np.zeros(V.shape[0]))
    f, fprime = ACT[activation]
    T = len(x)
    hs = [np.zeros(W.shape[0]) if h0 is None else np.asarray(h0, float)]
    zs, dos, loss = [], [], 0.0
    for t in range(T):
        zs.append(W @ hs[-1] + U @ x[t] + b)
        hs.append(f(zs[-1]))
        l, do = _loss_and_dlogits(output, V @ hs[-1] + c, y[t])
        loss += l
        dos.append(do)
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros(W.shape[0])  # dL/dh^(t) through step t+1
    for t in reversed(range(T)):
        g["V"] += np.outer(dos[t], hs[t + 1])
        if "c" in g:
            g["c"] += dos[t]
        dh = V.T @ dos[t] + dh_next
        dz = fprime(zs[t], hs[t + 1]) * dh
        g["W"] += np.outer(dz, hs[t])
        g["U"] += np.outer(dz, x[t])
        if "b" in g:
            g["b"] += dz
        dh_next = W.T @ dz
    g["h0"] = dh_next
    return loss, g


def elman_bptt_batched(params, x, y, h0=None, **model):
    """x: (T, N, B), y: (T, M, B), h0: None, (D,) or (D, B); sums over the batch."""
    B = x.shape[2]
    total, grads = 0.0, None
    for i in range(B):
        start = None if h0 is None else (h0 if np.ndim(h0) == 1 else h0[:, i])
        loss, g = elman_bptt(params, x[:, :, i], y[:, :, i], start, **model)
        total += loss
        if grads is None:
            grads = {k: v.copy() for k, v in g.items()}
            if h0 is None or np.ndim(h0) == 2:
                grads["h0"] = np.zeros((len(g["h0"]), B))
        else:
            for k in g:
                if k != "h0":
                    grads[k] += g[k]
        if h0 is None or np.ndim(h0) == 2:
            grads["h0"][:, i] = g["h0"]
        elif i > 0:
            grads["h0"] += g["h0"]
    return total, grads


def finite_differences(loss, arrays, eps=1e-6):
    """Central differences of ``loss(arrays)`` for every entry of every array."""
    out = {}
    for k, a in arrays.items():
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            plus = {q: v.copy() for q, v in arrays.items()}
            minus = {q: v.copy() for q, v in arrays.items()}
            plus[k][i] += eps
            minus[k][i] -= eps
            g[i] = (loss(plus) - loss(minus)) / (2 * eps)
        out[k] = g
    return out


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
