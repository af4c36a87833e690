"""Adjoint (vector-Jacobian product) rules: one entry per operation.

``VJPS[Op](ans, args, i)`` returns the function ``g -> dL/d args[i]`` that maps
the adjoint ``g`` of the node to the contribution of argument ``i``; ``ans`` is
the node's value (its name, such as h^(t), when an equation names it), so that
tanh' is written 1 - h*h as on paper.
"""
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, OneMatrix, Transpose

from ..model.nodes import LogSoftmax, ReLU, Sigmoid, Softmax, Step, Tanh


def _t(a):
    return a.T if getattr(a, "is_Matrix", False) else a


def _ones(x):
    return OneMatrix(*x.shape)


def _matmul(ans, args, i):
    # d(A_1 ... A_n)/dA_i:  g  ->  (A_1 ... A_{i-1})^T g (A_{i+1} ... A_n)^T
    before, after = args[:i], args[i + 1:]
    return lambda g: MatMul(*[_t(a) for a in reversed(before)], g,
                            *[_t(a) for a in reversed(after)])


def _hadamard(ans, args, i):
    return lambda g: HadamardProduct(*(args[:i] + args[i + 1:]), g)


VJPS = {
    MatAdd:          lambda ans, args, i: lambda g: g,
    MatMul:          _matmul,
    Transpose:       lambda ans, args, i: lambda g: g.T,
    HadamardProduct: _hadamard,
    HadamardPower:   lambda ans, args, i: lambda g: HadamardProduct(
        args[1] * HadamardPower(args[0], args[1] - 1), g),
    Tanh:            lambda ans, args, i: lambda g: HadamardProduct(
        _ones(ans) - HadamardProduct(ans, ans), g),
    Sigmoid:         lambda ans, args, i: lambda g: HadamardProduct(
        HadamardProduct(ans, _ones(ans) - ans), g),
    ReLU:            lambda ans, args, i: lambda g: HadamardProduct(Step(args[0]), g),
    Softmax:         lambda ans, args, i: lambda g: HadamardProduct(ans, g) - ans * (ans.T * g),
    LogSoftmax:      lambda ans, args, i: lambda g: g - Softmax(args[0]) * (_ones(g).T * g),
}
