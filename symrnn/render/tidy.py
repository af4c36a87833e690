"""Exact simplifications of what is printed: forms a person would never write.

    exp(0), tanh(0), sigmoid(c 1): a function of a constant vector is a constant
    x^(o1):                        an entry-wise power 1 is x itself
    1 (.) x:                       the entry-wise product with ones is x
    A I x, h 1:                    a factor I (of any size, 1 for 1x1) of a product
    1/2 A (a - b) + A (1/2 a - 1/2 b)  like terms collected: A (a - b) (a scalar
                                   common to a sum's terms is taken out of it first,
                                   when that makes two terms alike)
    A (B C), 2 A (1/2 B):          one product, its scalars in front
    c a^T - c b^T:                 c (a - b)^T

Each is an identity of the expression tree, applied bottom up; the engine's
expressions are not changed, only the copies that are printed.
"""
import sympy
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, OneMatrix,
                   Transpose, ZeroMatrix, default_sort_key)
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
    if isinstance(expr, MatMul) and any(isinstance(a, Identity) for a in expr.args):
        rest = [a for a in expr.args if not isinstance(a, Identity)]
        matrices = [a for a in rest if getattr(a, "is_Matrix", False)]
        if not matrices:
            return expr
        return matrices[0] if len(rest) == 1 else MatMul(*rest)
    if isinstance(expr, MatAdd) and any(isinstance(a, ZeroMatrix) for a in expr.args):
        rest = [a for a in expr.args if not isinstance(a, ZeroMatrix)]
        return ZeroMatrix(*expr.shape) if not rest else rest[0] if len(rest) == 1 \
            else MatAdd(*rest)
    if isinstance(expr, MatMul) and any(isinstance(a, MatMul) for a in expr.args):
        return _flat(expr)
    if isinstance(expr, MatAdd):
        collected = _collected(expr)
        return _common_transpose(collected) if isinstance(collected, MatAdd) else collected
    if isinstance(expr, HadamardProduct):
        rest = [a for a in expr.args if not isinstance(a, OneMatrix)]
        if len(rest) < len(expr.args):
            if not rest:
                return OneMatrix(*expr.shape)
            return rest[0] if len(rest) == 1 else HadamardProduct(*rest)
    return expr


# ---- like terms -------------------------------------------------------------------
def _split(term):
    """(c, [factors]) of a term c A B: the scalar coefficient and the matrices."""
    if isinstance(term, MatMul):
        c = sympy.Integer(1)
        factors = []
        for a in term.args:
            if getattr(a, "is_Matrix", False):
                factors.append(a)
            else:
                c *= a
        return c, factors
    return sympy.Integer(1), [term]


def _common(coefficients):
    """The scalar that every coefficient is a multiple of (1 when none is shared)."""
    g = coefficients[0]
    for c in coefficients[1:]:
        g = sympy.gcd(g, c)
    return g if g != 0 else sympy.Integer(1)


def _scaled(term, c):
    """``term`` times the scalar ``c``, as one product."""
    coefficient, factors = _split(term)
    coefficient *= c
    if coefficient == 1 and len(factors) == 1:
        return factors[0]
    return MatMul(*([coefficient] if coefficient != 1 else []), *factors)


def _normal(term):
    """(c, matrices) of a term with the scalar that the terms of a sum factor share
    moved out of it: A (1/2 a - 1/2 b) is (1/2, A (a - b))."""
    c, factors = _split(term)
    out = []
    for f in factors:
        if isinstance(f, MatAdd):
            g = _common([_split(a)[0] for a in f.args])
            if g != 1:
                c *= g
                f = MatAdd(*[_scaled(a, 1 / g) for a in f.args])
        out.append(f)
    matrices = out[0] if len(out) == 1 else MatMul(*out)
    return c, matrices


def _key(expr):
    """The same key for two forms of one tree that differ only in the order of the
    terms of a sum."""
    if isinstance(expr, MatAdd):
        return ("+",) + tuple(sorted((_key(a) for a in expr.args), key=default_sort_key))
    if getattr(expr, "args", None):
        return (type(expr).__name__,) + tuple(_key(a) for a in expr.args)
    return expr


def _collected(expr):
    """A sum with its like terms collected (``expr`` itself when none are alike)."""
    groups = {}
    for term in expr.args:
        c, matrices = _normal(term)
        key = _key(matrices)
        if key in groups:
            groups[key][0] += c
        else:
            groups[key] = [c, matrices]
    if len(groups) == len(expr.args):
        return expr
    terms = [_scaled(m, c) for c, m in groups.values() if c != 0]
    if not terms:
        return ZeroMatrix(*expr.shape)
    return terms[0] if len(terms) == 1 else MatAdd(*terms)


def _flat(product):
    """A (B C) and 2 A (1/2 B) as one product: its scalars in front."""
    c, factors = _split(product)
    flat = []
    for f in factors:
        if isinstance(f, MatMul):
            inner, fs = _split(f)
            c *= inner
            flat.extend(fs)
        else:
            flat.append(f)
    if c == 1 and len(flat) == 1:
        return flat[0]
    return MatMul(*([c] if c != 1 else []), *flat)


def _untransposed(factors):
    """b with b^T the product of ``factors`` (h^T V^T: V h), or None."""
    if not all(isinstance(f, Transpose) for f in factors):
        return None
    args = [f.arg for f in reversed(factors)]
    return args[0] if len(args) == 1 else MatMul(*args)


def _common_transpose(expr):
    """c a^T - c b^T as c (a - b)^T (c h^T V^T - c y^T as c (V h - y)^T): a sum of
    transposes with one coefficient."""
    parts = [(c, _untransposed(f)) for c, f in map(_split, expr.args)]
    if any(b is None for _, b in parts):
        return expr
    sizes = {abs(c) if c.is_Number else None for c, _ in parts}
    if len(sizes) != 1 or None in sizes:
        return expr
    (size,) = sizes
    inner = MatAdd(*[b if c > 0 else MatMul(-1, b) for c, b in parts])
    return Transpose(inner) if size == 1 else MatMul(size, Transpose(inner))


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
