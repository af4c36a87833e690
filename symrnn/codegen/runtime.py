"""What the generated NumPy code needs at run time: checks, layout, helpers.

This module imports nothing from symrnn or SymPy: ``symrnn codegen`` copies
its source into the standalone module it writes.

The checks run on every call, so the common case (float64 arrays whose shapes
fit) costs a handful of cheap operations: one reduction per array for the
finiteness test, shape tuples compared in Python, views instead of copies where
the layout allows. Everything that explains what is wrong is computed only once
something is wrong. Every ValueError message starts with the argument's name.
"""
import math

import numpy

_F64 = numpy.dtype(numpy.float64)
_dot = numpy.dot
_vdot = numpy.vdot
# the checks call these on float64 ndarrays only, so NumPy's dispatch to other
# array types (__array_function__), which costs more than the work on a small
# array, has nothing to do
_check_vdot = getattr(numpy.vdot, "_implementation", numpy.vdot)
_check_concatenate = getattr(numpy.concatenate, "_implementation", numpy.concatenate)
# the kernels reach NumPy and the builtins only through reserved names (a cell
# may call a variable numpy, range or list)
_np = numpy
_range = range
_list = list


# -- helpers of the kernels: every array is 2-D, one row per step and sequence.
# An element-wise helper takes its output array as an optional second argument
# (see inplace.py); runtime_numba.py has the compiled versions, and the kernels
# of the operations come from symrnn/ops.py. -----------------------------------

def _flat(a):
    return a.reshape(-1, a.shape[-1])


def _rowsum(a):
    return a.sum(-1, keepdims=True)


def _log_softmax_and_softmax(x, out=None):
    """Both from one pass of ``exp``: the loss needs one, the gradient the other."""
    s = numpy.subtract(x, x.max(-1, keepdims=True), out=out)
    e = numpy.exp(s)
    z = e.sum(-1, keepdims=True)
    e /= z
    s -= numpy.log(z)
    return s, e


# -- checks ---------------------------------------------------------------------

def _convert(name, value):
    """``value`` as a new float64 array, or a ValueError naming ``name``."""
    try:
        a = numpy.asarray(value)
    except (TypeError, ValueError):
        a = None  # ragged nested lists
    if a is None or a.dtype.kind not in "biuf":
        kind = None if a is None else a.dtype.kind
        what = ("None" if value is None else "text" if kind in ("S", "U")
                else f"{a.dtype} values" if kind in ("c", "m", "M")
                else f"a {type(value).__name__}")
        raise ValueError(f"{name}: expected an array of real numbers, got {what}")
    return a.astype(_F64, copy=False)


def _not_finite(name, a):
    """Raise if ``a`` has a NaN or an infinity (the quick test also fails on overflow)."""
    bad = ~numpy.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in numpy.argwhere(bad)[0])
        value = a[where]
        what = "NaN" if value != value else "Inf" if value > 0 else "-Inf"
        raise ValueError(f"{name}: contains {what} at index "
                         f"{where}; every entry must be finite")


def _array(name, value):
    """``value`` as a float64 array with finite entries (no copy when it is one)."""
    if type(value) is not numpy.ndarray or value.dtype is not _F64:
        value = _convert(name, value)
    # one cheap reduction: sum of squares is finite unless an entry is NaN or Inf
    # (or beyond 1e154, which only sends a finite array to the exact test)
    if not math.isfinite(_vdot(value, value)):
        _not_finite(name, value)
    return value


def _fit(name, shape, dims, sizes, origin):
    """Check ``shape`` against the size names ``dims``; learn the sizes seen first.

    ``sizes`` maps a size name to its value, ``origin`` to the argument it came
    from (None for a number such as "1" in the model's shapes).
    """
    if len(shape) != len(dims):
        raise ValueError(f"{name}: expected {len(dims)} dimension(s) ({', '.join(dims)}), "
                         f"got shape {shape}")
    for n, d in zip(shape, dims):
        known = sizes.get(d)
        if known is None:
            if n == 0:
                raise ValueError(f"{name}: shape {shape} has {d} = 0; {d} must be at least 1")
            sizes[d] = n
            origin[d] = name
        elif known != n:
            why = (f"the model fixes this size to {d}" if origin[d] is None
                   else f"{d} cannot be both {known} and {n}" if origin[d] == name
                   else f"{d} = {n} here but {d} = {known} from {origin[d]}")
            raise ValueError(f"{name}: shape {shape} does not fit ({', '.join(dims)}): {why}")


def _bad_params(params, names, arg="params"):
    """The ValueError for an argument ``arg`` that is not a dict with ``names``."""
    expected = "expected a dict with the keys " + ", ".join(map(repr, names))
    if not hasattr(params, "keys"):
        raise ValueError(f"{arg}: {expected}, got a {type(params).__name__}")
    missing = [p for p in names if p not in params]
    if missing:
        raise ValueError(f"{arg}: missing {missing[0]!r}; {expected}")
    extra = sorted(map(repr, set(params) - set(names)))
    raise ValueError(f"{arg}: {'unexpected key ' + extra[0] if extra else 'not usable'}; "
                     f"{expected}")


def _values(arg, value, names):
    """The arrays of a per-step argument: itself for one name, else a dict by name."""
    if len(names) == 1:
        return [value]
    try:
        values = [value[n] for n in names]
    except Exception:
        _bad_params(value, names, arg)
    if len(value) != len(names):
        _bad_params(value, names, arg)
    return values


def _expected(dims, sizes):
    """``(T, M, B) = (5, 3, 2)`` with the sizes known so far."""
    known = [str(sizes.get(d, d)) for d in dims]
    return f"({', '.join(dims)}) = ({', '.join(known)})"


def _one_hot(label, k, m, dim, eye):
    """Integer class labels of shape (T,) or (T, B) as one-hot rows (T, B, m)."""
    table = eye.get(m)
    if table is None:
        table = eye[m] = numpy.eye(m)
    if k.min() < 0 or k.max() >= m:  # before take: a uint64 beyond 2**63 would wrap
        where = tuple(int(i) for i in numpy.argwhere((k < 0) | (k >= m))[0])
        raise ValueError(f"{label}: label {k[where]} at index {where} is not a class in "
                         f"0..{m - 1} ({dim} = {m})")
    rows = table.take(k, 0)
    return rows[:, None, :] if k.ndim == 1 else rows


# the batch layouts of x and y: "TNB" (T, n, B), the default, and "TBN" (T, B, n),
# as PyTorch and JAX lay out a batch, which is the kernel's own (no copy)
_LAYOUTS = ("TNB", "TBN")
# arrays up to this many entries are tested for finiteness together (one copy into
# one array, one reduction); a larger one by itself, without a copy
_SMALL = 4096


def _rows(a, batched, layout):
    """(T, n) -> (T, 1, n); (T, n, B) -> (T, B, n) (a copy); (T, B, n) as it is."""
    if not batched:
        return a[:, None, :]
    return a if layout == "TBN" else numpy.ascontiguousarray(a.transpose(0, 2, 1))


def _layout(layout):
    if type(layout) is not str or layout not in _LAYOUTS:
        raise ValueError(f"layout: expected {' or '.join(map(repr, _LAYOUTS))}, "
                         f"got {layout!r}")
    return layout


def _all_finite(arrays):
    """True when the arrays (float64, none None) have finite entries only (or an
    entry beyond 1e154, which the exact tests of the slow path then clear)."""
    small, total = [], 0.0
    for a in arrays:
        if a.size > _SMALL:
            total += _check_vdot(a, a)
        else:
            small.append(a)
    if small:
        flat = _check_concatenate(small, axis=None)
        total += _check_vdot(flat, flat)
    return math.isfinite(total)


def _preparer(spec):
    """``prepare(params, x, y, starts, initial, layout) -> (kernel arguments, layouts)``.

    With one input (target), ``x`` (``y``) is its array; with several, a dict
    keyed by their names. ``layouts`` says, per initial state, how its gradient
    (B, D) from the kernel gets the shape of the argument: 0 as (D,), 1 summed
    to (D,), 2 as (D, B), 3 as it is, (B, D).

    A call like the last one whose shapes fit (same shapes, float64 arrays,
    finite entries) takes the quick path: one finiteness test for all small
    arrays, no shape checks. Anything else takes the full path, which checks
    each argument in order and explains the first that is wrong.
    """
    names = [p for p, _ in spec["params"]]
    param_labels = [f"params[{p!r}]" for p in names]
    param_dims = [tuple(dims) for _, dims in spec["params"]]
    state_keys = [s + "0" for s, _ in spec["states"]]
    state_dims = [dim for _, dim in spec["states"]]
    no_states = [None] * len(state_keys)
    time, batch_dim = spec["time"], spec["batch"]

    def per_step(arg, declared):
        keys = [n for n, _ in declared]
        labels = [arg] if len(keys) == 1 else [f"{arg}[{n!r}]" for n in keys]
        return keys, labels, [dim for _, dim in declared]

    x_keys, x_labels, x_dims = per_step("x", spec["inputs"])
    y_keys, y_labels, y_dims = per_step("y", spec["targets"])
    n_params, n_x, n_y = len(names), len(x_keys), len(y_keys)
    no_labels = [False] * n_y
    labels = spec["labels"]
    all_dims = [d for dims in param_dims for d in dims] + x_dims + y_dims + state_dims
    fixed = {d: int(d) for d in all_dims if d.isdigit()}  # sizes written as numbers
    eye = {}       # one-hot tables by number of classes
    cache = [None]  # (shapes and layout, sizes) of the last call whose shapes fit

    def initial_states(starts, initial):
        if len(starts) > len(state_keys):
            raise TypeError(f"takes at most {3 + len(state_keys)} positional arguments "
                            f"(params, x, y, {', '.join(state_keys)})")
        for key, value in zip(state_keys, starts):
            if key in initial:
                raise TypeError(f"got multiple values for argument {key!r}")
            initial[key] = value
        unknown = sorted(set(initial) - set(state_keys))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}; the initial "
                            "states are " + ", ".join(state_keys))
        return initial

    def per_step_dims(dim, batched, layout):
        if not batched:
            return (time, dim)
        return (time, batch_dim, dim) if layout == "TBN" else (time, dim, batch_dim)

    def sizes_of(arrays, xs, ys, is_labels, states, layout):
        """The sizes (D, N, M, T, B) that the shapes define, or a ValueError."""
        sizes, origin = dict(fixed), dict.fromkeys(fixed)
        for label, dims, a in zip(param_labels, param_dims, arrays):
            _fit(label, a.shape, dims, sizes, origin)
        batched = xs[0].ndim == 3
        if not batched:
            if xs[0].ndim != 2:
                raise ValueError(f"{x_labels[0]}: expected shape ({time}, {x_dims[0]}) or "
                                 f"({', '.join(per_step_dims(x_dims[0], True, layout))}), "
                                 f"got {xs[0].shape}")
            sizes[batch_dim], origin[batch_dim] = 1, x_labels[0]
        for label, dim, xa in zip(x_labels, x_dims, xs):
            _fit(label, xa.shape, per_step_dims(dim, batched, layout), sizes, origin)
        for label, dim, ya, is_label in zip(y_labels, y_dims, ys, is_labels):
            dims = per_step_dims(dim, batched, layout)
            if is_label:
                _fit(label, ya.shape, (time, batch_dim)[:ya.ndim], sizes, origin)
            else:
                if ya.ndim != len(dims):
                    hint = (" (class labels must be integers)"
                            if labels and ya.ndim == len(dims) - 1 else "")
                    raise ValueError(f"{label}: expected shape {_expected(dims, sizes)} to go "
                                     f"with {x_labels[0]} of shape {xs[0].shape}, got "
                                     f"{ya.shape}{hint}")
                _fit(label, ya.shape, dims, sizes, origin)
        for key, dim, a in zip(state_keys, state_dims, states):
            if a is not None:
                both = (batch_dim, dim) if layout == "TBN" else (dim, batch_dim)
                if a.ndim not in (1, 2):
                    raise ValueError(f"{key}: expected shape ({dim},) or "
                                     f"({', '.join(both)}), got {a.shape}")
                _fit(key, a.shape, both if a.ndim == 2 else (dim,), sizes, origin)
            elif dim not in sizes:
                raise ValueError(f"{key}: needed, since no other argument gives the size {dim}")
        return sizes

    def target(label, y, ndim):
        """``(array, is_labels)``: integer labels (one axis fewer than x) or values."""
        if labels and (type(y) is not numpy.ndarray or y.dtype is not _F64):
            k = _integers(y)
            if k is not None and k.ndim == ndim - 1:
                return k, True
        return _array(label, y), False

    def checked(params, x, y, given, layout):
        """The arrays, each checked in order; the sizes, from their shapes."""
        try:
            values = [params[p] for p in names]
        except Exception:
            _bad_params(params, names)
        if len(params) != len(names):
            _bad_params(params, names)
        arrays = [_array(label, value) for label, value in zip(param_labels, values)]
        xs = [_array(label, v) for label, v in zip(x_labels, _values("x", x, x_keys))]
        ys, is_labels = [], []
        for label, v in zip(y_labels, _values("y", y, y_keys)):
            ya, is_label = target(label, v, xs[0].ndim)
            ys.append(ya)
            is_labels.append(is_label)
        states = [None if v is None else _array(key, v) for key, v in zip(state_keys, given)]

        # the shapes of the last call that fit need no second look
        shapes = [a.shape for a in arrays + xs + ys] + is_labels
        shapes += [a is not None and a.shape for a in states]
        shapes.append(layout)
        hit = cache[0]
        if hit is not None and hit[0] == shapes:
            sizes = hit[1]
        else:
            sizes = sizes_of(arrays, xs, ys, is_labels, states, layout)
            cache[0] = (shapes, sizes)
        return arrays, xs, ys, is_labels, states, sizes

    def quick(params, x, y, given, layout):
        """``prepare``'s result for a call like the last one that fit; else None."""
        hit = cache[0]
        if hit is None or len(hit) != 3 or type(params) is not dict or len(params) != n_params:
            return None
        try:
            values = [params[p] for p in names]
            steps = [x] if n_x == 1 else [x[k] for k in x_keys]
            steps += [y] if n_y == 1 else [y[k] for k in y_keys]
        except Exception:
            return None
        if n_x > 1 and len(x) != n_x or n_y > 1 and len(y) != n_y:
            return None
        values += steps
        shapes, present = [], []
        for v in values:
            if type(v) is not numpy.ndarray or v.dtype is not _F64:
                return None
            shapes.append(v.shape)
        shapes += no_labels
        for v in given:
            if v is None:
                shapes.append(False)
            elif type(v) is not numpy.ndarray or v.dtype is not _F64:
                return None
            else:
                shapes.append(v.shape)
                present.append(v)
        shapes.append(layout)
        if hit[0] != shapes or not _all_finite(values + present):
            return None
        batched, zeros, layouts = hit[2]
        del values[n_params:]
        if not batched:
            values += [a[:, None, :] for a in steps]
        elif layout == "TBN":
            values += steps
        else:
            values += [numpy.ascontiguousarray(a.transpose(0, 2, 1)) for a in steps]
        for v, shape in zip(given, zeros):
            values.append(numpy.zeros(shape) if v is None else v[None] if v.ndim == 1
                          else v if layout == "TBN" else v.T)
        return values, layouts

    def prepare(params, x, y, starts, initial, layout):
        if starts or initial:
            initial = initial_states(starts, initial)
        given = [initial.get(key) for key in state_keys] if initial else no_states
        return quick(params, x, y, given, layout) or full(params, x, y, given, layout)

    def full(params, x, y, given, layout):
        arrays, xs, ys, is_labels, states, sizes = checked(params, x, y, given, layout)
        batched = xs[0].ndim == 3
        arrays = arrays + [_rows(xa, batched, layout) for xa in xs]
        arrays += [_one_hot(label, ya, sizes[dim], dim, eye) if is_label
                   else _rows(ya, batched, layout)
                   for label, dim, ya, is_label in zip(y_labels, y_dims, ys, is_labels)]
        batch = sizes[batch_dim]
        layouts, zeros = [], []
        for dim, a in zip(state_dims, states):
            zeros.append((batch, sizes[dim]))
            if a is None:
                arrays.append(numpy.zeros((batch, sizes[dim])))
                layouts.append(0 if not batched else 3 if layout == "TBN" else 2)
            elif a.ndim == 1:
                arrays.append(a[None])  # one row, the same for every sequence
                layouts.append(1 if batch > 1 else 0)
            elif layout == "TBN":
                arrays.append(a)
                layouts.append(3)
            else:
                arrays.append(a.T)
                layouts.append(2)
        hit = cache[0]
        if len(hit) == 2:  # the plan of the quick path for calls with these shapes
            cache[0] = hit + ((batched, zeros, layouts),)
        return arrays, layouts

    return prepare


def _integers(y):
    """``y`` as an integer array, or None when it is not one."""
    try:
        k = numpy.asarray(y)
    except (TypeError, ValueError):
        return None
    return k if k.dtype.kind in "iu" else None


def gradient_function(kernel, spec):
    """``f(params, x, y, h0=None) -> (loss, {name: gradient})`` around ``kernel``."""
    prepare = _preparer(spec)
    names = spec["params_and_states"]
    state_names = names[len(spec["params"]):]

    def loss_and_gradients(params, x, y, *starts, layout="TNB", **initial):
        if type(layout) is not str or layout not in _LAYOUTS:
            _layout(layout)
        args, layouts = prepare(params, x, y, starts, initial, layout)
        loss, grads = kernel(*args)
        out = dict(zip(names, grads))
        for key, code in zip(state_names, layouts):
            if code != 3:
                g = out[key]
                out[key] = g[0] if code == 0 else g.sum(0) if code == 1 else g.T
        return float(loss), out

    return loss_and_gradients


def forward_function(kernel, spec):
    """``f(params, x, y, h0=None) -> loss`` around ``kernel``."""
    prepare = _preparer(spec)

    def loss(params, x, y, *starts, layout="TNB", **initial):
        if type(layout) is not str or layout not in _LAYOUTS:
            _layout(layout)
        return float(kernel(*prepare(params, x, y, starts, initial, layout)[0]))

    return loss
