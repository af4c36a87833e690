"""What the generated NumPy code needs at run time: checks, layout, helpers.

This module imports nothing from symrnn or SymPy: ``symrnn codegen`` copies
its source into the standalone module it writes.

The checks run on every call, so the common case (float64 arrays with the
shapes of an earlier call that fit) costs a handful of cheap operations: one
finiteness test for all small arrays together, the key of the call (types,
dtypes, shapes) compared in Python, views instead of copies where the layout
allows (see _preparer). Everything that explains what is wrong is computed only
once something is wrong. Every ValueError message starts with the argument's name.
"""
import math
from operator import attrgetter

import numpy

_F64 = numpy.dtype(numpy.float64)
# the kernels and the checks call these on ndarrays only, so NumPy's dispatch to
# other array types (__array_function__), which costs more than the work on a
# small array, has nothing to do
_dot = getattr(numpy.dot, "_implementation", numpy.dot)
_vdot = getattr(numpy.vdot, "_implementation", numpy.vdot)
_check_concatenate = getattr(numpy.concatenate, "_implementation", numpy.concatenate)
# reductions as ufunc methods: ``a.max(axis, keepdims=True)`` and ``a.sum`` reach
# the same ones through a Python wrapper (numpy/_core/_methods.py)
_max_reduce, _min_reduce = numpy.maximum.reduce, numpy.minimum.reduce
_add_reduce = numpy.add.reduce
_frombuffer, _join, _zeros = numpy.frombuffer, b"".join, numpy.zeros
_dtype_of, _shape_of = attrgetter("dtype"), attrgetter("shape")
_isfinite = math.isfinite
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
    return _add_reduce(a, -1, None, None, True)  # a.sum(-1, keepdims=True)


def _log_softmax_and_softmax(x, out=None):
    """Both from one pass of ``exp``: the loss needs one, the gradient the other."""
    s = numpy.subtract(x, _max_reduce(x, -1, None, None, True), out)
    e = numpy.exp(s)
    z = _add_reduce(e, -1, None, None, True)
    e /= z
    s -= numpy.log(z)
    return s, e


# -- checks ---------------------------------------------------------------------

def _unmasked(name, value):
    """Refuse a masked array: NumPy's functions would use the entries under its mask."""
    if isinstance(value, numpy.ma.MaskedArray):
        raise ValueError(f"{name}: a masked array; its mask would be ignored (pass "
                         f"{name}.filled(value) or the entries to use as a plain array)")


def _convert(name, value):
    """``value`` as a new float64 array, or a ValueError naming ``name``."""
    _unmasked(name, value)
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
