"""Small questions about expressions that several modules of the grader ask."""
from sympy import HadamardProduct, MatAdd, MatrixSymbol

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
