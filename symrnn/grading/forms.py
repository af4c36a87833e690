"""Small questions about expressions that several modules of the grader ask."""
from sympy import MatrixSymbol

from ..mistakes.forms import hadamard_factors, terms
from ..model.nodes import StepVar, SumOverTime


def free_symbols(expr):
    """The free symbols of ``expr``; the index of a sum is bound inside it."""
    if isinstance(expr, SumOverTime):
        lo, hi = expr.limits
        return (free_symbols(expr.term) - {expr.index}) | lo.free_symbols | hi.free_symbols
    if isinstance(expr, (StepVar, MatrixSymbol)):
        return set().union(*(a.free_symbols for a in expr.args[1:]))
    if not getattr(expr, "args", None):
        return set(getattr(expr, "free_symbols", ()))
    return set().union(*(free_symbols(a) for a in expr.args))


__all__ = ["free_symbols", "hadamard_factors", "terms"]
