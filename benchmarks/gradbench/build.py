"""The implementations of one problem, as Impl objects, and the check that
they agree with the baseline before anything is timed."""
import numpy as np

from . import frameworks, symrnn_impls
from .symrnn_impls import Impl

BASELINE = "NumPy stacked"
JAX_NAME = "JAX jit(grad(scan))"
TORCH_NAME = "PyTorch eager"
TOLERANCE = 1e-8


def max_abs_diff(a, b):
    (la, ga), (lb, gb) = a, b
    if set(ga) != set(gb):
        return float("inf")
    diffs = [abs(la - lb)]
    for k in gb:
        if np.shape(ga[k]) != np.shape(gb[k]):
            return float("inf")
        diffs.append(float(np.max(np.abs(np.asarray(ga[k]) - gb[k]))))
    return max(diffs)


def implementations(cell, problem, functions, torch=None, jax=None, forward=False):
    """Every implementation of ``cell`` on ``problem`` = (params, x, y, starts).
    ``functions``: {"symrnn": lambdify(), "symrnn numba": lambdify("numba")}
    (either may be missing). The baseline comes first."""
    params, x, y, starts = problem
    reference = cell.baseline(params, x, y, starts)
    check = lambda out: max_abs_diff(out, reference) < TOLERANCE  # noqa: E731
    impls = [Impl(BASELINE, lambda: cell.baseline(params, x, y, starts),
                  note="hand-written, only the recurrences step by step")]
    for name, f in functions.items():
        impls += symrnn_impls.public(name, f, params, x, y, starts, forward)
        impls += symrnn_impls.public_rows(name, f, params, x, y, starts,
                                          lambda out, c=check: c(_rows_of(out, starts)))
        impls += symrnn_impls.kernel(name + " kernel", f, params, x, y, starts, forward)
    if cell.per_step is not None:
        impls.append(Impl("NumPy per-step", lambda: cell.per_step(params, x, y, starts)))
    if torch is not None:
        call, to_numpy = frameworks.torch_impl(torch, cell, params, x, y, starts)
        impls.append(Impl(TORCH_NAME, call, to_numpy))
    if jax is not None:
        call, to_numpy = frameworks.jax_impl(jax, cell, params, x, y, starts)
        impls.append(Impl(JAX_NAME, call, to_numpy))
    return impls, reference


def _rows_of(out, starts):
    loss, grads = out
    return float(loss), {k: (v.T if k in starts and np.shape(v) != np.shape(starts[k]) else v)
                         for k, v in grads.items()}


def check_all(impls, reference):
    """Calls each implementation once (this compiles Numba and JAX) and returns
    {name: max abs difference to the baseline}; raises SystemExit on a mismatch.
    Each implementation's first-call time goes to ``impl.first_call``."""
    import time
    diffs = {}
    for impl in impls:
        t0 = time.perf_counter()
        result = impl.call()
        impl.first_call = time.perf_counter() - t0
        out = impl.to_numpy(result)
        diff = abs(out[0] - reference[0]) if out[1] is None else max_abs_diff(out, reference)
        if not diff < TOLERANCE:
            raise SystemExit(f"{impl.name} disagrees with {BASELINE}: max abs difference "
                             f"{diff:.3g} (tolerance {TOLERANCE:g})")
        diffs[impl.name] = diff
    return diffs
