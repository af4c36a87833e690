"""A derivation as LaTeX for a notebook (``Derivation._repr_latex_``): the equations of
one step and every result once, as the sheets print them, in one ``aligned`` block
that MathJax and KaTeX render."""
from .narrative import check_typesettable, derivation_context

__all__ = ["derivation_latex"]

# MathJax has no \bm; \boldsymbol is its equivalent
_PREAMBLE = r"\newcommand{\bm}[1]{\boldsymbol{#1}}"


def _rows(equations):
    out = []
    for e in equations:
        rhs = " = ".join(" ".join(block) for block in e.blocks)  # blocks: successive "= ..."
        row = f"{e.lhs} &= {rhs}"
        if e.condition:
            row += rf" && \text{{for }} {e.condition}"
        out.append(row)
    return out


def derivation_latex(derivation):
    """``$$...$$`` with the forward equations and the gradients of ``derivation``."""
    check_typesettable(derivation.cell)
    d = derivation_context(derivation)
    rows = [r"&\text{forward, } " + d.time + r" = 1, \dots, " + d.T + r":"]
    rows += _rows(d.forward)
    rows += [r"&\text{gradients:}"] + _rows(d.summary)
    return f"$${_PREAMBLE}\\begin{{aligned}}" + r" \\ ".join(rows) + r"\end{aligned}$$"
