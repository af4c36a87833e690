"""The kernels' helpers compiled by Numba, for ``lambdify(backend="numba")``.

A module generated for the Numba backend holds runtime.py's source, then this
module's source, the scalar kernels it calls, and its kernels ``forward`` and
``gradients``, which read each step's rows from 3-D arrays (Numba compiles no
list of arrays) and call the ``_nb_`` helpers below. A small kernel is compiled
whole; a larger one stays Python and calls its step loops, each compiled as a
function of its own (``LOOPS`` names what is compiled; see
``passes/loopnests.py`` and ``passes/outline.py``). ``_compile(globals())`` at
the end compiles them and puts a wrapper in place of each kernel. Like
runtime.py, this module imports nothing from symrnn, so that ``symrnn codegen``
can copy it.

Every array a kernel handles is 2-D (one row per step and sequence), and
Numba accepts the output array of a ufunc only as a positional argument.
"""
import math

import numba
import numpy

# error_model="numpy": a float division by 0 gives inf or NaN, as in NumPy,
# instead of a check that raises, which keeps LLVM from vectorising a loop
_NJIT_OPTIONS = dict(nogil=True, error_model="numpy")
_njit = numba.njit(**_NJIT_OPTIONS)
_nb_dot = numpy.dot

@_njit
def _nb_flat(a):
    return a.reshape(-1, a.shape[-1])


def _elementwise(scalar):
    """``f(x, out=None)``: ``scalar`` (compiled) applied to every entry of a 2-D array."""

    @_njit
    def apply(x, out=None):
        if out is None:
            out = numpy.empty_like(x)
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = scalar(x[i, j])
        return out

    return apply


# The helpers below are loops, not array expressions: Numba compiles each array
# expression as a function of its own, which costs more than the loop.

@_njit
def _nb_rowsum(a):
    out = numpy.empty((a.shape[0], 1))
    for i in range(a.shape[0]):
        total = 0.0
        for j in range(a.shape[1]):
            total += a[i, j]
        out[i, 0] = total
    return out


@_njit
def _nb_vdot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j] * b[i, j]
    return total


@_njit
def _nb_shifted_exp(x, s, e):
    """Row by row: s = x - max(x), e = exp(s); returns the row sums of e.
    ``s`` may be ``x`` itself."""
    z = numpy.empty(x.shape[0])
    for i in range(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            m = max(m, x[i, j])
        for j in range(x.shape[1]):  # no sum here: this loop is vectorised
            v = x[i, j] - m
            s[i, j] = v
            e[i, j] = _nb_exp_scalar(v)  # ops.py's, compiled in the generated module
        total = 0.0
        for j in range(x.shape[1]):
            total += e[i, j]
        z[i] = total
    return z


@_njit
def _nb_softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    z = _nb_shifted_exp(x, out, out)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] /= z[i]
    return out


@_njit
def _nb_log_softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    z = _nb_shifted_exp(x, out, numpy.empty_like(x))
    for i in range(x.shape[0]):
        log_z = math.log(z[i])
        for j in range(x.shape[1]):
            out[i, j] -= log_z
    return out


@_njit
def _nb_log_softmax_and_softmax(x, out=None):
    if out is None:
        out = numpy.empty_like(x)
    e = numpy.empty_like(x)
    z = _nb_shifted_exp(x, out, e)
    for i in range(x.shape[0]):
        log_z = math.log(z[i])
        for j in range(x.shape[1]):
            e[i, j] /= z[i]
            out[i, j] -= log_z
    return out, e


def _jit(function, cache):
    """``function`` compiled by Numba on its first call; with ``cache``, kept on
    disk beside the file that defines it (Numba's cache), unless Numba finds no
    writable place for it."""
    if cache:
        try:
            compiled = numba.njit(cache=True, **_NJIT_OPTIONS)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
        else:
            _damage_is_a_miss(getattr(compiled, "_cache", None))
            return compiled
    return _njit(function)


def _damage_is_a_miss(cache):
    """A damaged entry of Numba's on-disk cache (a truncated or garbled ``.nbi``
    index or ``.nbc`` data file) counts as a miss instead of failing every call
    until the files are deleted: its index is emptied, and the function compiles
    and saves itself again. (Numba's cache object is an attribute of its
    dispatcher, ``_cache``, with ``load_overload`` and ``flush``.)"""
    load = getattr(cache, "load_overload", None)
    if load is None or not hasattr(cache, "flush"):
        return

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:
            try:
                cache.flush()
            except Exception:  # an index that cannot be written: compiled, not saved
                pass
            return None

    cache.load_overload = load_overload


_F64 = numpy.dtype(numpy.float64)


def _plain(a):
    """``a`` as Numba's one array type per rank: float64, C-contiguous, aligned
    and writeable (a copy only when ``a`` is not), so that a read-only or a
    Fortran-ordered argument does not compile the kernel a second time."""
    flags = a.flags
    if flags.c_contiguous and flags.writeable and flags.aligned and a.dtype == _F64:
        return a
    return numpy.array(a, dtype=_F64, order="C")


def _compile(namespace):
    """In ``namespace``, the functions named in ``LOOPS`` are compiled: the two
    kernels themselves, or the step loops they call (see outline.py); and
    ``forward`` and ``gradients`` become wrappers that give the kernels plain
    arrays (``_plain``), so that each is compiled once, on its first call, and
    an initial state for every sequence. In a module imported from a file (the
    on-disk cache of lambdify, or a module written by ``symrnn codegen``) Numba
    caches the compiled functions beside that file."""
    spec = namespace["SPEC"]
    cache = "__file__" in namespace
    loops = [_jit(namespace[name], cache) for name in namespace["LOOPS"]]
    namespace.update(zip(namespace["LOOPS"], loops))
    x_at, states = len(spec["params"]), len(spec["states"])
    for name in ("forward", "gradients"):
        kernel = namespace[name]

        def call(*arrays, _kernel=kernel):
            batch = arrays[x_at].shape[1]
            starts = arrays[len(arrays) - states:]  # the initial states, (B, n) each
            # compiled loops read an initial state (B, n): one row for every
            # sequence is repeated here (NumPy broadcasts it instead)
            starts = [numpy.broadcast_to(a, (batch, a.shape[1])) if a.shape[0] != batch
                      else a for a in starts]
            arrays = arrays[:len(arrays) - states] + tuple(starts)
            return _kernel(*[_plain(a) for a in arrays])

        call.__name__ = call.__qualname__ = name
        call.compiled, call.loops = kernel, loops
        namespace[name] = call
