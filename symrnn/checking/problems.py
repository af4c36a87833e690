"""Random problems for any cell: parameters, inputs, targets and initial states, in
every layout the generated function accepts.

A :class:`Layout` says how the arguments are passed (one sequence or a batch, integer
labels or rows, initial states omitted, shared or one per sequence, float64 or
float32); ``make_problem(cell, seed, ...)`` draws the sizes that are not given and the
values. ``standard_layouts(cell)`` lists the layouts that ``symrnn check`` covers.
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Layout", "Problem", "STARTS", "make_problem", "standard_layouts", "valid_seed"]

# how the initial states are passed: omitted (None, zeros), one (D,) vector (for a
# batch: shared by every sequence), one column per sequence (D, B)
STARTS = ("none", "shared", "per-sequence")
SIZE_RANGE = (1, 7)   # sizes drawn from 1..7 when not given
T_RANGE = (1, 6)
BATCH_RANGE = (2, 4)


@dataclass(frozen=True)
class Layout:
    batch: bool = False          # x (T, N, B) instead of (T, N)
    labels: bool = False         # integer labels (T[, B]) instead of rows (T, M[, B])
    starts: str = "none"         # one of STARTS
    float32: bool = False        # every array argument as float32
    batch_size: int = None       # B, when it must be this value (e.g. 1)

    def __post_init__(self):
        if self.starts not in STARTS:
            raise ValueError(f"starts: expected one of {', '.join(STARTS)}, got {self.starts!r}")
        if self.starts == "per-sequence" and not self.batch:
            raise ValueError("starts: 'per-sequence' needs a batch")

    def describe(self, cell):
        """E.g. "batch, labels (T, B), h0 (D,) shared, float32"."""
        keys = [f"{s.name}0" for s in cell.states]
        dims = [str(s.shape[0]) for s in cell.states]
        if self.starts == "none":
            starts = f"{', '.join(keys)} = None"
        elif self.starts == "shared":
            starts = (", ".join(f"{k} ({d},)" for k, d in zip(keys, dims))
                      + (" shared" if self.batch else ""))
        else:
            starts = ", ".join(f"{k} ({d}, B)" for k, d in zip(keys, dims))
        targets = []
        for t in cell.targets:
            if self.labels and cell.targets_are_distributions:
                targets.append(f"{t.name} labels (T, B)" if self.batch else f"{t.name} labels (T,)")
            else:
                m = t.shape[0]
                targets.append(f"{t.name} (T, {m}, B)" if self.batch else f"{t.name} (T, {m})")
        parts = ["batch" if self.batch else "one sequence"] + targets + [starts]
        return ", ".join(parts + (["float32"] if self.float32 else []))


@dataclass
class Problem:
    """Arguments for ``f(params, x, y, **initial)``; ``initial`` holds only the
    initial states that are passed (none for ``starts == "none"``)."""
    params: dict
    x: object                    # an array, or a dict by input name (several inputs)
    y: object                    # an array, or a dict by target name (several targets)
    initial: dict
    sizes: dict                  # size name -> value
    T: int
    batch: int                   # None for one sequence
    layout: Layout
    classes: int = None          # number of classes when y holds labels
    state_sizes: dict = field(default_factory=dict)   # "h0" -> D

    def gradient_shapes(self):
        """The shape of every gradient the generated function returns."""
        shapes = {k: np.shape(v) for k, v in self.params.items()}
        for key, size in self.state_sizes.items():
            given = self.initial.get(key)
            per_sequence = self.batch is not None and (given is None or np.ndim(given) == 2)
            shapes[key] = (size, self.batch) if per_sequence else (size,)
        return shapes

    def initial_arrays(self):
        """Every initial state as float64, zeros for the omitted ones, in the shape of
        its gradient: the point at which the loss is differentiated."""
        shapes = self.gradient_shapes()
        return {k: (np.zeros(shapes[k]) if self.initial.get(k) is None
                    else np.asarray(self.initial[k], dtype=np.float64))
                for k in self.state_sizes}

    def describe(self, cell):
        steps = "steps" if "T" in self.sizes else "T"  # a size of the cell may be named T or B
        batch = "batch" if "B" in self.sizes else "B"
        sizes = ", ".join([f"{steps} = {self.T}"] + [f"{k} = {v}" for k, v in self.sizes.items()]
                          + ([f"{batch} = {self.batch}"] if self.batch is not None else []))
        return f"{sizes}; {self.layout.describe(cell)}"


def _dims(symbol):
    """The shape of a declared symbol as the generated function takes it: a column
    vector (n, 1) is a 1-D array (n,)."""
    shape = symbol.shape
    return shape[:1] if shape[1] == 1 else shape


def _size(dim, sizes):
    return int(dim.subs(sizes)) if hasattr(dim, "subs") else int(dim)


def valid_seed(seed):
    """``seed`` (an integer >= 0, or a tuple of them), or a ValueError naming it."""
    seeds = seed if isinstance(seed, tuple) else (seed,)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0
               for s in seeds):
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    return seed


def make_problem(cell, seed=0, *, T=None, sizes=None, batch=None, layout=None):
    """A random problem for ``cell``.

    ``sizes`` maps size names (``"D"``, ``"N"``, ...) to values; the others are drawn
    from 1..7, as is T from 1..6 and B from 2..4 unless given. ``layout`` defaults to
    a random one.
    """
    rng = np.random.default_rng(valid_seed(seed))
    sizes = dict(sizes or {})
    symbols = {str(s): s for s in cell.sizes}
    unknown = sorted(set(sizes) - set(symbols))
    if unknown:
        raise ValueError(f"sizes: {unknown[0]!r} is not a size of the cell "
                         f"(its sizes are {', '.join(symbols) or 'none'})")
    for name, value in list(sizes.items()) + [("T", T), ("batch", batch)]:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    drawn = {name: int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1)) for name in symbols}
    sizes = {name: sizes.get(name, drawn[name]) for name in symbols}
    T = int(rng.integers(T_RANGE[0], T_RANGE[1] + 1)) if T is None else int(T)
    if layout is None:
        batched = bool(rng.integers(2))
        layout = Layout(batch=batched,
                        labels=cell.targets_are_distributions and bool(rng.integers(2)),
                        starts=STARTS[int(rng.integers(3 if batched else 2))],
                        float32=bool(rng.integers(2)))
    B = None
    if layout.batch:
        B = layout.batch_size or (batch if batch is not None
                                  else int(rng.integers(BATCH_RANGE[0], BATCH_RANGE[1] + 1)))
    extra = () if B is None else (B,)
    subs = {symbols[name]: value for name, value in sizes.items()}
    dtype = np.float32 if layout.float32 else np.float64

    params = {}
    for p in cell.params:
        shape = tuple(_size(d, subs) for d in _dims(p))
        scale = 1 / np.sqrt(shape[1]) if len(shape) == 2 else 0.5  # moderate pre-activations
        params[p.name] = (scale * rng.normal(size=shape)).astype(dtype)

    def rows(symbol):
        return rng.normal(size=(T, _size(symbol.shape[0], subs)) + extra).astype(dtype)

    xs = {s.name: rows(s) for s in cell.inputs}
    classes, ys = None, {}
    for s in cell.targets:
        m = _size(s.shape[0], subs)
        if cell.targets_are_distributions:
            k = rng.integers(0, m, size=(T,) + extra)
            if layout.labels:
                classes, ys[s.name] = m, k
            else:  # one-hot rows (T, M[, B])
                ys[s.name] = np.moveaxis(np.eye(m, dtype=dtype)[k], -1, 1)
        else:
            ys[s.name] = rows(s)
    state_sizes = {f"{s.name}0": _size(s.shape[0], subs) for s in cell.states}
    initial = {}
    if layout.starts != "none":
        for key, size in state_sizes.items():
            shape = (size, B) if layout.starts == "per-sequence" else (size,)
            initial[key] = (0.5 * rng.normal(size=shape)).astype(dtype)
    one = len(xs) == 1 and len(ys) == 1
    return Problem(params, next(iter(xs.values())) if len(xs) == 1 else xs,
                   next(iter(ys.values())) if len(ys) == 1 else ys, initial,
                   sizes, T, B, layout, classes if one else None, state_sizes)


def standard_layouts(cell):
    """The layouts ``symrnn check`` runs: every path of the generated function's
    argument handling at least once."""
    labels = bool(cell.targets_are_distributions)
    return [
        Layout(batch=False, labels=labels, starts="none"),
        Layout(batch=False, labels=False, starts="shared"),
        Layout(batch=True, labels=labels, starts="shared"),
        Layout(batch=True, labels=False, starts="per-sequence"),
        Layout(batch=True, labels=labels, starts="none", float32=True),
        Layout(batch=True, labels=False, starts="none", batch_size=1),
        Layout(batch=False, labels=False, starts="shared", float32=True),
    ]
