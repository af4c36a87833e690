"""SymPy node types for one step of a recurrent network.

Every node is a ``MatrixExpr`` so that SymPy's ``MatMul``, ``MatAdd``,
``HadamardProduct`` and ``Transpose`` combine them and check their shapes.
"""
from sympy import Integer, MatAdd, ZeroMatrix, sympify
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..display import Readable
from ..ops import Elementwise, LogSoftmax, ReLU, Sigmoid, Softmax, Step, Tanh  # noqa: F401


def _str(name):
    return name if isinstance(name, Str) else Str(name)


class StepVar(Readable, MatrixExpr):
    """The value of a quantity at one time step, e.g. h^(t-1) or a copy W^(t).

    The time is a SymPy expression, so ``subs(t, t + 1)`` shifts a whole
    equation by one step and ``subs(t, 3)`` picks a concrete step.
    """

    def __new__(cls, name, time, rows, cols):
        return super().__new__(cls, _str(name), sympify(time), sympify(rows), sympify(cols))

    name = property(lambda self: self.args[0].name)
    time = property(lambda self: self.args[1])
    shape = property(lambda self: (self.args[2], self.args[3]))

    def at(self, time):
        return StepVar(self.args[0], time, *self.shape)


class Prev(Readable, MatrixExpr):
    """h^(t-1) written inside the equations of one step: the state carried in."""

    def __new__(cls, state):
        return super().__new__(cls, state)

    state = property(lambda self: self.args[0])
    shape = property(lambda self: self.args[0].shape)


class Adjoint(Readable, MatrixExpr):
    """The total derivative dL/dv of the loss with respect to the node v."""

    def __new__(cls, var):
        return super().__new__(cls, var)

    var = property(lambda self: self.args[0])
    shape = property(lambda self: self.args[0].shape)


class SumOverTime(Readable, MatrixExpr):
    """sum_{t=lo}^{hi} term(t), for a symbolic or a concrete upper limit."""

    def __new__(cls, term, t, lo, hi):
        return super().__new__(cls, term, t, sympify(lo), sympify(hi))

    term = property(lambda self: self.args[0])
    index = property(lambda self: self.args[1])
    limits = property(lambda self: (self.args[2], self.args[3]))
    shape = property(lambda self: self.args[0].shape)

    def doit(self, **hints):
        """The sum written out when both limits are numbers."""
        lo, hi = self.limits
        term = self.term.doit(**hints) if hints.get("deep", True) else self.term
        if not (lo.is_Integer and hi.is_Integer):
            return SumOverTime(term, self.index, lo, hi)
        terms = [term.subs(self.index, Integer(k)) for k in range(int(lo), int(hi) + 1)]
        return MatAdd(*terms).doit() if terms else ZeroMatrix(*self.shape)


# the functions a cell applies are the operations' node classes themselves
tanh, sigmoid, relu, softmax, log_softmax = Tanh, Sigmoid, ReLU, Softmax, LogSoftmax


def prev(state):
    return Prev(state)


__all__ = [n for n in dir() if not n.startswith("_") and n not in {"Integer", "MatAdd", "ZeroMatrix", "sympify", "Str", "MatrixExpr", "Readable"}]
