"""Numeric check of the generated gradients, as run by ``symrnn check``.

Two yardsticks, for one random problem:

* central finite differences of the generated loss ``f.loss``, entry by entry;
* an independent BPTT written by hand below in plain NumPy, one time step and
  one sequence at a time, with column vectors as on paper. It shares no code
  with the engine (nothing here is generated or derived symbolically), so an
  error in a derivation rule, in the code generator or in the runtime's layout
  shows up as a disagreement.

``check(cell)`` returns a :class:`CheckReport`; ``report.table()`` is what the
command prints and ``report.passed`` decides its exit code.
"""
from dataclasses import dataclass, field

import numpy as np

from .model import GRU, LSTM, ElmanRNN

REFERENCE_TOLERANCE = 1e-9
FINITE_DIFFERENCE_TOLERANCE = 1e-5


# -- hand-written references: one sequence, column vectors, step by step ----------

def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


# activation f and its derivative f'(z), written with h = f(z) where that is usual
ACTIVATIONS = {
    "tanh": (np.tanh, lambda z, h: 1.0 - h * h),
    "sigmoid": (_sigmoid, lambda z, h: h * (1.0 - h)),
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


def elman_reference(params, x, y, h0, activation="tanh", output="softmax_ce"):
    """Elman RNN on one sequence: x (T, N), y (T, M), h0 (D,) -> (loss, grads)."""
    W, U, V = params["W"], params["U"], params["V"]
    b = params.get("b", np.zeros(len(W)))
    c = params.get("c", np.zeros(len(V)))
    f, f_prime = ACTIVATIONS[activation]
    hs, zs, d_os, loss = [h0], [], [], 0.0
    for t in range(len(x)):
        zs.append(W @ hs[-1] + U @ x[t] + b)
        hs.append(f(zs[-1]))
        step_loss, d_o = _output_loss(output, V @ hs[-1] + c, y[t])
        loss += step_loss
        d_os.append(d_o)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
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


LSTM_GATES = ("_f", "_g", "_q", "")  # forget, input, output gate; block input


def lstm_reference(params, x, y, h0, s0):
    """LSTM (Goodfellow et al. 10.10.1) on one sequence -> (loss, grads)."""
    V = params["V"]

    def pre(k, h, x_t):
        return params["W" + k] @ h + params["U" + k] @ x_t + params["b" + k]

    hs, ss, steps, d_os, loss = [h0], [s0], [], [], 0.0
    for t in range(len(x)):
        f = _sigmoid(pre("_f", hs[-1], x[t]))
        g = _sigmoid(pre("_g", hs[-1], x[t]))
        q = _sigmoid(pre("_q", hs[-1], x[t]))
        a = np.tanh(pre("", hs[-1], x[t]))
        ss.append(f * ss[-1] + g * a)
        hs.append(np.tanh(ss[-1]) * q)
        steps.append((f, g, q, a))
        step_loss, d_o = _output_loss("softmax_ce", V @ hs[-1], y[t])
        loss += step_loss
        d_os.append(d_o)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    d_h_next, d_s_next = np.zeros(len(h0)), np.zeros(len(s0))
    for t in reversed(range(len(x))):
        f, g, q, a = steps[t]
        grads["V"] += np.outer(d_os[t], hs[t + 1])
        d_h = V.T @ d_os[t] + d_h_next
        tanh_s = np.tanh(ss[t + 1])
        d_s = d_h * q * (1.0 - tanh_s ** 2) + d_s_next
        d_pre = {"_f": d_s * ss[t] * f * (1.0 - f),
                 "_g": d_s * a * g * (1.0 - g),
                 "_q": d_h * tanh_s * q * (1.0 - q),
                 "": d_s * g * (1.0 - a ** 2)}
        d_h_next = np.zeros(len(h0))
        for k in LSTM_GATES:
            grads["W" + k] += np.outer(d_pre[k], hs[t])
            grads["U" + k] += np.outer(d_pre[k], x[t])
            grads["b" + k] += d_pre[k]
            d_h_next += params["W" + k].T @ d_pre[k]
        d_s_next = d_s * f
    grads["h0"], grads["s0"] = d_h_next, d_s_next
    return loss, grads


def gru_reference(params, x, y, h0):
    """GRU (Goodfellow et al. 10.10.2) on one sequence -> (loss, grads)."""
    V = params["V"]
    p = params
    hs, steps, d_os, loss = [h0], [], [], 0.0
    for t in range(len(x)):
        h = hs[-1]
        u = _sigmoid(p["W_u"] @ h + p["U_u"] @ x[t] + p["b_u"])
        r = _sigmoid(p["W_r"] @ h + p["U_r"] @ x[t] + p["b_r"])
        a = np.tanh(p["W"] @ (r * h) + p["U"] @ x[t] + p["b"])
        hs.append(u * h + (1.0 - u) * a)
        steps.append((u, r, a))
        step_loss, d_o = _output_loss("softmax_ce", V @ hs[-1], y[t])
        loss += step_loss
        d_os.append(d_o)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    d_h_next = np.zeros(len(h0))
    for t in reversed(range(len(x))):
        u, r, a = steps[t]
        h_prev = hs[t]
        grads["V"] += np.outer(d_os[t], hs[t + 1])
        d_h = V.T @ d_os[t] + d_h_next
        d_pre_a = d_h * (1.0 - u) * (1.0 - a ** 2)
        d_pre_u = d_h * (h_prev - a) * u * (1.0 - u)
        d_rh = p["W"].T @ d_pre_a  # dL/d(r * h^(t-1))
        d_pre_r = d_rh * h_prev * r * (1.0 - r)
        for k, d_pre, h_in in (("_u", d_pre_u, h_prev), ("_r", d_pre_r, h_prev),
                               ("", d_pre_a, r * h_prev)):
            grads["W" + k] += np.outer(d_pre, h_in)
            grads["U" + k] += np.outer(d_pre, x[t])
            grads["b" + k] += d_pre
        d_h_next = (d_h * u + d_rh * r + p["W_u"].T @ d_pre_u + p["W_r"].T @ d_pre_r)
    grads["h0"] = d_h_next
    return loss, grads


def reference_for(cell):
    """``ref(params, x, y, states) -> (loss, grads)`` for one sequence, or None."""
    if isinstance(cell, ElmanRNN):
        return lambda p, x, y, s: elman_reference(p, x, y, s["h0"], cell.activation, cell.output)
    if isinstance(cell, LSTM):
        return lambda p, x, y, s: lstm_reference(p, x, y, s["h0"], s["s0"])
    if isinstance(cell, GRU):
        return lambda p, x, y, s: gru_reference(p, x, y, s["h0"])
    return None


def batched_reference(reference, params, x, y, initial, state_sizes, classes=None):
    """The API's conventions on top of a one-sequence reference: batches of x (T, N, B)
    summed over, integer labels, initial states None, (D,) or (D, B), gradients of
    the initial states in the shape they were given."""
    batched = np.ndim(x) == 3
    ys = np.asarray(y)
    if classes is not None and ys.dtype.kind in "iu" and ys.ndim == np.ndim(x) - 1:
        ys = np.moveaxis(np.eye(classes)[ys], -1, 1)  # labels (T[, B]) -> one-hot (T, M[, B])
    xs, ys = np.asarray(x, float), np.asarray(ys, float)
    if not batched:
        xs, ys = xs[:, :, None], ys[:, :, None]
    batch = xs.shape[2]
    total, grads = 0.0, {}
    for i in range(batch):
        starts = {}
        for key, size in state_sizes.items():
            value = initial.get(key)
            value = np.zeros(size) if value is None else np.asarray(value, float)
            starts[key] = value if value.ndim == 1 else value[:, i]
        loss, g = reference(params, xs[:, :, i], ys[:, :, i], starts)
        total += loss
        for k, v in g.items():
            if k in state_sizes:
                grads.setdefault(k, []).append(v)
            else:
                grads[k] = grads.get(k, 0) + v
    for key in state_sizes:
        given, per_sequence = initial.get(key), np.array(grads[key])  # (B, D)
        if given is not None and np.ndim(given) == 1:
            grads[key] = per_sequence.sum(0)
        elif given is not None or batched:
            grads[key] = per_sequence.T
        else:
            grads[key] = per_sequence[0]
    return total, grads


# -- the check ----------------------------------------------------------------------

def relative_error(a, b):
    """max |a - b| / max(1, max |b|): relative for large entries, absolute for small."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def finite_differences(loss, arrays, eps=1e-6):
    """Central differences of ``loss(arrays)`` with respect to every entry."""
    out = {}
    for name, array in arrays.items():
        grad = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            moved = dict(arrays)
            moved[name] = array.copy()
            moved[name][i] = array[i] + eps
            plus = loss(moved)
            moved[name][i] = array[i] - eps
            grad[i] = (plus - loss(moved)) / (2 * eps)
        out[name] = grad
    return out


def random_problem(cell, T=5, hidden=4, inputs=3, outputs=3, batch=None, seed=0):
    """Random ``(params, x, y, initial)`` for ``cell``: moderate weights, integer
    labels for a softmax output, initial states of shape (D,) or (D, B)."""
    from .codegen.lambdify import spec

    rng = np.random.default_rng(seed)
    s = spec(cell)
    dims = {d for _, ds in s["params"] for d in ds} | {s["input"][1], s["target"][1]} | {
        dim for _, dim in s["states"]}
    sizes = {d: int(d) for d in dims if d.isdigit()}
    sizes.update(D=hidden, N=inputs, M=outputs)
    unknown = dims - set(sizes)
    if unknown:
        raise ValueError(f"cell: sizes {', '.join(sorted(unknown))} are not D, N or M")
    inputs, outputs = sizes[s["input"][1]], sizes[s["target"][1]]
    params = {}
    for name, dims in s["params"]:
        shape = tuple(sizes[d] for d in dims)
        fan_in = shape[1] if len(shape) == 2 else 4  # a bias: entries of size 1/2
        params[name] = rng.normal(size=shape) / np.sqrt(fan_in)
    extra = () if batch is None else (batch,)
    x = rng.normal(size=(T, inputs) + extra)
    if s["labels"]:
        y = rng.integers(0, outputs, size=(T,) + extra)
    else:
        y = rng.normal(size=(T, outputs) + extra)
    initial = {f"{name}0": 0.5 * rng.normal(size=(sizes[dim],) + extra)
               for name, dim in s["states"]}
    return params, x, y, initial


@dataclass
class Row:
    name: str
    shape: tuple
    reference: float = None        # relative error against the hand-written BPTT
    finite_differences: float = None

    @property
    def passed(self):
        return ((self.reference is None or self.reference <= REFERENCE_TOLERANCE)
                and (self.finite_differences is None
                     or self.finite_differences <= FINITE_DIFFERENCE_TOLERANCE))


@dataclass
class CheckReport:
    model: str
    sizes: dict
    rows: list = field(default_factory=list)
    has_reference: bool = True

    @property
    def passed(self):
        return all(row.passed for row in self.rows)

    @property
    def failed(self):
        return [row.name for row in self.rows if not row.passed]

    def table(self):
        def number(v):
            return "-" if v is None else f"{v:.1e}"

        head = ("gradient", "shape", "vs reference", "vs finite differences", "")
        lines = [(r.name, str(r.shape), number(r.reference), number(r.finite_differences),
                  "ok" if r.passed else "FAILED") for r in self.rows]
        widths = [max(len(line[i]) for line in [head] + lines) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        sizes = ", ".join(f"{k} = {v}" for k, v in self.sizes.items())
        out = [f"{self.model}: {sizes}", "", fmt.format(*head).rstrip()]
        out += [fmt.format(*line).rstrip() for line in lines]
        out.append("")
        if not self.has_reference:
            out.append("no hand-written reference for this cell: finite differences only")
        out.append("relative error = max|a - b| / max(1, max|b|); tolerances: reference "
                   f"{REFERENCE_TOLERANCE:.0e}, finite differences {FINITE_DIFFERENCE_TOLERANCE:.0e}")
        out.append("all checks passed" if self.passed
                   else f"FAILED: {', '.join(self.failed)}")
        return "\n".join(out)


def check(cell, T=5, hidden=4, inputs=3, outputs=3, batch=None, seed=0, function=None):
    """Compare the generated gradients of ``cell`` with finite differences of the
    generated loss and with the hand-written reference, on a random problem.

    ``cell`` is a Cell or a Derivation; ``function`` the lambdified ``f`` to check
    (by default ``derive(cell).lambdify()``). The sizes are T, D = hidden,
    N = inputs, M = outputs, and a batch of B sequences unless ``batch`` is None.
    """
    if hasattr(cell, "lambdify") and hasattr(cell, "cell"):  # a Derivation
        function = function or cell.lambdify()
        cell = cell.cell
    for name, value in (("T", T), ("hidden", hidden), ("inputs", inputs),
                        ("outputs", outputs), ("batch", 1 if batch is None else batch)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    if function is None:
        from .derivation import derive
        function = derive(cell).lambdify()
    params, x, y, initial = random_problem(cell, T, hidden, inputs, outputs, batch, seed)
    loss, grads = function(params, x, y, **initial)

    sizes = {"T": T, "D": hidden, "N": inputs, "M": outputs}
    if batch is not None:
        sizes["B"] = batch
    sizes["seed"] = seed
    reference = reference_for(cell)
    report = CheckReport(cell.name, sizes, has_reference=reference is not None)
    if reference is not None:
        state_sizes = {key: value.shape[0] for key, value in initial.items()}
        ref_loss, ref_grads = batched_reference(
            reference, params, x, y, initial, state_sizes,
            classes=outputs if np.asarray(y).dtype.kind in "iu" else None)
    arrays = dict(params, **initial)
    fd = finite_differences(
        lambda a: function.loss({k: a[k] for k in params}, x, y, **{k: a[k] for k in initial}),
        arrays)
    for name in arrays:
        report.rows.append(Row(
            name, np.shape(grads[name]),
            reference=relative_error(grads[name], ref_grads[name]) if reference else None,
            finite_differences=relative_error(grads[name], fd[name])))
    if reference is not None:
        report.rows.append(Row("loss", (), reference=relative_error(loss, ref_loss)))
    return report
