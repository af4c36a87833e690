"""Typesetting: the LaTeX printer, the derivation macros, the TikZ graph, the documents'
text. Nothing here computes a number: a document's numbers come from
``symrnn.checking``, handed in by ``symrnn.documents``.

    BPTTLatexPrinter, latex, printer_for   SymPy -> LaTeX in the lecture's notation
    Notation, load_notation,               notation profiles: symbols, time index, bold or
    builtin_notations                      plain vectors, columns or rows, title, course
    as_diag, collect_diagonals,            the rewrites the documents show
    unit_sum_targets
    name_preactivations                    the cell with its pre-activations named
    derivation_context, render_derivation  any Derivation as text
    unrolled_figure                        the unrolled graph as TikZ data
    exercise, sheet_context,               the solution sheet (sheet08) and the derivation
    cell_view, cell_context                sheet of any cell, from their numbers
    compile_tex, SheetError                TeX
    derivation_latex, cell_latex,          a Derivation or a Cell in a notebook
    set_notation                           (_repr_latex_), in the notation set here
    tex_width                              the printed width of a formula, in pt
"""
from .latex_printer import BPTTLatexPrinter, Partial, latex, printer_for
from .narrative import Typesetter, derivation_context
from .notation import Notation, NotationError, builtin_notations, load_notation
from .notebook import cell_latex, derivation_latex, set_notation
from .preactivations import name_preactivations
from .rewrite import (as_diag, collect_diagonals, flatten_products, unit_sum_facts,
                      unit_sum_targets)
from .sheet import cell_context, cell_view, exercise, render_derivation, sheet_context
from .tex import SheetError, compile_tex
from .tikz import unrolled_figure
from .width import tex_width

__all__ = ["BPTTLatexPrinter", "Notation", "NotationError", "Partial", "SheetError",
           "Typesetter", "as_diag", "builtin_notations", "cell_context", "cell_latex",
           "cell_view", "collect_diagonals", "compile_tex", "derivation_context",
           "derivation_latex", "exercise", "flatten_products", "latex", "load_notation",
           "name_preactivations", "printer_for", "render_derivation", "set_notation",
           "sheet_context", "tex_width", "unit_sum_facts", "unit_sum_targets",
           "unrolled_figure"]
