"""The one node an answer may hold that a derivation does not: dL^(t)/dv^(t)."""
from sympy import sympify
from sympy.matrices.expressions.matexpr import MatrixExpr


class StepLossAdjoint(MatrixExpr):
    """dL^(s)/dv: the derivative of the loss of step s alone (not of L = sum of all
    steps). Students write it for the local part of an adjoint, e.g.
    dL^(t)/dh^(t) = V^T dL/do^(t), which lacks the terms from later steps."""

    def __new__(cls, var, loss_time):
        return super().__new__(cls, var, sympify(loss_time))

    var = property(lambda self: self.args[0])
    loss_time = property(lambda self: self.args[1])
    shape = property(lambda self: self.args[0].shape)

    def _sympystr(self, printer):
        return f"dL^({printer._print(self.loss_time)})/d{printer._print(self.var)}"
