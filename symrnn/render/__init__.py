"""Typesetting: the LaTeX printer, the derivation macros, the TikZ graph, the sheet.

    BPTTLatexPrinter, latex, printer_for   SymPy -> LaTeX in the lecture's notation
    as_diag, unit_sum_targets              the rewrites the sheet shows
    derivation_context, render_derivation  any Derivation as text (for appendices)
    unrolled_figure                        the unrolled graph as TikZ data
    check_gradients                        generated gradients vs. NumPy
    render_sheet, write_sheet, SheetError  the solution sheet
"""
from .latex_printer import BPTTLatexPrinter, Partial, latex, printer_for
from .narrative import Typesetter, derivation_context
from .numeric_check import check_gradients, relative_error
from .rewrite import as_diag, flatten_products, unit_sum_facts, unit_sum_targets
from .sheet import SheetError, render_derivation, render_sheet, sheet_context, write_sheet
from .tikz import unrolled_figure

__all__ = ["BPTTLatexPrinter", "Partial", "SheetError", "Typesetter", "as_diag",
           "check_gradients", "derivation_context",
           "flatten_products", "latex", "printer_for", "relative_error", "render_derivation",
           "render_sheet", "sheet_context", "unit_sum_facts", "unit_sum_targets",
           "unrolled_figure", "write_sheet"]
