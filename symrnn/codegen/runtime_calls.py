"""The public call of a generated module: its arguments checked and laid out for
the kernel, and the results given the shapes of the arguments.

Like runtime.py, whose helpers it uses, this module imports nothing from
symrnn but runtime.py: ``symrnn codegen`` copies both into the standalone module
it writes (without the import between them; see ``passes/assemble.py``).
"""
from operator import itemgetter

import numpy

from .runtime import (_F64, _add_reduce, _array, _bad_params, _check_concatenate,  # noqa: F401
                      _dtype_of, _expected, _fit, _frombuffer, _isfinite, _join,
                      _max_reduce, _min_reduce, _np, _one_hot, _shape_of, _unmasked,
                      _values, _vdot, _zeros)

# the batch layouts of x and y: "TNB" (T, n, B), the default, and "TBN" (T, B, n),
# as PyTorch and JAX lay out a batch, which is the kernel's own (no copy)
_LAYOUTS = ("TNB", "TBN")
# the quick path tests arrays up to this many entries for finiteness together (one
# copy of their bytes, one reduction); a larger one by itself, without a copy
_JOINED = 1024
# plans kept for calls of different shapes, layouts or initial states
_PLANS = 32


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


def _picker(positions):
    """``f(sequence or mapping) -> tuple`` of the items at ``positions`` (also for one)."""
    if len(positions) == 1:
        only = positions[0]
        return lambda values: (values[only],)
    return itemgetter(*positions) if positions else (lambda values: ())


def _joint_sum_of_squares(arrays):
    """Σ a² over all entries of the float64 ``arrays``: one copy of their bytes
    (``bytes.join`` costs a tenth of ``concatenate`` per array) and one ``vdot``."""
    try:
        flat = _frombuffer(_join(arrays))
    except TypeError:  # an array that is not C-contiguous has no simple buffer
        flat = _check_concatenate(arrays, axis=None)
    return _vdot(flat, flat)


def _label_rows(m, table, dtype, batched):
    """``rows(k)``: the one-hot rows (T, B, m) of integer labels ``k`` of ``dtype``,
    or None when one of them is not a class in 0..m-1 (the full checks say which)."""
    if dtype.kind == "i" and m <= 1 << (8 * dtype.itemsize - 1):
        # seen as unsigned, a negative label is at least 2**(bits-1) >= m: one reduction
        unsigned = numpy.dtype(f"u{dtype.itemsize}")

        def fit(k):
            return _max_reduce(k.view(unsigned), None) < m
    elif dtype.kind == "u":
        def fit(k):
            return _max_reduce(k, None) < m
    else:
        def fit(k):
            return _min_reduce(k, None) >= 0 and _max_reduce(k, None) < m

    def rows(k):
        if not fit(k):
            return None
        r = table.take(k, 0)
        return r if batched else r[:, None, :]
    return rows


def _keep_rows(a):
    return a


def _single_rows(a):
    return a[:, None, :]


def _transposed_rows(a):
    return _np.ascontiguousarray(a.transpose(0, 2, 1))


def _one_row(a):
    return a[None]


def _transposed(a):
    return a.T


_NoneType = type(None)


def _preparer(spec):
    """``prepare(params, x, y, starts, initial, layout) -> (kernel arguments, layouts)``.

    With one input (target), ``x`` (``y``) is its array; with several, a dict
    keyed by their names. ``layouts`` is ``(codes, columns)``: ``codes`` says, per
    initial state, how its gradient (B, D) from the kernel gets the shape of the
    argument: 0 as (D,), 1 summed to (D,), 2 as (D, B), 3 as it is, (B, D);
    ``columns`` are the positions of the column parameters (``b[D]``, ``w[D, 1]``)
    given as (D, 1) instead of (D,), whose gradients get that shape too.

    A call whose arguments are ndarrays (not subclasses) with the dtypes and
    shapes of an earlier call that passed the full checks (and the same layout
    and initial states) takes that call's plan, made once: one joint finiteness
    test, for labels one range test, no shape checks, the kernel's arguments
    as views. Anything else, or a plan whose test fails, takes the full path,
    which checks each argument in order and explains the first that is wrong.
    """
    names = [p for p, _ in spec["params"]]
    param_labels = [f"params[{p!r}]" for p in names]
    param_dims = [tuple(dims) for _, dims in spec["params"]]
    column_params = tuple(i for i, dims in enumerate(param_dims) if len(dims) == 1)
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
    labels = spec["labels"]
    all_dims = [d for dims in param_dims for d in dims] + x_dims + y_dims + state_dims
    fixed = {d: int(d) for d in all_dims if d.isdigit()}  # sizes written as numbers
    eye = {}       # one-hot tables by number of classes
    cache = [None]  # (shapes and layout, sizes) of the last call of the full path that fit
    plans = {}      # key of a call (see keyed) -> (plan, layouts), for calls that fit
    last = [(None, None)]  # (key, plan) of the last call that had one (one object:
    # another thread sees the pair, never one half of it)
    get_params = _picker(names)
    get_x = _picker([0] if n_x == 1 else x_keys)
    get_y = _picker([0] if n_y == 1 else y_keys)
    x_arg = (lambda v: (v,)) if n_x == 1 else get_x
    y_arg = (lambda v: (v,)) if n_y == 1 else get_y
    one_each = n_x == 1 and n_y == 1

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
            _unmasked(label, y)
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
        columns = tuple(i for i in column_params  # a column (D,) may be given as (D, 1)
                        if arrays[i].ndim == 2 and arrays[i].shape[1] == 1)
        for i in columns:
            arrays[i] = arrays[i][:, 0]
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
        return arrays, xs, ys, is_labels, states, sizes, columns

    def keyed(params, x, y, initial, layout):
        """``(values, key)``: the arrays of a call as given (params, x, y, then the
        initial states in the order given) and what a plan for them depends on;
        None when the call cannot have a plan."""
        if type(params) is not dict or len(params) != n_params:
            return None
        try:
            if one_each:
                values = get_params(params) + (x, y)
            else:
                values = get_params(params) + x_arg(x) + y_arg(y)
                if n_x > 1 and len(x) != n_x or n_y > 1 and len(y) != n_y:
                    return None
            given = ()
            if initial:
                given = tuple(initial)
                values += tuple(initial.values())
        except Exception:  # not subscriptable, missing keys
            return None
        types = tuple(map(type, values))
        if types.count(numpy.ndarray) != len(values):
            if _NoneType not in types[n_params + n_x + n_y:]:
                return None  # (a subclass may compute otherwise: the full path converts it)
            # h0=None: as if not given
            given = tuple(k for k, v in zip(given, initial.values()) if v is not None)
            steps = n_params + n_x + n_y
            values = values[:steps] + tuple(v for v in values[steps:] if v is not None)
            if tuple(map(type, values)).count(numpy.ndarray) != len(values):
                return None
        return values, (layout, given, tuple(map(_dtype_of, values)),
                        tuple(map(_shape_of, values)))

    def plan_of(values, key, is_labels, sizes, layouts):
        """``plan(values) -> kernel arguments``, or None when a test fails, for the
        calls with ``key``; None when this call's arrays are not all usable as given."""
        layout, given, dtypes, _ = key
        columns = layouts[1]
        n_steps = n_params + n_x + n_y
        label_at = [False] * (n_params + n_x) + list(is_labels) + [False] * len(given)
        for d, is_label in zip(dtypes, label_at):
            if not (d.kind in "iu" and d.isnative if is_label else d == _F64):
                return None
        batched = values[n_params].ndim == 3
        floats = [i for i, is_label in enumerate(label_at) if not is_label]
        joined = [i for i in floats if values[i].size <= _JOINED]
        small = None if joined == list(range(len(values))) else _picker(joined)
        large = tuple(i for i in floats if values[i].size > _JOINED)
        steps = _keep_rows if batched and layout == "TBN" else (
            _transposed_rows if batched else _single_rows)
        convert = [steps] * n_x
        for dim, is_label in zip(y_dims, is_labels):
            if is_label:
                m = sizes[dim]
                table = eye.get(m)
                if table is None:
                    table = eye[m] = numpy.eye(m)
                convert.append(_label_rows(m, table, dtypes[len(convert) + n_params], batched))
            else:
                convert.append(steps)
        starts = []  # per state: its position in values and its conversion, or its zeros
        for key, dim in zip(state_keys, state_dims):
            if key in given:
                i = n_steps + given.index(key)
                starts.append((i, _one_row if values[i].ndim == 1 else
                               _keep_rows if layout == "TBN" else _transposed))
            else:
                starts.append((None, (sizes[batch_dim], sizes[dim])))
        step_positions = tuple(zip(range(n_params, n_steps), convert))

        def plan(values):
            # one sum of squares of all small arrays: finite unless an entry is NaN or
            # Inf (or beyond 1e154, which sends the call to the exact tests)
            total = _joint_sum_of_squares(values if small is None else small(values))
            for i in large:
                total += _vdot(values[i], values[i])
            if not _isfinite(total):
                return None
            args = list(values[:n_params])
            for i in columns:
                args[i] = args[i][:, 0]
            for i, conv in step_positions:
                a = conv(values[i])
                if a is None:  # a label out of range
                    return None
                args.append(a)
            for i, how in starts:
                args.append(_zeros(how) if i is None else how(values[i]))
            return args
        return plan

    def prepare(params, x, y, starts, initial, layout):
        if starts:
            initial = initial_states(starts, initial)
        found = keyed(params, x, y, initial, layout)
        if found is not None:
            # the plan of the last call first: comparing keys costs less than hashing one
            key, hit = last[0]
            if found[1] != key:
                hit = plans.get(found[1])
                if hit is not None:
                    last[0] = found[1], hit
            if hit is not None:
                args = hit[0](found[0])
                if args is not None:
                    return args, hit[1]
        if initial:
            initial = initial_states((), initial)
        given = [initial.get(key) for key in state_keys] if initial else no_states
        args, layouts, is_labels, sizes = full(params, x, y, given, layout)
        if found is not None and found[1] not in plans:
            plan = plan_of(found[0], found[1], is_labels, sizes, layouts)
            if plan is not None:
                if len(plans) >= _PLANS:
                    plans.clear()
                plans[found[1]] = (plan, layouts)
                last[0] = found[1], plans[found[1]]
        return args, layouts

    def full(params, x, y, given, layout):
        arrays, xs, ys, is_labels, states, sizes, columns = checked(params, x, y, given,
                                                                     layout)
        batched = xs[0].ndim == 3
        arrays = arrays + [_rows(xa, batched, layout) for xa in xs]
        arrays += [_one_hot(label, ya, sizes[dim], dim, eye) if is_label
                   else _rows(ya, batched, layout)
                   for label, dim, ya, is_label in zip(y_labels, y_dims, ys, is_labels)]
        batch = sizes[batch_dim]
        layouts = []
        for dim, a in zip(state_dims, states):
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
        return arrays, (layouts, columns), is_labels, sizes

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
        args, (codes, columns) = prepare(params, x, y, starts, initial, layout)
        loss, grads = kernel(*args)
        out = dict(zip(names, grads))
        for i in columns:  # as given, (D, 1)
            out[names[i]] = out[names[i]][:, None]
        for key, code in zip(state_names, codes):
            if code != 3:
                g = out[key]
                out[key] = g[0] if code == 0 else _add_reduce(g, 0) if code == 1 else g.T
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
