"""A derived formula in the forms the mistakes transform, and small questions about
expressions that the transformations ask."""
from dataclasses import dataclass

from sympy import HadamardProduct, MatAdd, MatrixSymbol

from ..graph.unroll import t
from ..model.nodes import Adjoint, StepVar, SumOverTime


@dataclass
class Forms:
    """The derived formula of one quantity in the forms the mistakes transform.

    derived   as the engine gives it (for a sum over t: the term of step t)
    inlined   the adjoints of intermediate variables written out
    expanded  and the states' adjoints at the formula's step expanded by one recurrence
    time      the step of the formula (t, or 1 for the gradient of an initial state)
    """
    cell: object
    derivation: object
    derived: object
    inlined: object
    expanded: object
    time: object

    @property
    def bases(self):
        out = []
        for e in (self.derived, self.inlined, self.expanded):
            if e not in out:
                out.append(e)
        return out


def forms_of(derivation, formula, time):
    """The ``Forms`` of ``formula`` (a formula of ``derivation``; of a sum over t, its term)
    at the step ``time``."""
    body = formula.term if isinstance(formula, SumOverTime) else formula
    inlined = derivation.inline(body)
    states = {s.name for s in derivation.cell.states}

    def expand(a):
        recurrence = derivation.recurrence(next(s for s in derivation.cell.states
                                                if s.name == a.var.name))
        return derivation.inline(recurrence.subs(t, a.var.time))

    at_time = [a for a in nodes(inlined, Adjoint) if isinstance(a.var, StepVar)
               and a.var.name in states and a.var.time == time]
    expanded = inlined.xreplace({a: expand(a) for a in at_time}) if at_time else inlined
    return Forms(derivation.cell, derivation, body, inlined, expanded, time)


def nodes(expr, cls, inside_adjoints=True):
    """The distinct sub-expressions of type ``cls`` in preorder (a stable order that
    needs no printing; ``sorted(key=str)`` prints every node)."""
    seen, out, todo = set(), [], [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, cls) and e not in seen:
            seen.add(e)
            out.append(e)
        if isinstance(e, Adjoint) and not inside_adjoints:
            continue
        todo.extend(reversed([a for a in getattr(e, "args", ())
                              if getattr(a, "is_Matrix", False)]))
    return out


def hadamard_factors(e):
    """The factors of an entry-wise product, nested products flattened."""
    if isinstance(e, HadamardProduct):
        out = []
        for a in e.args:
            out.extend(hadamard_factors(a))
        return out
    return [e]


def terms(e):
    """The terms of a sum (one term if ``e`` is not a sum)."""
    return list(e.args) if isinstance(e, MatAdd) else [e]


def replace_all(expr, old, new):
    return expr.xreplace({old: new})


def replace_outside_adjoints(expr, old, new):
    """``expr`` with ``old`` replaced by ``new`` except inside adjoints: h^(t) shifted
    leaves dL/dh^(t) as it is."""
    if isinstance(old, Adjoint):
        return expr.xreplace({old: new})
    hidden = {a: MatrixSymbol(f"_adjoint{i}", *a.shape)
              for i, a in enumerate(nodes(expr, Adjoint))}
    shown = {v: k for k, v in hidden.items()}
    return expr.xreplace(hidden).xreplace({old: new}).xreplace(shown)
