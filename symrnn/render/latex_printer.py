"""A LaTeX printer for the notation of the documents.

Vectors and matrices bold (or upright bold, or plain), the time as ``^{(t)}`` or as a
subscript ``_{t}`` on per-step values and on the copies ``W^{(t)}``, names of several
letters as a letter with a subscript (``W_{hx}``), ``\\odot`` for Hadamard products,
``\\oslash`` for entry-wise division, ``\\operatorname{diag}``, ``^{\\top}``,
``\\partial L/\\partial v`` fractions, ``\\sum_{t=1}^{T}``, numbers as decimals where
the cell wrote them so (0.1, not 1/10), the terms of a sum in the order a person
writes them; and, with ``layout="row"``, every formula transposed (row vectors,
``x W``; see ``orientation.py``). There is one ``_print_<Node>`` method per node
type; nothing is done to the printed strings afterwards. Long formulas are broken
over lines by ``print_lines`` (``breaking.py``), from the expression tree.
"""
from functools import lru_cache

from sympy import Add, MatAdd, MatMul, MatrixSymbol, OneMatrix, Rational, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.printing.latex import LatexPrinter

from ..graph.unroll import t as _TIME
from ..model.nodes import Adjoint, Elementwise, Prev, StepVar, SumOverTime
from ..ops import Reciprocal
from .breaking import LineBreaking
from .expressions import Partial, ProductOverTime
from .orientation import Row, as_rows
from .symbols import Symbol, SymbolError, default_symbol, parse_symbol
from .terms import (coefficient as _coefficient, is_negative as _is_negative,
                    is_scalar as _is_scalar, leaf_of as _leaf_of, negative as _negative,
                    size as _size)
from .tidy import tidy

__all__ = ["BPTTLatexPrinter", "Partial", "ProductOverTime", "latex", "printer_for", "decimal"]

BOLD = {"bold": r"\bm", "upright": r"\mathbf", "plain": None}


def decimal(number):
    """The decimal of a Rational whose denominator has a factor 5 (1/10, 49/500, 19/20),
    which a cell writes as 0.1; None for others (1/2, 1/3 stay fractions)."""
    if not isinstance(number, Rational) or number.is_Integer:
        return None
    q, twos, fives = int(number.q), 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1 or fives == 0:
        return None
    digits = max(twos, fives)
    scaled = abs(int(number.p)) * 10 ** digits // int(number.q)
    whole, frac = divmod(scaled, 10 ** digits)
    text = f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".")
    return ("-" if number < 0 else "") + text


@lru_cache(maxsize=4096)
def _symbol_of(name, given):
    if given is None:
        return default_symbol(name)
    try:
        return parse_symbol(given, where=f"notation[{name!r}]")
    except SymbolError:
        return Symbol(given)  # a cell's own notation, given in Python


class BPTTLatexPrinter(LineBreaking, LatexPrinter):
    """LaTeX of the engine's expressions, in the notation of the lecture.

    Settings, besides SymPy's:
    symbols        {name: LaTeX} of names (bold is added): a cell's notation and a
                   notation profile's symbols
    adjoint_names  {name: LaTeX}: print dL/dv as a symbol of its own, e.g. {"z": r"\\delta"}
    param_order    parameter names in the order their terms are written: W h + U x + b
    fraction       "display" (\\frac) or "inline" (dL/dv with a slash)
    time           "superscript" (h^{(t)}) or "subscript" (h_{t})
    vectors        "bold" (\\bm or the ``bold`` command), "upright" (\\mathbf) or "plain"
    bold           the command of bold italic: r"\\bm" (documents) or r"\\boldsymbol"
                   (notebooks: KaTeX and MathJax have no \\bm)
    layout         "column" (W x) or "row" (x W: every formula transposed)
    """

    printmethod = "_bptt_latex"
    _default_settings = {
        **LatexPrinter._default_settings,
        "symbols": {},
        "adjoint_names": {},
        "param_order": (),
        "fraction": "display",
        "time": "superscript",
        "vectors": "bold",
        "bold": r"\bm",
        "layout": "column",
    }

    # ---- entry points ----------------------------------------------------------
    def prepare(self, expr):
        """The tree that is printed: tidied, and transposed for row vectors."""
        expr = tidy(expr)
        return as_rows(expr) if self._settings["layout"] == "row" else expr

    def doprint(self, expr):
        return super().doprint(self.prepare(expr))

    # ---- names -------------------------------------------------------------
    def symbol(self, name):
        """The ``Symbol`` that ``name`` is typeset as."""
        return _symbol_of(name, self._settings["symbols"].get(name))

    def _bolden(self, core, bold):
        vectors = self._settings["vectors"]
        if not bold or vectors == "plain":
            return core
        command = self._settings["bold"] if vectors == "bold" else BOLD[vectors]
        return "%s{%s}" % (command, core)

    def _compose(self, sym, bold, time=None, transpose=False):
        """``sym`` with bold, the time and a transpose sign: W_{hh}^{(t)\\top}, W_{hh,t}^\\top."""
        core, sub, sup = self._bolden(sym.core, bold), sym.sub, sym.sup
        if time is not None:
            if self._settings["time"] == "subscript":
                sub = "%s,%s" % (sub, time) if sub else time
            else:
                sup = sup + "(%s)" % time
        if transpose:
            sup += r"\top"
        return core + ("_{%s}" % sub if sub else "") + ("^{%s}" % sup if sup else "")

    def _name(self, name, bold=True):
        return self._compose(self.symbol(name), bold)

    def _bold(self, expr):
        return not _is_scalar(expr)

    def _time(self, time):
        return self._print(time)

    def _leaf(self, leaf, transpose=False):
        """A variable, a copy, a parameter, a vector of ones or a named adjoint, with the
        time and the transpose sign; None for an adjoint printed as a fraction."""
        transpose = transpose and not _is_scalar(leaf)
        if isinstance(leaf, OneMatrix):
            rows, cols = leaf.shape
            if rows == 1 and cols == 1:
                return "1"
            row = (rows == 1) != transpose
            return r"\mathbf{1}^{\top}" if row else r"\mathbf{1}"
        if isinstance(leaf, StepVar):
            return self._compose(self.symbol(leaf.name), self._bold(leaf),
                                 self._time(leaf.time), transpose)
        if isinstance(leaf, Prev):
            return self._compose(self.symbol(leaf.state.name), self._bold(leaf), "t - 1",
                                 transpose)
        if isinstance(leaf, MatrixSymbol):
            return self._compose(self.symbol(leaf.name), self._bold(leaf), None, transpose)
        if isinstance(leaf, Adjoint):
            var = leaf.var
            names = self._settings["adjoint_names"]
            if getattr(var, "name", None) in names and isinstance(var, (StepVar, MatrixSymbol)):
                sym = _symbol_of("adjoint of " + var.name, names[var.name])
                time = self._time(var.time) if isinstance(var, StepVar) else None
                return self._compose(sym, self._bold(leaf), time, transpose)
            if self._rows():  # the row form of what the gradient is taken of
                var = Row(var) if _leaf_of(var) is var else as_rows(var)
            fraction = self._partial("L", self._print(var))
            if transpose:
                return r"%s^{\top}" % self._delimit(fraction, tall=self._is_tall_fraction())
            return fraction
        return None

    def _rows(self):
        return self._settings["layout"] == "row"

    def _print_StepVar(self, expr):
        return self._leaf(expr)

    def _print_Prev(self, expr):
        return self._leaf(expr)

    def _print_MatrixSymbol(self, expr):
        return self._leaf(expr)

    def _print_Row(self, expr):
        out = self._leaf(expr.leaf)
        return out if out is not None else self._print(expr.leaf)

    def _print_Symbol(self, expr, **kwargs):
        """A scalar constant of the cell (``dt``): its name, as any other name."""
        return self._compose(self.symbol(expr.name), False)

    # ---- derivatives -------------------------------------------------------
    def _partial(self, num, den):
        if self._settings["fraction"] == "inline":
            return r"\partial %s / \partial %s" % (num, den)
        return r"\frac{\partial %s}{\partial %s}" % (num, den)

    def _is_tall_fraction(self):
        return self._settings["fraction"] != "inline"

    def _print_Adjoint(self, expr):
        if not isinstance(expr, Adjoint):  # SymPy's conjugate transpose has this name too
            return super()._print_Adjoint(expr)
        out = self._leaf(expr)
        if out is not None:
            return out
        return self._partial("L", self._print(expr.var))

    def _print_Partial(self, expr):
        num, den = expr.num, expr.den
        if self._rows():
            num, den = (Row(v) if _leaf_of(v) is v else v for v in (num, den))
        return self._partial(self._print(num), self._print(den))

    # ---- constants ---------------------------------------------------------
    def _print_OneMatrix(self, expr):
        return self._leaf(expr)

    def _print_ZeroMatrix(self, expr):
        return "0" if expr.shape == (1, 1) else r"\mathbf{0}"

    def _print_Identity(self, expr):
        return "1" if expr.shape == (1, 1) else r"\mathbf{I}"

    def _print_Rational(self, expr):
        text = decimal(expr)
        if text is not None:
            return text
        if self._settings["fraction"] == "inline" and not expr.is_Integer:
            return "%s/%s" % (expr.p, expr.q)
        return super()._print_Rational(expr)

    def _print_Mul(self, expr, **kwargs):
        """0.1 dt, not dt/10: a coefficient the cell wrote as a decimal stays one."""
        coeff, rest = expr.as_coeff_Mul()
        text = decimal(coeff) if isinstance(coeff, Rational) else None
        if text is not None and rest != 1:
            return "%s %s" % (text, self._print(rest))
        return super()._print_Mul(expr, **kwargs)

    def _print_Float(self, expr):
        """As many digits as the Float holds: Float(0.8, 3) is 0.8, not 0.800048828125."""
        from mpmath.libmp import prec_to_dps
        value = float(expr)
        if abs(value) >= 1e-4 or value == 0:
            return "%.*g" % (max(1, prec_to_dps(expr._prec)), value)
        return super()._print_Float(expr)

    # ---- operations --------------------------------------------------------
    def _atomic(self, expr):
        """Printed without parentheses as a factor or under a superscript."""
        if isinstance(expr, Transpose):
            return True  # x^T, or (a - b)^T with its own parentheses
        return isinstance(expr, (StepVar, Prev, MatrixSymbol, Adjoint, Partial, DiagMatrix,
                                 OneMatrix, Elementwise, Row)) or expr.__class__.__name__ in {
            "Identity", "ZeroMatrix"}

    def _tall(self, expr):
        """Does ``expr`` print with a fraction or a big operator (then \\left( ... \\right))?"""
        if self._settings["fraction"] == "inline" and not expr.atoms(SumOverTime):
            return False
        names = self._settings["adjoint_names"]
        fractions = any(not r.is_Integer and decimal(r) is None for r in expr.atoms(Rational))
        return fractions or bool(expr.atoms(Partial, SumOverTime, ProductOverTime)) or any(
            not (isinstance(a.var, (StepVar, MatrixSymbol)) and a.var.name in names)
            for a in expr.atoms(Adjoint))

    def _delimit(self, tex, tall):
        return (r"\left(%s\right)" if tall else "(%s)") % tex

    def _wrap(self, expr, tex=None):
        tex = self._print(expr) if tex is None else tex
        return self._delimit(tex, self._tall(expr))

    def _paren(self, expr):
        return self._print(expr) if self._atomic(expr) else self._wrap(expr)

    def _print_Transpose(self, expr):
        arg = expr.arg
        leaf = _leaf_of(arg)
        if leaf is not None:
            out = self._leaf(leaf, transpose=True)
            if out is not None:
                return out
        if _is_scalar(arg):
            return self._print(arg)
        return r"%s^{\top}" % self._wrap(arg)

    def _term_key(self, indexed):
        """Order of the terms of a sum: constants first, then by parameter, minus signs last."""
        index, term = indexed
        order = list(self._settings["param_order"])
        names = {a.name for a in term.atoms(StepVar, MatrixSymbol)}
        ranks = [order.index(n) for n in names if n in order]
        constant = not term.atoms(StepVar, MatrixSymbol, Adjoint, Prev)
        return (_is_negative(term), not constant, min(ranks) if ranks else len(order), index)

    def ordered_terms(self, expr):
        """The terms of a sum in the order they are written."""
        return [term for _, term in sorted(enumerate(expr.args), key=self._term_key)]

    def signed_term(self, term, first):
        """``term`` with its sign: ``a``, ``- a`` first; ``+ a``, ``- a`` after."""
        negative = _is_negative(term)
        body = self._print_signless(term)
        if first:
            return "- " + body if negative else body
        return ("- " if negative else "+ ") + body

    def print_terms(self, terms, leading=True):
        """``a + b - c``; with ``leading=False`` the first term gets its sign too
        (the continuation line of a sum broken over lines)."""
        return " ".join(self.signed_term(term, i == 0 and leading)
                        for i, term in enumerate(terms))

    def common_transpose(self, expr):
        """c a^T - c b^T -> (c, (a - b)^T): a sum of transposes with one coefficient."""
        if not isinstance(expr, MatAdd):
            return None
        parts = [_coefficient(term) for term in expr.args]
        if not all(len(f) == 1 and isinstance(f[0], Transpose) for _, f in parts):
            return None
        sizes = {_size(c) for c, _ in parts}
        if len(sizes) != 1:
            return None
        (size,) = sizes
        inner = MatAdd(*[f[0].arg if not _negative(c) else MatMul(-1, f[0].arg)
                         for c, f in parts])
        return size, Transpose(inner)

    def _print_MatAdd(self, expr):
        factored = self.common_transpose(expr)
        if factored is not None:
            return self._product(*factored[:1], [factored[1]])
        return self.print_terms(self.ordered_terms(expr))

    def _print_signless(self, term):
        """|term|: the term without its minus sign (the sum prints the sign)."""
        c, factors = _coefficient(term)
        if isinstance(term, MatMul):
            return self._product(_size(c), factors)
        return self._print(term)

    def _print_MatMul(self, expr):
        c, factors = _coefficient(expr)
        body = self._product(_size(c), factors)
        return "- " + body if _negative(c) else body

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

    def product_pieces(self, c, factors):
        """The printed pieces of c A B (1^T y), each ``(expression or None, LaTeX)``:
        the coefficient, then the factors (a scalar row-times-column block after a
        column grouped in parentheses)."""
        factors = self._flat_factors(factors)
        for k, f in enumerate(factors):  # (1/2 o^T - 1/2 y^T) (o - y) -> 1/2 (o - y)^T (o - y)
            factored = self.common_transpose(f)
            if factored is not None:
                c, factors = c * factored[0], factors[:k] + [factored[1]] + factors[k + 1:]
        pieces = [] if c == 1 else [(None, self._coefficient_tex(c))]
        if len(factors) == 1 and not isinstance(factors[0], MatAdd):
            # - h (.) h: the entry-wise product binds tighter than the sign
            return pieces + [(factors[0], self._print(factors[0]))]
        i = 0
        while i < len(factors):
            f = factors[i]
            if getattr(f, "is_Matrix", False) and f.shape[0] == 1 and f.shape[1] != 1 \
                    and (i > 0 or len(factors) > 2):
                j = i
                while j < len(factors) and getattr(factors[j], "is_Matrix", False) \
                        and factors[j].shape[1] != 1:
                    j += 1
                if j < len(factors):  # factors[i..j] is a 1x1 scalar: (1^T y)
                    block = MatMul(*factors[i:j + 1])
                    inner = " ".join(self._paren(g) for g in factors[i:j + 1])
                    pieces.append((block, self._wrap(block, inner)))
                    i = j + 1
                    continue
            pieces.append((f, self._paren(f)))
            i += 1
        return pieces

    def _coefficient_tex(self, c):
        """A product's scalar coefficient: a sum in parentheses, (1 - 2 beta) A."""
        tex = self._print(c)
        return self._wrap(c, tex) if isinstance(c, Add) else tex

    def _product(self, c, factors):
        return " ".join(tex for _, tex in self.product_pieces(c, factors))

    def _hadamard_key(self, indexed):
        """Jacobian factors first (plain values before sums), the adjoint last."""
        index, factor = indexed
        return (bool(factor.atoms(Adjoint)), not self._atomic(factor), index)

    def _hadamard_factors(self, expr):
        out = []
        for f in expr.args:  # the entry-wise product is associative: a (.) (b (.) c)
            out.extend(self._hadamard_factors(f) if f.__class__ is expr.__class__ else [f])
        return out

    def hadamard_pieces(self, expr):
        """``[(operator, factor, LaTeX), ...]`` of an entry-wise product: the factors in
        the order a person writes them, a reciprocal 1/b as ``\\oslash b`` after the
        factors it divides (the first operator is None)."""
        factors = [f for _, f in sorted(enumerate(self._hadamard_factors(expr)),
                                        key=self._hadamard_key)]
        top = [f for f in factors if not isinstance(f, Reciprocal)]
        bottom = [f.arg for f in factors if isinstance(f, Reciprocal)]
        if not top:
            top = [OneMatrix(*expr.shape)]
        with_adjoint = [f for f in top if f.atoms(Adjoint)]
        plain = [f for f in top if f not in with_adjoint]
        if plain:
            ordered = [(r"\odot", f) for f in plain] + [(r"\oslash", f) for f in bottom] \
                + [(r"\odot", f) for f in with_adjoint]
        else:  # only adjoints divided: dL/da (/) b (the (/) needs a left side)
            ordered = [(r"\odot", f) for f in with_adjoint] + [(r"\oslash", f) for f in bottom]
        out = []
        for k, (op, f) in enumerate(ordered):
            out.append((op if k else None, f, self._paren(f)))
        return out

    def _print_HadamardProduct(self, expr):
        return " ".join(tex if op is None else f"{op} {tex}"
                        for op, _, tex in self.hadamard_pieces(expr))

    def _print_HadamardPower(self, expr):
        base, exp = expr.args
        if exp == 1:
            return self._print(base)
        if exp == 2:
            b = self._paren(base)
            return r"%s \odot %s" % (b, b)
        return r"%s^{\circ %s}" % (self._wrap(base), self._print(exp))

    def _print_DiagMatrix(self, expr):
        return r"\operatorname{diag}%s" % self._wrap(expr.args[0])

    def _print_Elementwise(self, expr):
        return r"%s%s" % (expr.latex, self._wrap(expr.arg))

    def _print_Reciprocal(self, expr):
        """1/b entry by entry: a 1x1 value as a fraction, a vector as 1 (/) b."""
        if _is_scalar(expr):
            return r"\frac{1}{%s}" % self._print(expr.arg)
        return r"\mathbf{1} \oslash %s" % self._paren(expr.arg)

    def _print_SumOverTime(self, expr):
        lo, hi = expr.limits
        term = expr.term
        body = self._wrap(term) if isinstance(term, MatAdd) else self._print(term)
        return r"%s %s" % (self.sum_sign(expr), body)

    def sum_sign(self, expr):
        lo, hi = expr.limits
        return r"\sum_{%s=%s}^{%s}" % (self._print(expr.index), self._print(lo), self._print(hi))

    def _print_ProductOverTime(self, expr):
        lo, hi = expr.limits
        factor = expr.factor
        body = self._paren(factor) if not isinstance(factor, MatMul) else self._wrap(factor)
        return r"\prod_{%s=%s}^{%s} %s" % (self._print(expr.index), self._print(lo),
                                          self._print(hi), body)

    def _print_Add(self, expr, order=None):
        """t + 1, t + j: the step first, as a person writes an index."""
        terms = list(expr.args)
        if _TIME in terms:
            rest = [a for a in terms if a != _TIME]
            tex = self._print(_TIME)
            for a in rest:
                text = self._print(a)
                tex += " - " + text[1:].lstrip() if text.startswith("-") else " + " + text
            return tex
        return super()._print_Add(expr, order=order)

    def _print_Pow(self, expr):
        if expr.base == 10 and expr.exp.is_Integer:  # an order of magnitude: 10^{-8}
            return "10^{%s}" % self._print(expr.exp)
        return super()._print_Pow(expr)

    def _print_Equality(self, expr):
        return "%s = %s" % (self._print(expr.lhs), self._print(expr.rhs))

    # ---- helpers for the text ----------------------------------------------
    def space(self, sym):
        """R^{D x N} for the shape of ``sym`` (of its row form, with row vectors)."""
        rows, cols = sym.shape
        if self._rows() and cols != 1:
            rows, cols = cols, rows
        dims = self._print(rows) if cols == 1 else r"%s \times %s" % (self._print(rows),
                                                                       self._print(cols))
        return r"\mathbb{R}^{%s}" % dims


def printer_for(cell=None, notation=None, **settings):
    """A printer that knows the notation of ``cell`` (names, parameter order) and of a
    notation profile (``notation``: a name, a file or a ``Notation``; see
    ``symrnn.render.notation``)."""
    base = {}
    if cell is not None:
        base["symbols"] = dict(cell.notation)
        base["param_order"] = tuple(p.name for p in cell.params)
    if notation is not None:
        from .notation import load_notation
        profile = load_notation(notation)
        base.update(profile.printer_settings(cell))
    if "symbols" in settings:
        settings = dict(settings, symbols={**base.get("symbols", {}), **settings["symbols"]})
    base.update(settings)
    return BPTTLatexPrinter(base)


def latex(expr, cell=None, **settings):
    """The LaTeX of one expression in the notation of the sheet."""
    return printer_for(cell, **settings).doprint(expr)

