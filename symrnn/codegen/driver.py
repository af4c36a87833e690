"""Runs a backend's passes on a derivation, and shows the module after any of them.

``source(derivation, "numpy")`` is the generated file; ``run(derivation,
"numpy", until="lower")`` the module right after the pass ``lower``, which
``dump`` shows as text (``symrnn codegen --dump-ir lower``). ``options`` add to
(or replace) the backend's settings for one run: the PyTorch and JAX backends
ask for kernels a module has not by default (see ``FRAMEWORK_OPTIONS``).
"""
import inspect

from ..derivation.reverse import adjoint_sum
from ..graph.unroll import shared, t
from ..model.nodes import StepVar
from . import passes as _passes
from .module import Module, Problem
from .targets import target

_PREFIX = len(_passes.__name__) + 1


def pass_name(p):
    """The name of a pass: its module's name in ``passes`` (``passes.lower`` is "lower")."""
    return p.__name__[_PREFIX:]


def passes(backend):
    """``[(name, "name: what it does")]`` of ``backend``'s passes, in order (the first
    line of each pass's docstring)."""
    return [(pass_name(p), inspect.getdoc(p).splitlines()[0]) for p in target(backend).passes]


# the settings a run may add to a backend's (read by the passes through Module.option):
#   kernels             the kernels to make, of "forward" (the loss), "gradients" (the
#                       loss and the gradients) and "outputs"; default the first two
#   outputs             names of the cell's values that the "outputs" kernel returns
#                       over all steps (it returns the states at the last step too)
#   sequence_gradients  names of inputs and targets whose gradients dL/dx^(t) the
#                       "gradients" kernel returns after the others
FRAMEWORK_OPTIONS = ("kernels", "outputs", "sequence_gradients")


def start(derivation, backend, options=None):
    """The module before the first pass: the derivation's formulas."""
    cell = derivation.cell
    if not cell.inputs and not cell.targets:
        raise ValueError("cell: code generation needs at least one input or target")
    found = target(backend)
    derivation.refuse_if_failed(f"code generation ({backend})")
    settings = dict(found.options)
    for key, value in (options or {}).items():
        if key not in FRAMEWORK_OPTIONS:
            raise ValueError(f"options: unknown setting {key!r}")
        settings[key] = value
    problem = Problem(tuple((lhs, shared(cell, rhs)) for lhs, rhs in derivation.step),
                      dict(derivation.adjoints), dict(derivation.gradients),
                      dict(derivation.fixed_adjoints), tuple(cell.fixed),
                      sequences=sequence_adjoints(derivation,
                                                  settings.get("sequence_gradients", ())))
    return Module(derivation, found.name, problem, options=settings)


def sequence_adjoints(derivation, names):
    """``((name, dL/dx^(t) or None), ...)`` of the inputs and targets ``names``: the
    sum of the chain rule's terms through which x^(t) reaches the loss (None when
    nothing reads it)."""
    cell = derivation.cell
    by_name = {s.name: s for s in cell.inputs + cell.targets}
    out = []
    for name in names:
        v = by_name[name]
        term = adjoint_sum(derivation.contributions.get(StepVar(v.name, t, *v.shape), []))
        out.append((name, None if term is None else shared(cell, term)))
    return tuple(out)


def run(derivation, backend="numpy", until=None, options=None):
    """The module after ``backend``'s passes (after the pass ``until``, if given)."""
    found = target(backend)
    names = [pass_name(p) for p in found.passes]
    if until is not None and until not in names:
        raise ValueError(f"--dump-ir: the backend {backend!r} has no pass {until!r}; its "
                         f"passes: {', '.join(names)}")
    module = start(derivation, backend, options)
    for p, name in zip(found.passes, names):
        module = p.run(module)
        if name == until:
            break
    return module


def source(derivation, backend="numpy", options=None):
    """The source of the generated module."""
    module = run(derivation, backend, options=options)
    return target(backend).printer().print_module(module)
