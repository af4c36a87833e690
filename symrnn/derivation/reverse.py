"""Reverse-mode chain rule over a list of equations, rule by rule."""
from dataclasses import dataclass

from sympy import Identity, MatAdd, MatrixSymbol
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..model.nodes import Adjoint, StepVar
from .vjps import VJPS


@dataclass(frozen=True)
class Contribution:
    """One term of the chain rule: through ``rules``, dL/d``consumer`` adds ``term`` to dL/d``target``."""
    target: MatrixExpr
    consumer: MatrixExpr
    rules: tuple
    term: MatrixExpr


def _is_variable(expr):
    return isinstance(expr, (StepVar, MatrixSymbol))


def backprop(equations, seeds, live=()):
    """Chain-rule contributions, target by target, for ``[(lhs, rhs), ...]``.

    The adjoint of an equation's left-hand side is the symbol ``Adjoint(lhs)``,
    except for the ``seeds`` (the losses), whose adjoint is given (1). A
    left-hand side that nothing here consumes has adjoint 0 and is skipped,
    unless it is ``live`` (a state consumed by the next step, outside this list).
    Returns ``{target: [Contribution, ...]}`` in the order they were found.
    """
    found = {}
    names = {rhs: lhs for lhs, rhs in equations if not _is_variable(rhs)}

    def visit(node, g, consumer, rules):
        if _is_variable(node):
            term = g.doit().xreplace(names)  # softmax(o^(t)) is written yhat^(t)
            found.setdefault(node, []).append(Contribution(node, consumer, rules, term))
            return
        if not node.atoms(StepVar, MatrixSymbol):
            return  # a constant: OneMatrix, Identity
        rule = VJPS.get(type(node))
        if rule is None:
            raise NotImplementedError(f"no adjoint rule for {type(node).__name__} in {node}")
        ans = names.get(node, node)
        for i, arg in enumerate(node.args):
            if getattr(arg, "is_Matrix", False):
                visit(arg, rule(ans, node.args, i)(g), consumer, rules + (type(node).__name__,))

    for lhs, rhs in reversed(equations):
        if lhs not in seeds and lhs not in found and lhs not in live:
            continue
        g = seeds.get(lhs, Adjoint(lhs))
        visit(rhs, g, lhs, ())
    return found


def adjoint_sum(contributions):
    """dL/dv as the sum of its contributions (``None`` when nothing depends on v)."""
    if not contributions:
        return None
    return MatAdd(*[c.term for c in contributions]).doit()


def seed(loss_var):
    return {loss_var: Identity(1)}
