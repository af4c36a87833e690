"""The checking stack shared by ``symrnn check``, the sheet's table, ``symrnn.testing``
and the tests: one metric, one random-problem generator, one hand-written BPTT per
textbook cell and finite differences, each written independently of the engine."""
from .compare import evaluate
from .finite_differences import finite_differences
from .metric import defect, relative_error
from .problems import Layout, Problem, make_problem, standard_layouts
from .references import over_batch, reference_for

__all__ = ["Layout", "Problem", "defect", "evaluate", "finite_differences", "make_problem", "over_batch",
           "reference_for", "relative_error", "standard_layouts"]
