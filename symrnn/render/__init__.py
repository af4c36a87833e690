"""Typesetting: the LaTeX printer, the derivation macros, the TikZ graph, the documents.

    BPTTLatexPrinter, latex, printer_for   SymPy -> LaTeX in the lecture's notation
    Notation, load_notation,               notation profiles: symbols, time index, bold or
    builtin_notations                      plain vectors, columns or rows, title, course
    as_diag, collect_diagonals,            the rewrites the documents show
    unit_sum_targets
    name_preactivations                    the cell with its pre-activations named
    derivation_context, render_derivation  any Derivation as text
    unrolled_figure                        the unrolled graph as TikZ data
    gradient_norms                         ||dL/dh^(t)|| against T - t (the sheet's plot)
    check_gradients                        generated gradients vs. NumPy
    render_sheet, write_sheet, SheetError  the solution sheet (sheet08)
    render_cell_document                   the derivation sheet of any cell
    derivation_latex, cell_latex,          a Derivation or a Cell in a notebook
    set_notation                           (_repr_latex_), in the notation set here
    tex_width                              the printed width of a formula, in pt
"""
from .gradient_norms import gradient_norms
from .latex_printer import BPTTLatexPrinter, Partial, latex, printer_for
from .narrative import Typesetter, derivation_context
from .notation import Notation, NotationError, builtin_notations, load_notation
from .notebook import cell_latex, derivation_latex, set_notation
from .numeric_check import check_gradients, relative_error
from .preactivations import name_preactivations
from .rewrite import (as_diag, collect_diagonals, flatten_products, unit_sum_facts,
                      unit_sum_targets)
from .sheet import (SheetError, render_cell_document, render_derivation, render_sheet,
                    sheet_context, write_sheet)
from .tikz import unrolled_figure
from .width import tex_width

__all__ = ["BPTTLatexPrinter", "Notation", "NotationError", "Partial", "SheetError",
           "Typesetter", "as_diag", "builtin_notations", "cell_latex", "check_gradients",
           "collect_diagonals", "derivation_context", "derivation_latex", "flatten_products",
           "gradient_norms", "latex", "load_notation", "name_preactivations", "printer_for",
           "relative_error", "render_cell_document", "render_derivation", "render_sheet",
           "set_notation", "sheet_context", "tex_width", "unit_sum_facts", "unit_sum_targets",
           "unrolled_figure", "write_sheet"]
