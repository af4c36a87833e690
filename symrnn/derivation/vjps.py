"""Adjoint (vector-Jacobian product) rules: one entry per operation.

``VJPS[Op](ans, args, i)`` returns the function ``g -> dL/d args[i]`` that maps
the adjoint ``g`` of the node to the contribution of argument ``i``; ``ans`` is
the node's value (its name, such as h^(t), when an equation names it), so that
tanh' is written 1 - h*h as on paper. The structural operations of matrix
algebra are here; every function of a vector brings its own rule
(``symrnn/ops.py``).
"""
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, MatPow, Transpose

from ..ops import functions


def _t(a):
    return a.T if getattr(a, "is_Matrix", False) else a


def _matmul(ans, args, i):
    # d(A_1 ... A_n)/dA_i:  g  ->  (A_1 ... A_{i-1})^T g (A_{i+1} ... A_n)^T
    before, after = args[:i], args[i + 1:]
    return lambda g: MatMul(*[_t(a) for a in reversed(before)], g,
                            *[_t(a) for a in reversed(after)])


def _matpow(ans, args, i):
    # d(A^n)/dA, n a positive integer (A @ A @ ...):  g  ->  sum_k (A^T)^k g (A^T)^(n-1-k)
    base, n = args[0], int(args[1])
    return lambda g: MatAdd(*[MatMul(*[base.T] * k, g, *[base.T] * (n - 1 - k))
                              for k in range(n)])


def _hadamard(ans, args, i):
    return lambda g: HadamardProduct(*(args[:i] + args[i + 1:]), g)


def _operation(op):
    return lambda ans, args, i: lambda g: op.vjp(ans, args[0], g)


VJPS = {
    MatAdd:          lambda ans, args, i: lambda g: g,
    MatMul:          _matmul,
    MatPow:          _matpow,
    Transpose:       lambda ans, args, i: lambda g: g.T,
    HadamardProduct: _hadamard,
    HadamardPower:   lambda ans, args, i: lambda g: HadamardProduct(
        args[1] * HadamardPower(args[0], args[1] - 1), g),
    **{op: _operation(op) for op in functions().values()},  # those a cell can call
}
