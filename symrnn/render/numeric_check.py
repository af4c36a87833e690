"""Check generated gradients against finite differences and a hand-written BPTT.

``check_gradients(cell_or_derivation)`` evaluates the gradients that the
engine generated (``derivation.lambdify()``) at one random point and compares
each with

* central finite differences of the loss (any cell), and
* the hand-written NumPy BPTT of ``symrnn.check`` (Elman variants, LSTM, GRU),
  which imports nothing from the engine; for other cells that column is ``None``.
"""
from dataclasses import dataclass

import numpy as np

from ..check import finite_differences, reference_for

__all__ = ["GradientCheck", "check_gradients", "relative_error"]


# ---- the metric of the table -------------------------------------------------
def relative_error(a, b):
    """||a - b|| / max(||a||, ||b||) in the Frobenius norm (0 when both are 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


# ---- the check ---------------------------------------------------------------
@dataclass
class GradientCheck:
    """One row of the table: a gradient and its relative errors."""
    name: str
    rel_err_fd: float
    rel_err_independent: object   # float, or None when there is no hand-written BPTT

    def __iter__(self):  # unpacks as (name, rel_err_fd, rel_err_independent)
        return iter((self.name, self.rel_err_fd, self.rel_err_independent))


def _random_point(cell, T, sizes, seed):
    rng = np.random.default_rng(seed)
    dims = dict(zip(cell.sizes, sizes))
    missing = [str(s) for s in cell.sizes if s not in dims]
    if missing:
        raise ValueError(f"sizes: need {len(cell.sizes)} values for "
                         f"{', '.join(map(str, cell.sizes))}, got {len(sizes)}")

    def shape(sym):
        return tuple(int(d.subs(dims)) for d in (sym.shape[:1] if sym.shape[1] == 1
                                                 else sym.shape))

    params = {p.name: rng.normal(scale=0.5, size=shape(p)) for p in cell.params}
    x = rng.normal(size=(T,) + shape(cell.inputs[0]))
    (m,) = shape(cell.targets[0])
    if cell.targets_are_distributions:
        y = np.eye(m)[rng.integers(0, m, size=T)]
    else:
        y = rng.normal(size=(T, m))
    initial = {f"{s.name}0": rng.normal(scale=0.5, size=shape(s)) for s in cell.states}
    return params, x, y, initial


def check_gradients(cell_or_derivation, T=5, sizes=(3, 4, 2), seed=0, eps=1e-6):
    """Rows ``(name, rel_err_fd, rel_err_independent)`` for every parameter and
    initial state, in the order of the generated gradients."""
    from ..derivation import derive
    d = cell_or_derivation if hasattr(cell_or_derivation, "gradients") \
        else derive(cell_or_derivation)
    cell = d.cell
    f = d.lambdify()
    params, x, y, initial = _random_point(cell, T, sizes, seed)
    _, grads = f(params, x, y, **initial)

    loss_only = getattr(f, "loss", None) or (lambda *a, **k: f(*a, **k)[0])
    names = list(params)

    def loss(arrays):
        return loss_only({k: arrays[k] for k in names}, x, y,
                         **{k: arrays[k] for k in initial})

    numeric = finite_differences(loss, {k: v.copy() for k, v in {**params, **initial}.items()},
                                 eps)
    reference = reference_for(cell)
    independent = reference(params, x, y, initial)[1] if reference is not None else None
    rows = []
    for name in list(params) + list(initial):
        g = np.asarray(grads[name], dtype=float).reshape(numeric[name].shape)
        rows.append(GradientCheck(
            name, relative_error(g, numeric[name]),
            relative_error(g, independent[name]) if independent is not None else None))
    return rows
