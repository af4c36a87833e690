"""Independent NumPy forward passes and BPTT, written by hand step by step (no
symrnn code), for the LSTM, the GRU and the user-defined two-timescale cell of
tests/test_custom_cell.py. One sequence at a time, column vectors as 1-D
arrays; ``over_batch`` runs them on each member of a batch.

The forward passes alone are what the finite differences differentiate.
"""
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax_ce(o, y):
    """-y . log softmax(o) and its gradient softmax(o) (1 . y) - y."""
    m = o.max()
    logp = o - m - np.log(np.exp(o - m).sum())
    return -(y * logp).sum(), np.exp(logp) * y.sum() - y


# -- LSTM (Goodfellow et al. 10.10.1) -----------------------------------------------
LSTM_GATES = ("_f", "_g", "_q", "")


def lstm_forward(params, x, y, h0=None, s0=None):
    """Loss and the per-step values of one sequence x: (T, N), y: (T, M)."""
    D = params["W"].shape[0]
    h = np.zeros(D) if h0 is None else np.asarray(h0, float)
    s = np.zeros(D) if s0 is None else np.asarray(s0, float)
    steps, loss = [], 0.0
    for xt, yt in zip(x, y):
        pre = {k: params["W" + k] @ h + params["U" + k] @ xt + params["b" + k] for k in LSTM_GATES}
        f, g, q = sigmoid(pre["_f"]), sigmoid(pre["_g"]), sigmoid(pre["_q"])
        a = np.tanh(pre[""])
        s_new = f * s + g * a
        h_new = np.tanh(s_new) * q
        o = params["V"] @ h_new
        l, do = _softmax_ce(o, yt)
        loss += l
        steps.append(dict(x=xt, h_prev=h, s_prev=s, f=f, g=g, q=q, a=a, s=s_new, h=h_new, do=do))
        h, s = h_new, s_new
    return loss, steps


def lstm_bptt(params, x, y, h0=None, s0=None):
    loss, steps = lstm_forward(params, x, y, h0, s0)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    D = params["W"].shape[0]
    dh_next, ds_next = np.zeros(D), np.zeros(D)  # dL/dh^(t), dL/ds^(t) through step t+1
    for st in reversed(steps):
        grads["V"] += np.outer(st["do"], st["h"])
        dh = params["V"].T @ st["do"] + dh_next
        tanh_s = np.tanh(st["s"])
        ds = dh * st["q"] * (1 - tanh_s ** 2) + ds_next
        d_pre = {"_q": dh * tanh_s * st["q"] * (1 - st["q"]),
                 "_f": ds * st["s_prev"] * st["f"] * (1 - st["f"]),
                 "_g": ds * st["a"] * st["g"] * (1 - st["g"]),
                 "": ds * st["g"] * (1 - st["a"] ** 2)}
        dh_next = np.zeros(D)
        for k, dz in d_pre.items():
            grads["W" + k] += np.outer(dz, st["h_prev"])
            grads["U" + k] += np.outer(dz, st["x"])
            grads["b" + k] += dz
            dh_next += params["W" + k].T @ dz
        ds_next = ds * st["f"]
    grads["h0"], grads["s0"] = dh_next, ds_next
    return loss, grads


# -- GRU (Goodfellow et al. 10.10.2) ----------------------------------------------
def gru_forward(params, x, y, h0=None):
    D = params["W"].shape[0]
    h = np.zeros(D) if h0 is None else np.asarray(h0, float)
    steps, loss = [], 0.0
    for xt, yt in zip(x, y):
        u = sigmoid(params["W_u"] @ h + params["U_u"] @ xt + params["b_u"])
        r = sigmoid(params["W_r"] @ h + params["U_r"] @ xt + params["b_r"])
        a = np.tanh(params["W"] @ (r * h) + params["U"] @ xt + params["b"])
        h_new = u * h + (1 - u) * a
        l, do = _softmax_ce(params["V"] @ h_new, yt)
        loss += l
        steps.append(dict(x=xt, h_prev=h, u=u, r=r, a=a, h=h_new, do=do))
        h = h_new
    return loss, steps


def gru_bptt(params, x, y, h0=None):
    loss, steps = gru_forward(params, x, y, h0)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros(params["W"].shape[0])
    for st in reversed(steps):
        u, r, a, hp = st["u"], st["r"], st["a"], st["h_prev"]
        grads["V"] += np.outer(st["do"], st["h"])
        dh = params["V"].T @ st["do"] + dh_next
        dza = dh * (1 - u) * (1 - a ** 2)
        dzu = dh * (hp - a) * u * (1 - u)
        grads["W"] += np.outer(dza, r * hp)
        grads["U"] += np.outer(dza, st["x"])
        grads["b"] += dza
        drh = params["W"].T @ dza          # dL/d(r * h^(t-1))
        dzr = drh * hp * r * (1 - r)
        for k, dz in (("_u", dzu), ("_r", dzr)):
            grads["W" + k] += np.outer(dz, hp)
            grads["U" + k] += np.outer(dz, st["x"])
            grads["b" + k] += dz
        dh_next = dh * u + drh * r + params["W_u"].T @ dzu + params["W_r"].T @ dzr
    grads["h0"] = dh_next
    return loss, grads


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


# -- batches ------------------------------------------------------------------------
def over_batch(bptt, params, x, y, **initial):
    """x: (T, N, B), y: (T, M, B); each initial state None, (D,) or (D, B).

    The conventions of the generated function: the loss and the parameters'
    gradients are summed over the batch; an initial state's gradient is (D, B),
    one column per sequence, unless that state was given as one (D,) vector
    shared by the batch, whose gradient is then summed.
    """
    B = x.shape[2]
    total, out = 0.0, {}
    for i in range(B):
        starts = {k: (None if v is None else v if np.ndim(v) == 1 else v[:, i])
                  for k, v in initial.items()}
        loss, g = bptt(params, x[:, :, i], y[:, :, i], **starts)
        total += loss
        for k, v in g.items():
            if k in params or (k in initial and initial[k] is not None and np.ndim(initial[k]) == 1):
                out[k] = out.get(k, 0) + v
            else:
                out.setdefault(k, np.zeros((len(v), B)))[:, i] = v
    return total, out


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
