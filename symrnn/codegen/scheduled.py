"""The scheduled program: what every backend reads of a derivation.

The ``schedule`` pass (``passes/schedule.py``) decides, once for all backends,
which values of a kernel are computed over all steps at once and which step by
step, in which loops, in which order; ``carry``, ``hoist`` and ``sums`` refine
it. The expressions are SymPy, at a generic step t, as the derivation gives
them; the lowering passes turn them into statements for one backend.

A kernel (``forward`` or ``gradients``) is a sequence of items:

    Fixed     the named matrices of the parameters, computed once
    Stacked   values computed over all steps at once, in order (``Let``)
    Pad       a stacked value read at step t+1: kept with a step T+1 (zero for
              an adjoint; step T again for a forward value, whose terms there
              meet a zero adjoint and must stay finite)
    Loop      a recurrence: t = 1..T (forward) or t = T..1 (backward). Its body
              (``Let`` and ``FusedSum`` entries, at step t) reads its own values
              at the step before (``carried``: a state at t-1, an adjoint at
              t+1; before the first step, the initial state or zero) and the
              values of other items at any step; ``hoisted``: the parts of the
              body that read none of its own values, computed over all steps
              before it; ``stored``: the values whose every step is kept (the
              rest, ``local``, live within one step); ``sums``: gradients added
              up step by step (the readable backend's)
    Loss      the sum of the per-step losses
    Gradients the gradients (sums over t, closed forms), the named matrices'
              adjoints, and the zero gradients of what the loss does not read

A backend that scans (JAX's ``lax.scan``, a Python loop in PyTorch) takes a
``Loop`` as it is: carry = ``carried``, xs = the values it reads of other items,
ys = ``stored``.
"""
from dataclasses import dataclass, field
from typing import NamedTuple


class _Batch:
    """The number of sequences of a call, as a size in a shape."""

    def __repr__(self):
        return "B"


BATCH = _Batch()


class Value(NamedTuple):
    """A value of the program: a variable of the step (by its SymPy name, the
    cell's or one a pass made), or its adjoint dL/d(value)."""
    name: str
    adjoint: bool = False


def value_of(leaf):
    """The ``Value`` of a SymPy leaf (a ``StepVar`` or an ``Adjoint``)."""
    from ..model.nodes import Adjoint
    return Value(leaf.var.name, True) if isinstance(leaf, Adjoint) else Value(leaf.name)


@dataclass(frozen=True)
class Let:
    """``value`` := ``expr`` (SymPy): over all steps in ``Stacked``, at step t in a loop."""
    value: object
    expr: object


@dataclass(frozen=True)
class FusedSum:
    """In a loop body: ``leaf`` (a local value) := the sum of ``terms``, each of one
    form, reading one row of a stored value (``rows``) and possibly one hoisted
    value (``slots``), computed as one product over those rows side by side
    (see ``passes/sums.py``)."""
    leaf: object   # the Value that holds the sum
    terms: tuple
    rows: tuple
    slots: tuple


@dataclass(frozen=True)
class Fixed:
    lets: tuple


@dataclass(frozen=True)
class Stacked:
    lets: tuple
    share: bool = False   # later statements read these values by name (hoisted values)


@dataclass(frozen=True)
class Pad:
    value: Value
    forward: bool


@dataclass(frozen=True)
class Loop:
    direction: int          # +1: t = 1..T, -1: t = T..1
    body: tuple             # Let and FusedSum entries, in order
    defs: tuple             # (value, expression) as the derivation gives them
    stored: tuple           # values whose every step is kept, in order
    local: frozenset        # values that live within one step
    carried: tuple          # the loop's values read at the step before
    hoisted: tuple = ()     # Let: computed over all steps before the loop
    sums: tuple = ()        # Let: a gradient (a sum over t) added up as the loop runs


@dataclass(frozen=True)
class Loss:
    expr: object
    stored: bool            # the per-step losses are a stored value (else summed directly)
    value: Value = None


@dataclass(frozen=True)
class Gradient:
    """The gradient of a parameter (``of`` its name) or of an initial state
    (``of`` the state's name, ``state`` True); ``expr`` None: zeros."""
    of: str
    state: bool
    expr: object
    shape: tuple            # SymPy sizes of the result (BATCH for the sequences of a state)
    in_loop: bool = False   # added up by a loop (``Loop.sums``): only returned here


@dataclass(frozen=True)
class Gradients:
    items: tuple            # Gradient, in the order of the returned tuple
    fixed: tuple            # Let: the named matrices' adjoints, before the gradients


@dataclass(frozen=True)
class Kernel:
    """One kernel's schedule. ``padded``: the values stored with steps 0..T(+1),
    read by step (else stored as rows of all steps, T B of them); ``shifted``:
    the forward values read at step t+1; ``readers``: every expression the
    kernel evaluates (what keeps a value alive until it is evaluated)."""
    name: str
    items: tuple
    padded: frozenset
    shifted: frozenset = frozenset()
    readers: tuple = ()
    loss: Value = None
    info: dict = field(default_factory=dict, compare=False)
