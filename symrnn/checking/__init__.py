"""Everything that checks the derivation with numbers, each route written
independently of the engine.

    metric.py              the one relative error; what makes a value unusable
    problems.py            random problems in every layout of the generated function
    references.py          hand-written NumPy BPTT of the textbook cells
    finite_differences.py  central differences, kinks of the loss found
    compare.py             one function against those routes on one problem
    report.py              ``symrnn check``: every layout, the table it prints
                           (public face: ``symrnn.check``)
    against.py             a user's BPTT against the derived one (public face:
                           ``symrnn.testing``)
    gradient_table.py      the sheets' table: the gradients at one point
    gradient_norms.py      the sheet's plot: ||dL/dh^(t)|| against T - t
    isolated.py            a user's code run in a child process, with a timeout
"""
from .compare import evaluate
from .finite_differences import finite_differences
from .metric import defect, relative_error
from .problems import Layout, Problem, make_problem, standard_layouts
from .references import over_batch, reference_for

__all__ = ["Layout", "Problem", "defect", "evaluate", "finite_differences", "make_problem",
           "over_batch", "reference_for", "relative_error", "standard_layouts"]
