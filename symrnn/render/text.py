"""The derivation as plain text and as Unicode, and user text made safe for LaTeX.

    TextPrinter     h^(t-1), dL/dh^(t), W^T v, a .* b, sum_{t=1}^{T} ... in ASCII
                    (``str`` of the engine's nodes, ``symrnn derive``)
    UnicodePrinter  h⁽ᵗ⁻¹⁾, ∂L/∂h⁽ᵗ⁾, Wᵀ v, a ⊙ b, ∑ₜ₌₁ᵀ ... (``pprint``)
    derivation_text the forward equations, adjoint recurrences and gradients
    latex_text      a title, a file name, a cell's name as LaTeX text: the special
                    characters escaped, letters with accents as TeX accents, any
                    other character (CJK, emoji, undecodable bytes) left out
"""
import re
import unicodedata

from sympy import (Add, HadamardPower, HadamardProduct, Integer, MatAdd, MatMul, MatPow, Mul,
                   Number, OneMatrix, Pow, Rational, Transpose)
from sympy.printing.str import StrPrinter

from ..model.nodes import Adjoint, Elementwise, Prev, StepVar, SumOverTime
from .latex_printer import BPTTLatexPrinter, decimal
from .orientation import Row, as_rows
from .symbols import default_symbol, parse_symbol
from .tidy import tidy

__all__ = ["TextPrinter", "UnicodePrinter", "cell_pretty", "cell_text", "derivation_pretty",
           "derivation_text", "expression_pretty", "expression_text", "latex_text",
           "text_printer", "text_symbol"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
            "|": r"\textbar{}", '"': "''"}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~",
            "\u0304": "=", "\u0307": ".", "\u0327": "c", "\u030c": "v", "\u0306": "u",
            "\u030b": "H", "\u030a": "r", "\u0328": "k"}
_LETTERS = {"ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}",
            "œ": r"\oe{}", "Œ": r"\OE{}", "å": r"\aa{}", "Å": r"\AA{}", "ł": r"\l{}",
            "Ł": r"\L{}", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''"}


def latex_text(text):
    """``text`` as LaTeX text that pdflatex sets without a package for Unicode."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        elif ch in _LETTERS:
            out.append(_LETTERS[ch])
        elif ch in "\t\n\r":
            out.append(" ")
        else:
            base, *marks = unicodedata.normalize("NFD", ch)
            if " " <= base <= "~" and base.isalpha() and marks and all(m in _ACCENTS
                                                                        for m in marks):
                word = base
                for m in marks:
                    word = "\\%s{%s}" % (_ACCENTS[m], word)
                out.append("{%s}" % word)
            # anything else (CJK, emoji, a byte that was not UTF-8) is left out
    return "".join(out).strip()


# ---- names as text ----------------------------------------------------------------------
# an accent as a word after the letter (yhat, htilde), as a cell names it: never a mark
# that reads as an operator (' is the transpose)
_TEXT_ACCENT = {"hat": "hat", "widehat": "hat", "tilde": "tilde", "widetilde": "tilde",
                "bar": "bar", "overline": "bar", "check": "check", "vec": "", "dot": "dot",
                "ddot": "ddot", "breve": "breve", "acute": "acute", "grave": "grave",
                "mathring": "ring"}
_UNICODE_ACCENT = {"hat": "\u0302", "widehat": "\u0302", "tilde": "\u0303",
                   "widetilde": "\u0303", "bar": "\u0304", "overline": "\u0305",
                   "check": "\u030c", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308",
                   "breve": "\u0306", "acute": "\u0301", "grave": "\u0300",
                   "mathring": "\u030a"}
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ",
          "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ",
          "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
          "pi": "π", "varpi": "ϖ", "rho": "ρ", "varrho": "ϱ", "sigma": "σ", "varsigma": "ς",
          "tau": "τ", "upsilon": "υ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ",
          "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
          "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}
_MARKS = {"prime": "'", "star": "*", "ast": "*", "dagger": "+", "ell": "l", "partial": "d",
          "infty": "inf", "circ": "o", "imath": "i", "jmath": "j"}


def _latex_to_text(tex, unicode=False):
    """A symbol's LaTeX (our grammar: letters, Greek, accents, fonts) as text."""
    out, i = [], 0
    while i < len(tex):
        m = re.match(r"\\([A-Za-z]+)", tex[i:])
        if m:
            name = m.group(1)
            i += len(m.group())
            if name in _TEXT_ACCENT:
                arg, i = _argument(tex, i)
                inner = _latex_to_text(arg, unicode)
                out.append(inner + (_UNICODE_ACCENT[name] if unicode else _TEXT_ACCENT[name]))
            elif name in _GREEK:
                out.append(_GREEK[name] if unicode else name + " " * (name == "Delta"))
            elif name in _MARKS:
                out.append(_MARKS[name])
            else:  # a font: its argument
                arg, i = _argument(tex, i)
                out.append(_latex_to_text(arg, unicode))
            continue
        ch = tex[i]
        i += 1
        if ch not in "{} ":
            out.append(ch)
    return "".join(out).strip()


def _argument(tex, i):
    if i < len(tex) and tex[i] == "{":
        depth, j = 1, i + 1
        while j < len(tex) and depth:
            depth += {"{": 1, "}": -1}.get(tex[j], 0)
            j += 1
        return tex[i + 1:j - 1], j
    return tex[i:i + 1], i + 1


def text_symbol(name, notation=None, unicode=False):
    """``(core, sub, sup)`` of a name as text: W_hx, yhat (ŷ with ``unicode``), delta."""
    given = (notation or {}).get(name)
    sym = default_symbol(name) if given is None else parse_symbol(given)
    return tuple(_latex_to_text(part, unicode) for part in (sym.core, sym.sub, sym.sup))


# how tightly a printed form binds (see TextPrinter._level)
SUM, PRODUCT, POSTFIX, ATOM = 1, 2, 3, 4

_SUPERSCRIPT = dict(zip("0123456789+-=()tTkjn", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵗᵀᵏʲⁿ"))
_SUBSCRIPT = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))


def _script(text, table, mark):
    text = text.replace(" ", "")
    if all(c in table for c in text):
        return "".join(table[c] for c in text)
    return f"{mark}({text})" if len(text) > 1 else f"{mark}{text}"


class TextPrinter(StrPrinter):
    """h^(t-1), dL/dh^(t), W^T v, a .* b, sum_{t=1}^{T} ... in plain ASCII (or, as
    ``UnicodePrinter``, with Unicode symbols), in a notation profile's names, time
    and layout (settings ``symbols``, ``time``, ``layout``)."""

    unicode = False
    printmethod = "_bptt_str"  # not the nodes' _sympystr, which calls this printer
    _default_settings = {**StrPrinter._default_settings, "symbols": {},
                         "time": "superscript", "layout": "column", "param_order": ()}
    HADAMARD, TRANSPOSE, PARTIAL, SUM, ONES = " .* ", "^T", "dL/d", "sum", "1"

    def doprint(self, expr):
        expr = tidy(expr)
        if self._settings["layout"] == "row":
            expr = as_rows(expr)
        return super().doprint(expr)

    # names ------------------------------------------------------------------------
    def _name(self, name, time=None, transpose=False):
        core, sub, sup = text_symbol(name, self._settings["symbols"], self.unicode)
        if time is not None:
            time = str(time).replace(" ", "")
            if self._settings["time"] == "subscript":
                sub = f"{sub},{time}" if sub else time
            else:
                sup = sup + (f"⁽{_script(time, _SUPERSCRIPT, '^')}⁾"
                             if self.unicode and all(c in _SUPERSCRIPT for c in time)
                             else f"^({time})")
        out = core
        if sub:
            if self.unicode:
                out += _script(sub, _SUBSCRIPT, "_")
            else:
                out += "_" + sub if sub.isalnum() else f"_{{{sub}}}"
        if sup:
            out += sup if sup.startswith(("^", "⁽")) else ("^" + sup)
        if transpose:
            out += "ᵀ" if self.unicode else "^T"
        return out

    def _leaf(self, leaf, transpose=False):
        if leaf.shape == (1, 1):
            transpose = False
        if isinstance(leaf, StepVar):
            return self._name(leaf.name, leaf.time, transpose)
        if isinstance(leaf, Prev):
            return self._name(leaf.state.name, "t-1", transpose)
        if isinstance(leaf, OneMatrix):
            row = (leaf.shape[0] == 1) != transpose
            return self.ONES + (self.TRANSPOSE if row and leaf.shape != (1, 1) else "")
        if isinstance(leaf, Adjoint):
            inner = leaf.var
            body = self.PARTIAL + self._print(Row(inner) if self._settings["layout"] == "row"
                                              else inner)
            return f"({body}){self.TRANSPOSE}" if transpose else body
        return self._name(leaf.name, None, transpose)

    def _print_StepVar(self, expr):
        return self._leaf(expr)

    def _print_Prev(self, expr):
        return self._leaf(expr)

    def _print_Row(self, expr):
        return self._leaf(expr.leaf)

    def _print_Adjoint(self, expr):
        if not isinstance(expr, Adjoint):
            return super()._print_Adjoint(expr)
        return self._leaf(expr)

    def _print_MatrixSymbol(self, expr):
        return self._leaf(expr)

    def _print_Symbol(self, expr):
        return self._name(expr.name)

    def _print_SumOverTime(self, expr):
        lo, hi = expr.limits
        body = self._operand(expr.term, PRODUCT)
        if self.unicode:
            return f"∑{_script(f'{expr.index}={lo}', _SUBSCRIPT, '_')}" \
                   f"{_script(str(hi), _SUPERSCRIPT, '^')} {body}"
        return f"sum_{{{expr.index}={lo}}}^{{{hi}}} {body}"

    def _print_Partial(self, expr):
        return f"d{self._print(expr.num)}/d{self._print(expr.den)}" if not self.unicode \
            else f"∂{self._print(expr.num)}/∂{self._print(expr.den)}"

    def _print_Elementwise(self, expr):
        name = expr.text
        if self.unicode:
            name = {"sigmoid": "σ", "step": "relu'"}.get(name, name)
        return f"{name}({self._print(expr.arg)})"

    def _print(self, expr, **kwargs):
        if isinstance(expr, Elementwise) and type(expr).__name__ != "Reciprocal":
            return self._print_Elementwise(expr)
        return super()._print(expr, **kwargs)

    def _print_DiagMatrix(self, expr):
        return f"diag({self._print(expr.args[0])})"

    def _print_OneMatrix(self, expr):
        return self._leaf(expr)

    def _print_ZeroMatrix(self, expr):
        return "0"

    def _print_Identity(self, expr):
        return "1" if expr.shape == (1, 1) else "I"

    def _print_Rational(self, expr):
        return decimal(expr) or super()._print_Rational(expr)

    # operators: each node prints its operands at the precedence it needs ---------------
    def _level(self, expr):
        """How tightly ``expr`` binds as printed: SUM (a + b), PRODUCT (2 A, A B,
        a .* b, 1 ./ b, sum_{t=1}^{T} a, -a), POSTFIX (a^T, a.^2) or ATOM."""
        if isinstance(expr, (MatAdd, Add)):
            return SUM
        if isinstance(expr, MatMul):
            coeff, factors = expr.as_coeff_matrices()
            if coeff != 1 and (coeff.is_Number and coeff < 0 or coeff.could_extract_minus_sign()):
                return SUM  # -a, -2 a: a minus sign in front, as a term of a sum
            if coeff != 1 or len(factors) != 1:
                return PRODUCT
            return self._level(factors[0])
        if isinstance(expr, Mul) and expr.could_extract_minus_sign():
            return SUM
        if isinstance(expr, (HadamardProduct, SumOverTime, Mul)) or type(expr).__name__ in (
                "Reciprocal", "ProductOverTime"):
            return PRODUCT
        if isinstance(expr, Number):
            if expr < 0:
                return SUM
            fraction = isinstance(expr, Rational) and not expr.is_Integer \
                and decimal(expr) is None
            return PRODUCT if fraction else ATOM
        if isinstance(expr, (HadamardPower, Pow, MatPow)):
            return POSTFIX
        if isinstance(expr, Transpose):
            leaf = expr.arg.leaf if isinstance(expr.arg, Row) else expr.arg
            return ATOM if self._is_leaf(leaf) else POSTFIX
        return ATOM

    @staticmethod
    def _is_leaf(expr):
        return isinstance(expr, (StepVar, Prev, OneMatrix, Adjoint)) or expr.is_symbol

    def _operand(self, expr, level):
        """``expr`` printed, in parentheses when it binds less tightly than ``level``."""
        text = self._print(expr)
        return f"({text})" if self._level(expr) < level else text

    def _wrap(self, expr):
        return self._operand(expr, POSTFIX)

    def _print_Transpose(self, expr):
        arg = expr.arg
        leaf = arg.leaf if isinstance(arg, Row) else arg
        if self._is_leaf(leaf):
            return self._leaf(leaf, transpose=True)
        return f"{self._operand(arg, ATOM)}{self.TRANSPOSE}"

    def _coefficient(self, coeff):
        """A product's scalar coefficient, followed by a space: "2 ", "-", "(1 - 2 beta) "."""
        if coeff == -1:
            return "-"
        if isinstance(coeff, Add):
            return f"({self._print(coeff)}) "
        return f"{self._print(coeff)} "

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        body = " ".join(self._operand(f, POSTFIX) for f in factors)
        return body if coeff == 1 else self._coefficient(coeff) + body

    def _print_HadamardProduct(self, expr):
        op = " ⊙ " if self.unicode else self.HADAMARD
        return op.join(self._operand(a, POSTFIX) for a in expr.args)

    def _print_HadamardPower(self, expr):
        power = "^∘" if self.unicode else ".^"
        return f"{self._operand(expr.base, ATOM)}{power}{self._operand(expr.exp, ATOM)}"

    def _print_MatPow(self, expr):
        """P^2, (P^T)^2: the matrix power (** is entry-wise in the text syntax)."""
        base = expr.base
        plain = self._level(base) == ATOM and not isinstance(base, Transpose)
        text = self._print(base) if plain else f"({self._print(base)})"
        return f"{text}^{self._operand(expr.exp, ATOM)}"

    def _print_Reciprocal(self, expr):
        return f"1 {'⊘' if self.unicode else './'} {self._operand(expr.arg, POSTFIX)}"

    def _signed_join(self, texts):
        """``a + b - c`` from the printed terms (those printed with a minus sign last:
        1 - h.^2, not -h.^2 + 1)."""
        texts = [t for t in texts if not t.startswith("-")] + \
                [t for t in texts if t.startswith("-")]
        text = texts[0]
        for t in texts[1:]:
            text += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
        return text

    def _print_MatAdd(self, expr):
        order = BPTTLatexPrinter({"param_order": self._settings["param_order"]})
        return self._signed_join([self._print(a) for a in order.ordered_terms(expr)])

    # scalars: the cell's constants and sizes (dt, gamma, D) and numbers ------------------
    def _print_Add(self, expr, order=None):
        return self._signed_join([self._print(a) for a in expr.as_ordered_terms()])

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return "-" + self._operand(-expr, POSTFIX if isinstance(-expr, Add) else PRODUCT)
        coeff, rest = expr.as_coeff_Mul()
        numerator, denominator = [], []
        for f in Mul.make_args(rest):
            if isinstance(f, Pow) and f.exp.is_negative:
                denominator.append(Pow(f.base, -f.exp))
            else:
                numerator.append(f)
        if isinstance(coeff, Rational) and not coeff.is_Integer and decimal(coeff) is None:
            numerator = ([Integer(coeff.p)] if coeff.p != 1 else []) + numerator
            denominator = [Integer(coeff.q)] + denominator
        elif coeff != 1:
            numerator = [coeff] + numerator
        top = " ".join(self._operand(f, POSTFIX) for f in numerator) or "1"
        if not denominator:
            return top
        bottom = " ".join(self._operand(f, POSTFIX) for f in denominator)
        if len(numerator) > 1:
            top = f"({top})"
        if len(denominator) > 1:
            bottom = f"({bottom})"
        return f"{top}/{bottom}"

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_negative:
            return f"1/{self._operand(Pow(expr.base, -expr.exp), POSTFIX)}"
        return f"{self._operand(expr.base, ATOM)}^{self._operand(expr.exp, ATOM)}"

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"


class UnicodePrinter(TextPrinter):
    """The text printer with Unicode: ∂L/∂h⁽ᵗ⁾, Wᵀ, ⊙, ∑ₜ₌₁ᵀ, σ, 𝟏."""
    unicode = True
    HADAMARD, TRANSPOSE, PARTIAL, SUM, ONES = " ⊙ ", "ᵀ", "∂L/∂", "∑", "𝟏"


def text_printer(cell=None, notation=None, unicode=False):
    """A text printer in the notation of ``cell`` and of a notation profile."""
    settings = {"symbols": dict(getattr(cell, "notation", {}) or {})}
    if notation is not None or cell is not None:
        from .notation import load_notation
        profile = load_notation(notation)
        settings = {k: v for k, v in profile.printer_settings(cell).items()
                    if k in ("symbols", "time", "layout")}
    if cell is not None:
        settings["param_order"] = tuple(p.name for p in cell.params)
    return (UnicodePrinter if unicode else TextPrinter)(settings)


def derivation_text(derivation, notation=None, unicode=False):
    """The forward equations, the adjoint recurrences and the gradients, as text."""
    from sympy import Eq, MatrixSymbol

    from ..graph.unroll import T, t
    from .sections import sections
    cell = derivation.cell
    p = text_printer(cell, notation, unicode)
    lines = [cell.name]
    for title, equations in sections(derivation, p.doprint):
        lines += ["", f"{title}:"]
        lines += [f"  {p.doprint(lhs)} = {p.doprint(rhs)}" for lhs, rhs in equations]
        if title.startswith("Forward"):
            loss = StepVar(cell.loss_var.name, t, 1, 1)
            total = Eq(MatrixSymbol("L", 1, 1), SumOverTime(loss, t, 1, T), evaluate=False)
            lines.append("  " + p.doprint(total))
    row = p._settings["layout"] == "row"
    if unicode:
        legend = "A B is the matrix product, Aᵀ the transpose, a ⊙ b and a^∘2 act entry by " \
                 "entry, 𝟏 is a vector of ones."
    else:
        legend = "A B is the matrix product, A^T the transpose, a .* b and a.^2 act entry by " \
                 "entry, 1 is a vector of ones."
    lines += ["", ("Row vectors: x W is a row vector times a matrix. " if row else "") + legend]
    return "\n".join(lines)


def expression_text(expr, cell=None, notation=None):
    """``str`` of one of the engine's expressions: h^(t), dL/dW, sum_{t=1}^{T} ..."""
    return text_printer(cell, notation).doprint(expr)


def _pretty_form(text):
    """A picture of left-aligned lines (SymPy would centre them)."""
    from sympy.printing.pretty.stringpict import prettyForm
    lines = text.split("\n")
    width = max(len(line) for line in lines)
    return prettyForm("\n".join(line.ljust(width) for line in lines))


def expression_pretty(expr, cell=None, notation=None):
    """``pprint`` of one of the engine's expressions, in Unicode."""
    return _pretty_form(text_printer(cell, notation, unicode=True).doprint(expr))


def _cell_lines(cell, printer):
    from ..graph.unroll import shared, step_equations, t
    lines = [f"{cell.name}, at every step t:"]
    lines += [f"  {printer.doprint(lhs)} = {printer.doprint(shared(cell, rhs))}"
              for lhs, rhs in step_equations(cell, t)]
    return "\n".join(lines)


def cell_text(cell, notation=None):
    """``str`` of a cell: the equations of one step."""
    return _cell_lines(cell, text_printer(cell, notation))


def cell_pretty(cell, notation=None):
    return _pretty_form(_cell_lines(cell, text_printer(cell, notation, unicode=True)))


def derivation_pretty(derivation, notation=None):
    """``pprint`` of a derivation: ``derivation_text`` in Unicode."""
    return _pretty_form(derivation_text(derivation, notation, unicode=True))
