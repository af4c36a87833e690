"""Typesetting: the LaTeX printer, the derivation macros, the TikZ graph, the documents.

    BPTTLatexPrinter, latex, printer_for   SymPy -> LaTeX in the lecture's notation
    as_diag, collect_diagonals,            the rewrites the documents show
    unit_sum_targets
    derivation_context, render_derivation  any Derivation as text
    unrolled_figure                        the unrolled graph as TikZ data
    gradient_norms                         ||dL/dh^(t)|| against T - t (the sheet's plot)
    check_gradients                        generated gradients vs. NumPy
    render_sheet, write_sheet, SheetError  the solution sheet (sheet08)
    render_cell_document                   the derivation sheet of any cell
    derivation_latex                       a Derivation in a notebook (_repr_latex_)
"""
from .gradient_norms import gradient_norms
from .latex_printer import BPTTLatexPrinter, Partial, latex, printer_for
from .narrative import Typesetter, derivation_context
from .notebook import derivation_latex
from .numeric_check import check_gradients, relative_error
from .rewrite import (as_diag, collect_diagonals, flatten_products, unit_sum_facts,
                      unit_sum_targets)
from .sheet import (SheetError, render_cell_document, render_derivation, render_sheet,
                    sheet_context, write_sheet)
from .tikz import unrolled_figure

__all__ = ["BPTTLatexPrinter", "Partial", "SheetError", "Typesetter", "as_diag",
           "check_gradients", "collect_diagonals", "derivation_context", "derivation_latex",
           "flatten_products", "gradient_norms", "latex", "printer_for", "relative_error",
           "render_cell_document", "render_derivation", "render_sheet", "sheet_context",
           "unit_sum_facts", "unit_sum_targets", "unrolled_figure", "write_sheet"]
