"""From the syntax tree of an answer to SymPy, in the node types of the derivation.

Names become the cell's ``StepVar`` (h^(t-1)), its parameters (``MatrixSymbol``),
adjoints ``Adjoint(StepVar)``; the operations become ``MatMul``, ``MatAdd``,
``HadamardProduct``, ``Transpose``, ``DiagMatrix``, the operations of
``symrnn/ops.py`` and ``SumOverTime``. Shapes are checked as the expression is
built: a product whose shapes do not fit raises ``ShapeMismatch`` (a wrong
answer, not an unreadable one), unless ``repair`` is on, in which case the two
typical repairs are tried and recorded (a transpose added; a diagonal matrix
moved in front of the vector it follows, as in the misprint of Goodfellow's
eq. 10.21).
"""
import math
from dataclasses import dataclass

from sympy import (HadamardPower, HadamardProduct, Identity, Integer, MatMul,
                   MatrixSymbol, OneMatrix, Rational, Symbol, ZeroMatrix)
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..graph.unroll import T, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import OPERATIONS, LogSoftmax, Reciprocal, Softmax, functions
from . import syntax as S
from .nodes import StepLossAdjoint
from .forms import free_symbols, hadamard_factors
from .notation import AMBIGUOUS
from .syntax import AnswerSyntaxError, MAX_NUMBER_BITS, MAX_POWER
from .times import index_symbol

ELEMENTWISE = {**functions(), "step": OPERATIONS["Step"], "sign": OPERATIONS["Sign"]}


class ShapeMismatch(ValueError):
    """An answer whose shapes do not fit: readable, but not a matrix expression."""

    def __init__(self, message, text, column):
        self.reason, self.text, self.column = message, text, column
        super().__init__(f"column {column + 1}: {message}")


@dataclass
class Repair:
    kind: str          # "transpose" or "diag order"
    column: int
    what: str          # the piece, as typed


class _Pending:
    """A constant whose size the answer has not said yet: \\mathbf{1}, \\mathbf{0}, I,
    or a function of one (tanh(0), -1, diag(c 1)); ``row`` for a transposed one,
    ``wrap`` the functions applied to its column (a diagonal matrix made of it last:
    then it is ``square``)."""

    def __init__(self, kind, row=False, wrap=(), diagonal=False):
        self.kind, self.row, self.wrap, self.diagonal = kind, row, tuple(wrap), diagonal

    @property
    def square(self):
        return self.kind == "identity" or self.diagonal

    def then(self, f):
        return _Pending(self.kind, self.row, self.wrap + (f,), self.diagonal)

    def as_diagonal(self):
        return _Pending(self.kind, False, self.wrap + (DiagMatrix,), True)

    def flipped(self):
        return _Pending(self.kind, not self.row, self.wrap, self.diagonal)

    def column(self, rows):
        """The constant made with ``rows`` rows, before a row is transposed."""
        value = Identity(rows) if self.kind == "identity" else \
            (OneMatrix if self.kind == "ones" else ZeroMatrix)(rows, 1)
        for f in self.wrap:
            value = f(value)
        return value

    def make(self, rows):
        value = self.column(rows)
        return value.T if self.row and not self.square else value

    def like(self, shape):
        """The constant with ``shape`` (in a sum or an entry-wise product); ValueError
        when it cannot have it."""
        rows, cols = shape
        if self.square:
            if rows != cols:
                raise ValueError
            return self.make(rows)
        if self.row and rows == 1:
            return self.make(cols)
        if not self.row and cols == 1:
            return self.make(rows)
        value = (OneMatrix if self.kind == "ones" else ZeroMatrix)(rows, cols)
        for f in self.wrap:           # entry-wise functions and numbers: of any shape
            try:
                value = f(value)
            except (TypeError, ValueError, AttributeError):
                raise ValueError from None
        return value


def _is_matrix(v):
    return isinstance(v, MatrixExpr)


def _plain(node):
    """A name with nothing attached: no subscript, time, mark or bold."""
    return isinstance(node, S.Name) and not node.subs and node.time is None \
        and node.sub_time is None and not node.marks


def _shape(v):
    return "x".join(str(d) for d in v.shape)


def _bits(number):
    return math.log2(abs(number.p)) - math.log2(number.q)


class Builder:
    """Builds one answer for one cell and vocabulary; ``repairs`` lists what ``repair``
    changed, ``adjoints`` every adjoint the answer uses."""

    def __init__(self, vocabulary, text, repair=False):
        self.vocab = vocabulary
        self.cell = vocabulary.cell
        self.text = text
        self.expected = {}         # id(node) -> the shape it must have, where known
        self.repair = repair
        self.repairs = []
        self.scopes = []           # (typed index name, symbol) of the sums around
        self.row = vocabulary.notation.layout == "row"
        self.symbols = {s.name: s for s in self.cell.params + self.cell.fixed_values
                        + self.cell.inputs + self.cell.targets + self.cell.variables}
        self.constants = {c.name: c for c in self.cell.constants}
        # the parameters and the named matrices of them: no time, no copies
        self.params = {p.name for p in self.cell.params + self.cell.fixed_values}

    # -- errors ----------------------------------------------------------------------
    def fail(self, node, message):
        raise AnswerSyntaxError(message, self.text, node.start if isinstance(node, S.Node)
                                else node)

    def mismatch(self, node, message):
        raise ShapeMismatch(message, self.text, node)

    def piece(self, node):
        text = " ".join(self.text[node.start:node.end].split())
        return text if len(text) <= 40 else text[:30] + " ... " + text[-6:]

    # -- entry ---------------------------------------------------------------------------
    def build(self, node, shape=None):
        """The SymPy value of ``node``; ``shape`` (in the cell's layout), when known, is
        the size of an answer that is a constant alone (\\mathbf{0}, 0)."""
        if shape is not None and self.row:
            shape = shape[::-1]
        self.expected = {}
        self._expect(node, shape)
        value = self.value(node)
        if isinstance(value, _Pending) and shape is not None:
            try:
                value = value.like(shape)
            except ValueError:
                pass
        if isinstance(value, _Pending):
            self.fail(node, "the size of this constant cannot be told from the answer")
        if _is_matrix(value) and self.row:
            value = value.T
        return value

    def value(self, node):
        method = getattr(self, "_" + type(node).__name__)
        return method(node)

    def _expect(self, node, shape, parent=None):
        """Record the shape ``node`` must have (that of the whole answer, passed down
        through sums, signs, sums over t and entry-wise operations): the length of a
        row or column of ones at the end of a product that its neighbours do not tell."""
        if parent is not None:
            shape = self.expected.get(id(parent))
        if shape is not None:
            self.expected[id(node)] = shape

    # -- leaves --------------------------------------------------------------------------
    def _Number(self, node):
        value = Rational(node.value.numerator, node.value.denominator)
        if value != 0 and not -1022 <= _bits(value) < MAX_NUMBER_BITS:
            self.fail(node, "the number is beyond the range of a float")
        return value

    def _Constant(self, node):
        # in rows every vector is a row: 1 is a row of ones, 1^T a column
        return _Pending(node.kind, row=self.row and node.kind != "identity")

    def _time(self, node, time):
        """``time`` checked: only t, T and the indices of the sums around."""
        if time is None:
            return self.scopes[-1][1] if self.scopes else t
        allowed = {t, T} | {sym for _, sym in self.scopes}
        for s in time.free_symbols:
            if s not in allowed:
                bound = {name: sym for name, sym in self.scopes}
                if s.name in bound:
                    time = time.xreplace({s: bound[s.name]})
                    continue
                self.fail(node, f"the time index {s.name} is not the index of a sum around it")
        return time

    def _resolve(self, node):
        """(kind, cell name, time) of a typed name; kind "name" or "adjoint"."""
        found, time = None, node.time
        if node.subs:
            found = self.vocab.lookup(node.core, node.subs, node.marks)
            if node.sub_time is not None and time is None and self._needs_time(found) \
                    and self.vocab.lookup(node.core, node.subs[:-1], node.marks) is not None:
                found = None    # o_{1} in subscript time: o at step 1, not o1 without a time
            if found is None and node.sub_time is not None:
                if time is not None:
                    self.fail(node, f"{self.piece(node)} has two times")
                found = self.vocab.lookup(node.core, node.subs[:-1], node.marks)
                time = node.sub_time
        else:
            found = self.vocab.lookup(node.core, (), node.marks)
            if node.sub_time is not None:
                if time is not None:
                    self.fail(node, f"{self.piece(node)} has two times")
                time = node.sub_time
        if found is AMBIGUOUS:
            self.fail(node, f"{self.piece(node)!r} could be more than one of the cell's names")
        return found, time

    def _needs_time(self, found):
        """Is ``found`` a value of a step (a variable or its adjoint), which has a time?"""
        return found not in (None, AMBIGUOUS) and found[0] in ("name", "adjoint") \
            and found[1] not in self.params

    def _Name(self, node):
        found, time = self._resolve(node)
        if found is None:
            if not node.subs and node.time is None:
                if node.core == "T":
                    return T
                if node.core == "I":
                    return _Pending("identity")
            names = ", ".join(self.vocab.names)
            self.fail(node, f"unknown symbol {self.piece(node)!r}; the cell's names are {names}")
        kind, name = found
        if kind == "size":
            if node.time is not None or node.sub_time is not None:
                self.fail(node, f"the size {self.piece(node)} has no time")
            return next(s for s in self.cell.sizes if str(s) == name)
        if kind == "constant":
            if node.time is not None or node.sub_time is not None and not node.subs:
                self.fail(node, f"the constant {self.piece(node)} has no time")
            return self.constants[name]
        if kind == "adjoint":
            var = self.symbols[name]
            return self._oriented(Adjoint(StepVar(name, self._time(node, time), *var.shape)))
        sym = self.symbols[name]
        if name in self.params:
            return self._oriented(sym)          # a copy W^(t) has the value of W
        if name == "L":
            self.fail(node, "the loss L is not a vector")
        return self._oriented(StepVar(name, self._time(node, time), *sym.shape))

    def _oriented(self, value):
        """In the row layout, a typed symbol is the transpose of the cell's."""
        return value.T if self.row else value

    def _Derivative(self, node):
        of = node.of
        if of.core == "L" and not of.marks and (of.time is not None and not of.subs
                                                or of.sub_time is not None and len(of.subs) <= 1):
            # dL/dL^(t+1): the derivation's adjoint of a step's loss (1 up to T), which a
            # loss that reads prev(h) passes back through
            loss = self.cell.loss_var
            time = self._time(of, of.time if of.time is not None else of.sub_time)
            return Adjoint(StepVar(loss.name, time, 1, 1))
        found, time = self._resolve(of)
        if found is None or found[0] != "name":
            self.fail(of, f"unknown symbol {self.piece(of)!r} in the derivative")
        name = found[1]
        sym = self.symbols[name]
        if name in self.params:
            var = sym if time is None else StepVar(name, self._time(of, time), *sym.shape)
        else:
            var = StepVar(name, self._time(of, time), *sym.shape)
        if node.loss_time is not None:
            loss_time = self._time(node, node.loss_time)
            if not isinstance(var, StepVar) or var.time != loss_time:
                self.fail(node, "dL^(s)/dv is understood for v at the same step s only, "
                                "e.g. dL^(t)/dh^(t)")
            return self._oriented(StepLossAdjoint(var, loss_time))
        return self._oriented(Adjoint(var))

    # -- sums ------------------------------------------------------------------------------
    def _Sum(self, node):
        symbol = index_symbol(node.index) if node.index in ("t",) else \
            Symbol(node.index, integer=True)
        if any(name == node.index for name, _ in self.scopes):
            self.fail(node, f"two sums over {node.index}, one inside the other")
        lower = Integer(1) if node.lower is None else self._time(node, node.lower)
        upper = T if node.upper is None else self._time(node, node.upper)
        for limit in (lower, upper):
            if limit.free_symbols - {T} - {s for _, s in self.scopes}:
                self.fail(node, "the limits of a sum may use T, not the index")
        self.scopes.append((node.index, symbol))
        self._expect(node.body, None, node)
        try:
            body = self.value(node.body)
        finally:
            self.scopes.pop()
        if not _is_matrix(body):
            self.fail(node.body, "the term of the sum is a number, not a matrix")
        if symbol != t and t not in free_symbols(body):
            body, symbol = body.xreplace({symbol: t}), t    # the index is t, as derived
        if self.row:
            body = body.T     # sums are built in the cell's layout; build() turns them back
            return SumOverTime(body, symbol, lower, upper).T
        return SumOverTime(body, symbol, lower, upper)

    # -- operations --------------------------------------------------------------------------
    def _Negate(self, node):
        self._expect(node.arg, None, node)
        value = self.value(node.arg)
        if isinstance(value, _Pending):
            return value.then(lambda column: -column)
        return -value

    def _Transpose(self, node):
        value = self.value(node.arg)
        if isinstance(value, _Pending):
            return value.flipped()
        return value.T if _is_matrix(value) else value

    def _Power(self, node):
        value = self.value(node.arg)
        n = node.exponent
        if isinstance(value, _Pending):
            return value.then(lambda v: v if n == 1 else HadamardPower(v, n))
        if not _is_matrix(value):
            if value != 0 and abs(value) != 1 and getattr(value, "is_Rational", False) \
                    and n * abs(_bits(value)) > MAX_NUMBER_BITS:
                self.fail(node, "the power is beyond the range of a float")
            return value ** n
        rows, cols = value.shape
        if rows == cols != 1 and not node.entrywise:    # P^2 of a square matrix: P P
            return value if n == 1 else MatMul(*[value] * n)
        if rows != 1 and cols != 1:
            self.fail(node, f"{self.piece(node)}: an entry-wise power of a {_shape(value)} "
                            "matrix; write the product out, or \\odot for entry by entry")
        total, inner = n, value
        while isinstance(inner, HadamardPower):   # (h^2)^2 ...: the exponents multiply
            total, inner = total * int(inner.exp), inner.base
        if total > MAX_POWER:
            self.fail(node, f"the entry-wise power is {total}; at most {MAX_POWER}")
        return value if n == 1 else HadamardPower(value, n)

    def _Apply(self, node):
        if node.function != "diag":
            self._expect(node.arg, None, node)
        arg = self.value(node.arg)
        if not _is_matrix(arg) and not isinstance(arg, _Pending):
            if arg.free_symbols - set(self.cell.sizes) - set(self.cell.constants):
                self.fail(node.arg, f"the argument of {node.function} must be a vector")
            # tanh(0): a function of a constant vector, its size told by what it meets
            arg = _Pending("zero") if arg == 0 else _Pending("ones").then(
                lambda column, c=arg: c * column if c != 1 else column)
        if isinstance(arg, _Pending):
            if arg.square:
                self.fail(node.arg, f"the argument of {node.function} must be a vector")
            if node.function == "diag":         # diag(k 1): k I, its size from its neighbours
                if node.prime:
                    self.fail(node, "diag has no derivative")
                return arg.as_diagonal()
            return arg.then(lambda column: self._applied(node, column))
        row = arg.shape[0] == 1 and arg.shape[1] != 1
        column = arg.T if row else arg
        if column.shape[1] != 1:
            self.fail(node.arg, f"the argument of {node.function} must be a vector, not a "
                                f"{_shape(arg)} matrix")
        if node.function == "diag":
            if node.prime:
                self.fail(node, "diag has no derivative")
            return DiagMatrix(column)
        result = self._applied(node, column)
        return result.T if row else result

    def _applied(self, node, column):
        """The function of ``node`` applied to a column."""
        if node.function == "log" and isinstance(column, Softmax):
            result = LogSoftmax(column.arg)
        else:
            op = ELEMENTWISE.get(node.function)
            if op is None:
                self.fail(node, f"unknown function {node.function}")
            result = self._derivative(node, op, column) if node.prime else op(column)
        if node.power:
            result = HadamardPower(result, node.power)
        return result

    def _derivative(self, node, op, x):
        """op'(x) as a vector: the factor of the operation's adjoint rule besides g."""
        g = MatrixSymbol("_g", *x.shape)
        rule = op.vjp(op(x), x, g)
        factors = hadamard_factors(rule) if rule is not None else []
        if g not in factors:
            self.fail(node, f"{node.function}' is not an entry-wise function (its derivative "
                            "is a matrix)")
        factors.remove(g)
        if not factors:
            return OneMatrix(*x.shape)
        return factors[0] if len(factors) == 1 else HadamardProduct(*factors)

    def _Binary(self, node):
        if node.op == "@":
            return self._chain(node)
        # a + b - c + ...: the left spine walked without recursion (long sums stay flat)
        family = ("+", "-") if node.op in "+-" else ("*", "/")
        spine = []
        n = node
        while isinstance(n, S.Binary) and n.op in family:
            spine.append(n)
            self._expect(n.right, None, node)
            n = n.left
        self._expect(n, None, node)
        value = self.value(n)
        for join in reversed(spine):
            right = self.value(join.right)
            value = getattr(self, {"+": "_add", "-": "_add", "*": "_entrywise",
                                   "/": "_divide"}[join.op])(join, value, right)
        return value

    def _settle(self, node, a, b):
        """Give a pending constant the shape of the other operand (sums, entry-wise)."""
        try:
            if isinstance(a, _Pending) and _is_matrix(b):
                a = a.like(b.shape)
            if isinstance(b, _Pending) and _is_matrix(a):
                b = b.like(a.shape)
        except ValueError:
            self.mismatch(node.op_column, "this constant cannot have the shape of the other "
                                          "operand")
        if isinstance(a, _Pending) or isinstance(b, _Pending):
            self.fail(node, "the size of this constant cannot be told from the answer")
        return a, b

    @staticmethod
    def _pending_pair(a, b, op):
        """Two constants of unknown size combined: one constant (2 1 (.) 3 1), or None."""
        if not (isinstance(a, _Pending) and isinstance(b, _Pending)) or a.square or b.square \
                or a.row != b.row:
            return None
        return _Pending("ones", a.row, (lambda v: op(a.column(v.shape[0]),
                                                      b.column(v.shape[0])),))

    def _add(self, node, a, b):
        both = self._pending_pair(a, b, (lambda x, y: x + y) if node.op == "+"
                                  else (lambda x, y: x - y))
        if both is not None:
            return both
        number = self._pending_and_number(node, a, b)
        if number is not None:
            return number
        a, b = self._settle(node, a, b)
        ma, mb = _is_matrix(a), _is_matrix(b)
        if ma and not mb:
            b = OneMatrix(*a.shape) if b == 1 else b * OneMatrix(*a.shape)
        elif mb and not ma:
            a = OneMatrix(*b.shape) if a == 1 else a * OneMatrix(*b.shape)
        elif ma and mb and a.shape != b.shape:
            self.mismatch(node.op_column, f"{self.piece(node.left)!r} ({_shape(a)}) and "
                                          f"{self.piece(node.right)!r} ({_shape(b)}) cannot "
                                          "be added")
        return a + b if node.op == "+" else a - b

    @staticmethod
    def _pending_and_number(node, a, b):
        """A constant column of unknown size plus a number c (c 1 of that size): still a
        constant of unknown size ((-1/4 1).^2 + 1), or None."""
        def number(v):
            return not _is_matrix(v) and not isinstance(v, _Pending)
        sign = 1 if node.op == "+" else -1
        if isinstance(a, _Pending) and not a.square and number(b):
            return a.then(lambda column: column + sign * b * OneMatrix(*column.shape))
        if isinstance(b, _Pending) and not b.square and number(a):
            return b.then(lambda column: a * OneMatrix(*column.shape) + sign * column)
        return None

    def _chain(self, node):
        """A product of several factors: a row or column of ones takes its length from
        its neighbours (y 1^T v: the 1^T has v's length), then the products."""
        nodes = []
        n = node
        while isinstance(n, S.Binary) and n.op == "@":
            nodes.append(n)
            n = n.left
        operands = [n] + [b.right for b in reversed(nodes)]
        joins = list(reversed(nodes))          # joins[i] joins operands[..i] and operands[i+1]
        operands, joins = self._symbols_of_words(operands, joins)
        vals = [self.value(o) for o in operands]
        shape = self.expected.get(id(node))
        while True:     # until no constant gets its size: each sized one tells its neighbours
            before_pass = list(vals)
            self._size_by_neighbours(vals)
            if vals == before_pass:
                self._size_by_answer(vals, shape)
            if vals == before_pass:
                break
        value = vals[0]
        for join, v in zip(joins, vals[1:]):
            value = self._matmul(join, value, v)
        return value

    @staticmethod
    def _size_by_neighbours(vals):
        for i, v in enumerate(vals):
            if not isinstance(v, _Pending):
                continue
            after = vals[i + 1] if i + 1 < len(vals) and _is_matrix(vals[i + 1]) else None
            before = vals[i - 1] if i > 0 and _is_matrix(vals[i - 1]) else None
            if v.square:
                size = before.shape[1] if before is not None else \
                    after.shape[0] if after is not None else None
                if size is not None:
                    vals[i] = v.make(size)
            elif v.row and after is not None:
                vals[i] = v.make(after.shape[0])
            elif not v.row and before is not None:
                vals[i] = v.make(before.shape[1])

    @staticmethod
    def _size_by_answer(vals, shape):
        """A constant at an end of the product that its neighbours do not size: the
        product has the shape the answer must have (c 1^T, an outer product)."""
        matrices = [i for i, v in enumerate(vals) if _is_matrix(v) or isinstance(v, _Pending)]
        if shape is None or not matrices:
            return
        if len(matrices) == 1 and isinstance(vals[matrices[0]], _Pending):
            try:                               # 0.1 1: the answer's shape, whatever it is
                vals[matrices[0]] = vals[matrices[0]].like(shape)
            except ValueError:
                pass
            return
        first, last = matrices[0], matrices[-1]
        if isinstance(vals[last], _Pending) and (vals[last].row or vals[last].square):
            vals[last] = vals[last].make(shape[1])
        elif isinstance(vals[first], _Pending) and not vals[first].row:
            vals[first] = vals[first].make(shape[0])

    def _symbols_of_words(self, operands, joins):
        """Plain names side by side that make one symbol of the cell (\\Delta t, the
        constant dt) joined into one name."""
        out, out_joins, i = [], [], 0
        while i < len(operands):
            node, take = operands[i], 1
            for k in (3, 2):
                run = operands[i:i + k]
                if len(run) == k and all(_plain(o) for o in run) and all(
                        joins[i + j].op_column == run[j + 1].start for j in range(k - 1)):
                    core = " ".join(o.core for o in run)
                    if self.vocab.lookup(core) is not None:
                        node, take = S.Name(run[0].start, run[-1].end, core), k
                        break
            if out:
                out_joins.append(joins[i - 1])
            out.append(node)
            i += take
        return out, out_joins

    def _scaled(self, a, b):
        """A number times a constant whose size is not known yet: still not known."""
        for p, c in ((a, b), (b, a)):
            if isinstance(p, _Pending) and not isinstance(c, _Pending) and not _is_matrix(c):
                return p.then(lambda value, c=c: c * value)
        return None

    def _matmul(self, node, a, b):
        scaled = self._scaled(a, b)
        if scaled is not None:
            return scaled
        if isinstance(a, _Pending) and _is_matrix(b):
            a = a.make(b.shape[0]) if a.square or a.row else None
            if a is None:
                self.mismatch(node.op_column, "a column of ones cannot multiply from the left")
        if isinstance(b, _Pending) and _is_matrix(a):
            b = b.make(a.shape[1]) if b.square or not b.row else None
            if b is None:
                self.mismatch(node.op_column, "a row of ones cannot multiply from the right")
        if isinstance(a, _Pending) or isinstance(b, _Pending):
            self.fail(node, "the size of this constant cannot be told from the answer")
        if not (_is_matrix(a) and _is_matrix(b)):
            return a * b
        if a.shape[1] == b.shape[0]:
            return MatMul(a, b).doit(deep=False) if isinstance(a, Identity) or \
                isinstance(b, Identity) else a * b
        if a.shape == (1, 1) and b.shape[1] == 1 or b.shape == (1, 1) and a.shape[0] == 1:
            return b * a                      # a 1x1 value scales a column or a row
        return self._repaired_product(node, a, b)

    def _repaired_product(self, node, a, b):
        left, right = self.piece(node.left), self.piece(node.right)
        message = (f"{left!r} ({_shape(a)}) times {right!r} ({_shape(b)}): the shapes do "
                   "not fit")
        if not self.repair:
            self.mismatch(node.op_column, message)
        if isinstance(b, DiagMatrix) and a.shape[1] == 1 and a.shape[0] == b.shape[0]:
            # W^T g diag(v), as eq. 10.21 is printed: the diagonal belongs before g
            self.repairs.append(Repair("diag order", node.right.start, right))
            if isinstance(a, MatMul) and a.args[-1].shape == a.shape:
                return MatMul(*a.args[:-1], b, a.args[-1])
            return b * a
        if a.shape[1] == b.shape[1]:
            self.repairs.append(Repair("transpose", node.right.start, right))
            return a * b.T
        if a.shape[0] == b.shape[0]:
            self.repairs.append(Repair("transpose", node.left.start, left))
            return a.T * b
        self.mismatch(node.op_column, message)

    def _entrywise(self, node, a, b):
        scaled = self._scaled(a, b)
        if scaled is not None:
            return scaled
        both = self._pending_pair(a, b, lambda x, y: HadamardProduct(x, y))
        if both is not None:
            return both
        a, b = self._settle(node, a, b)
        ma, mb = _is_matrix(a), _is_matrix(b)
        if not (ma and mb):
            return a * b
        if a.shape == b.shape:
            return HadamardProduct(*(hadamard_factors(a) + hadamard_factors(b)))
        if a.shape == (1, 1) and b.shape[1] == 1 or b.shape == (1, 1) and a.shape[1] == 1:
            return b * a if a.shape == (1, 1) else a * b
        if self.repair and a.shape == b.shape[::-1]:
            self.repairs.append(Repair("transpose", node.right.start, self.piece(node.right)))
            return HadamardProduct(a, b.T)
        self.mismatch(node.op_column, f"{self.piece(node.left)!r} ({_shape(a)}) and "
                                      f"{self.piece(node.right)!r} ({_shape(b)}): an "
                                      "entry-wise product needs equal shapes")

    def _divide(self, node, a, b):
        if isinstance(a, _Pending) and not isinstance(b, _Pending) and not _is_matrix(b):
            if b == 0:
                self.fail(node.right, "division by zero")
            return a.then(lambda value, b=b: value / b)
        a, b = self._settle(node, a, b)
        ma, mb = _is_matrix(a), _is_matrix(b)
        if not mb:
            if b == 0:
                self.fail(node.right, "division by zero")
            return a / b
        reciprocal = Reciprocal
        if b.shape[1] != 1 and b.shape[0] != 1:
            self.fail(node.right, "division by a matrix")
        column = b.T if b.shape[1] != 1 else b
        inverse = reciprocal(column)
        inverse = inverse.T if column is not b else inverse
        if not ma:
            return a * inverse
        if a.shape != b.shape:
            self.mismatch(node.op_column, f"{_shape(a)} divided entry by entry by {_shape(b)}")
        return HadamardProduct(a, inverse)

    def _Equation(self, node):
        self.fail(node, "an equation inside an equation")


__all__ = ["Builder", "Repair", "ShapeMismatch"]
