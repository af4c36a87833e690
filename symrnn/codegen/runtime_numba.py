"""The kernels' helpers compiled by Numba, for ``lambdify(backend="numba")``.

The generated module holds runtime.py's source, then this module's source
(whose helpers replace the NumPy ones of the same names), then the kernels,
and finally calls ``_compile(globals())``. Like runtime.py, this module imports
nothing from symrnn, so that ``symrnn codegen --backend numba`` can copy it.

Every array a kernel handles is 2-D (one row per step and sequence), and
Numba accepts the output array of a ufunc only as a positional argument.
"""
import math

import numba
import numpy

_njit = numba.njit(nogil=True)


@_njit
def _flat(a):
    return a.reshape(-1, a.shape[-1])


@_njit
def _sigmoid(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = 0.5 + 0.5 * math.tanh(0.5 * x[i, j])
    return out


@_njit
def _relu(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = max(x[i, j], 0.0)
    return out


@_njit
def _step(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = 1.0 if x[i, j] > 0.0 else 0.0
    return out


@_njit
def _rowsum(a):
    out = numpy.empty((a.shape[0], 1))
    for i in range(a.shape[0]):
        out[i, 0] = a[i].sum()
    return out


@_njit
def _vdot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j] * b[i, j]
    return total


@_njit
def _shifted_exp(x, s, e):
    """Row by row: s = x - max(x), e = exp(s); returns the row sums of e.
    ``s`` may be ``x`` itself."""
    z = numpy.empty((x.shape[0], 1))
    for i in range(x.shape[0]):
        m = x[i].max()
        total = 0.0
        for j in range(x.shape[1]):
            v = x[i, j] - m
            s[i, j] = v
            e[i, j] = math.exp(v)
            total += e[i, j]
        z[i, 0] = total
    return z


@_njit
def _softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    z = _shifted_exp(x, out, out)
    out /= z
    return out


@_njit
def _log_softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    z = _shifted_exp(x, out, numpy.empty_like(x))
    out -= numpy.log(z)
    return out


@_njit
def _log_softmax_and_softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    e = numpy.empty_like(x)
    z = _shifted_exp(x, out, e)
    e /= z
    out -= numpy.log(z)
    return out, e


def _compile(namespace):
    """Compile the kernels ``forward`` and ``gradients`` of ``namespace``; they
    are called with C-contiguous arrays, so that each is compiled once."""
    for name in ("forward", "gradients"):
        compiled = _njit(namespace[name])

        def call(*arrays, _compiled=compiled):
            return _compiled(*[numpy.ascontiguousarray(a) for a in arrays])

        call.__name__ = call.__qualname__ = name
        call.compiled = compiled
        namespace[name] = call
