"""A cell from a few lines of text: the friendly front door to ``Cell``.

    params: W[D,D] U[D,N] b[D] V[M,D]
    input:  x[N]
    target: y[M]
    state:  h[D]
    z = W @ prev(h) + U @ x + b
    h = tanh(z)
    o = V @ h
    yhat = softmax(o)
    loss = -y.T @ log_softmax(o)

Declarations (any order, a keyword may repeat; names separated by spaces or
commas; ``[rows, cols]`` or ``[rows]`` for a column; a size is a name such as
``D`` or a positive integer):

    params: ...    (also ``param:``, ``parameters:``) shared across steps
    input:  ...    (also ``inputs:``)   the per-step input x^(t)
    target: ...    (also ``targets:``)  the per-step target y^(t)
    state:  ...    (also ``states:``)   carried to the next step
    const:  dt = 0.1 gamma = 0.5   (also ``constant:``, ``constants:``) named
                   numbers: symbols in the derivation and on the sheet, numbers
                   in the generated code

Equations ``name = expression``, one a line, computed in order; the line
``loss = ...`` is the 1x1 loss of one step. A value of a step is a column
vector (or 1x1); a named matrix (or row), such as ``Ab = A - A.T - 0.05 *
eye(D)``, reads only parameters and named matrices and is computed once, not
per step. In an expression:

    A @ B          matrix product
    a * b          element-wise (Hadamard) product; a 1x1 value times a vector
                   scales it; a number times anything is a coefficient
    a + b, a - b   sums of equal shapes; a number c is c times a matrix of ones,
                   so ``1 - u`` is the vector of ones minus u
    a / 2, a ** 2  division by a number, element-wise integer power
    a.T            transpose
    prev(h)        h^(t-1) for a state h; ``h`` alone is h^(t), once computed
    eye(D)         the D x D identity matrix (a constant; D a declared size)
    ones(D)        the column of D ones (a constant)
    sum(v)         the sum of the entries of v, 1x1 (written 1^T v)
    tanh sigmoid relu softmax log_softmax exp log softplus abs sqrt
                   (of a column vector; see symrnn/ops.py)

``#`` starts a comment. Sizes of variables come from their expressions; a
state's declared size must match its equation. Reserved names: ``loss``, ``L``,
``T``, ``t``, the functions, and the names the generated code derives from the
cell's (``h0``, ``h_prev``, ``h_all``, ``d_z``, ``grad_W``, ...).

The text is never evaluated as Python: it is parsed with :mod:`ast` and only
the constructs above are turned into SymPy expressions. Every error is a
``CellSyntaxError`` (a ``ValueError``) naming the line and the token.
"""
import ast
import keyword
import math
import re
from decimal import Decimal
from fractions import Fraction

from sympy import (HadamardPower, HadamardProduct, Identity, Integer, MatrixSymbol, OneMatrix,
                   Rational, Symbol)
from sympy.matrices.expressions.matexpr import MatrixExpr

from .cell import CODE_NAMES, Cell, bad_coefficient, generated_names, plain_name
from .constant import constant, uniform
from ..ops import Reciprocal, functions
from .nodes import Constant, LogSoftmax, Prev, constant_values

FUNCTIONS = functions()  # the operations of symrnn/ops.py, by name
SECTIONS = {"param": "params", "params": "params", "parameters": "params",
            "input": "inputs", "inputs": "inputs", "target": "targets", "targets": "targets",
            "state": "states", "states": "states",
            "const": "constants", "constant": "constants", "constants": "constants"}
LOSS = "loss"
# names the engine or the generated code uses for itself
# the functions of the text syntax that are no operation of ops.py: the matrix
# algebra writes them (eye(D) the identity, ones(D) a column of ones, sum(v) = 1^T v)
STRUCTURAL = ("prev", "eye", "ones", "sum")
RESERVED = CODE_NAMES | {LOSS, "L", "T", "t"} | set(STRUCTURAL) | set(FUNCTIONS)


# limits that keep every answer fast (each refusal is a CellSyntaxError)
MAX_CHARACTERS = 20_000    # the whole text (the LSTM is 600); parsing the longest takes ~2 s
MAX_EQUATIONS = 1_000      # lines with an equation
MAX_NODES = 2_000          # names, numbers and operations on one line
MAX_DEPTH = 60             # operations nested in one another on one line
MAX_POWER = 16             # the largest exponent of an element-wise power
MAX_EXPONENT_BITS = 1_024  # a number beyond 2**1024 does not fit a float

_HEADER = re.compile(r"\s*([A-Za-z_]\w*)\s*:(.*)$")
_DECLARATION = re.compile(r"\s*(?:,\s*)?([A-Za-z_]\w*)\s*(?:\[([^\]]*)\])?\s*")
_NUMBER = re.compile(r"[0-9]+$")
_CONSTANT = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)")


def _strip_comment(line):
    return line.split("#", 1)[0].rstrip()


class CellSyntaxError(ValueError):
    """The text of a cell is not valid: the message names the line and the token."""


def _fail(lineno, message):
    raise CellSyntaxError(f"line {lineno}: {message}")


def _check_size(lineno, tree):
    """Refuse a line with too many operations, or nested too deeply, before any
    SymPy work (iteratively: no recursion on the user's nesting)."""
    nodes, todo = 0, [(tree, 0)]
    while todo:
        node, depth = todo.pop()
        nodes += 1
        if nodes > MAX_NODES:
            _fail(lineno, f"the line has more than {MAX_NODES} names, numbers and operations; "
                          "split it into several equations")
        if depth > MAX_DEPTH:
            _fail(lineno, f"expression nested more than {MAX_DEPTH} deep; "
                          "split it into several equations")
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _bits(number):
    """log2 |number| for a nonzero SymPy Rational, without computing a float of it."""
    return math.log2(abs(number.p)) - math.log2(number.q)


def _exact(number):
    """A number of the text, its named constants replaced by their values."""
    values = constant_values(number)
    return number.xreplace(values) if values else number


def _is_matrix(value):
    return isinstance(value, MatrixExpr)


def _shape(value):
    return "(" + ", ".join(map(str, value.shape)) + ")"


class _Parser:
    def __init__(self, sizes):
        self.sizes = dict(sizes or {})
        self.declared = {"params": [], "inputs": [], "targets": [], "states": []}
        self.where = {}        # name -> (line, "parameter" / "input" / ... / "variable")
        self.known = {}        # name -> MatrixSymbol usable in expressions now
        self.states = {}       # name -> declared MatrixSymbol
        self.constants = {}    # name -> Constant
        self.fixed = []        # (lhs, rhs): named matrices of the parameters, computed once
        self.fixed_reads = set()  # what they may read: parameters and named matrices
        self.equations = []    # (lhs, rhs, line)
        self.loss = None

    # -- declarations ----------------------------------------------------------
    def size(self, lineno, token):
        token = token.strip()
        if token in self.sizes:
            return self.sizes[token]
        if _NUMBER.match(token):
            if int(token) < 1:
                _fail(lineno, f"size {token!r} must be at least 1")
            return Integer(int(token))
        if not token.isidentifier() or keyword.iskeyword(token):
            _fail(lineno, f"{token!r} is not a size (a name such as D or a positive integer)")
        if token in ("T", "t"):
            _fail(lineno, f"size {token!r}: T and t are the sequence length and the step; "
                          "choose another name")
        symbol = Symbol(token, integer=True, positive=True)
        self.sizes[token] = symbol
        return symbol

    def declare(self, lineno, section, text):
        kind = {"params": "parameter", "inputs": "input", "targets": "target",
                "states": "state"}[section]
        pos, found = 0, False
        text = text.rstrip()
        while pos < len(text):
            m = _DECLARATION.match(text, pos)
            if not m or m.end() == pos:
                bad = text[pos:].strip().split()[0]
                _fail(lineno, f"unexpected {bad!r} in the {section} declaration; "
                              "write name[rows, cols] or name[rows]")
            pos, found = m.end(), True
            name, dims = m.group(1), m.group(2)
            self.check_name(lineno, name)
            if dims is None:
                _fail(lineno, f"{kind} {name!r} needs a shape, e.g. {name}[D] or {name}[D, N]")
            parts = dims.split(",")
            if len(parts) not in (1, 2) or not all(p.strip() for p in parts):
                _fail(lineno, f"{name}[{dims}]: a shape is [rows] or [rows, cols]")
            shape = [self.size(lineno, p) for p in parts] + ([Integer(1)] if len(parts) == 1 else [])
            if section != "params" and shape[1] != 1:
                _fail(lineno, f"{kind} {name!r} must be a column vector, e.g. {name}[{parts[0].strip()}]")
            if name in self.where:
                _fail(lineno, f"{name!r} is declared twice (first on line {self.where[name][0]})")
            self.where[name] = (lineno, kind)
            symbol = MatrixSymbol(name, *shape)
            self.declared[section].append(symbol)
            if section == "params":
                self.fixed_reads.add(symbol)
            if section == "states":
                self.states[name] = symbol
            else:
                self.known[name] = symbol
        if not found:
            _fail(lineno, f"'{section}:' declares nothing")

    def declare_constants(self, lineno, text):
        """``const: dt = 0.1 gamma = 0.5``: names and exact values (numbers, or
        arithmetic of numbers and the constants declared before), a value running
        up to the next ``name =``."""
        heads = list(_CONSTANT.finditer(text))
        if not heads or text[:heads[0].start()].strip():
            bad = (text.strip() or "nothing").split()[0]
            _fail(lineno, f"unexpected {bad!r} in the const declaration; write "
                          "const: name = number, e.g. const: dt = 0.1 gamma = 0.5")
        for head, after in zip(heads, heads[1:] + [None]):
            name = head.group(1)
            written = text[head.end():after.start() if after else len(text)].strip()
            written = written[:-1].rstrip() if written.endswith(",") else written
            self.check_name(lineno, name)
            if name in self.where:
                _fail(lineno, f"{name!r} is declared twice (first on line {self.where[name][0]})")
            try:
                tree = ast.parse(written, mode="eval")
            except SyntaxError:
                tree = None
            if tree is None or not written:
                _fail(lineno, f"constant {name}: {written!r} is not a number")
            self.lineno, self.source = lineno, written
            _check_size(lineno, tree)
            value = self.expr(tree.body)
            value = None if _is_matrix(value) else _exact(value)
            if value is None or not value.is_Rational:
                _fail(lineno, f"constant {name}: {written!r} is not a number")
            self.where[name] = (lineno, "constant")
            self.constants[name] = Constant(name, value)

    def check_name(self, lineno, name):
        if not plain_name(name):
            _fail(lineno, f"{name!r} is not a usable name (an identifier not starting with '_')")
        if name in RESERVED:
            _fail(lineno, f"{name!r} is reserved; choose another name")

    # -- equations -----------------------------------------------------------------
    def equation(self, lineno, line):
        try:
            tree = ast.parse(line.strip(), mode="exec")
        except SyntaxError as e:
            col = (e.offset or 1) - 1
            near = line.strip()[max(col - 1, 0):][:12] or line.strip()
            _fail(lineno, f"invalid syntax near {near!r}")
        except (RecursionError, MemoryError):
            _fail(lineno, "expression nested too deeply")
        source = line.strip()
        _check_size(lineno, tree)
        if (len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign)
                or len(tree.body[0].targets) != 1):
            _fail(lineno, f"expected an equation 'name = expression' or a declaration, got {source!r}")
        node = tree.body[0]
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            _fail(lineno, f"the left-hand side {ast.get_source_segment(source, target)!r} "
                          "must be a single name")
        name = target.id
        self.lineno, self.source = lineno, source
        try:
            rhs = self.expr(node.value)
        except RecursionError:
            _fail(lineno, "expression nested too deeply")
        if not _is_matrix(rhs):
            _fail(lineno, f"the right-hand side of {name} is a number, not a vector")
        big = bad_coefficient(rhs)  # SymPy multiplies coefficients together: 2**600 * (2**600 * x)
        if big is not None:
            _fail(lineno, "a coefficient is beyond the range of a float (about 1e-308 to 1e308)")
        if name == LOSS:
            if self.loss is not None:
                _fail(lineno, f"the loss is defined twice (first on line {self.loss[1]})")
            if rhs.shape != (1, 1):
                _fail(lineno, f"the loss must be 1x1, its right-hand side has shape {_shape(rhs)}")
            self.loss = (rhs, lineno)
            return
        if name in self.where:
            first, kind = self.where[name]
            if kind == "state":
                if name in self.known:
                    _fail(lineno, f"state {name!r} is computed twice (first on line "
                                  f"{self._defined[name]})")
                lhs = self.states[name]
                if rhs.shape != lhs.shape:
                    _fail(lineno, f"state {name!r} is declared {_shape(lhs)} on line {first} but "
                                  f"its right-hand side has shape {_shape(rhs)}")
            elif kind in ("variable", "named matrix"):
                _fail(lineno, f"{name!r} is computed twice (first on line {first}); "
                              "use a new name")
            else:
                _fail(lineno, f"cannot assign to the {kind} {name!r} (declared on line {first})")
        else:
            self.check_name(lineno, name)
            lhs = MatrixSymbol(name, *rhs.shape)
            if rhs.shape[1] != 1:  # a matrix (or row) of the parameters, computed once
                per_step = sorted(f"prev({p.state.name})" for p in rhs.atoms(Prev)) or sorted(
                    str(s) for s in rhs.atoms(MatrixSymbol) - self.fixed_reads)
                if per_step:
                    _fail(lineno, f"{name!r} is a matrix of shape {_shape(rhs)} that reads "
                                  f"{per_step[0]}; a named matrix is computed "
                                  "once, from parameters and named matrices only (a value of "
                                  "each step is a column vector)")
                self.where[name] = (lineno, "named matrix")
                self.fixed.append((lhs, rhs))
                self.fixed_reads.add(lhs)
                self.known[name] = lhs
                return
            self.where[name] = (lineno, "variable")
        self._defined[name] = lineno
        self.known[name] = lhs
        self.equations.append((lhs, rhs, lineno))

    # -- expressions -------------------------------------------------------------------
    def fail(self, node, message):
        token = ast.get_source_segment(self.source, node) or ""
        if len(token) > 60:
            token = token[:40] + " ... " + token[-15:]
        _fail(self.lineno, message.format(token=repr(token)))

    def expr(self, node):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.fail(node, "{token} is not allowed in an equation (use names, numbers, "
                            "+ - * / ** @, .T, prev(...) and " + ", ".join(FUNCTIONS) + ")")
        value = method(node)
        if isinstance(node, (ast.Call, ast.BinOp)) and _is_matrix(value) and constant(value):
            number = uniform(value)  # where a constant can stop being a number: 1/0, log(0)
            if number is not None and not math.isfinite(number):
                self.fail(node, "{token} is " + ("NaN" if number != number else
                                                 "-inf" if number < 0 else "inf")
                          + " in every entry, whatever the inputs")
        return value

    def _Name(self, node):
        name = node.id
        if name in self.known:
            return self.known[name]
        if name in self.constants:
            return self.constants[name]
        if name in FUNCTIONS or name in STRUCTURAL:
            self.fail(node, "{token} is a function: write " + name + "(...)")
        if name in self.states:
            self.fail(node, "state {token} is used before its equation; write prev(" + name
                            + ") for its value at the previous step")
        if name == LOSS:
            self.fail(node, "{token} is the loss of the step and cannot be used in an equation")
        if name in self.where:
            self.fail(node, "{token} is used before it is defined")
        self.fail(node, "unknown name {token}; declare it or compute it on an earlier line")

    def _Constant(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(node, "{token} is not allowed: only numbers and names")
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(node, "{token} is not a finite number")
        if isinstance(value, int):
            return self.number(node, Integer(value))
        # exact, from the text as written: 0.1 is 1/10 (so that verify() stays in
        # rational arithmetic), and 1e-400 is not 0 (a float of it is), so that it
        # is refused as 1e-320 is
        written = Decimal((ast.get_source_segment(self.source, node) or repr(value))
                          .replace("_", ""))
        if written != 0 and not -400 < written.adjusted() < 400:  # before 10**-99999 exactly
            self.fail(node, "{token}: the number is beyond the range of a float (about "
                            "1e-308 to 1e308)")
        return self.number(node, Rational(Fraction(written)))

    def number(self, node, value):
        """``value``, refused unless a float of it is finite and, if not 0, not 0
        (a named constant counts by its value)."""
        exact = _exact(value)
        if exact != 0 and not -1022 <= _bits(exact) < MAX_EXPONENT_BITS:
            self.fail(node, "{token}: the number is beyond the range of a float (about 1e-308 "
                            "to 1e308)")
        return value

    def _UnaryOp(self, node):
        value = self.expr(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        self.fail(node, "{token}: only unary + and - are allowed")

    def _Attribute(self, node):
        if node.attr != "T":
            self.fail(node, "{token}: the only attribute is .T (transpose)")
        value = self.expr(node.value)
        if not _is_matrix(value):
            self.fail(node, "{token}: a number has no transpose")
        return value.T

    def _Call(self, node):
        func = node.func
        if not isinstance(func, ast.Name) or (func.id not in FUNCTIONS
                                              and func.id not in STRUCTURAL):
            self.fail(func, "{token} is not a function here; the functions are "
                            + ", ".join(STRUCTURAL + tuple(FUNCTIONS)))
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            self.fail(node, "{token}: " + func.id + " takes exactly one argument")
        arg = node.args[0]
        if func.id == "prev":
            if not isinstance(arg, ast.Name) or arg.id not in self.states:
                self.fail(node, "{token}: prev takes a state, one of "
                                + ", ".join(self.states) + " (declared in 'state:')")
            return Prev(self.states[arg.id])
        if func.id in ("eye", "ones"):  # the identity matrix, a column of ones: constants
            size = (arg.id if isinstance(arg, ast.Name) else
                    str(arg.value) if isinstance(arg, ast.Constant) and type(arg.value) is int
                    else None)
            if size is None or not (size in self.sizes or size.isdigit() and int(size) >= 1):
                self.fail(node, "{token}: " + func.id + " takes a size of the declarations, "
                                "such as " + func.id + "(D), or a positive integer")
            n = self.sizes[size] if size in self.sizes else Integer(int(size))
            return Identity(n) if func.id == "eye" else OneMatrix(n, 1)
        value = self.expr(arg)
        if func.id == "sum":  # of the entries: 1^T v (of a row v 1, of a matrix 1^T A 1)
            if not _is_matrix(value):
                self.fail(node, "{token}: the argument of sum is a number, not a vector")
            rows, cols = value.shape
            if rows != 1:
                value = OneMatrix(1, rows) * value
            return value * OneMatrix(cols, 1) if cols != 1 else value
        if not _is_matrix(value) or value.shape[1] != 1:
            what = f"not of shape {_shape(value)}" if _is_matrix(value) else "not a number"
            self.fail(node, "{token}: the argument of " + func.id + " must be a column vector, "
                            + what)
        return FUNCTIONS[func.id](value)

    def _BinOp(self, node):
        a, b = self.expr(node.left), self.expr(node.right)
        op = type(node.op)
        ma, mb = _is_matrix(a), _is_matrix(b)
        if not (ma or mb) and op in (ast.Add, ast.Sub, ast.Mult):
            return self.number(node, a + b if op is ast.Add else a - b if op is ast.Sub
                               else a * b)
        if op in (ast.Add, ast.Sub):
            if ma and mb and a.shape != b.shape:
                self.fail(node, f"{{token}}: shapes {_shape(a)} and {_shape(b)} cannot be added")
            if ma and not mb:    # a number c stands for c times a matrix of ones
                b = OneMatrix(*a.shape) if b == 1 else b * OneMatrix(*a.shape)
            elif mb and not ma:
                a = OneMatrix(*b.shape) if a == 1 else a * OneMatrix(*b.shape)
            return a + b if op is ast.Add else a - b
        if op is ast.MatMult:
            if not (ma and mb):
                self.fail(node, "{token}: @ multiplies two matrices; use * for a number")
            if a.shape[1] != b.shape[0]:
                self.fail(node, f"{{token}}: shapes {_shape(a)} @ {_shape(b)} do not fit")
            return a * b
        if op is ast.Mult:
            if not (ma and mb):
                return a * b  # a coefficient
            if a.shape == b.shape:
                args = [x for v in (a, b)
                        for x in (v.args if isinstance(v, HadamardProduct) else (v,))]
                return HadamardProduct(*args)
            if a.shape == (1, 1) and b.shape[1] == 1 or b.shape == (1, 1) and a.shape[1] == 1:
                return b * a if a.shape == (1, 1) else a * b   # a column scaled by a 1x1 value
            if a.shape == (1, 1) and b.shape[0] == 1 or b.shape == (1, 1) and a.shape[0] == 1:
                return a * b if a.shape == (1, 1) else b * a   # a row scaled by a 1x1 value
            self.fail(node, f"{{token}}: shapes {_shape(a)} * {_shape(b)} differ; * is the "
                            "element-wise product, @ the matrix product")
        if op is ast.Div:
            if mb and b.shape[1] != 1:
                self.fail(node, f"{{token}}: division by a matrix or row of shape {_shape(b)}; "
                                "/ divides by a number, entry by entry by a column vector, or "
                                "by a 1x1 value")
            if mb and constant(b) and uniform(b) == 0:
                self.fail(node, "{token}: division by zero")
            if mb:  # a / b = a * (1/b) entry by entry
                if ma and a.shape != b.shape and b.shape != (1, 1):
                    self.fail(node, f"{{token}}: shapes {_shape(a)} / {_shape(b)} differ; / "
                                    "divides entry by entry, or by a 1x1 value")
                if not ma:
                    return a * Reciprocal(b) if a != 1 else Reciprocal(b)
                if a.shape == b.shape:
                    return HadamardProduct(a, Reciprocal(b))
                return a * Reciprocal(b) if a.shape[1] == 1 else Reciprocal(b) * a
            if _exact(b) == 0:
                self.fail(node, "{token}: division by zero")
            return a / b if ma else self.number(node, a / b)
        if op is ast.Pow:
            if mb or not (b.is_Integer and b >= 1):
                self.fail(node, "{token}: the exponent must be a positive integer")
            if not ma:
                # bounded before computing: 9**9**9 would take forever exactly
                exact = _exact(a)
                if exact != 0 and abs(exact) != 1 and \
                        int(b) * abs(_bits(exact)) > MAX_EXPONENT_BITS + 64:
                    self.fail(node, "{token}: the power is beyond the range of a float")
                return self.number(node, a ** b)
            if b > MAX_POWER:
                self.fail(node, f"{{token}}: the exponent of an element-wise power is at most "
                                f"{MAX_POWER}")
            return a if b == 1 else HadamardPower(a, b)
        self.fail(node, "{token}: the operators are + - * / ** @")

    # -- the whole text ----------------------------------------------------------------
    def parse(self, text):
        self._defined = {}
        if text.startswith("\ufeff"):  # a UTF-8 byte order mark, as some editors write
            text = text[1:]
        if len(text) > MAX_CHARACTERS:
            raise CellSyntaxError(f"text: {len(text)} characters; a cell is at most "
                                  f"{MAX_CHARACTERS}")
        lines = [(i, _strip_comment(raw)) for i, raw in enumerate(text.splitlines(), start=1)]
        equations = []
        for lineno, line in lines:
            if not line.strip():
                continue
            if not line.isascii():
                # Python reads identifiers in NFKC form (ℌ is H, ﬁ is fi): names that
                # look different would be the same name, so names are ASCII only
                bad = next(c for c in line if not c.isascii())
                _fail(lineno, f"non-ASCII character {bad!r}: names, numbers and operators "
                              "are ASCII (a comment after # may hold any text)")
            m = _HEADER.match(line)
            if m and SECTIONS.get(m.group(1).lower()) == "constants":
                self.declare_constants(lineno, m.group(2))
            elif m and "=" not in line:
                key = m.group(1)
                if key.lower() not in SECTIONS:
                    _fail(lineno, f"unknown section {key!r}: the sections are params, input, "
                                  "target, state, const")
                self.declare(lineno, SECTIONS[key.lower()], m.group(2))
            else:
                equations.append((lineno, line))
                if len(equations) > MAX_EQUATIONS:
                    _fail(lineno, f"more than {MAX_EQUATIONS} equations; a cell is at most "
                                  f"{MAX_EQUATIONS}")
        for section, example in (("params", "params: W[D, D] U[D, N]"), ("inputs", "input: x[N]"),
                                 ("targets", "target: y[M]"), ("states", "state: h[D]")):
            if not self.declared[section]:
                raise CellSyntaxError(f"no {section[:-1]} declared: add a line such as "
                                      f"'{example}'")
        for lineno, line in equations:
            self.equation(lineno, line)
        missing = [n for n in self.states if n not in self._defined]
        if missing:
            raise CellSyntaxError(f"state {missing[0]!r} (line {self.where[missing[0]][0]}) has "
                                  f"no equation: add '{missing[0]} = ...'")
        if self.loss is None:
            raise CellSyntaxError("no loss: add a line 'loss = ...' (a 1x1 expression)")
        params = [s.name for s in self.declared["params"]]
        generated = generated_names(self.where, params, self.states)
        for name, (lineno, kind) in self.where.items():
            if name in generated:
                _fail(lineno, f"the name {name!r} is taken by the generated code for "
                              f"{generated[name]!r}; choose another name")
            if name in self.sizes:
                _fail(lineno, f"{name!r} is both a size and a {kind}; choose another name")


def _size_value(key, value):
    if not plain_name(key) or key in ("T", "t"):
        raise ValueError(f"sizes: {key!r} is not a usable size name")
    if isinstance(value, Symbol):
        if not plain_name(value.name) or value.name in ("T", "t"):
            raise ValueError(f"sizes[{key!r}]: the Symbol's name {value.name!r} is not a usable "
                             "size name (an ASCII identifier not starting with '_')")
        return value
    if isinstance(value, (int, Integer)) and not isinstance(value, bool) and value >= 1:
        return Integer(value)
    raise ValueError(f"sizes[{key!r}]: expected a positive integer or a SymPy Symbol, "
                     f"got {value!r}")


def _notation(names):
    """yhat is typeset \\hat{y}."""
    out = {}
    for n in names:
        if n.endswith("hat") and len(n) > 3:
            out[n] = rf"\hat{{{n[:-3]}}}"
    return out


def parse_cell(text, *, name="cell", sizes=None, notation=None, targets_are_distributions=None):
    """The :class:`~symrnn.Cell` written in ``text``, the equations of one step.

    The syntax (declarations ``params:``, ``input:``, ``target:``, ``state:``,
    ``const:``, then one ``name = expression`` per line and ``loss = ...``) is
    described in the user guide, "Define your own cell". The text is never run as
    Python: each line is parsed with Python's ``ast`` module and only the constructs of the
    syntax are built.

    Parameters
    ----------
    text : str
        The cell.
    name : str
        The cell's name, for the sheet and the generated code.
    sizes : dict, optional
        ``{"D": symbol_or_int, ...}``: what a size name in brackets stands for; by
        default a positive integer ``Symbol`` of that name, the same as in the
        presets.
    notation : dict, optional
        How to typeset names, e.g. ``{"m": r"\\mu"}``; ``yhat`` is ``\\hat{y}``.
    targets_are_distributions : bool, optional
        Accept integer labels for the targets; by default exactly when the loss
        contains ``log_softmax`` (a cross-entropy).

    Returns
    -------
    Cell

    Raises
    ------
    symrnn.model.parse.CellSyntaxError
        A ``ValueError`` naming the line and the offending token (or the argument).
    """
    if not isinstance(text, str):
        raise ValueError(f"text: expected the equations as a string, got {type(text).__name__}")
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {type(name).__name__}")
    if targets_are_distributions is not None and not isinstance(targets_are_distributions, bool):
        raise ValueError("targets_are_distributions: expected True, False or None (from "
                         f"the loss), got {targets_are_distributions!r}")
    if sizes is not None and not hasattr(sizes, "items"):
        raise ValueError("sizes: expected a dict such as {'D': 3} or {'D': Symbol('D')}")
    p = _Parser({k: _size_value(k, v) for k, v in (sizes or {}).items()})
    p.parse(text)
    loss, _ = p.loss
    if targets_are_distributions is None:
        targets_are_distributions = bool(loss.atoms(LogSoftmax))
    names = [s.name for s in p.declared["params"]] + [lhs.name for lhs, _, _ in p.equations]
    return Cell(name, params=p.declared["params"], inputs=p.declared["inputs"],
                constants=list(p.constants.values()), fixed=p.fixed,
                targets=p.declared["targets"],
                states=[p.states[n] for n in p.states],
                equations=[(lhs, rhs) for lhs, rhs, _ in p.equations], loss=loss,
                notation={**_notation(names), **(notation or {})},
                targets_are_distributions=targets_are_distributions)


__all__ = ["CellSyntaxError", "parse_cell"]
