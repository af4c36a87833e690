"""The backends of code generation: for each, its passes, its printer, its settings.

A backend is one ``register`` line below (its printer, if it needs one of its
own, in a module of its own). ``symrnn codegen --backend NAME``,
``Derivation.lambdify(NAME)`` and ``symrnn codegen --dump-ir`` read this table.
"""
from dataclasses import dataclass, field

from .arrays import ArrayPrinter
from .emit import NumbaModulePrinter, NumPyPrinter
from .passes import (assemble, carry, gates, hoist, invariants, loopnests, lower, name,
                     outline, preactivation, prune, release, schedule, sums)
from .readable import SHEET, ReadablePrinter


@dataclass(frozen=True)
class Target:
    """``passes``: the pass modules in order; ``printer``: the class that prints the
    module; ``options``: the passes' settings (``Module.option``); ``needs``: a
    function that raises ImportError when the backend's extra dependencies are
    missing; ``cached``: modules are kept on disk (``numba_cache.py``);
    ``public``: the module has the public functions of ``lambdify`` (the array
    backend's has only kernels, which d.torch() and d.jax() call)."""
    name: str
    passes: tuple
    printer: type
    options: dict = field(default_factory=dict)
    needs: object = None
    cached: bool = False
    public: bool = True


def _numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        raise ImportError("backend='numba' needs Numba: pip install 'symrnn[numba]'") from None
    try:  # Numba's matrix products call SciPy's BLAS
        import scipy  # noqa: F401
    except ImportError:
        raise ImportError("backend='numba' needs SciPy (Numba's matrix products call "
                          "its BLAS): pip install 'symrnn[numba]'") from None


TARGETS = {}


def register(target):
    TARGETS[target.name] = target


def target(name):
    """The registered backend ``name`` (with its dependencies importable), or a
    ValueError that lists the backends."""
    found = TARGETS.get(name) if isinstance(name, str) else None
    if found is None:
        public = [n for n, t in TARGETS.items() if t.public]
        raise ValueError(f"backend: expected one of {', '.join(map(repr, public))}, "
                         f"got {name!r}")
    if found.needs is not None:
        found.needs()
    return found


register(Target("numpy", (preactivation, schedule, carry, hoist, sums, lower, gates, release,
                          name, assemble), NumPyPrinter))
register(Target("numba", (schedule, hoist, lower, release, loopnests, outline, name, assemble),
                NumbaModulePrinter, {"numba": True}, needs=_numba, cached=True))
register(Target("readable", (schedule, lower, prune, name, assemble), ReadablePrinter,
                {"loops": "one", "in_place": False, "row_lists": False, "invariants": "inline",
                 "names": SHEET}))
# the kernels that d.torch() and d.jax() run, as functions of an array namespace
register(Target("arrays", (schedule, carry, hoist, lower, prune, invariants, name), ArrayPrinter,
                {"in_place": False, "row_lists": False}, public=False))
