"""Hand-written NumPy BPTT for the cells of tests/test_custom_cell.py (the
two-timescale cell and the learned leak), written step by step without symrnn code;
the LSTM, the GRU and ``over_batch`` come from ``symrnn.checking.references``, the
one copy of each textbook reference.
"""
import numpy as np

from symrnn.checking.references import (LSTM_GATES, gru_bptt, gru_forward, lstm_bptt,
                                        lstm_forward, over_batch, sigmoid)

__all__ = ["LSTM_GATES", "gru_bptt", "gru_forward", "leaky_forward", "lstm_bptt",
           "lstm_forward", "over_batch", "sigmoid", "two_timescale_bptt",
           "two_timescale_forward"]


# -- the two-timescale cell of tests/test_custom_cell.py --------------------------
#   k = sigmoid(w m^(t-1))                       one scalar rate (w is a row)
#   z = W h^(t-1) + U x + A m^(t-1) + b
#   h = tanh(z) * sigmoid(m^(t-1))
#   m = m^(t-1) + k (h - m^(t-1))
#   o = V (h - m) + c,   L = |o - y|^2 / 2
def two_timescale_forward(params, x, y, h0=None, m0=None):
    p = params
    D = p["W"].shape[0]
    h = np.zeros(D) if h0 is None else np.asarray(h0, float)
    m = np.zeros(D) if m0 is None else np.asarray(m0, float)
    steps, loss = [], 0.0
    for xt, yt in zip(x, y):
        k = sigmoid(p["w"][0] @ m)
        z = p["W"] @ h + p["U"] @ xt + p["A"] @ m + p["b"]
        sm = sigmoid(m)
        h_new = np.tanh(z) * sm
        m_new = m + k * (h_new - m)
        o = p["V"] @ (h_new - m_new) + p["c"]
        loss += 0.5 * ((o - yt) ** 2).sum()
        steps.append(dict(x=xt, h_prev=h, m_prev=m, k=k, z=z, sm=sm, h=h_new, m=m_new,
                          do=o - yt))
        h, m = h_new, m_new
    return loss, steps


def two_timescale_bptt(params, x, y, h0=None, m0=None):
    p = params
    loss, steps = two_timescale_forward(params, x, y, h0, m0)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    D = p["W"].shape[0]
    dh_next, dm_next = np.zeros(D), np.zeros(D)
    for st in reversed(steps):
        k, mp = st["k"], st["m_prev"]
        grads["V"] += np.outer(st["do"], st["h"] - st["m"])
        grads["c"] += st["do"]
        dm = -p["V"].T @ st["do"] + dm_next
        dh = p["V"].T @ st["do"] + dh_next + k * dm      # m uses h of the same step
        dk = dm @ (st["h"] - mp)
        tanh_z = np.tanh(st["z"])
        dz = dh * st["sm"] * (1 - tanh_z ** 2)
        grads["W"] += np.outer(dz, st["h_prev"])
        grads["U"] += np.outer(dz, st["x"])
        grads["A"] += np.outer(dz, mp)
        grads["b"] += dz
        dk_pre = dk * k * (1 - k)
        grads["w"] += dk_pre * mp[None, :]
        dh_next = p["W"].T @ dz
        dm_next = (dm * (1 - k) + dh * tanh_z * st["sm"] * (1 - st["sm"])
                   + p["A"].T @ dz + p["w"][0] * dk_pre)
    grads["h0"], grads["m0"] = dh_next, dm_next
    return loss, grads


# -- a cell with a learned scalar leak (tests/test_custom_cell.py) --------------------
#   a = tanh(W h^(t-1) + U x),  h = alpha h^(t-1) + a,  o = V h,
#   L = |o - y|^2 / 2 + alpha h . a
def leaky_forward(params, x, y, h0=None):
    W, U, V, alpha = params["W"], params["U"], params["V"], params["alpha"][0]
    h = np.zeros(W.shape[0]) if h0 is None else np.asarray(h0, float)
    loss = 0.0
    for xt, yt in zip(x, y):
        a = np.tanh(W @ h + U @ xt)
        h = alpha * h + a
        loss += 0.5 * ((V @ h - yt) ** 2).sum() + alpha * (h @ a)
    return loss
