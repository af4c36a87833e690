"""Hand-written NumPy BPTT of symrnn's LSTM and GRU presets
(symrnn/model/gated.py) and of the benchmark's stacked narrow LSTM
(cells.stacked_text), written to be fast, sharing no code with symrnn.

Only the recurrences run step by step. The gates of a step are one row of
stacked pre-activations (one GEMM per step against the stacked recurrent
weights); the input projections of all steps, the output layer, the loss and
every weight gradient are one GEMM or one vectorised pass over all steps. The
sigmoid is 0.5 + 0.5 tanh(z/2), with the 1/2 folded into copies of the weights,
so a step applies one tanh to all its gates.

Layout: x (T, N) and y (T, M) for one sequence, (T, B, N) and (T, B, M) for a
batch; initial states (D,) or (B, D); rows are 1-D or (B, .) and every
expression below works on both (``...`` indexing). Returns (loss, grads) keyed
by symrnn's names, in symrnn's parameter shapes and the starts' shapes.
"""
import numpy as np

from .baselines_elman import softmax_ce_head


def _half_sigmoid_rows(n_sigmoid, width):
    """Row scales: 1/2 on the first n_sigmoid rows (sigmoid gates), 1 after."""
    scale = np.ones(width)
    scale[:n_sigmoid] = 0.5
    return scale


def lstm_layer_forward(W_half, Z, h0, s0):
    """One LSTM layer over all steps. Gates stacked as [q, f, g, a] (output,
    forget, input gate, candidate). ``W_half`` (4D, D): the stacked recurrent
    weights with the sigmoid rows halved; ``Z`` (T, ..., 4D): the halved input
    pre-activations, overwritten by the gate values. Returns H (T+1, ..., D)
    with h0 first, S likewise, and tanh(s) (T, ..., D)."""
    T, D = Z.shape[0], h0.shape[-1]
    lead = Z.shape[1:-1]
    H = np.empty((T + 1,) + lead + (D,))
    S = np.empty((T + 1,) + lead + (D,))
    TS = np.empty((T,) + lead + (D,))
    H[0], S[0] = h0, s0
    z, h, s, ts = list(Z), list(H), list(S), list(TS)
    WT = W_half.T
    tmp, tmp_d = np.empty(lead + (4 * D,)), np.empty(lead + (D,))
    dot, tanh, mul = np.dot, np.tanh, np.multiply
    for t in range(T):
        zt = z[t]
        dot(h[t], WT, out=tmp)
        zt += tmp
        tanh(zt, out=zt)
        sig = zt[..., :3 * D]
        sig *= 0.5
        sig += 0.5                                # q, f, g
        st = s[t + 1]
        mul(zt[..., D:2 * D], s[t], out=st)
        mul(zt[..., 2 * D:3 * D], zt[..., 3 * D:], out=tmp_d)
        st += tmp_d
        tanh(st, out=ts[t])
        mul(ts[t], zt[..., :D], out=h[t + 1])
    return H, S, TS


def lstm_layer_backward(W, Z, H, S, TS, G):
    """Backward through one layer: ``G`` (T, ..., D) is dL/dh from outside the
    recurrence (overwritten); ``W`` (4D, D) the true stacked recurrent weights.
    Returns dL/d(pre-activations) (T, ..., 4D) in the order [q, f, g, a], and
    dL/dh0, dL/ds0."""
    T, D = Z.shape[0], H.shape[-1]
    lead = Z.shape[1:-1]
    q, f, g, a = Z[..., :D], Z[..., D:2 * D], Z[..., 2 * D:3 * D], Z[..., 3 * D:]
    # the factors of the step's local derivatives, for all steps at once
    Kq = TS * q * (1.0 - q)                       # dL/dz_q = dh * Kq
    Ks = q * (1.0 - TS * TS)                      # ds = dh * Ks + ds_next * f_next
    K3 = np.empty((T,) + lead + (3, D))           # dL/dz_[f,g,a] = ds * K3
    np.multiply(S[:T], f * (1.0 - f), out=K3[..., 0, :])
    np.multiply(a, g * (1.0 - g), out=K3[..., 1, :])
    np.multiply(g, 1.0 - a * a, out=K3[..., 2, :])
    dP = np.empty(Z.shape)
    dPq, dP3 = list(dP[..., :D]), list(dP[..., D:].reshape((T,) + lead + (3, D)))
    gs, kq, ks, k3, fs = list(G), list(Kq), list(Ks), list(K3), list(f)
    dps = list(dP)
    ds, ds_next = np.empty(lead + (D,)), np.empty(lead + (D,))
    tmp = np.empty(lead + (D,))
    dot, mul = np.dot, np.multiply
    for t in range(T - 1, -1, -1):
        dh = gs[t]
        if t < T - 1:
            dot(dps[t + 1], W, out=tmp)
            dh += tmp
            mul(ds_next, fs[t + 1], out=tmp)
            mul(dh, ks[t], out=ds)
            ds += tmp
        else:
            mul(dh, ks[t], out=ds)
        mul(dh, kq[t], out=dPq[t])
        mul(ds[..., None, :], k3[t], out=dP3[t])
        ds, ds_next = ds_next, ds
    return dP, dot(dps[0], W), ds_next * fs[0]


def _stack(params, names):
    return np.concatenate([params[n] for n in names])


def lstm_stacked(params, x, y, starts):
    """symrnn.LSTM(): gates f, g, q (sigmoid) and a (tanh) of W_k h + U_k x + b_k,
    s = f s_prev + g a, h = tanh(s) q, softmax cross-entropy on V h."""
    order = ["_q", "_f", "_g", ""]
    W = _stack(params, ["W" + k for k in order])  # (4D, D)
    U = _stack(params, ["U" + k for k in order])  # (4D, N)
    b = _stack(params, ["b" + k for k in order])  # (4D,)
    V = params["V"]
    T, D, N, M = x.shape[0], W.shape[1], U.shape[1], V.shape[0]
    lead = x.shape[1:-1]
    scale = _half_sigmoid_rows(3 * D, 4 * D)
    X, Y = x.reshape(-1, N), y.reshape(-1, M)
    Z = np.empty((T,) + lead + (4 * D,))
    np.dot(X, (U * scale[:, None]).T, out=Z.reshape(-1, 4 * D))
    Z += b * scale
    H, S, TS = lstm_layer_forward(W * scale[:, None], Z, starts["h0"], starts["s0"])
    Hs = H[1:].reshape(-1, D)
    loss, dO = softmax_ce_head(Hs, V, Y)
    G = np.dot(dO, V).reshape((T,) + lead + (D,))
    dP, dh0, ds0 = lstm_layer_backward(W, Z, H, S, TS, G)
    dP2 = dP.reshape(-1, 4 * D)
    dW, dU, db = np.dot(dP2.T, H[:T].reshape(-1, D)), np.dot(dP2.T, X), dP2.sum(0)
    grads = {"V": np.dot(dO.T, Hs), "h0": dh0, "s0": ds0}
    for i, k in enumerate(order):
        rows = slice(i * D, (i + 1) * D)
        grads["W" + k], grads["U" + k], grads["b" + k] = dW[rows], dU[rows], db[rows]
    return loss, grads


def gru_stacked(params, x, y, starts):
    """symrnn.GRU(): u, r = sigmoid(W_k h + U_k x + b_k), a = tanh(W (r h) + U x + b),
    h = u h_prev + (1 - u) a, softmax cross-entropy on V h."""
    order = ["_u", "_r", ""]
    W_ur = _stack(params, ["W_u", "W_r"])         # (2D, D)
    W = params["W"]
    U = _stack(params, ["U" + k for k in order])  # (3D, N)
    b = _stack(params, ["b" + k for k in order])
    V = params["V"]
    T, D, N, M = x.shape[0], W.shape[0], U.shape[1], V.shape[0]
    lead = x.shape[1:-1]
    scale = _half_sigmoid_rows(2 * D, 3 * D)
    X, Y = x.reshape(-1, N), y.reshape(-1, M)
    Z = np.empty((T,) + lead + (3 * D,))          # [u, r, a]: pre-activations, then gates
    np.dot(X, (U * scale[:, None]).T, out=Z.reshape(-1, 3 * D))
    Z += b * scale
    H = np.empty((T + 1,) + lead + (D,))
    RH = np.empty((T,) + lead + (D,))             # r * h_prev, the input of W
    H[0] = starts["h0"]
    z, h, rh = list(Z), list(H), list(RH)
    WurT, WT = (0.5 * W_ur).T, W.T
    tmp2, tmp = np.empty(lead + (2 * D,)), np.empty(lead + (D,))
    dot, tanh, mul = np.dot, np.tanh, np.multiply
    for t in range(T):
        zt = z[t]
        ur = zt[..., :2 * D]
        dot(h[t], WurT, out=tmp2)
        ur += tmp2
        tanh(ur, out=ur)
        ur *= 0.5
        ur += 0.5
        mul(zt[..., D:2 * D], h[t], out=rh[t])
        za = zt[..., 2 * D:]
        dot(rh[t], WT, out=tmp)
        za += tmp
        tanh(za, out=za)
        hn = h[t + 1]
        np.subtract(h[t], za, out=hn)             # h = a + u (h_prev - a)
        hn *= zt[..., :D]
        hn += za
    Hs = H[1:].reshape(-1, D)
    loss, dO = softmax_ce_head(Hs, V, Y)
    G = np.dot(dO, V).reshape((T,) + lead + (D,))
    u, r, a = Z[..., :D], Z[..., D:2 * D], Z[..., 2 * D:]
    Hp = H[:T]
    Ku = (Hp - a) * u * (1.0 - u)                 # dL/dz_u = dh * Ku
    Ka = (1.0 - u) * (1.0 - a * a)                # dL/dz_a = dh * Ka
    Kr = Hp * r * (1.0 - r)                       # dL/dz_r = (dL/dz_a W) * Kr
    dP = np.empty(Z.shape)
    dPu, dPr, dPa = list(dP[..., :D]), list(dP[..., D:2 * D]), list(dP[..., 2 * D:])
    dPur = list(dP[..., :2 * D])
    gs, ku, ka, kr, us, rs = list(G), list(Ku), list(Ka), list(Kr), list(u), list(r)
    carry, drh = np.empty(lead + (D,)), np.empty(lead + (D,))
    for t in range(T - 1, -1, -1):
        dh = gs[t]
        if t < T - 1:
            dh += carry
        mul(dh, ka[t], out=dPa[t])
        dot(dPa[t], W, out=drh)
        mul(dh, ku[t], out=dPu[t])
        mul(drh, kr[t], out=dPr[t])
        mul(dh, us[t], out=carry)                 # dL/dh_prev
        mul(drh, rs[t], out=tmp)
        carry += tmp
        dot(dPur[t], W_ur, out=tmp)
        carry += tmp
    dP2 = dP.reshape(-1, 3 * D)
    dWur = np.dot(dP2[:, :2 * D].T, Hp.reshape(-1, D))
    dU, db = np.dot(dP2.T, X), dP2.sum(0)
    grads = {"W_u": dWur[:D], "W_r": dWur[D:], "W": np.dot(dP2[:, 2 * D:].T, RH.reshape(-1, D)),
             "V": np.dot(dO.T, Hs), "h0": carry}
    for i, k in enumerate(order):
        rows = slice(i * D, (i + 1) * D)
        grads["U" + k], grads["b" + k] = dU[rows], db[rows]
    return loss, grads


def stacked_narrow(params, x, y, starts):
    """The stacked LSTM of cells.stacked_text with l layers: diagonal recurrent
    weights w_*k, layer k > 1 reading h_(k-1) of the same step, o = V h_l + c.
    Layer by layer: a layer's input projection for all steps is one GEMM (its
    input, x or the layer below, is known for every step), then its recurrence
    runs alone; backward from the top layer down, each layer's dL/d(input) one
    GEMM. A diagonal recurrence is a GEMV against the stacked diag(w_*k)."""
    layers = sum(1 for k in params if k.startswith("w_f"))
    order = ["q", "f", "g", "a"]
    V, c = params["V"], params["c"]
    T, N, M = x.shape[0], x.shape[-1], V.shape[0]
    D = params["w_f1"].shape[0]
    lead = x.shape[1:-1]
    scale = _half_sigmoid_rows(3 * D, 4 * D)
    Y, inp = y.reshape(-1, M), x.reshape(-1, N)
    saved = []
    for k in range(1, layers + 1):
        Wd = np.zeros((4 * D, D))                 # diag(w_q), diag(w_f), ... stacked
        for i, gname in enumerate(order):
            Wd[i * D:(i + 1) * D] = np.diag(params[f"w_{gname}{k}"])
        U = np.concatenate([params[f"U_{gname}{k}"] for gname in order])
        b = np.concatenate([params[f"b_{gname}{k}"] for gname in order])
        Z = np.empty((T,) + lead + (4 * D,))
        np.dot(inp, (U * scale[:, None]).T, out=Z.reshape(-1, 4 * D))
        Z += b * scale
        H, S, TS = lstm_layer_forward(Wd * scale[:, None], Z, starts[f"h{k}0"], starts[f"s{k}0"])
        saved.append((Wd, U, inp, Z, H, S, TS))
        inp = H[1:].reshape(-1, D)
    loss, dO = softmax_ce_head(inp, V, Y, c)
    grads = {"V": np.dot(dO.T, inp), "c": dO.sum(0)}
    G = np.dot(dO, V)
    for k in range(layers, 0, -1):
        Wd, U, inp, Z, H, S, TS = saved[k - 1]
        dP, grads[f"h{k}0"], grads[f"s{k}0"] = lstm_layer_backward(
            Wd, Z, H, S, TS, G.reshape((T,) + lead + (D,)))
        dP2 = dP.reshape(-1, 4 * D)
        dU, db = np.dot(dP2.T, inp), dP2.sum(0)
        # dL/dw = sum over rows of dL/dz * h_prev, for the four gates at once
        dw = np.einsum("rgd,rd->gd", dP2.reshape(-1, 4, D), H[:T].reshape(-1, D))
        for i, gname in enumerate(order):
            rows = slice(i * D, (i + 1) * D)
            grads[f"w_{gname}{k}"], grads[f"U_{gname}{k}"], grads[f"b_{gname}{k}"] = (
                dw[i], dU[rows], db[rows])
        if k > 1:
            G = np.dot(dP2, U)                    # dL/dh_(k-1) from layer k, all steps
    return loss, grads
