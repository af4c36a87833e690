"""Hand-written NumPy BPTT for the textbook cells: the Elman RNN (every activation,
output and bias), the LSTM and the GRU (Goodfellow et al., sections 10.10.1-2).

Written by hand from the textbook equations, one sequence and one step at a time
with column vectors as 1-D arrays. Nothing here is generated or derived by symrnn
and nothing is shared with the code generator, so a wrong adjoint rule, a wrong
printer or a wrong runtime layout shows up as a disagreement.

``over_batch`` adds the conventions of the generated function (batches, integer
labels, initial states None, (D,) or (D, B)) on top of a one-sequence BPTT;
``reference_for(cell)`` picks the BPTT of a cell, or None.
"""
import numpy as np

__all__ = ["KERNELS", "LSTM_GATES", "elman_bptt", "elman_bptt_batched", "gru_bptt",
           "gru_forward", "lstm_bptt", "lstm_forward", "over_batch", "reference_for",
           "sigmoid"]


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


# activation f and its derivative f'(z), written with h = f(z) where that is usual: the
# Elman activations this module can check, written by hand here on purpose and not
# taken from symrnn.ops (whose kernels and adjoint rules are what is being checked)
KERNELS = {
    "tanh": (np.tanh, lambda z, h: 1.0 - h * h),
    "sigmoid": (sigmoid, lambda z, h: h * (1.0 - h)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, h: (z > 0).astype(float)),
    "identity": (lambda z: z, lambda z, h: np.ones_like(z)),
}


def _output_loss(output, o, y):
    """The loss of one step and its derivative with respect to the output o."""
    if output == "softmax_ce":
        # L = -sum_i y_i log p_i with log p = o - logsumexp(o); dL/do = p sum(y) - y
        shifted = o - o.max()
        log_p = shifted - np.log(np.exp(shifted).sum())
        return -(y * log_p).sum(), np.exp(log_p) * y.sum() - y
    if output == "mse":
        return 0.5 * ((o - y) ** 2).sum(), o - y
    if output == "upstream":
        return (y * o).sum(), y
    raise ValueError(f"output: unknown value {output!r}")


def _start(value, size):
    return np.zeros(size) if value is None else np.asarray(value, dtype=float)


# -- Elman RNN -------------------------------------------------------------------------

def elman_bptt(params, x, y, h0=None, activation="tanh", output="softmax_ce"):
    """Elman RNN on one sequence: x (T, N), y (T, M), h0 (D,) -> (loss, grads).

    z = W h^(t-1) + U x^(t) + b, h^(t) = f(z), o = V h^(t) + c, and the output's loss.
    """
    W, U, V = params["W"], params["U"], params["V"]
    b = params.get("b", np.zeros(len(W)))
    c = params.get("c", np.zeros(len(V)))
    f, f_prime = KERNELS[activation]
    hs, zs, d_os, loss = [_start(h0, len(W))], [], [], 0.0
    for t in range(len(x)):
        zs.append(W @ hs[-1] + U @ x[t] + b)
        hs.append(f(zs[-1]))
        step_loss, d_o = _output_loss(output, V @ hs[-1] + c, y[t])
        loss += step_loss
        d_os.append(d_o)
    grads = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in params.items()}
    d_h_next = np.zeros(len(W))  # dL/dh^(t) through step t+1
    for t in reversed(range(len(x))):
        grads["V"] += np.outer(d_os[t], hs[t + 1])
        if "c" in grads:
            grads["c"] += d_os[t]
        d_z = f_prime(zs[t], hs[t + 1]) * (V.T @ d_os[t] + d_h_next)
        grads["W"] += np.outer(d_z, hs[t])
        grads["U"] += np.outer(d_z, x[t])
        if "b" in grads:
            grads["b"] += d_z
        d_h_next = W.T @ d_z
    grads["h0"] = d_h_next
    return loss, grads


def elman_bptt_batched(params, x, y, h0=None, **model):
    """``elman_bptt`` over a batch x (T, N, B), y (T, M, B) (see ``over_batch``)."""
    return over_batch(lambda p, x_, y_, h0=None: elman_bptt(p, x_, y_, h0, **model),
                      params, x, y, h0=h0)


# -- LSTM (Goodfellow et al. 10.10.1) ------------------------------------------------
LSTM_GATES = ("_f", "_g", "_q", "")  # forget, input, output gate; block input


def lstm_forward(params, x, y, h0=None, s0=None):
    """Loss and the per-step values of one sequence x (T, N), y (T, M)."""
    D = len(params["W"])
    h, s = _start(h0, D), _start(s0, D)
    steps, loss = [], 0.0
    for x_t, y_t in zip(x, y):
        pre = {k: params["W" + k] @ h + params["U" + k] @ x_t + params["b" + k]
               for k in LSTM_GATES}
        f, g, q = sigmoid(pre["_f"]), sigmoid(pre["_g"]), sigmoid(pre["_q"])
        a = np.tanh(pre[""])
        s_new = f * s + g * a
        h_new = np.tanh(s_new) * q
        step_loss, d_o = _output_loss("softmax_ce", params["V"] @ h_new, y_t)
        loss += step_loss
        steps.append(dict(x=x_t, h_prev=h, s_prev=s, f=f, g=g, q=q, a=a, s=s_new, h=h_new,
                          d_o=d_o))
        h, s = h_new, s_new
    return loss, steps


def lstm_bptt(params, x, y, h0=None, s0=None):
    loss, steps = lstm_forward(params, x, y, h0, s0)
    grads = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in params.items()}
    D = len(params["W"])
    d_h_next, d_s_next = np.zeros(D), np.zeros(D)  # through step t+1
    for st in reversed(steps):
        f, g, q, a = st["f"], st["g"], st["q"], st["a"]
        grads["V"] += np.outer(st["d_o"], st["h"])
        d_h = params["V"].T @ st["d_o"] + d_h_next
        tanh_s = np.tanh(st["s"])
        d_s = d_h * q * (1.0 - tanh_s ** 2) + d_s_next
        d_pre = {"_f": d_s * st["s_prev"] * f * (1.0 - f),
                 "_g": d_s * a * g * (1.0 - g),
                 "_q": d_h * tanh_s * q * (1.0 - q),
                 "": d_s * g * (1.0 - a ** 2)}
        d_h_next = np.zeros(D)
        for k in LSTM_GATES:
            grads["W" + k] += np.outer(d_pre[k], st["h_prev"])
            grads["U" + k] += np.outer(d_pre[k], st["x"])
            grads["b" + k] += d_pre[k]
            d_h_next += params["W" + k].T @ d_pre[k]
        d_s_next = d_s * f
    grads["h0"], grads["s0"] = d_h_next, d_s_next
    return loss, grads


# -- GRU (Goodfellow et al. 10.10.2) ---------------------------------------------------

def gru_forward(params, x, y, h0=None):
    p = params
    h = _start(h0, len(p["W"]))
    steps, loss = [], 0.0
    for x_t, y_t in zip(x, y):
        u = sigmoid(p["W_u"] @ h + p["U_u"] @ x_t + p["b_u"])
        r = sigmoid(p["W_r"] @ h + p["U_r"] @ x_t + p["b_r"])
        a = np.tanh(p["W"] @ (r * h) + p["U"] @ x_t + p["b"])
        h_new = u * h + (1.0 - u) * a
        step_loss, d_o = _output_loss("softmax_ce", p["V"] @ h_new, y_t)
        loss += step_loss
        steps.append(dict(x=x_t, h_prev=h, u=u, r=r, a=a, h=h_new, d_o=d_o))
        h = h_new
    return loss, steps


def gru_bptt(params, x, y, h0=None):
    p = params
    loss, steps = gru_forward(params, x, y, h0)
    grads = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in params.items()}
    d_h_next = np.zeros(len(p["W"]))
    for st in reversed(steps):
        u, r, a, h_prev = st["u"], st["r"], st["a"], st["h_prev"]
        grads["V"] += np.outer(st["d_o"], st["h"])
        d_h = p["V"].T @ st["d_o"] + d_h_next
        d_pre_a = d_h * (1.0 - u) * (1.0 - a ** 2)
        d_pre_u = d_h * (h_prev - a) * u * (1.0 - u)
        d_rh = p["W"].T @ d_pre_a  # dL/d(r * h^(t-1))
        d_pre_r = d_rh * h_prev * r * (1.0 - r)
        for k, d_pre, h_in in (("_u", d_pre_u, h_prev), ("_r", d_pre_r, h_prev),
                               ("", d_pre_a, r * h_prev)):
            grads["W" + k] += np.outer(d_pre, h_in)
            grads["U" + k] += np.outer(d_pre, st["x"])
            grads["b" + k] += d_pre
        d_h_next = d_h * u + d_rh * r + p["W_u"].T @ d_pre_u + p["W_r"].T @ d_pre_r
    grads["h0"] = d_h_next
    return loss, grads


# -- the conventions of the generated function -------------------------------------

def over_batch(bptt, params, x, y, classes=None, **initial):
    """``bptt(params, x, y, **starts)`` of one sequence, with the generated function's
    conventions: x (T, N) or a batch (T, N, B); y (T, M) or (T, M, B), or integer
    labels (T,) or (T, B) when ``classes`` is given; each initial state None, (D,)
    shared by the batch, or (D, B). The loss and the parameters' gradients are sums
    over the batch; an initial state's gradient is (D,) for one sequence or a shared
    (D,) start, else (D, B)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y)
    if classes is not None and y.dtype.kind in "iu" and y.ndim == x.ndim - 1:
        y = np.moveaxis(np.eye(classes)[y], -1, 1)  # labels -> one-hot (T, M[, B])
    y = np.asarray(y, dtype=float)
    batched = x.ndim == 3
    xs, ys = (x, y) if batched else (x[:, :, None], y[:, :, None])
    params = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    total, out = 0.0, {}
    for i in range(xs.shape[2]):
        starts = {k: None if v is None else np.asarray(v, float) if np.ndim(v) == 1
                  else np.asarray(v, float)[:, i] for k, v in initial.items()}
        loss, grads = bptt(params, xs[:, :, i], ys[:, :, i], **starts)
        total += loss
        for k, g in grads.items():
            shared = k in initial and initial[k] is not None and np.ndim(initial[k]) == 1
            if k in params or shared or not batched:
                out[k] = out.get(k, 0) + g
            else:
                out.setdefault(k, np.zeros((len(g), xs.shape[2])))[:, i] = g
    return total, out


def reference_for(cell):
    """``bptt(params, x, y, **initial) -> (loss, grads)`` of one sequence for a
    textbook cell (an Elman RNN, the LSTM, the GRU, or a cell with the same
    equations), or None for any other cell."""
    from ..model import GRU, LSTM, ElmanRNN

    if isinstance(cell, ElmanRNN):
        activation, output = cell.activation, cell.output
        return lambda p, x, y, h0=None: elman_bptt(p, x, y, h0, activation, output)
    if isinstance(cell, LSTM) or _same_cell(cell, LSTM()):
        return lstm_bptt
    if isinstance(cell, GRU) or _same_cell(cell, GRU()):
        return gru_bptt
    for activation in KERNELS:
        for output in ("softmax_ce", "mse", "upstream"):
            for bias in (False, True):
                if _same_cell(cell, ElmanRNN(activation, output, bias)):
                    return (lambda p, x, y, h0=None, a=activation, o=output:
                            elman_bptt(p, x, y, h0, a, o))
    return None


def _same_cell(cell, preset):
    """The same equations, names and shapes (e.g. a preset written in the text syntax)."""
    def names(symbols):
        return [(s.name, s.shape) for s in symbols]

    return (names(cell.params) == names(preset.params) and names(cell.inputs) == names(preset.inputs)
            and names(cell.targets) == names(preset.targets)
            and names(cell.states) == names(preset.states)
            and cell.equations == preset.equations
            and cell.targets_are_distributions == preset.targets_are_distributions)
