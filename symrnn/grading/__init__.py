r"""Checking what a student wrote: is it the gradient, and if not, which typical mistake.

    r = symrnn.grading.grade(r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}", "elman", "W")
    r.correct, r.score, r.feedback, r.mistake

An answer is LaTeX as students type it (``latex.py``: \sum_{t=1}^{T},
h^{(t-1)} or h_{t-1}, \odot, ^\top or ^T, \operatorname{diag}, \mathbf{..} or
\bm{..} or plain, \frac{\partial L}{\partial h^{(t)}} as a known quantity,
\tanh'(z), \sigma'(z), ...) or text in the cell syntax (``text.py``: W.T @
dL_dh(t+1), sum(t=1..T, ...), and everything ``symrnn derive`` prints). Both
are tokenized and parsed by recursive descent into the node types of the
derivation (``build.py``); nothing is evaluated as code. What an answer's names
mean is a ``Notation``: renamed symbols, named adjoints (delta = dL/dz), row or
column vectors.

The answer is compared with ``symrnn.derive(cell)``'s formula exactly where a
normal form shows equality (``canonical.py``), and at random networks of several
T and sizes (``numeric.py``), the adjoints it names taking their values from the
derivation. A wrong answer is compared with the typical mistakes of the one table
``symrnn.mistakes`` (each applied to the derived formula; the hints of
``symrnn.testing.check_bptt`` use the same table); partial credit counts the parts
that are right (``credit.py``).

Modules: syntax (the tree, limits, AnswerSyntaxError), times, latex, text,
notation, build, nodes, forms, numeric, canonical, keys, credit, answer, grade.
"""
from ..mistakes import CATALOGUE, RESULTS
from .build import ShapeMismatch
from .grade import GradeResult, Grader, as_cell, grade
from .notation import Notation
from .syntax import AnswerSyntaxError

# the mistakes of a whole result that answers are checked for
MODIFIERS = {key: m for key, m in RESULTS.items() if m.in_answers}

__all__ = ["AnswerSyntaxError", "CATALOGUE", "GradeResult", "Grader", "MODIFIERS", "Notation",
           "ShapeMismatch", "as_cell", "grade"]
