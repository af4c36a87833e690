"""What the generated NumPy code needs at run time: checks, layout, helpers.

This module imports nothing from symrnn or SymPy: ``symrnn codegen`` copies
its source into the standalone module it writes.
"""
import numpy


def _flat(a):
    return a.reshape(-1, a.shape[-1])


def _sigmoid(x):
    return 0.5 + 0.5 * numpy.tanh(0.5 * x)


def _step(x):
    return (x > 0).astype(x.dtype)


def _softmax(x):
    e = numpy.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _log_softmax(x):
    s = x - x.max(-1, keepdims=True)
    return s - numpy.log(numpy.exp(s).sum(-1, keepdims=True))


def _array(name, value):
    try:
        a = numpy.asarray(value, dtype=numpy.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not an array of numbers") from None
    # the sum is a cheap test; only when it is not finite look at every entry
    if not numpy.isfinite(a.sum()) and not numpy.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


def _fit(name, shape, dims, sizes):
    """Check ``shape`` against the size names ``dims``, learning unknown sizes."""
    if len(shape) != len(dims):
        raise ValueError(f"{name}: expected {len(dims)} dimension(s) ({', '.join(dims)}), "
                         f"got shape {shape}")
    for n, d in zip(shape, dims):
        if sizes.setdefault(d, n) != n:
            raise ValueError(f"{name}: shape {shape} does not fit ({', '.join(dims)}) "
                             f"with {d} = {sizes[d]}")
        if n == 0:
            raise ValueError(f"{name}: size {d} must be at least 1")


def _sequence(name, value, dim, sizes, labels=False):
    """(T, n) or (T, n, B) -> rows (T, B, n); integer labels (T,) or (T, B) -> one-hot."""
    if labels and numpy.asarray(value).dtype.kind in "iu":
        k = numpy.asarray(value)
        if k.ndim not in (1, 2) or k.shape[0] == 0:
            raise ValueError(f"{name}: integer labels must have shape (T,) or (T, B), "
                             f"got {k.shape}")
        if k.min() < 0 or k.max() >= sizes[dim]:
            raise ValueError(f"{name}: labels must lie in 0..{sizes[dim] - 1}")
        rows = numpy.eye(sizes[dim])[k]
        return rows[:, None, :] if k.ndim == 1 else rows
    a = _array(name, value)
    if a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape (T, {dim}) or (T, {dim}, B), got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one time step (T = 0)")
    _fit(name, a.shape[1:2], (dim,), sizes)
    return a[:, None, :] if a.ndim == 2 else numpy.ascontiguousarray(a.transpose(0, 2, 1))


def make_function(kernel, spec):
    """The user-facing function ``f(params, x, y, h0=None, ...)`` around ``kernel``."""
    param_names = [p for p, _ in spec["params"]]
    state_names = [s + "0" for s, _ in spec["states"]]
    (x_name, x_dim), (y_name, y_dim) = spec["input"], spec["target"]

    def f(params, x, y, **initial):
        unknown = sorted(set(initial) - set(state_names))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}; initial states: "
                            + ", ".join(state_names))
        if not hasattr(params, "keys"):
            raise ValueError("params: must be a dict of arrays keyed by "
                             + ", ".join(param_names))
        missing = [p for p in param_names if p not in params]
        extra = sorted(set(params) - set(param_names))
        if missing or extra:
            what = f"missing {missing[0]!r}" if missing else f"unexpected key {extra[0]!r}"
            raise ValueError(f"params: {what}; expected keys " + ", ".join(param_names))
        sizes = {}
        arrays = []
        for p, dims in spec["params"]:
            a = _array(f"params[{p!r}]", params[p])
            _fit(f"params[{p!r}]", a.shape, dims, sizes)
            arrays.append(a)
        xs = _sequence(x_name, x, x_dim, sizes)
        ys = _sequence(y_name, y, y_dim, sizes, labels=spec["labels"])
        if ys.shape[:2] != xs.shape[:2]:
            raise ValueError(f"{y_name}: has {ys.shape[0]} steps and batch {ys.shape[1]}, "
                             f"but {x_name} has {xs.shape[0]} steps and batch {xs.shape[1]}")
        batched = numpy.ndim(x) == 3
        starts = []
        for (s, dim), name in zip(spec["states"], state_names):
            value = initial.get(name)
            if value is None:
                starts.append(numpy.zeros((xs.shape[1], sizes[dim])))
                continue
            a = _array(name, value)
            if a.ndim == 1:
                _fit(name, a.shape, (dim,), sizes)
                starts.append(numpy.broadcast_to(a, (xs.shape[1], a.shape[0])))
            else:
                _fit(name, a.shape, (dim, "B"), dict(sizes, B=xs.shape[1]))
                starts.append(a.T)
        return kernel(arrays, xs, ys, starts, batched, initial)

    return f


def gradient_function(kernel, spec):
    def run(arrays, xs, ys, starts, batched, initial):
        loss, grads = kernel(*arrays, xs, ys, *starts)
        out = dict(zip(spec["params_and_states"], grads))
        for (s, _), name in zip(spec["states"], (s + "0" for s, _ in spec["states"])):
            given = initial.get(name)
            g = out[name]
            if given is not None and numpy.ndim(given) == 1:
                out[name] = g.sum(0)
            else:
                out[name] = g.T if batched else g[0]
        return float(loss), out
    return make_function(run, spec)


def forward_function(kernel, spec):
    def run(arrays, xs, ys, starts, batched, initial):
        return float(kernel(*arrays, xs, ys, *starts))
    return make_function(run, spec)
