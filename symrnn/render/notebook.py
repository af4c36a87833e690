"""Derivations and cells in a notebook (``_repr_latex_``), and ``_latex`` of the nodes.

A derivation shows the equations of one step and every result once, as the sheets
print them (pre-activations named, their gradients named delta), in one ``aligned``
block that KaTeX (VS Code, GitHub) and MathJax 3 (Jupyter) render: no
``\\newcommand``, ``\\boldsymbol`` for bold (neither has ``\\bm``), and lines of at most
``NOTEBOOK_WIDTH`` (long ones continue on the next line). The notation is the
default profile, or the one set with ``set_notation``.
"""
from .latex_printer import printer_for
from .narrative import NOTEBOOK_WIDTH, derivation_context

__all__ = ["cell_aligned", "cell_latex", "derivation_aligned", "derivation_latex",
           "expression_latex", "get_notation", "set_notation"]

BOLD = r"\boldsymbol"
_SETTINGS = {"notation": None}


def set_notation(notation=None):
    """The notation profile of every display from now on (None: the default); returns
    the previous one. A name, a .toml file, a dict of its keys or a ``Notation``."""
    from .notation import load_notation
    previous = _SETTINGS["notation"]
    _SETTINGS["notation"] = None if notation is None else load_notation(notation)
    return previous


def get_notation():
    return _SETTINGS["notation"]


def _settings(cell, notation):
    from .notation import load_notation
    profile = load_notation(notation if notation is not None else _SETTINGS["notation"])
    return {**profile.printer_settings(cell), "bold": BOLD}


def _rows(equations):
    out = []
    for e in equations:
        lines = []
        for k, (op, line) in enumerate(e.rows):
            if k == 0:
                lines.append(f"{e.lhs} &= {line}")
            elif op == "=":
                lines.append(f"&= {line}")
            else:
                lines.append(rf"&\quad {line}")
        if e.condition:
            lines[-1] += rf" \quad \text{{for }} {e.condition}"
        out.extend(lines)
    return out


def _fit(equations, ts):
    from .narrative import fit
    return fit(equations, "align", ts, width=NOTEBOOK_WIDTH)


def derivation_latex(derivation, notation=None, display=True):
    """``$$...$$`` with the forward equations and the gradients of ``derivation`` (with
    ``display=False`` the ``aligned`` block alone)."""
    return _display(derivation_aligned(derivation, notation), display)


def derivation_aligned(derivation, notation=None):
    """The ``aligned`` block of ``derivation_latex`` (``sympy.latex`` of a derivation)."""
    from .narrative import Typesetter
    from .sheet import readable
    d, ts, info = readable(derivation.cell, notation if notation is not None
                           else _SETTINGS["notation"])
    ts = Typesetter(ts.cell, ts.adjoint_names, {**ts.settings, "bold": BOLD})
    context = derivation_context(d, ts=ts, introduced=info.introduced)
    rows = [r"&\text{forward, } " + context.time + r" = 1, \dots, " + context.T + r":"]
    rows += _rows(_fit(context.forward, ts))
    rows += [r"&\text{gradients:}"] + _rows(_fit(context.summary, ts))
    return _aligned(rows)


def _aligned(rows):
    return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"


def _display(block, display):
    return f"$${block}$$" if display else block


def cell_latex(cell, notation=None, display=True):
    """``$$...$$`` with the equations of one step of ``cell``, as it was written (with
    ``display=False`` the ``aligned`` block alone)."""
    return _display(cell_aligned(cell, notation), display)


def cell_aligned(cell, notation=None):
    """The ``aligned`` block of ``cell_latex`` (``sympy.latex`` of a cell)."""
    from ..graph.unroll import step_equations, shared, t
    from .narrative import Eq, Typesetter, check_typesettable
    check_typesettable(cell)
    ts = Typesetter(cell, settings=_settings(cell, notation))
    step = step_equations(cell, t)
    equations = [Eq(ts(lhs), ts(shared(cell, rhs)), parts=[shared(cell, rhs)], ts=ts)
                 for lhs, rhs in step]
    rows = [r"&\text{at every step } " + ts(t) + r":"] + _rows(_fit(equations, ts))
    return _aligned(rows)


def expression_latex(expr, cell=None, notation=None):
    """The LaTeX of one of the engine's expressions (``sympy.latex`` of a node)."""
    settings = _settings(cell, notation) if (cell is not None or notation is not None
                                             or _SETTINGS["notation"] is not None) \
        else {"bold": BOLD}
    return printer_for(cell, **settings).doprint(expr)
