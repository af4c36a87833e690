"""Hand-written NumPy BPTT of the Elman RNN (tanh, softmax cross-entropy, no
bias): z = h_prev W^T + x U^T, h = tanh(z), o = h V^T,
loss = -sum_t y . log_softmax(o).

Layout (the benchmark's, for every implementation): x (T, N) and y (T, M) for
one sequence, (T, B, N) and (T, B, M) for a batch; starts {"h0": (D,) or (B, D)}.
Returns (loss, grads) with grads keyed "W", "U", "V", "h0" in those shapes.
"""
import numpy as np


def elman_per_step(params, x, y, starts):
    """min-char-rnn style: column vectors, one step at a time, the weight
    gradients accumulated as sums of outer products in the backward loop."""
    W, U, V = params["W"], params["U"], params["V"]
    batched = x.ndim == 3
    xs = x.transpose(0, 2, 1) if batched else x[:, :, None]   # (T, N, B) views
    ys = y.transpose(0, 2, 1) if batched else y[:, :, None]
    h0 = starts["h0"]
    hs = {-1: h0.T if batched else h0[:, None]}               # (D, B)
    ps, loss = {}, 0.0
    for t in range(len(xs)):
        hs[t] = np.tanh(U @ xs[t] + W @ hs[t - 1])
        o = V @ hs[t]
        e = np.exp(o - o.max(0))
        ps[t] = e / e.sum(0)
        loss += -np.sum(ys[t] * np.log(ps[t]))
    dW, dU, dV = np.zeros_like(W), np.zeros_like(U), np.zeros_like(V)
    dh_next = np.zeros_like(hs[-1])
    for t in reversed(range(len(xs))):
        do = ps[t] - ys[t]                        # targets sum to 1 over the classes
        dV += do @ hs[t].T
        dh = V.T @ do + dh_next
        dz = (1 - hs[t] * hs[t]) * dh
        dU += dz @ xs[t].T
        dW += dz @ hs[t - 1].T
        dh_next = W.T @ dz
    return float(loss), {"W": dW, "U": dU, "V": dV,
                         "h0": dh_next.T if batched else dh_next[:, 0]}


def softmax_ce_head(Hs, V, Y, c=None):
    """Loss and dL/do of o = Hs V^T (+ c) against the rows Y (each sums to 1),
    stacked over all steps: one GEMM, one exp, in place."""
    O = np.dot(Hs, V.T)
    if c is not None:
        O += c
    O -= O.max(1, keepdims=True)                  # shifted logits
    loss = -np.vdot(Y, O)
    np.exp(O, out=O)
    Z = O.sum(1, keepdims=True)
    loss += np.log(Z).sum()
    O /= Z
    O -= Y                                        # dL/do = softmax(o) - y
    return float(loss), O


def elman_stacked(params, x, y, starts):
    """The baseline: only the two recurrences run step by step; x U^T for all
    steps, the output layer, the softmax, the loss and each weight gradient are
    one vectorised operation or one matrix product over all steps. Rows are 1-D
    for one sequence and (B, D) for a batch; nothing is copied or transposed."""
    W, U, V = params["W"], params["U"], params["V"]
    dot, tanh = np.dot, np.tanh
    T, D, N = x.shape[0], W.shape[0], U.shape[1]
    lead = x.shape[1:-1]                          # () or (B,)
    X, Y = x.reshape(-1, N), y.reshape(-1, V.shape[0])
    H = np.empty((T + 1,) + lead + (D,))          # h^(0..T), one row per step
    H[0] = starts["h0"]
    dot(X, U.T, out=H[1:].reshape(-1, D))         # x U^T for all steps at once
    rows = list(H)                                # views, cheaper than H[t] in the loop
    WT = W.T
    tmp = np.empty(lead + (D,))
    for t in range(T):
        r = rows[t + 1]
        dot(rows[t], WT, out=tmp)
        r += tmp
        tanh(r, out=r)
    Hs = H[1:].reshape(-1, D)
    loss, dO = softmax_ce_head(Hs, V, Y)
    G = dot(dO, V)                                # dL/dh through the output, all steps
    S = Hs * Hs
    np.subtract(1.0, S, out=S)                    # tanh' = 1 - h^2
    g, s = list(G.reshape((T,) + lead + (D,))), list(S.reshape((T,) + lead + (D,)))
    d = g[T - 1]                                  # G becomes dL/dz in place
    d *= s[T - 1]
    for t in range(T - 2, -1, -1):
        nd = g[t]
        dot(d, W, out=tmp)
        nd += tmp
        nd *= s[t]
        d = nd
    return loss, {"W": dot(G.T, H[:T].reshape(-1, D)), "U": dot(G.T, X), "V": dot(dO.T, Hs),
                  "h0": dot(d, W)}
