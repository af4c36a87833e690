"""SymPy node types for one step of a recurrent network.

Every node is a ``MatrixExpr`` so that SymPy's ``MatMul``, ``MatAdd``,
``HadamardProduct`` and ``Transpose`` combine them and check their shapes.
"""
from sympy import Float, Integer, MatAdd, Symbol, ZeroMatrix, sympify
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..display import Readable
from ..ops import Elementwise, LogSoftmax, ReLU, Sigmoid, Softmax, Step, Tanh  # noqa: F401


def _str(name):
    return name if isinstance(name, Str) else Str(name)


class Constant(Symbol):
    """A named constant of a cell (``const: dt = 0.1``): a scalar symbol in the
    derivation and on the sheet (so the derivation is exact in it), its exact
    ``value`` in ``verify``, and a number in the generated code (``float`` of an
    expression holding it evaluates it).

    The value is part of the symbol: two constants of one name and different
    values are different symbols (SymPy's caches must not mix them up)."""

    def __new__(cls, name, value):
        value = sympify(value)
        if not value.is_Rational:
            raise ValueError(f"constant {name}: expected an exact number, got {value!r}")
        obj = Symbol.__xnew__(cls, name, real=True)
        obj.value = value
        return obj

    def __getnewargs_ex__(self):
        return (self.name, self.value), {}

    def _hashable_content(self):
        return super()._hashable_content() + (self.value,)

    def _eval_evalf(self, prec):
        return Float(self.value, precision=prec)


def constant_values(expr):
    """``{constant: its value}`` for the named constants in ``expr``."""
    return {c: c.value for c in expr.atoms(Constant)}


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
    """h^(t-1) for the state ``h`` (a ``MatrixSymbol``), in a :class:`~symrnn.Cell`'s
    equations: ``prev(h)`` in the text syntax."""
    return Prev(state)


__all__ = [n for n in dir() if not n.startswith("_") and n not in {
    "Float", "Integer", "MatAdd", "Symbol", "ZeroMatrix", "sympify", "Str", "MatrixExpr",
    "Readable"}]
