"""Matrix expressions evaluated entry by entry, on explicit lists of rows.

The entries may be SymPy scalars (to build scalar equations) or numbers (to
evaluate a closed form): ``leaf(expr)`` gives the rows of a leaf (or of any
node the caller evaluates itself) and None otherwise; ``size`` turns a size
symbol into an int; ``number`` turns a SymPy coefficient into the entries' type.
"""
from sympy import (S, HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatPow, OneMatrix,
                   Transpose, ZeroMatrix)

from ..ops import Elementwise


def _add(a, b):
    return [[x + y for x, y in zip(r, s)] for r, s in zip(a, b)]


def _matmul(a, b):
    if len(a[0]) != len(b):
        raise ValueError(f"shapes {len(a)}x{len(a[0])} and {len(b)}x{len(b[0])} do not fit")
    columns = list(zip(*b))
    return [[sum((x * y for x, y in zip(r, c)), 0 * r[0]) for c in columns] for r in a]


def _shape(expr, size):
    return tuple(size(d) for d in expr.shape)


def evaluate(expr, leaf, size, number=lambda c: c):
    def ev(e):
        value = leaf(e)
        if value is not None:
            return value
        if isinstance(e, MatAdd):
            terms = [ev(a) for a in e.args]
            out = terms[0]
            for term in terms[1:]:
                out = _add(out, term)
            return out
        if isinstance(e, MatMul):
            coeff, factors = e.as_coeff_matrices()
            out = ev(factors[0])
            for f in factors[1:]:
                out = _matmul(out, ev(f))
            if coeff != 1:
                sizes = {d: S(size(d)) for d in coeff.free_symbols if d.is_integer}
                c = number(coeff.xreplace(sizes) if sizes else coeff)  # 1^T 1 is a size
                out = [[c * x for x in r] for r in out]
            return out
        if isinstance(e, HadamardProduct):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = [[x * y for x, y in zip(r, s)] for r, s in zip(out, ev(a))]
            return out
        if isinstance(e, MatPow):  # A @ A @ ... (the parser makes it of a positive integer)
            if not (e.exp.is_Integer and e.exp >= 1):
                raise NotImplementedError(f"cannot evaluate the matrix power {e}")
            base = ev(e.base)
            out = base
            for _ in range(int(e.exp) - 1):
                out = _matmul(out, base)
            return out
        if isinstance(e, HadamardPower):
            return [[x ** int(e.exp) for x in r] for r in ev(e.base)]
        if isinstance(e, Transpose):
            return [list(c) for c in zip(*ev(e.arg))]
        if isinstance(e, (OneMatrix, ZeroMatrix, Identity)):
            rows, cols = _shape(e, size)
            one, zero = number(S.One), number(S.Zero)
            if isinstance(e, OneMatrix):
                return [[one] * cols for _ in range(rows)]
            return [[one if isinstance(e, Identity) and i == j else zero for j in range(cols)]
                    for i in range(rows)]
        if isinstance(e, Elementwise):
            return [[v] for v in type(e).definition([r[0] for r in ev(e.arg)])]
        raise NotImplementedError(f"cannot evaluate {type(e).__name__} entry by entry: {e}")

    return ev(expr)
