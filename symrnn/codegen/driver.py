"""Runs a backend's passes on a derivation, and shows the module after any of them.

``source(derivation, "numpy")`` is the generated file; ``run(derivation,
"numpy", until="lower")`` the module right after the pass ``lower``, which
``dump`` shows as text (``symrnn codegen --dump-ir lower``).
"""
import inspect

from ..graph.unroll import shared
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


def start(derivation, backend):
    """The module before the first pass: the derivation's formulas."""
    cell = derivation.cell
    if not cell.inputs and not cell.targets:
        raise ValueError("cell: code generation needs at least one input or target")
    found = target(backend)
    derivation.refuse_if_failed(f"code generation ({backend})")
    problem = Problem(tuple((lhs, shared(cell, rhs)) for lhs, rhs in derivation.step),
                      dict(derivation.adjoints), dict(derivation.gradients),
                      dict(derivation.fixed_adjoints), tuple(cell.fixed))
    return Module(derivation, found.name, problem, options=dict(found.options))


def run(derivation, backend="numpy", until=None):
    """The module after ``backend``'s passes (after the pass ``until``, if given)."""
    found = target(backend)
    names = [pass_name(p) for p in found.passes]
    if until is not None and until not in names:
        raise ValueError(f"--dump-ir: the backend {backend!r} has no pass {until!r}; its "
                         f"passes: {', '.join(names)}")
    module = start(derivation, backend)
    for p, name in zip(found.passes, names):
        module = p.run(module)
        if name == until:
            break
    return module


def source(derivation, backend="numpy"):
    """The source of the generated module."""
    module = run(derivation, backend)
    return target(backend).printer().print_module(module)
