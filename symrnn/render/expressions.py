"""Expressions that only the text uses: a Jacobian dv/du, a product over later steps."""
from sympy import Integer, sympify
from sympy.matrices.expressions.matexpr import MatrixExpr

__all__ = ["Partial", "ProductOverTime"]


class Partial(MatrixExpr):
    """The Jacobian d(num)/d(den) of one vector with respect to another, for the text."""

    def __new__(cls, num, den):
        return super().__new__(cls, num, den)

    num = property(lambda self: self.args[0])
    den = property(lambda self: self.args[1])
    shape = property(lambda self: (self.args[0].shape[0], self.args[1].shape[0]))


class ProductOverTime(MatrixExpr):
    """prod_{k=lo}^{hi} factor(k): the factors in increasing order of k from left to
    right (``increasing``), or in decreasing order (the transposed product)."""

    def __new__(cls, factor, index, lo, hi, increasing=True):
        return super().__new__(cls, factor, index, sympify(lo), sympify(hi),
                               Integer(1 if increasing else 0))

    factor = property(lambda self: self.args[0])
    index = property(lambda self: self.args[1])
    limits = property(lambda self: (self.args[2], self.args[3]))
    increasing = property(lambda self: bool(self.args[4]))
    shape = property(lambda self: self.args[0].shape)
