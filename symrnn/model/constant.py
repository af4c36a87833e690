"""Expressions that read no parameter and no value, and the number they stand for.

The parser refuses a constant that is not a finite number (``log(0 * x)``,
``x / (x - x)``); the code generator writes a constant that is a number times
a matrix of ones as that number, which broadcasts against any rows.
"""
import math

import numpy
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol,
                   OneMatrix, Transpose, ZeroMatrix)

from ..ops import Elementwise
from .nodes import Adjoint, StepVar


def _kernel_function(op):
    k = op.kernels["numpy"]
    return getattr(numpy, k.split(".")[1]) if isinstance(k, str) else k


def constant(expr):
    """Whether ``expr`` reads no parameter and no value: numbers, ones, eye(D)."""
    return not expr.atoms(MatrixSymbol, StepVar, Adjoint)


def uniform(expr):
    """The float c with ``expr`` = c times a matrix of ones, for a constant
    expression that is one (``0.5 * 1``, ``exp(0 * x)``, ``1.T @ 1`` of a known
    size); None otherwise. A function is applied by its own NumPy kernel, so that
    the number is the one the code would compute (relu' at 0 is 0); it may be
    infinite or NaN (log(0 * x)), which the parser refuses."""
    with numpy.errstate(all="ignore"):
        value = _uniform(expr)
    return None if value is None else float(value)


def _uniform(expr):
    if isinstance(expr, OneMatrix):
        return numpy.float64(1)
    if isinstance(expr, ZeroMatrix):
        return numpy.float64(0)
    if isinstance(expr, Identity):
        return numpy.float64(1) if expr.shape == (1, 1) else None
    if expr.is_Number:
        return numpy.float64(float(expr))
    if isinstance(expr, Transpose):
        return _uniform(expr.arg)
    if isinstance(expr, (MatAdd, HadamardProduct, HadamardPower, MatMul)):
        args = expr.as_coeff_matrices()[1] if isinstance(expr, MatMul) else \
            [expr.base] if isinstance(expr, HadamardPower) else expr.args
        values = [_uniform(a) for a in args]
        if any(v is None for v in values):
            return None
        if isinstance(expr, MatAdd):
            return numpy.sum(values)
        if isinstance(expr, HadamardPower):
            return values[0] ** int(expr.exp) if expr.exp.is_Integer else None
        value = numpy.prod(values)
        if isinstance(expr, MatMul):  # each inner size is a sum of that many products
            inner = [f.shape[1] for f in args[:-1]]
            if not all(d.is_Integer for d in inner):
                return None
            try:   # a number, or named constants; not a size (ones(D).T @ ones(D) is D)
                coeff = float(expr.as_coeff_matrices()[0])
            except TypeError:
                return None
            value = value * coeff * math.prod(int(d) for d in inner)
        return value
    if isinstance(expr, Elementwise):
        value, n = _uniform(expr.arg), expr.shape[0]
        entrywise = type(expr).definition.__func__ is Elementwise.definition.__func__
        if value is None or not (entrywise or n.is_Integer):
            return None
        out = numpy.asarray(_kernel_function(type(expr))(
            numpy.full((1, 1 if entrywise else int(n)), value)), dtype=float)
        first = out[0, 0]
        if not ((out == first) | (out != out) & (first != first)).all():
            return None
        return first
    return None
