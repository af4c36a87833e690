"""The sheet's table: generated gradients against finite differences and a
hand-written BPTT, computed with the checking stack of ``symrnn.checking``.

``check_gradients(cell_or_derivation)`` evaluates the gradients that the engine
generated (``derivation.lambdify()``) at one random point (one sequence, the
initial states given) and compares each with

* central finite differences of the loss (any cell), and
* the hand-written NumPy BPTT of ``symrnn.checking.references`` (Elman variants,
  LSTM, GRU), which imports nothing from the engine; for other cells that column
  is ``None``.

The relative error is ``symrnn.checking.relative_error``:
max|a - b| / max(1, max|b|), b the value compared with.
"""
from dataclasses import dataclass

import numpy

from ..checking import Layout, evaluate, make_problem, reference_for, relative_error

__all__ = ["GradientCheck", "check_gradients", "relative_error"]


@dataclass
class GradientCheck:
    """One row of the table: a gradient and its relative errors."""
    name: str
    rel_err_fd: float
    rel_err_independent: object   # float, or None when there is no hand-written BPTT

    def __iter__(self):  # unpacks as (name, rel_err_fd, rel_err_independent)
        return iter((self.name, self.rel_err_fd, self.rel_err_independent))


def check_gradients(cell_or_derivation, T=5, sizes=(3, 4, 2), seed=0, eps=1e-6,
                    reference_cell=None):
    """Rows ``(name, rel_err_fd, rel_err_independent)`` for every parameter and
    initial state, in the order of the generated gradients. ``sizes`` gives the
    cell's sizes in the order of ``cell.sizes`` (D, N, M for the presets).
    ``reference_cell`` chooses the hand-written BPTT (default: the derivation's cell;
    the documents derive a cell with its pre-activations named, the same function of
    the same parameters as the cell they describe). A row whose gradient or loss is
    not finite at the random point has relative errors ``inf``."""
    from ..derivation import derive
    d = cell_or_derivation if hasattr(cell_or_derivation, "gradients") \
        else derive(cell_or_derivation)
    cell = d.cell
    if len(sizes) < len(cell.sizes):
        raise ValueError(f"sizes: need {len(cell.sizes)} values for "
                         f"{', '.join(map(str, cell.sizes))}, got {len(sizes)}")
    problem = make_problem(cell, seed, T=T, sizes=dict(zip(map(str, cell.sizes), sizes)),
                           layout=Layout(batch=False, labels=False, starts="shared"))
    reference = reference_for(reference_cell if reference_cell is not None else cell)
    with numpy.errstate(all="ignore"):  # a cell may be undefined at the point: said below
        errors = evaluate(d.lambdify(), problem, reference, eps=eps, seed=seed)
    rows = []
    for name in list(problem.params) + list(problem.state_sizes):
        independent, fd, why = errors[name]
        if why is not None or errors["loss"][2] is not None:
            fd = float("inf")
            independent = None if independent is None and reference is None else float("inf")
        fd = float("inf") if fd is not None and not numpy.isfinite(fd) else fd
        if independent is not None and not numpy.isfinite(independent):
            independent = float("inf")
        rows.append(GradientCheck(name, fd, independent))
    return rows
