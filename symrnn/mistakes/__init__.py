"""Typical BPTT mistakes: one table (``catalogue.py``) of what each is called, what it
does to the derived formula and the sentence that teaches it, used by the answer
checker (``symrnn.grading``) and by the hints of ``symrnn.testing.check_bptt``
(``hints.py``). ``show`` prints an expression as the feedback and the hints do."""
from .catalogue import CATALOGUE, RESULTS, Change, Mistake, ResultMistake, variants
from .forms import Forms, forms_of
from .hints import likely_mistakes
from .show import show

__all__ = ["CATALOGUE", "RESULTS", "Change", "Forms", "Mistake", "ResultMistake", "forms_of",
           "likely_mistakes", "show", "variants"]
