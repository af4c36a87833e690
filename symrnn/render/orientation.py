"""Row vectors: every formula of the derivation as its transpose, x W instead of W x.

The engine derives with column vectors. A reader who writes row vectors (Dive into
Deep Learning, many slides) reads the transpose of every equation: h^(t) = tanh(z^(t))
becomes the row h_t = tanh(z_t), and z = W h + U x becomes z = h W' + x U' with the
row-form matrices W' = W^T, U' = U^T, which the notation names (W_hh, W_xh). This
module transposes the expression trees: ``as_rows(expr)`` pushes a transpose from the
root down to the leaves (reversing matrix products, through sums, entry-wise
products and functions, sums over time), and marks each leaf: ``Row(x)`` is the
row form of the leaf x (printed with x's name and no transpose sign), and
``Transpose(Row(x))`` its transpose (printed with one). Nothing here prints.
"""
from sympy import (Eq, HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatPow,
                   MatrixSymbol, OneMatrix, Transpose, ZeroMatrix)
from sympy.core.relational import Relational
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..model.nodes import Adjoint, Elementwise, Prev, StepVar, SumOverTime
from .expressions import ProductOverTime

__all__ = ["Row", "as_rows"]


class Row(MatrixExpr):
    """The row form of a leaf x of the column-form derivation: x^T, named like x."""

    def __new__(cls, leaf):
        return super().__new__(cls, leaf)

    leaf = property(lambda self: self.args[0])
    shape = property(lambda self: (self.args[0].shape[1], self.args[0].shape[0]))


_LEAVES = (StepVar, Prev, MatrixSymbol, Adjoint, OneMatrix)


def _scalar(expr):
    return getattr(expr, "shape", None) == (1, 1)


def _push(expr, flip):
    """``expr`` (flip False) or its transpose (flip True), with every leaf marked."""
    if not getattr(expr, "is_Matrix", False):
        return expr  # a number
    if isinstance(expr, _LEAVES):
        if _scalar(expr):
            return Row(expr)
        return Row(expr) if flip else Transpose(Row(expr))
    if isinstance(expr, Transpose):
        return _push(expr.arg, not flip)
    if isinstance(expr, MatMul):
        numbers = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        factors = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        if flip:
            factors = factors[::-1]
        return MatMul(*numbers, *[_push(f, flip) for f in factors])
    if isinstance(expr, MatAdd):
        return MatAdd(*[_push(a, flip) for a in expr.args])
    if isinstance(expr, HadamardProduct):
        return HadamardProduct(*[_push(a, flip) for a in expr.args])
    if isinstance(expr, HadamardPower):
        return HadamardPower(_push(expr.base, flip), expr.exp)
    if isinstance(expr, MatPow):                       # (A^n)^T = (A^T)^n
        return MatPow(_push(expr.base, flip), expr.exp)
    if isinstance(expr, DiagMatrix):
        return DiagMatrix(_push(expr.args[0], True))  # diag(u) is symmetric; u is a row
    if isinstance(expr, Elementwise):
        inner = type(expr)(_push(expr.arg, True))     # f(u) of the row u
        return inner if flip or _scalar(expr) else Transpose(inner)
    if isinstance(expr, SumOverTime):
        return SumOverTime(_push(expr.term, flip), expr.index, *expr.limits)
    if isinstance(expr, ProductOverTime):  # (A_1 ... A_n)^T = A_n^T ... A_1^T
        return ProductOverTime(_push(expr.factor, flip), expr.index, *expr.limits,
                               increasing=expr.increasing != flip)
    if isinstance(expr, (Identity,)):
        return expr
    if isinstance(expr, ZeroMatrix):
        return ZeroMatrix(*expr.shape[::-1]) if flip else expr
    if flip and not _scalar(expr):
        return Transpose(expr)  # a node this module does not know: kept, transposed
    return expr


def as_rows(expr):
    """The row-vector form of ``expr``: its transpose, leaves marked with ``Row``.

    An equation becomes the equation of the transposes of both sides, except an
    equation ``Partial(u, v) = J`` of a Jacobian, which keeps its matrix (with the
    leaves written in their row forms: W = (W')^T)."""
    if isinstance(expr, Eq):
        flip = type(expr.lhs).__name__ != "Partial"
        return Eq(_push(expr.lhs, flip), _push(expr.rhs, flip), evaluate=False)
    if isinstance(expr, Relational) or not getattr(expr, "is_Matrix", False):
        return expr
    return _push(expr, True)
