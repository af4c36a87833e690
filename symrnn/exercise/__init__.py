"""Variants of exercise sheet 08 for a course: each student's own network.

    import symrnn.exercise as ex
    family = ex.make_family(activation=["tanh", "relu"], gate=["none", "update"])
    ex.write_exercises("variants", count=30, seed=2024, family=family)

writes, for each variant, the exercise sheet and the solution sheet (.tex and .pdf), each
on a cell drawn from the family (``family.py``: activation, bias, output head, loss, a
gate, notation profile); the answer key (``answer-key.json``); and the numerical variant
(small concrete numbers, the asked gradient entries computed by the generated code and
cross-checked by finite differences of a loss written by hand) as a Moodle quiz
(``moodle.xml``). Same seed and family, same bytes. ``draw(count, seed, family)`` gives
the variants without writing (``Variant.cell``, ``.notation`` and ``.answers()`` are
what ``symrnn.grading.grade`` needs to grade a student's answer).

Modules: family, reference, numbers, sheets, moodle, write.
"""
from .family import Choice, Family, choice_of, load_family, make_family
from .write import Variant, draw, write_exercises

__all__ = ["Choice", "Family", "Variant", "choice_of", "draw", "load_family", "make_family",
           "write_exercises"]
