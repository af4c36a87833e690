"""The parts of a term that the printers ask about: its scalar coefficient, its sign,
the leaf it prints as. (Shared by the LaTeX printer and its line breaking.)"""
from sympy import Add, MatMul, MatrixSymbol, Number, OneMatrix

from ..model.nodes import Adjoint, Prev, StepVar
from .orientation import Row

__all__ = ["coefficient", "is_negative", "is_scalar", "leaf_of", "negative", "size"]


def coefficient(expr):
    """(scalar, factors) of a MatMul: -2*A*b -> (-2, [A, b]); a scalar symbol of the
    cell (c A, dt A) belongs to the scalar."""
    if isinstance(expr, MatMul):
        scalars = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        factors = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        c = 1
        for n in scalars:
            c *= n
        return c, factors
    return 1, [expr]


def negative(c):
    """Is the scalar ``c`` printed with a minus sign in front (-2, -c)? A sum such as
    1 - 2 beta is not: it is printed whole, in parentheses."""
    if isinstance(c, (Number, int)):
        return bool(c < 0)
    if isinstance(c, Add):
        return False
    return bool(c.could_extract_minus_sign())


def size(c):
    """|c| as printed after a sign: 2 for -2, c for -c."""
    return -c if negative(c) else c


def is_negative(expr):
    c, _ = coefficient(expr)
    return negative(c)


def is_scalar(expr):
    return getattr(expr, "shape", None) == (1, 1)


def leaf_of(expr):
    """The leaf a node prints as (a Row's leaf), else None."""
    if isinstance(expr, Row):
        return expr.leaf
    if isinstance(expr, (StepVar, Prev, MatrixSymbol, OneMatrix, Adjoint)):
        return expr
    return None
