"""The numbers of the sheets' check: the generated gradients against finite
differences and a hand-written BPTT, at one random point.

``gradient_table(derivation)`` evaluates the gradients that the engine generated
(``derivation.lambdify()``) at one random point (one sequence, the initial states
given) and compares each with

* central finite differences of the loss (any cell), and
* the hand-written NumPy BPTT of ``references.py`` (Elman variants, LSTM, GRU),
  which imports nothing from the engine; for other cells that column is ``None``.

The relative error is ``metric.relative_error``: max|a - b| / max(1, max|b|), b the
value compared with. The sheets print the table (``symrnn.documents`` computes it,
``symrnn.render`` typesets it).
"""
from dataclasses import dataclass, field

import numpy

from .compare import evaluate
from .metric import relative_error
from .problems import Layout, make_problem
from .references import reference_for

__all__ = ["CHECK", "GradientCheck", "GradientTable", "check_gradients", "check_sizes",
           "gradient_table", "relative_error"]

CHECK = dict(T=5, sizes=(3, 4, 2), seed=0)
# the sizes of the check beyond the first three (a cell may have any number of sizes)
MORE_SIZES = (5, 3, 4, 2)


@dataclass
class GradientCheck:
    """One row of the table: a gradient and its relative errors (inf where the
    gradient or the loss is not finite at the point)."""
    name: str
    rel_err_fd: float
    rel_err_independent: object   # float, or None when there is no hand-written BPTT

    def __iter__(self):  # unpacks as (name, rel_err_fd, rel_err_independent)
        return iter((self.name, self.rel_err_fd, self.rel_err_independent))


@dataclass
class GradientTable:
    """The check of one derivation: its rows, and the point's T and sizes."""
    label: str
    T: int
    sizes: dict                  # the cell's size symbol -> its value
    rows: list = field(default_factory=list)


def check_sizes(cell):
    """The sizes of the check: 3, 4, 2 for the first three sizes of ``cell`` (D, N, M
    for the presets), then 5, 3, 4, 2, ... for any further one."""
    values = list(CHECK["sizes"]) + [MORE_SIZES[k % len(MORE_SIZES)]
                                     for k in range(max(0, len(cell.sizes) - 3))]
    return tuple(values[:len(cell.sizes)])


def gradient_table(derivation, label="", reference_cell=None, T=CHECK["T"], seed=CHECK["seed"]):
    """The :class:`GradientTable` of ``derivation`` at the sheets' point (sizes from
    ``check_sizes``); ``reference_cell`` as in ``check_gradients``."""
    sizes = check_sizes(derivation.cell)
    rows = check_gradients(derivation, T=T, sizes=sizes, seed=seed, reference_cell=reference_cell)
    return GradientTable(label, T, dict(zip(derivation.cell.sizes, sizes)), rows)


def check_gradients(cell_or_derivation, T=5, sizes=(3, 4, 2), seed=0, eps=1e-6,
                    reference_cell=None):
    """Rows ``(name, rel_err_fd, rel_err_independent)`` for every parameter and
    initial state, in the order of the generated gradients. ``sizes`` gives the
    cell's sizes in the order of ``cell.sizes`` (D, N, M for the presets).
    ``reference_cell`` chooses the hand-written BPTT (default: the derivation's cell;
    the documents derive a cell with its pre-activations named, the same function of
    the same parameters as the cell they describe). A row whose gradient or loss is
    not finite at the random point has relative errors ``inf``."""
    if hasattr(cell_or_derivation, "gradients"):
        d = cell_or_derivation
    else:
        from ..derivation import derive
        d = derive(cell_or_derivation)
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
