"""Exact simplifications of what is printed: forms a person would never write.

    exp(0), tanh(0), sigmoid(c 1): a function of a constant vector is a constant
    x^(o1):                        an entry-wise power 1 is x itself
    1 (.) x:                       the entry-wise product with ones is x

Each is an identity of the expression tree, applied bottom up; the engine's
expressions are not changed, only the copies that are printed.
"""
import sympy
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, OneMatrix, ZeroMatrix
from sympy.core.relational import Relational

from ..ops import Elementwise

__all__ = ["tidy"]


def _constant_value(expr):
    """c when ``expr`` is c times a matrix of ones (0 for a zero matrix), else None."""
    if isinstance(expr, ZeroMatrix):
        return sympy.Integer(0)
    if isinstance(expr, OneMatrix):
        return sympy.Integer(1)
    if isinstance(expr, MatMul):
        numbers = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        if len(matrices) == 1 and isinstance(matrices[0], OneMatrix):
            return sympy.Mul(*numbers)
    return None


def _entrywise(op):
    return type(op).scalar is not Elementwise.scalar


def _fold(expr):
    if isinstance(expr, Elementwise) and _entrywise(expr):
        c = _constant_value(expr.arg)
        if c is not None:
            try:
                value = sympy.nsimplify(type(expr).scalar(c))
            except (TypeError, ValueError, ZeroDivisionError):
                return expr
            if value.is_Number and value.is_finite:
                if value == 0:
                    return ZeroMatrix(*expr.shape)
                ones = OneMatrix(*expr.shape)
                return ones if value == 1 else MatMul(value, ones)
        return expr
    if isinstance(expr, HadamardPower) and expr.exp == 1:
        return expr.base
    if isinstance(expr, MatMul) and any(isinstance(a, ZeroMatrix) for a in expr.args):
        return ZeroMatrix(*expr.shape)
    if isinstance(expr, MatAdd) and any(isinstance(a, ZeroMatrix) for a in expr.args):
        rest = [a for a in expr.args if not isinstance(a, ZeroMatrix)]
        return ZeroMatrix(*expr.shape) if not rest else rest[0] if len(rest) == 1 \
            else MatAdd(*rest)
    if isinstance(expr, HadamardProduct):
        rest = [a for a in expr.args if not isinstance(a, OneMatrix)]
        if len(rest) < len(expr.args):
            if not rest:
                return OneMatrix(*expr.shape)
            return rest[0] if len(rest) == 1 else HadamardProduct(*rest)
    return expr


def tidy(expr):
    """``expr`` with the simplifications above, everywhere in its tree."""
    if not getattr(expr, "args", None):
        return expr
    args = tuple(tidy(a) for a in expr.args)
    if args != expr.args:
        if isinstance(expr, Relational):
            return expr.func(*args, evaluate=False)
        try:
            expr = expr.func(*args)
        except (TypeError, ValueError):
            return expr
    return _fold(expr)
