"""The syntax tree of an answer, shared by the LaTeX and the text parsers.

Both parsers turn the characters a student typed into these nodes, and nothing
else; ``build.py`` turns the nodes into SymPy expressions for a given cell.
Every node keeps the columns it came from, so that an error can point at it.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

# limits that keep every answer fast; each refusal is an AnswerSyntaxError
MAX_CHARACTERS = 5_000   # the longest printed gradient (the LSTM's h0) is about 1,300
MAX_TOKENS = 2_000
MAX_DEPTH = 40           # brackets, groups and functions nested in one another
GRAMMAR_DEPTH = 8 * MAX_DEPTH   # rules of the parsers entered in one another (a bracket: ~5)
MAX_DIGITS = 30          # characters of one number
MAX_POWER = 16           # the largest exponent (as the cell syntax: model/parse.py)
MAX_NUMBER_BITS = 1_024  # a number beyond 2**1024 does not fit a float


class AnswerSyntaxError(ValueError):
    """An answer that cannot be read: the message names the column, and ``excerpt``
    shows the answer with a caret under the token."""

    def __init__(self, message, text="", column=None, lexical=False):
        self.reason = message
        self.lexical = lexical     # a character no syntax of this kind has
        self.text = text
        self.column = column
        where = f"column {column + 1}: " if column is not None else ""
        self.summary = f"answer, {where}{message}" if where else f"answer: {message}"
        super().__init__(self.summary + ("\n" + self.excerpt if self.excerpt else ""))

    def one_line(self):
        """The message on one line, the token marked >>like this<< (for the CLI)."""
        if self.column is None or not self.text:
            return self.summary
        flat = " ".join(self.text.split("\n"))
        start = max(0, self.column - 30)
        before = ("..." if start else "") + flat[start:self.column]
        after = flat[self.column:self.column + 30]
        token = after.split(" ", 1)[0][:12] or "(end)"
        rest = after[len(token):] if after else ""
        more = "..." if len(flat) > self.column + 30 else ""
        return f"{self.summary}: {before}>>{token}<<{rest}{more}"

    @property
    def excerpt(self):
        """Two lines: the answer around the column, and a caret under it."""
        if self.column is None or not self.text:
            return ""
        start = max(0, self.column - 50)
        line = self.text[start:start + 80]
        prefix = "..." if start else ""
        shown = prefix + line.replace("\n", " ").replace("\t", " ")
        return f"  {shown}\n  {' ' * (len(prefix) + self.column - start)}^"


@dataclass(frozen=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True)
class Number(Node):
    value: object          # a fractions.Fraction


@dataclass(frozen=True)
class Name(Node):
    """A symbol as typed: ``core`` (``h``, ``W``, ``delta``, ``hat(y)``, ``Wxh``),
    subscripts as written (``("f",)`` for W_f), and what the scripts said about
    time. ``sub_time`` is the subscript read as a time (h_{t-1}) when it can be
    one: the builder decides between a name part (W_f) and a time (h_t)."""
    core: str
    subs: Tuple[str, ...] = ()
    time: object = None    # a SymPy time from ^{(t-1)}, or None
    sub_time: object = None
    bold: bool = False
    marks: Tuple[str, ...] = ()   # superscript marks of the symbol: ("star",) for y^{\star}


@dataclass(frozen=True)
class Constant(Node):
    """``ones`` (\\mathbf{1}), ``identity`` (I), ``zero`` (\\mathbf{0}), ``length`` (T)."""
    kind: str


@dataclass(frozen=True)
class Derivative(Node):
    """dL/d(of): the adjoint of ``of`` (a Name); ``loss_time`` for dL^(t)/d(...)."""
    of: Name
    loss_time: object = None


@dataclass(frozen=True)
class Apply(Node):
    """A function of one argument: tanh, sigmoid, diag, ...; ``prime`` for tanh'."""
    function: str
    arg: Node
    prime: int = 0
    power: Optional[int] = None   # \tanh^2(z)


@dataclass(frozen=True)
class Sum(Node):
    index: str
    lower: object          # SymPy times, None for the default 1 and T
    upper: object
    body: Node


@dataclass(frozen=True)
class Binary(Node):
    """``op`` in + - @ (matrix product) * (entry-wise product) /."""
    op: str
    left: Node
    right: Node
    op_column: int = 0


@dataclass(frozen=True)
class Negate(Node):
    arg: Node


@dataclass(frozen=True)
class Transpose(Node):
    arg: Node


@dataclass(frozen=True)
class Power(Node):
    arg: Node
    exponent: int
    entrywise: bool = False     # ^{\circ n}, .^n, **n; a plain ^n of a square matrix is
                                # its matrix power


@dataclass(frozen=True)
class Equation(Node):
    """``lhs = rhs``: an answer that names what it gives."""
    lhs: Node
    rhs: Node


def walk(node):
    """Every node below ``node`` (iteratively: no recursion on the user's nesting)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        for field in ("arg", "body", "left", "right", "lhs", "rhs", "of"):
            child = getattr(n, field, None)
            if isinstance(child, Node):
                todo.append(child)
