"""Long formulas over several lines, broken where the expression tree allows it.

A formula is cut into pieces that follow its tree: the terms of a sum (each with its
sign), the factors of a matrix or entry-wise product (``\\odot`` before each further
factor), and the inside of a parenthesised sum, a function application or a sum over
time, whose delimiters become ``\\bigl( ... \\bigr)`` (a fixed size, so that the two
halves may sit on different lines). The pieces fill lines from the left; a piece
that does not fit on the current line starts the next one, and only a piece too wide
for a line of its own is opened up into its parts. Widths come from the model of
TeX's layout in ``width.py``; every piece is printed by the printer itself, so a
formula on one line and on several reads the same.
"""
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..model.nodes import Elementwise, SumOverTime
from ..ops import Reciprocal
from .terms import coefficient, is_negative, leaf_of, negative, size
from .width import FONT_SIZE, tex_width

__all__ = ["LineBreaking", "Piece", "QUAD"]

QUAD = FONT_SIZE  # the indent of a continuation line (\quad), pt


class Piece:
    """A printed piece of a formula; ``parts()`` opens it into smaller pieces (None
    when it cannot be broken). ``prefix``/``suffix`` stick to the first/last part."""

    def __init__(self, tex, parts=None, prefix="", suffix=""):
        self.tex, self._parts, self.prefix, self.suffix = tex, parts, prefix, suffix

    @property
    def text(self):
        return f"{self.prefix}{self.tex}{self.suffix}"

    def parts(self):
        parts = self._parts() if self._parts is not None else None
        if not parts:
            return None
        parts[0].prefix = self.prefix + parts[0].prefix
        parts[-1].suffix = parts[-1].suffix + self.suffix
        return parts


def _big(tex):
    """The fixed-size delimiters for a group broken over lines: as tall as its content."""
    if r"\sum" in tex or r"\prod" in tex:
        return r"\Biggl(", r"\Biggr)"
    if r"\frac" in tex:
        return r"\biggl(", r"\biggr)"
    return r"\bigl(", r"\bigr)"


class LineBreaking:
    """Mixed into the LaTeX printer: ``print_lines`` and the pieces of its nodes."""

    def print_lines(self, expr, width, rest=None, display=True, prepared=False):
        """``expr`` as lines of LaTeX: the first at most ``width`` pt wide, each further
        one (a continuation, set after a \\quad) at most ``rest`` pt (default
        ``width - QUAD``). A piece wider than a line alone is left whole."""
        expr = expr if prepared else self.prepare(expr)
        rest = width - QUAD if rest is None else rest
        whole = self._print(expr)
        if tex_width(whole, display) <= width:
            return [whole]
        return self.pack([self.piece(expr, whole)], width, rest, display)

    @staticmethod
    def pack(pieces, width, rest, display=True):
        """Fill lines with the pieces, opening up only those too wide for a line."""
        lines, current, room = [], [], width
        todo = list(pieces)
        while todo:
            piece = todo.pop(0)
            trial = " ".join(current + [piece.text])
            if tex_width(trial, display) <= room:
                current.append(piece.text)
                continue
            if current and tex_width(piece.text, display) <= rest:
                lines.append(" ".join(current))
                current, room = [piece.text], rest
                continue
            parts = piece.parts()
            if parts:
                todo[:0] = parts
                continue
            if current:
                lines.append(" ".join(current))
                current, room = [], rest
            current.append(piece.text)
        if current:
            lines.append(" ".join(current))
        return lines

    # ---- the pieces of each kind of node ----------------------------------------
    def piece(self, expr, tex=None):
        tex = self._print(expr) if tex is None else tex
        return Piece(tex, lambda: self._parts(expr))

    def _parts(self, expr):
        if isinstance(expr, MatAdd):
            factored = self.common_transpose(expr)
            if factored is not None:
                return self._product_parts(factored[0], [factored[1]])
            terms = self.ordered_terms(expr)
            return [self._term_piece(term, i == 0) for i, term in enumerate(terms)]
        if isinstance(expr, MatMul):
            c, factors = coefficient(expr)
            parts = self._product_parts(size(c), factors)
            if negative(c) and parts:
                parts[0].prefix = "- " + parts[0].prefix
            return parts
        if isinstance(expr, HadamardProduct):
            return [self._factor_piece(f, tex, f"{op} " if op else "")
                    for op, f, tex in self.hadamard_pieces(expr)]
        if isinstance(expr, HadamardPower) and expr.exp == 2:  # printed b (.) b
            base = expr.base
            return [self._factor_piece(base, self._paren(base)),
                    self._factor_piece(base, self._paren(base), r"\odot ")]
        if isinstance(expr, SumOverTime):
            sign = Piece(self.sum_sign(expr))
            term = expr.term
            if isinstance(term, MatAdd):
                return [sign, self._group(term, self._wrap(term))]
            return [sign] + (self.piece(term).parts() or [self.piece(term)])
        if isinstance(expr, Reciprocal):
            return None
        if isinstance(expr, Elementwise):
            return self._apply(expr.latex, expr.arg)
        if isinstance(expr, DiagMatrix):
            return self._apply(r"\operatorname{diag}", expr.args[0])
        if isinstance(expr, Transpose) and leaf_of(expr.arg) is None:
            group = self._group(expr.arg, self._wrap(expr.arg))
            group.suffix = r"^{\top}"
            return [group]
        return None

    def _term_piece(self, term, first):
        sign = ("- " if is_negative(term) else ("" if first else "+ "))
        body = self._print_signless(term)
        if isinstance(term, MatMul):
            c, factors = coefficient(term)
            piece = Piece(body, lambda: self._product_parts(size(c), factors))
        else:
            piece = self.piece(term, body)
        piece.prefix = sign
        return piece

    def _product_parts(self, c, factors):
        return [Piece(tex) if f is None else self._factor_piece(f, tex)
                for f, tex in self.product_pieces(c, factors)]

    def _factor_piece(self, factor, tex, prefix=""):
        """A factor as printed in a product: in parentheses (a group), or on its own."""
        plain = self._print(factor)
        piece = self.piece(factor, plain) if tex == plain else self._group(factor, tex)
        piece.prefix = prefix + piece.prefix
        return piece

    def _group(self, inner, tex):
        """``(inner)`` printed as ``tex``; opened up with fixed-size parentheses."""
        def parts():
            opening, closing = _big(tex)
            inside = self.piece(inner)
            inner_parts = inside.parts() or [inside]
            inner_parts[0].prefix = opening + inner_parts[0].prefix
            inner_parts[-1].suffix = inner_parts[-1].suffix + closing
            return inner_parts
        return Piece(tex, parts)

    def _apply(self, head, arg):
        """``head(arg)``: a function or diag of a long argument."""
        group = self._group(arg, self._wrap(arg))
        group.prefix = head
        return [group]
