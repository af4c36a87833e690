"""Reading an answer: the syntax (LaTeX or text), the left side, the shapes."""
from dataclasses import dataclass, field

from sympy import Identity, ZeroMatrix
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..model.nodes import Constant
from . import syntax as S
from .build import Builder, ShapeMismatch
from .latex import parse_latex
from .syntax import AnswerSyntaxError
from .text import parse_text

SYNTAXES = ("auto", "latex", "text")


@dataclass
class Parsed:
    """An answer read for one cell: ``expr`` (None when its shapes do not fit even
    repaired), the ``repairs`` that made it fit, the ``shape_error`` if any."""
    text: str
    syntax: str
    expr: object = None
    lhs: object = None
    repairs: list = field(default_factory=list)
    shape_error: ShapeMismatch = None


def _order(text, syntax):
    if syntax not in SYNTAXES:
        raise ValueError(f"syntax: must be one of {', '.join(SYNTAXES)}, got {syntax!r}")
    if syntax != "auto":
        return [syntax]
    latex_like = "\\" in text or "{" in text and "sum_{" not in text or "$" in text
    return ["latex", "text"] if latex_like else ["text", "latex"]


PARSERS = {"latex": parse_latex, "text": parse_text}


def read(text, vocabulary, syntax="auto", shape=None):
    """``Parsed`` for ``text``; AnswerSyntaxError (a ValueError with the column and a
    caret line) when no syntax reads it. ``shape``: the shape the answer should have,
    the size of an answer that is a constant alone (0, \\mathbf{0})."""
    if not isinstance(text, str):
        raise ValueError(f"answer: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise AnswerSyntaxError("the answer is empty")
    errors = []
    for name in _order(text, syntax):
        try:
            tree = PARSERS[name](text)
            return _built(text, name, tree, vocabulary, shape)
        except AnswerSyntaxError as e:
            errors.append(e)
        except RecursionError:
            errors.append(AnswerSyntaxError("nested too deeply", text, 0))
    # the preferred syntax says what went wrong, unless it met a character it does not
    # have (the other one may have read further: ∑ is LaTeX)
    first = errors[0]
    if first.lexical and len(errors) > 1 and (errors[1].column or 0) > (first.column or 0):
        raise errors[1]
    raise first


def _built(text, name, tree, vocabulary, shape):
    parsed = Parsed(text, name)
    rhs, lhs = tree, None
    if isinstance(tree, S.Equation):
        rhs, lhs = tree.rhs, tree.lhs
        if not isinstance(lhs, S.Derivative):
            raise AnswerSyntaxError("the left side of '=' must be the derivative asked for, "
                                    "e.g. \\frac{\\partial L}{\\partial W}", text, lhs.start)
        parsed.lhs = Builder(vocabulary, text).build(lhs)
    try:
        parsed.expr = Builder(vocabulary, text).build(rhs, shape)
    except ShapeMismatch as e:
        parsed.shape_error = e
        builder = Builder(vocabulary, text, repair=True)
        try:
            parsed.expr = builder.build(rhs, shape)
            parsed.repairs = builder.repairs
        except ShapeMismatch:
            parsed.expr = None
    if shape is not None and parsed.expr is not None \
            and not isinstance(parsed.expr, MatrixExpr):
        matrix = as_matrix(parsed.expr, shape)
        parsed.expr = parsed.expr if matrix is None else matrix
    return parsed   # expr may be a number: as_matrix decides (0 is a zero matrix)


def as_matrix(value, shape):
    """A number answer as a matrix of ``shape``: 0 is one, and any number is a 1x1 one."""
    if isinstance(value, MatrixExpr):
        return value
    if value == 0:
        return ZeroMatrix(*shape)
    if tuple(shape) == (1, 1) and not value.free_symbols - set(value.atoms(Constant)):
        return value * Identity(1)
    return None
