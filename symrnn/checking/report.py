"""``symrnn check``: the generated gradients on random problems in every layout.

Each run draws several problems (random sizes, one sequence and batches, integer
labels and one-hot rows, initial states omitted, shared or one per sequence, float32
arguments; see ``checking.problems.standard_layouts``) from one seed, which the table
prints, and compares the generated gradients on each with

* central finite differences of the generated loss (any cell), and
* the hand-written NumPy BPTT of ``checking.references`` (Elman variants, LSTM, GRU,
  or a cell with the same equations), which shares no code with the engine.

A gradient must also be a real, finite array of the right shape: a complex or
misshapen gradient fails, it is never cast. ``check(cell)`` returns a
:class:`CheckReport`; ``report.table()`` is what the command prints and
``report.passed`` decides its exit code. (``symrnn.check`` is the public face.)
"""
from dataclasses import dataclass, field

import numpy as np

from .compare import evaluate
from .problems import make_problem, standard_layouts, valid_seed
from .references import reference_for

REFERENCE_TOLERANCE = 1e-9
FINITE_DIFFERENCE_TOLERANCE = 1e-5
FD_ENTRIES = 48   # entries per array and problem differentiated numerically (a random
                  # subset of a larger array), so that large sizes stay quick

__all__ = ["CheckReport", "Row", "check", "random_seed"]


def random_seed():
    """A fresh seed for a run (printed, so that ``--seed`` repeats the run)."""
    return int(np.random.SeedSequence().entropy % 1_000_000)


@dataclass
class Row:
    name: str
    reference: float = None           # worst relative error against the hand-written BPTT
    finite_differences: float = None  # worst relative error against finite differences
    problem: int = None               # the problem (1, 2, ...) with the worst error
    defect: str = None                # why a gradient could not be compared
    _badness: float = field(default=None, repr=False, compare=False)  # of ``problem``

    @property
    def passed(self):
        return (self.defect is None
                and (self.reference is None or self.reference <= REFERENCE_TOLERANCE)
                and (self.finite_differences is None
                     or self.finite_differences <= FINITE_DIFFERENCE_TOLERANCE))

    def add(self, number, reference, fd, defect_text):
        """Keep the worst of the problems seen so far."""
        if defect_text is not None:
            if self.defect is None:
                self.defect, self.problem = defect_text, number
            return
        if reference is None and fd is None:  # nothing compared (e.g. the loss not finite)
            return
        badness = max((reference or 0.0) / REFERENCE_TOLERANCE,
                      (fd or 0.0) / FINITE_DIFFERENCE_TOLERANCE)
        if self.defect is None and (self._badness is None or badness > self._badness):
            self._badness, self.problem = badness, number
        if reference is not None:
            self.reference = max(self.reference or 0.0, reference)
        if fd is not None:
            self.finite_differences = max(self.finite_differences or 0.0, fd)


@dataclass
class CheckReport:
    model: str
    seed: int
    problems: list = field(default_factory=list)    # descriptions, in order
    rows: list = field(default_factory=list)
    errors: list = field(default_factory=list)      # (problem, message) of calls that raised
    has_reference: bool = True
    kinks: dict = field(default_factory=dict)       # gradient -> problems with an entry at
                                                    # a kink of the loss (see evaluate)

    @property
    def passed(self):
        return not self.errors and all(row.passed for row in self.rows)

    @property
    def failed(self):
        return [row.name for row in self.rows if not row.passed]

    def table(self):
        def number(v):
            return "-" if v is None else f"{v:.1e}"

        head = ("gradient", "vs reference", "vs finite differences", "worst in", "")
        lines = [(r.name, number(r.reference), number(r.finite_differences),
                  "-" if r.problem is None else f"problem {r.problem}",
                  _status(r))
                 for r in self.rows]
        widths = [max(len(line[i]) for line in [head] + lines) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [f"{self.model}: seed = {self.seed} (--seed {self.seed} repeats this run)", ""]
        out += [f"problem {k}: {text}" for k, text in enumerate(self.problems, 1)]
        out += ["", fmt.format(*head).rstrip()]
        out += [fmt.format(*line).rstrip() for line in lines]
        out.append("")
        for number_, message in self.errors:
            out.append(f"problem {number_}: the generated function raised {message}")
        if not self.has_reference:
            out.append("no hand-written reference for this cell: finite differences only")
        if self.kinks:
            where = "; ".join(f"{name} in problem{'s' if len(p) > 1 else ''} "
                              f"{', '.join(map(str, p))}" for name, p in self.kinks.items())
            out.append("not compared with finite differences, at a kink of the loss (e.g. "
                       f"relu at 0, where the one-sided differences disagree): {where}")
        out.append("relative error = max|a - b| / max(1, max|b|); tolerances: reference "
                   f"{REFERENCE_TOLERANCE:.0e}, finite differences {FINITE_DIFFERENCE_TOLERANCE:.0e}")
        failed = self.failed + (["raised"] if self.errors else [])
        out.append("all checks passed" if self.passed else f"FAILED: {', '.join(failed)}")
        return "\n".join(out)


def _status(row):
    if not row.passed:
        return f"FAILED: {row.defect}" if row.defect else "FAILED"
    return "ok" if row.reference is not None or row.finite_differences is not None \
        else "not compared"


def _cell_and_function(cell, function):
    if hasattr(cell, "lambdify") and hasattr(cell, "cell"):  # a Derivation
        return cell.cell, function or cell.lambdify()
    if function is None:
        from ..derivation import derive
        function = derive(cell).lambdify()
    return cell, function


def _sizes(cell, sizes, hidden, inputs, outputs):
    sizes = dict(sizes or {})
    names = {str(s) for s in cell.sizes}
    for option, name, value in (("hidden", "D", hidden), ("inputs", "N", inputs),
                                ("outputs", "M", outputs)):
        if value is not None:
            if name not in names:
                raise ValueError(f"{option}: the cell has no size {name} "
                                 f"(its sizes are {', '.join(sorted(names)) or 'none'})")
            sizes[name] = value
    return sizes


def check(cell, T=None, hidden=None, inputs=None, outputs=None, batch=None, seed=0,
          function=None, sizes=None, layouts=None, fd_entries=FD_ENTRIES):
    """Check the generated gradients of ``cell`` (a Cell or a Derivation) on one
    random problem per layout (default: ``standard_layouts(cell)``).

    T, ``sizes`` (``{"D": 4, ...}``; ``hidden``/``inputs``/``outputs`` set D, N, M)
    and ``batch`` pin those values; the others are drawn per problem from ``seed``.
    ``function`` is the lambdified ``f`` to check (default ``derive(cell).lambdify()``).
    """
    valid_seed(seed)
    cell, function = _cell_and_function(cell, function)
    sizes = _sizes(cell, sizes, hidden, inputs, outputs)
    layouts = standard_layouts(cell) if layouts is None else layouts
    problems = [make_problem(cell, (seed, k), T=T, sizes=sizes, batch=batch, layout=layout)
                for k, layout in enumerate(layouts)]
    reference = reference_for(cell)
    report = CheckReport(cell.name, seed, [p.describe(cell) for p in problems],
                         has_reference=reference is not None)
    rows = {}
    for number, problem in enumerate(problems, 1):
        kinks = {}
        try:
            errors = evaluate(function, problem, reference, fd_entries, seed=(seed, number),
                              kinks=kinks)
        except Exception as e:  # a call that the conventions allow must not raise
            report.errors.append((number, f"{type(e).__name__}: {' '.join(str(e).split())}"))
            continue
        for name, (ref, fd, text) in errors.items():
            rows.setdefault(name, Row(name)).add(number, ref, fd, text)
        for name in kinks:
            report.kinks.setdefault(name, []).append(number)
    loss = rows.pop("loss", None)
    shown = loss is not None and (reference is not None or loss.defect is not None)
    report.rows = list(rows.values()) + ([loss] if shown else [])
    return report
