"""Checks of the arguments' shapes, shared by the PyTorch and JAX front ends.

Shapes are compared with the cell's size names (D, N, M, ...); a size is
learned from the first argument that has it, and every mismatch raises one
ValueError whose message starts with the argument's name. Only shapes are
read here, so the checks cost nothing on the arrays themselves.
"""
from ..codegen.runtime_api import fit_shape, refuse_arguments


def param_dims(p):
    """A parameter's dimensions as the API takes it: a column (r, 1) as (r,)."""
    return tuple(str(d) for d in (p.shape[:1] if p.shape[1] == 1 else p.shape))


def axis_names(cell):
    """The names of the time and batch axes in shapes and messages: T and B,
    or T' and B' when a size of the cell has that name (as the NumPy function)."""
    taken = {str(s) for s in cell.sizes}

    def free(word):
        return next(n for n in (word, word + "'", word + "''", f"<{word}>") if n not in taken)
    return free("T"), free("B")


def _known(dims, sizes):
    return "(" + ", ".join(str(sizes.get(d, d)) for d in dims) + ")"


class Sizes:
    """The sizes seen so far, and where each came from."""

    def __init__(self, given=None):
        self.values = dict(given or {})
        self.origin = dict.fromkeys(self.values, "the sizes given")

    def fit(self, name, shape, dims):
        for d in dims:  # a size written as a number is fixed by the model
            if d.isdigit() and d not in self.values:
                self.values[d], self.origin[d] = int(d), None
        fit_shape(name, tuple(int(n) for n in shape), dims, self.values, self.origin)

    def expected(self, dims):
        return f"({', '.join(dims)}) = {_known(dims, self.values)}"


def check_params(cell, params, label="params"):
    """The parameters of ``params`` (a dict) in the cell's order, or a ValueError."""
    names = [p.name for p in cell.params]
    if not hasattr(params, "keys") or set(params) != set(names):
        refuse_arguments(params, names, label)
    return [params[n] for n in names]


def by_name(arg, value, variables):
    """``[(label, value)]`` of a per-step argument, in the order of ``variables``
    (the cell's inputs or targets): with one, ``value`` itself; with several, a
    dict keyed by their names, labelled ``x['c']``."""
    names = [v.name for v in variables]
    if len(names) == 1:
        return [(arg, value)]
    if not hasattr(value, "keys") or len(value) != len(names) or set(value) != set(names):
        refuse_arguments(value, names, arg)
    return [(f"{arg}[{n!r}]", value[n]) for n in names]


def initial_states(cell, starts, named):
    """The initial states given positionally (``starts``) or by name, in the
    cell's order (None where not given), or a TypeError as for a Python call."""
    keys = [s.name + "0" for s in cell.states]
    if len(starts) > len(keys):
        raise TypeError(f"takes at most {len(keys)} initial state(s) ({', '.join(keys)}), "
                        f"got {len(starts)}")
    given = dict(named)
    for key, value in zip(keys, starts):
        if key in given:
            raise TypeError(f"got multiple values for argument {key!r}")
        given[key] = value
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}; the initial states are "
                        + ", ".join(keys))
    return [given.get(k) for k in keys]


def fit_call(cell, sizes, param_shapes, xs, ys, state_shapes, layout):
    """Fit the shapes of one call: ``xs`` [(label, shape)] of the inputs, ``ys``
    [(label, shape, is_labels)] of the targets, in the cell's order; ``layout``
    names the axes as the caller takes them, with the cell's size names:
    ``{"seq": dim -> axes, "labels": axes, "state": dim -> [axes, ...]}``.
    Returns the sizes (a dict)."""
    for p, shape in zip(cell.params, param_shapes):
        sizes.fit(f"params[{p.name!r}]", shape, param_dims(p))
    for (label, shape), v in zip(xs, cell.inputs):
        sizes.fit(label, shape, layout["seq"](str(v.shape[0])))
    for (label, shape, is_labels), v in zip(ys, cell.targets):
        dims = layout["labels"] if is_labels else layout["seq"](str(v.shape[0]))
        if len(shape) != len(dims):
            hint = (" (class labels must be integers)"
                    if cell.targets_are_distributions and len(shape) == len(layout["labels"])
                    else "")
            raise ValueError(f"{label}: expected shape {sizes.expected(dims)} to go with "
                             f"{xs[0][0]} of shape {tuple(xs[0][1])}, got {tuple(shape)}{hint}")
        sizes.fit(label, shape, dims)
    for s, shape in zip(cell.states, state_shapes):
        key, dim = s.name + "0", str(s.shape[0])
        if shape is None:
            if dim not in sizes.values and not dim.isdigit():
                raise ValueError(f"{key}: needed, since no other argument gives the size {dim}")
            continue
        options = layout["state"](dim)
        if len(shape) not in [len(o) for o in options]:
            raise ValueError(f"{key}: expected shape " + " or ".join(
                "(" + ", ".join(o) + ("," if len(o) == 1 else "") + ")" for o in options)
                + f", got {tuple(shape)}")
        sizes.fit(key, shape, next(o for o in options if len(o) == len(shape)))
    return sizes.values


def size_of(dim, sizes):
    """The value of a size name (or a number written in the model)."""
    return int(dim) if dim.isdigit() else sizes[dim]


def label_error(label, value, where, m, dim):
    """The NumPy function's message for a label outside 0..m-1."""
    return ValueError(f"{label}: label {value} at index {where} is not a class in "
                      f"0..{m - 1} ({dim} = {m})")
