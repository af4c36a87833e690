"""Every operation a cell can apply to a vector, each defined once.

Like a JAX primitive, an operation carries everything about itself:

    name        what the text syntax, the CLI and plain text call it: ``tanh(z)``
    definition  its meaning as SymPy scalars: what ``verify`` differentiates with
                SymPy's own ``diff``, independently of ``vjp`` below
    vjp         its adjoint rule, g -> dL/d(argument), in matrix expressions; ``ans``
                is the node's value (h^(t) when an equation names it)
    kernels     its implementations: ``numpy`` a function of a 2-D array (one row
                per step and sequence) with an optional output array, copied into
                the generated module, or the name of a NumPy ufunc; ``numba`` a
                scalar function compiled into an element-wise loop, or a whole
                function for operations on a row; ``array`` a function ``(xp, x)``
                of an array-library namespace ``xp`` (see below) for the backends
                that run on other libraries (PyTorch, JAX); a new backend adds its
                key here
    latex, words  how the sheet writes it and names it in a sentence

The ``array`` kernels use only this much of ``xp``, which each such backend
provides for its library: ``xp.tanh``, ``xp.sigmoid``, ``xp.exp``, ``xp.log``,
``xp.sqrt``, ``xp.abs``, ``xp.rowmax(x)`` and ``xp.rowsum(x)`` (over the last axis, kept as
an axis of length 1), and the operators of arrays (``+ - * / > **``). Arrays
are laid out as everywhere in the generated code: one row per step and
sequence, the vector along the last axis.

The node classes are SymPy ``MatrixExpr`` so that ``MatMul``, ``MatAdd`` and
``HadamardProduct`` combine them and check their shapes. Adding an operation is
one class here plus its test; the parser, the CLI, the rules table, the
printers and the sheet find it in ``OPERATIONS``.
"""
import functools
import math

import numpy
import sympy
from sympy import HadamardProduct, OneMatrix, sympify
from sympy.matrices.expressions.matexpr import MatrixExpr

from .display import Readable

OPERATIONS = {}  # name -> node class, in the order they are defined


class Elementwise(Readable, MatrixExpr):
    """A function applied to a column vector, with a result of the same shape."""

    name = None          # the name in the text syntax; None: made only by rules
    text = property(lambda self: self.name or type(self).__name__.lower())  # plain text
    latex = None
    log_of = None        # the operation this one is the log of (log_softmax: softmax)
    words = ""
    activation = False   # offered as an activation of the Elman network
    # (g, inner, outer, offset): this operation is outer * g(inner * z) + offset, for
    # the operation named g, with inner and outer powers of two (so that scaling is
    # exact): the NumPy kernels then compute gates of both with one call of g
    # (codegen/fuse.py); tests/test_ops.py proves it from the definitions
    affine_of = None
    kernels = {}

    def __new__(cls, arg):
        return super().__new__(cls, sympify(arg))

    arg = property(lambda self: self.args[0])
    # computed once: SymPy's MatMul asks each of its factors for its shape twice,
    # so in c * f(c * f(...)) an uncached shape costs twice as much per level
    shape = functools.cached_property(lambda self: self.args[0].shape)

    @staticmethod
    def scalar(u):
        """The value at one entry, as a SymPy expression in the SymPy scalar ``u``."""
        raise NotImplementedError

    @classmethod
    def definition(cls, column):
        """The value on an explicit SymPy column (a list of scalars)."""
        return [cls.scalar(u) for u in column]

    @staticmethod
    def vjp(ans, x, g):
        """dL/dx for dL/d(op(x)) = g, where ans = op(x)."""
        raise NotImplementedError


def operation(cls):
    """Register ``cls`` under its name (and its class name, for the rules).

    The class name must not be one SymPy's printers know (``Abs``, ``Sqrt``):
    they dispatch on it before ``_print_Elementwise``."""
    OPERATIONS[cls.name or cls.__name__] = cls
    return cls


def _ones(x):
    return OneMatrix(*x.shape)


def _had(*factors):
    return HadamardProduct(*factors)


# -- kernels shared by the generated modules: NumPy (2-D rows, optional output
# array passed positionally, as Numba requires) and scalar functions for Numba --

def _sigmoid(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    numpy.multiply(x, 0.5, out)
    numpy.tanh(out, out)
    out *= 0.5
    out += 0.5
    return out


def _relu(x, out=None):
    return numpy.maximum(x, 0.0, out=out)


def _step(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    return numpy.greater(x, 0.0, out)


# the reductions as ufunc methods, (x, axis, dtype, out, keepdims): x.max(-1,
# keepdims=True) and x.sum reach the same through a Python wrapper of NumPy's
def _softmax(x, out=None):
    e = numpy.subtract(x, numpy.maximum.reduce(x, -1, None, None, True), out)
    numpy.exp(e, out=e)
    e /= numpy.add.reduce(e, -1, None, None, True)
    return e


def _log_softmax(x, out=None):
    s = numpy.subtract(x, numpy.maximum.reduce(x, -1, None, None, True), out)
    s -= numpy.log(numpy.add.reduce(numpy.exp(s), -1, None, None, True))
    return s


# Numba's exp, tanh and sigmoid compute the exponential themselves instead of
# calling libm's exp or expm1: LLVM cannot vectorise a loop around a call (Numba
# has no vector math library here), and it vectorises this. The textbook
# reduction: x = k ln2 + r with k an integer and |r| <= ln2/2, expm1(r) from
# its Taylor series, 2^k built from its bits; within 1 ulp (exp) and 2.5 ulps
# (tanh, sigmoid) of the exact value (tests/test_numba_exp.py).
_LN2_HI = math.ldexp(math.floor(math.ldexp(math.log(2), 32)), -32)  # k * _LN2_HI is exact
_LN2_LO = float((sympy.log(2) - sympy.Rational(_LN2_HI)).evalf(40))
_LOG2E = 1 / math.log(2)
_ROUND = 1.5 * 2.0 ** 52    # (t + _ROUND) - _ROUND is t rounded; its low bits hold it as an int
_ROUND_BITS = int(numpy.float64(_ROUND).view(numpy.int64))
# 1/13!, ..., 1/2!: the series' remainder is below a tenth of an ulp for |r| <= ln2/2
_EXPM1_TAYLOR = tuple(1 / math.factorial(n) for n in range(13, 1, -1))

# the helpers and constants the Numba scalar kernels use (the generated module
# copies them before the kernels)
NUMBA_CONSTANTS = ("_LN2_HI", "_LN2_LO", "_LOG2E", "_ROUND", "_ROUND_BITS", "_EXPM1_TAYLOR")


def _nb_exp_parts(x):
    """(expm1(r), 2^j, 2^(k-j)) with x = k ln2 + r, |r| <= ln2/2, j = floor(k/2):
    exp(x) = (1 + expm1(r)) 2^j 2^(k-j). x is clamped to [-746, 710], beyond
    which exp is 0 or inf in floating point (NaN stays NaN). 2^k is kept in
    two halves, each a normal number built from its bits, so that a subnormal
    result is rounded once, by the last product."""
    x = 710.0 if x > 710.0 else x
    x = -746.0 if x < -746.0 else x
    t = x * _LOG2E + _ROUND
    k = numpy.float64(t).view(numpy.int64) - _ROUND_BITS
    kf = t - _ROUND
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    p = _EXPM1_TAYLOR[0]
    for c in _EXPM1_TAYLOR[1:]:
        p = p * r + c
    j = k >> 1
    return (r + r * r * p, numpy.int64((j + 1023) << 52).view(numpy.float64),
            numpy.int64((k - j + 1023) << 52).view(numpy.float64))


NUMBA_HELPERS = (_nb_exp_parts,)


def _nb_exp_scalar(v):
    q, s1, s2 = _nb_exp_parts(v)
    return (1.0 + q) * s1 * s2


def _nb_tanh_scalar(v):
    # (e^2v - 1) / (e^2v + 1) with expm1, accurate near 0; beyond |v| = 20, tanh is
    # +-1 in floating point (clamped: NaN stays NaN)
    v = 20.0 if v > 20.0 else v
    v = -20.0 if v < -20.0 else v
    q, s1, s2 = _nb_exp_parts(2.0 * v)
    s = s1 * s2                                 # 2^k, k <= 58
    e = s * q + (s - 1.0)                       # expm1(2v)
    return e / (e + 2.0)


def _nb_sigmoid_scalar(v):
    # one exp of -|v| (it never overflows), and accurate to the last bits where
    # sigmoid is tiny, subnormal included (0.5 + 0.5 tanh(v/2) cancels there)
    q, s1, s2 = _nb_exp_parts(-abs(v))    # not _nb_exp_scalar: one function less to compile
    e = (1.0 + q) * s1 * s2
    s = 1.0 / (1.0 + e)
    return s if v >= 0.0 else e * s


def _nb_relu_scalar(v):
    return max(v, 0.0)


def _nb_step_scalar(v):
    return 1.0 if v > 0.0 else 0.0


def _array_softmax(xp, x):
    e = xp.exp(x - xp.rowmax(x))
    return e / xp.rowsum(e)


def _array_log_softmax(xp, x):
    s = x - xp.rowmax(x)
    return s - xp.log(xp.rowsum(xp.exp(s)))


def _softplus(x, out=None):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no cancellation
    tail = numpy.abs(x)
    numpy.negative(tail, tail)
    numpy.exp(tail, tail)
    numpy.log1p(tail, tail)
    out = numpy.maximum(x, 0.0, out=out)   # out may be x itself: tail is computed first
    out += tail
    return out


def _reciprocal(x, out=None):
    return numpy.divide(1.0, x, out)


def _nb_log_scalar(v):
    # as numpy.log: -inf at 0, nan below (math.log would raise)
    if v > 0.0:
        return math.log(v)
    return -math.inf if v == 0.0 else math.nan


def _nb_softplus_scalar(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _nb_abs_scalar(v):
    return abs(v)


def _nb_sign_scalar(v):
    return 1.0 if v > 0.0 else (-1.0 if v < 0.0 else 0.0)


def _nb_sqrt_scalar(v):
    # as numpy.sqrt: nan below 0 (math.sqrt would raise)
    return math.sqrt(v) if v >= 0.0 else math.nan


def _nb_reciprocal_scalar(v):
    # as numpy: 1/0 is inf (Python's division would raise)
    if v == 0.0:
        return math.copysign(math.inf, v)
    return 1.0 / v


def _array_softplus(xp, x):
    # the array namespace has no log1p: log(1 + e) is exact to the last place of
    # the result except for x below about -37, where it gives 0 for exp(x)
    return x * (x > 0) + xp.log(1 + xp.exp(-xp.abs(x)))


# -- the operations ----------------------------------------------------------------

@operation
class Tanh(Elementwise):
    name, latex, words, activation = "tanh", r"\tanh", "the hyperbolic tangent", True
    kernels = {"numpy": "numpy.tanh", "numba": _nb_tanh_scalar,
               "array": lambda xp, x: xp.tanh(x)}
    scalar = staticmethod(sympy.tanh)

    @staticmethod
    def vjp(ans, x, g):
        return _had(_ones(ans) - _had(ans, ans), g)


@operation
class Sigmoid(Elementwise):
    name, latex, words, activation = "sigmoid", r"\sigma", "the logistic sigmoid", True
    affine_of = ("tanh", 0.5, 0.5, 0.5)
    kernels = {"numpy": _sigmoid, "numba": _nb_sigmoid_scalar,
               "array": lambda xp, x: xp.sigmoid(x)}

    @staticmethod
    def scalar(u):
        return 1 / (1 + sympy.exp(-u))

    @staticmethod
    def vjp(ans, x, g):
        return _had(_had(ans, _ones(ans) - ans), g)


@operation
class Step(Elementwise):
    """The derivative of ReLU: 1 where the argument is positive, else 0."""
    latex, words = r"\operatorname{relu}'", "the unit step"
    kernels = {"numpy": _step, "numba": _nb_step_scalar,
               "array": lambda xp, x: 0 * x + (x > 0)}

    @staticmethod
    def scalar(u):
        return sympy.Heaviside(u)


@operation
class ReLU(Elementwise):
    name, latex, words, activation = "relu", r"\operatorname{relu}", "the rectifier", True
    kernels = {"numpy": _relu, "numba": _nb_relu_scalar,
               "array": lambda xp, x: x * (x > 0)}

    @staticmethod
    def scalar(u):
        return sympy.Max(u, 0)

    @staticmethod
    def vjp(ans, x, g):
        return _had(Step(x), g)


@operation
class Softmax(Elementwise):
    """softmax over the entries of a column vector (not entry-wise, same shape)."""
    name, latex, words = "softmax", r"\operatorname{softmax}", "the softmax"
    kernels = {"numpy": _softmax, "numba": None, "array": _array_softmax}

    @classmethod
    def definition(cls, column):
        exps = [sympy.exp(u) for u in column]
        total = sympy.Add(*exps)
        return [e / total for e in exps]

    @staticmethod
    def vjp(ans, x, g):
        return _had(ans, g) - ans * (ans.T * g)


@operation
class LogSoftmax(Elementwise):
    """log(softmax(o)), kept as one node so that it is evaluated stably."""
    name, latex, words = "log_softmax", r"\log\operatorname{softmax}", "the log-softmax"
    log_of = Softmax
    kernels = {"numpy": _log_softmax, "numba": None, "array": _array_log_softmax}

    @classmethod
    def definition(cls, column):
        log_total = sympy.log(sympy.Add(*[sympy.exp(u) for u in column]))
        return [u - log_total for u in column]

    @staticmethod
    def vjp(ans, x, g):
        return g - Softmax(x) * (_ones(g).T * g)


@operation
class Exp(Elementwise):
    name, latex, words = "exp", r"\exp", "the exponential"
    kernels = {"numpy": "numpy.exp", "numba": _nb_exp_scalar,
               "array": lambda xp, x: xp.exp(x)}
    scalar = staticmethod(sympy.exp)

    @staticmethod
    def vjp(ans, x, g):
        return _had(ans, g)


@operation
class Reciprocal(Elementwise):
    """1/x entry by entry: ``a / b`` for a vector b is ``a * reciprocal(b)``. A
    function of the text syntax too, since the parser makes it (the rules table
    holds the operations a cell can call)."""
    name, latex, words = "reciprocal", r"\operatorname{recip}", "the reciprocal"
    kernels = {"numpy": _reciprocal, "numba": _nb_reciprocal_scalar,
               "array": lambda xp, x: 1 / x}

    @staticmethod
    def scalar(u):
        return 1 / u

    @staticmethod
    def vjp(ans, x, g):
        return -_had(ans, ans, g)


@operation
class Log(Elementwise):
    """The natural logarithm; nan where the argument is negative, -inf at 0
    (NumPy's convention, in every kernel)."""
    name, latex, words = "log", r"\log", "the natural logarithm"
    kernels = {"numpy": "numpy.log", "numba": _nb_log_scalar,
               "array": lambda xp, x: xp.log(x)}
    scalar = staticmethod(sympy.log)

    @staticmethod
    def vjp(ans, x, g):
        return _had(Reciprocal(x), g)


@operation
class Softplus(Elementwise):
    # not offered as the Elman activation (activation = True would add it to
    # ElmanRNN and the CLI's --activation; tests/test_cli.py uses it as an unknown one)
    name, latex, words = "softplus", r"\operatorname{softplus}", "the softplus"
    kernels = {"numpy": _softplus, "numba": _nb_softplus_scalar, "array": _array_softplus}

    @staticmethod
    def scalar(u):
        return sympy.log(1 + sympy.exp(u))

    @staticmethod
    def vjp(ans, x, g):
        return _had(Sigmoid(x), g)


@operation
class Sign(Elementwise):
    """The derivative of abs: -1, 0 or 1."""
    latex, words = r"\operatorname{sign}", "the sign"
    kernels = {"numpy": "numpy.sign", "numba": _nb_sign_scalar,
               # 1 * (x < 0): torch subtracts no bool tensor
               "array": lambda xp, x: 0 * x + (x > 0) - 1 * (x < 0)}
    scalar = staticmethod(sympy.sign)

    @staticmethod
    def vjp(ans, x, g):
        return None  # piecewise constant: no contribution


@operation
class Absolute(Elementwise):
    """|x| entry by entry; its derivative at 0 is taken as 0."""
    name, latex, words = "abs", r"\operatorname{abs}", "the absolute value"
    kernels = {"numpy": "numpy.abs", "numba": _nb_abs_scalar,
               "array": lambda xp, x: xp.abs(x)}
    scalar = staticmethod(sympy.Abs)

    @staticmethod
    def vjp(ans, x, g):
        return _had(Sign(x), g)


@operation
class SquareRoot(Elementwise):
    """The square root; nan where the argument is negative (NumPy's convention)."""
    name, latex, words = "sqrt", r"\operatorname{sqrt}", "the square root"
    kernels = {"numpy": "numpy.sqrt", "numba": _nb_sqrt_scalar,
               "array": lambda xp, x: xp.sqrt(x)}
    scalar = staticmethod(sympy.sqrt)

    @staticmethod
    def vjp(ans, x, g):
        return sympy.Rational(1, 2) * _had(Reciprocal(ans), g)


def functions():
    """The operations a cell may call by name: ``{"tanh": Tanh, ...}``."""
    return {name: op for name, op in OPERATIONS.items() if op.name == name}


def activations():
    """The operations offered as the Elman network's activation."""
    return {name: op for name, op in functions().items() if op.activation}
