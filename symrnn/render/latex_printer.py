"""A LaTeX printer for the notation of the sheet.

Bold vectors and matrices, ``^{(t)}`` on per-step values and on the copies
``W^{(t)}``, ``\\odot`` for Hadamard products, ``\\operatorname{diag}``,
``^{\\top}``, ``\\partial L/\\partial v`` fractions, ``\\sum_{t=1}^{T}``, and the
terms of a sum in the order a person writes them. There is one ``_print_<Node>``
method per node type; nothing is done to the printed strings afterwards.
"""
from sympy import MatAdd, MatMul, MatrixSymbol, Number, OneMatrix, Rational, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, translate

from ..model.nodes import Adjoint, Elementwise, Prev, StepVar, SumOverTime

__all__ = ["BPTTLatexPrinter", "Partial", "latex", "printer_for"]


class Partial(MatrixExpr):
    """The Jacobian d(num)/d(den) of one vector with respect to another, for the text."""

    def __new__(cls, num, den):
        return super().__new__(cls, num, den)

    num = property(lambda self: self.args[0])
    den = property(lambda self: self.args[1])
    shape = property(lambda self: (self.args[0].shape[0], self.args[1].shape[0]))


def _name_of(expr):
    """The name of a variable, a copy or a shared parameter, else None."""
    if isinstance(expr, (StepVar, MatrixSymbol)):
        return expr.name
    return None


def _coefficient(expr):
    """(number, factors) of a MatMul: -2*A*b -> (-2, [A, b])."""
    if isinstance(expr, MatMul):
        numbers = [a for a in expr.args if isinstance(a, Number)]
        factors = [a for a in expr.args if not isinstance(a, Number)]
        c = 1
        for n in numbers:
            c *= n
        return c, factors
    return 1, [expr]


def _is_negative(expr):
    c, _ = _coefficient(expr)
    return bool(c < 0)


def _is_scalar(expr):
    return getattr(expr, "shape", None) == (1, 1)


class BPTTLatexPrinter(LatexPrinter):
    """LaTeX of the engine's expressions, in the notation of the lecture.

    Settings, besides SymPy's:
    notation       {name: LaTeX} for names SymPy would not typeset well (bold is added)
    adjoint_names  {name: LaTeX}: print dL/dv as a symbol of its own, e.g. {"z": r"\\delta"}
    param_order    parameter names in the order their terms are written: W h + U x + b
    fraction       "display" (\\frac) or "inline" (dL/dv with a slash)
    """

    printmethod = "_bptt_latex"
    _default_settings = {
        **LatexPrinter._default_settings,
        "notation": {},
        "adjoint_names": {},
        "param_order": (),
        "fraction": "display",
    }

    # ---- names -------------------------------------------------------------
    def _name(self, name, bold=True):
        notation = self._settings["notation"]
        subs = []
        if name in notation:
            core = notation[name]
        else:
            base, supers, subs = split_super_sub(name)
            core = translate(base) if len(base) == 1 or translate(base) != base \
                else r"\mathrm{%s}" % base
            subs = [translate(s) for s in supers + subs]
        if bold:
            core = r"\bm{%s}" % core
        if subs:
            core += "_{%s}" % ",".join(subs)
        return core

    def _bold(self, expr):
        return not _is_scalar(expr)

    def _time(self, time):
        return "(%s)" % self._print(time)

    def _superscript(self, expr):
        """(base, superscript) of a node that carries a time, else (LaTeX, None)."""
        if isinstance(expr, StepVar):
            return self._name(expr.name, self._bold(expr)), self._time(expr.time)
        if isinstance(expr, Prev):
            return self._name(expr.state.name, self._bold(expr)), "(t - 1)"
        if isinstance(expr, Adjoint) and expr.var.__class__ in (StepVar, MatrixSymbol) \
                and expr.var.name in self._settings["adjoint_names"]:
            base = self._settings["adjoint_names"][expr.var.name]
            base = r"\bm{%s}" % base if self._bold(expr) else base
            if isinstance(expr.var, StepVar):
                return base, self._time(expr.var.time)
            return base, None
        return None, None

    def _print_StepVar(self, expr):
        base, sup = self._superscript(expr)
        return "%s^{%s}" % (base, sup)

    def _print_Prev(self, expr):
        base, sup = self._superscript(expr)
        return "%s^{%s}" % (base, sup)

    def _print_MatrixSymbol(self, expr):
        return self._name(expr.name, self._bold(expr))

    # ---- derivatives -------------------------------------------------------
    def _partial(self, num, den):
        if self._settings["fraction"] == "inline":
            return r"\partial %s / \partial %s" % (num, den)
        return r"\frac{\partial %s}{\partial %s}" % (num, den)

    def _print_Adjoint(self, expr):
        if not isinstance(expr, Adjoint):  # SymPy's conjugate transpose has this name too
            return super()._print_Adjoint(expr)
        base, sup = self._superscript(expr)
        if base is not None:
            return base if sup is None else "%s^{%s}" % (base, sup)
        return self._partial("L", self._print(expr.var))

    def _print_Partial(self, expr):
        return self._partial(self._print(expr.num), self._print(expr.den))

    # ---- constants ---------------------------------------------------------
    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if rows == 1 and cols == 1:
            return "1"
        if rows == 1:
            return r"\mathbf{1}^{\top}"
        return r"\mathbf{1}"

    def _print_ZeroMatrix(self, expr):
        return "0" if expr.shape == (1, 1) else r"\mathbf{0}"

    def _print_Identity(self, expr):
        return "1" if expr.shape == (1, 1) else r"\mathbf{I}"

    # ---- operations --------------------------------------------------------
    def _atomic(self, expr):
        """Printed without parentheses as a factor or under a superscript."""
        return isinstance(expr, (StepVar, Prev, MatrixSymbol, Adjoint, Partial, DiagMatrix,
                                 OneMatrix, Elementwise)) or expr.__class__.__name__ in {
            "Identity", "ZeroMatrix", "Transpose"}

    def _tall(self, expr):
        """Does ``expr`` print with a fraction or a big operator (then \\left( ... \\right))?"""
        if self._settings["fraction"] == "inline" and not expr.atoms(SumOverTime):
            return False
        names = self._settings["adjoint_names"]
        fractions = any(not r.is_Integer for r in expr.atoms(Rational))
        return fractions or bool(expr.atoms(Partial, SumOverTime)) or any(
            not (isinstance(a.var, (StepVar, MatrixSymbol)) and a.var.name in names)
            for a in expr.atoms(Adjoint))

    def _wrap(self, expr, tex=None):
        tex = self._print(expr) if tex is None else tex
        return (r"\left(%s\right)" if self._tall(expr) else "(%s)") % tex

    def _paren(self, expr):
        return self._print(expr) if self._atomic(expr) else self._wrap(expr)

    def _print_Transpose(self, expr):
        arg = expr.arg
        base, sup = self._superscript(arg)
        if base is not None:
            return "%s^{%s\\top}" % (base, sup or "")
        if isinstance(arg, MatrixSymbol):
            return r"%s^{\top}" % self._print(arg)
        if isinstance(arg, OneMatrix) and arg.shape[1] == 1:
            return r"\mathbf{1}^{\top}"
        return r"%s^{\top}" % self._wrap(arg)

    def _term_key(self, indexed):
        """Order of the terms of a sum: constants first, then by parameter, minus signs last."""
        index, term = indexed
        order = list(self._settings["param_order"])
        names = {n for n in (_name_of(a) for a in term.atoms(StepVar, MatrixSymbol)) if n}
        ranks = [order.index(n) for n in names if n in order]
        constant = not term.atoms(StepVar, MatrixSymbol, Adjoint, Prev)
        return (_is_negative(term), not constant, min(ranks) if ranks else len(order), index)

    def ordered_terms(self, expr):
        """The terms of a sum in the order they are written."""
        return [term for _, term in sorted(enumerate(expr.args), key=self._term_key)]

    def print_terms(self, terms, leading=True):
        """``a + b - c``; with ``leading=False`` the first term gets its sign too
        (the continuation line of a sum broken over lines)."""
        out = []
        for i, term in enumerate(terms):
            negative = _is_negative(term)
            body = self._print_signless(term)
            if i == 0 and leading:
                out.append("- " + body if negative else body)
            else:
                out.append(("- " if negative else "+ ") + body)
        return " ".join(out)

    def _common_transpose(self, expr):
        """c a^T - c b^T -> (c, (a - b)^T): a sum of transposes with one coefficient."""
        if not isinstance(expr, MatAdd):
            return None
        parts = [_coefficient(term) for term in expr.args]
        if not all(len(f) == 1 and isinstance(f[0], Transpose) for _, f in parts):
            return None
        sizes = {abs(c) for c, _ in parts}
        if len(sizes) != 1:
            return None
        (size,) = sizes
        inner = MatAdd(*[f[0].arg if c > 0 else MatMul(-1, f[0].arg) for c, f in parts])
        return size, Transpose(inner)

    def _print_MatAdd(self, expr):
        factored = self._common_transpose(expr)
        if factored is not None:
            return self._product(*factored[:1], [factored[1]])
        return self.print_terms(self.ordered_terms(expr))

    def _print_signless(self, term):
        """|term|: the term without its minus sign (the sum prints the sign)."""
        c, factors = _coefficient(term)
        if isinstance(term, MatMul):
            return self._product(abs(c), factors)
        return self._print(term)

    def _print_MatMul(self, expr):
        c, factors = _coefficient(expr)
        body = self._product(abs(c), factors)
        return "- " + body if bool(c < 0) else body

    def _flat_factors(self, factors):
        out = []
        for f in factors:
            if isinstance(f, MatMul):
                c, inner = _coefficient(f)
                if c != 1:
                    out.append(f)  # keep a signed inner product in parentheses
                else:
                    out.extend(self._flat_factors(inner))
            else:
                out.append(f)
        return out

    def _product(self, c, factors):
        """c A B (1^T y): a scalar row-times-column block after a column is grouped."""
        factors = self._flat_factors(factors)
        for k, f in enumerate(factors):  # (1/2 o^T - 1/2 y^T) (o - y) -> 1/2 (o - y)^T (o - y)
            factored = self._common_transpose(f)
            if factored is not None:
                c, factors = c * factored[0], factors[:k] + [factored[1]] + factors[k + 1:]
        parts = [] if c == 1 else [self._print(c)]
        if len(factors) == 1 and not isinstance(factors[0], MatAdd):
            # - h (.) h: the entry-wise product binds tighter than the sign
            return " ".join(parts + [self._print(factors[0])])
        i = 0
        while i < len(factors):
            f = factors[i]
            if i > 0 and f.shape[0] == 1 and f.shape[1] != 1:
                j = i
                while j < len(factors) and factors[j].shape[1] != 1:
                    j += 1
                if j < len(factors):  # factors[i..j] is a 1x1 scalar: (1^T y)
                    inner = " ".join(self._paren(g) for g in factors[i:j + 1])
                    parts.append(self._wrap(MatMul(*factors[i:j + 1]), inner))
                    i = j + 1
                    continue
            parts.append(self._paren(f))
            i += 1
        return " ".join(parts)

    def _hadamard_key(self, indexed):
        """Jacobian factors first (plain values before sums), the adjoint last."""
        index, factor = indexed
        return (bool(factor.atoms(Adjoint)), not self._atomic(factor), index)

    def _hadamard_factors(self, expr):
        out = []
        for f in expr.args:  # the entry-wise product is associative: a (.) (b (.) c)
            out.extend(self._hadamard_factors(f) if f.__class__ is expr.__class__ else [f])
        return out

    def _print_HadamardProduct(self, expr):
        factors = [f for _, f in sorted(enumerate(self._hadamard_factors(expr)),
                                        key=self._hadamard_key)]
        return r" \odot ".join(self._paren(f) for f in factors)

    def _print_HadamardPower(self, expr):
        base, exp = expr.args
        if exp == 2:
            b = self._paren(base)
            return r"%s \odot %s" % (b, b)
        return r"%s^{\circ %s}" % (self._wrap(base), self._print(exp))

    def _print_DiagMatrix(self, expr):
        return r"\operatorname{diag}%s" % self._wrap(expr.args[0])

    def _print_Elementwise(self, expr):
        return r"%s%s" % (expr.latex, self._wrap(expr.arg))

    def _print_SumOverTime(self, expr):
        lo, hi = expr.limits
        term = expr.term
        body = self._wrap(term) if isinstance(term, MatAdd) else self._print(term)
        return r"\sum_{%s=%s}^{%s} %s" % (self._print(expr.index), self._print(lo),
                                         self._print(hi), body)

    def _print_Pow(self, expr):
        if expr.base == 10 and expr.exp.is_Integer:  # an order of magnitude: 10^{-8}
            return "10^{%s}" % self._print(expr.exp)
        return super()._print_Pow(expr)

    def _print_Equality(self, expr):
        return "%s = %s" % (self._print(expr.lhs), self._print(expr.rhs))

    # ---- helpers for the text ----------------------------------------------
    def space(self, sym):
        """R^{D x N} for the shape of ``sym``."""
        rows, cols = sym.shape
        dims = self._print(rows) if cols == 1 else r"%s \times %s" % (self._print(rows),
                                                                       self._print(cols))
        return r"\mathbb{R}^{%s}" % dims


def printer_for(cell=None, **settings):
    """A printer that knows the notation of ``cell`` (names, parameter order)."""
    base = {}
    if cell is not None:
        base["notation"] = dict(cell.notation)
        base["param_order"] = tuple(p.name for p in cell.params)
    base.update(settings)
    return BPTTLatexPrinter(base)


def latex(expr, cell=None, **settings):
    """The LaTeX of one expression in the notation of the sheet."""
    return printer_for(cell, **settings).doprint(expr)
