"""The statement IR between the program and the printers.

``program.py`` and ``inplace.py`` build these nodes from the derivation;
``emit.py`` prints them, one ``_print_<Node>`` per node type, for NumPy and (a
subclass) for Numba. Operand order, transposes and parentheses are all in the
tree: a printer adds parentheses from the operators' precedence, never from
the text of an operand, and an output array is a field of a call, not text
appended to it.

Expressions
    Name        a variable, a parameter or a module-level name
    Const       a Python literal (number, or a tuple/str for keys), printed with repr
    Helper      a runtime helper (``dot``, ``flat``, ``rowsum``, an operation's kernel):
                each printer chooses its own function (``_dot``, ``_nb_dot``)
    NumPy       an attribute of the NumPy module (``tanh``), through the reserved alias
    Attr        ``value.attr``
    Transpose   ``value.T``
    Call        ``func(*args)``, with ``out`` the output array passed positionally last
    BinOp       ``left op right`` for ``+ - * / **``
    Neg         ``-value``
    Index       ``value[index]``; ``index`` a tuple for several axes
    Slice       ``lo:hi``
    Tuple       ``(a, b,)``
    Rows        a sequence of per-step rows that a loop indexes (a list in NumPy,
                the 3-D array itself in Numba)

Statements
    Assign      ``targets = value`` (several targets unpack a tuple)
    Update      ``target op= value``, an in-place update
    Fill        ``target[:] = value``, a copy into an existing array
    Do          a call evaluated for its effect (it writes its ``out``)
    Alloc       ``target = numpy.empty(shape)`` (or zeros)
    For         ``for var in range(start, stop, step): body``
    Return      ``return values``
    Release     the arrays of these names are no longer needed (``del`` in NumPy;
                nothing in Numba, which has no ``del``)
    Function    ``def name(args): body``
"""
import keyword
from dataclasses import dataclass, field, replace


class Expr:
    pass


@dataclass(frozen=True)
class Name(Expr):
    id: str

    def __post_init__(self):  # whatever a name holds, it prints as one name
        if not self.id.isidentifier() or keyword.iskeyword(self.id):
            raise ValueError(f"not a usable identifier: {self.id!r}")


@dataclass(frozen=True)
class Const(Expr):
    value: object


@dataclass(frozen=True)
class Helper(Expr):
    name: str


@dataclass(frozen=True)
class NumPy(Expr):
    attr: str


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    attr: str


@dataclass(frozen=True)
class Transpose(Expr):
    value: Expr


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple = ()
    out: Expr = None


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg(Expr):
    value: Expr


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    index: object  # an Expr, or a tuple of them


@dataclass(frozen=True)
class Slice(Expr):
    lo: Expr = None
    hi: Expr = None


@dataclass(frozen=True)
class Tuple(Expr):
    items: tuple


@dataclass(frozen=True)
class Rows(Expr):
    value: Expr


class Stmt:
    pass


@dataclass(frozen=True)
class Assign(Stmt):
    targets: tuple
    value: Expr


@dataclass(frozen=True)
class Update(Stmt):
    target: Expr
    op: str
    value: Expr


@dataclass(frozen=True)
class Fill(Stmt):
    target: Expr
    value: Expr


@dataclass(frozen=True)
class Do(Stmt):
    call: Call


@dataclass(frozen=True)
class Alloc(Stmt):
    target: Expr
    shape: tuple
    zeros: bool = False


@dataclass(frozen=True)
class For(Stmt):
    var: Name
    start: Expr
    stop: Expr
    step: int
    body: tuple


@dataclass(frozen=True)
class Return(Stmt):
    values: tuple


@dataclass(frozen=True)
class Release(Stmt):
    names: tuple  # of Name


@dataclass(frozen=True)
class Function(Stmt):
    name: Name
    args: tuple  # of Name
    body: tuple = field(default=())


# -- small constructors -----------------------------------------------------------

def assign(target, value):
    return Assign((target,), value)


def call(func, *args, out=None):
    return Call(func, tuple(args), out)


def helper(name, *args, out=None):
    return Call(Helper(name), tuple(args), out)


def numpy_call(attr, *args, out=None):
    return Call(NumPy(attr), tuple(args), out)


def add(a, b):
    return BinOp("+", a, b)


def sub(a, b):
    return BinOp("-", a, b)


def mul(a, b):
    return BinOp("*", a, b)


def with_out(expr, out):
    """``expr`` computed into ``out``: a call that has no output array yet gets it."""
    return Call(expr.func, expr.args, out)


def names_in(node):
    """Every ``Name`` in ``node`` (an expression or a statement), nested ones included."""
    if isinstance(node, Name):
        return {node}
    if isinstance(node, (tuple, list)):
        return set().union(*[names_in(n) for n in node])
    if isinstance(node, (Expr, Stmt)):
        return set().union(*[names_in(getattr(node, f)) for f in node.__dataclass_fields__])
    return set()


def walk(node):
    """``node`` and every node inside it, depth first."""
    yield node
    if isinstance(node, (tuple, list)):
        for n in node:
            yield from walk(n)
    elif isinstance(node, (Expr, Stmt)):
        for f in node.__dataclass_fields__:
            yield from walk(getattr(node, f))


def rebuild(node, f):
    """``node`` with every Name n replaced by ``f(n)`` (nested ones included)."""
    if isinstance(node, Name):
        return f(node)
    if isinstance(node, tuple):
        return tuple(rebuild(n, f) for n in node)
    if isinstance(node, (Expr, Stmt)):
        return replace(node, **{k: rebuild(getattr(node, k), f) for k in node.__dataclass_fields__})
    return node


def rename(node, mapping):
    """``node`` with the names in ``mapping`` replaced."""
    return rebuild(node, lambda n: mapping.get(n, n))


def bound(statements):
    """Every name the statements bind (targets, loop variables), nested ones included."""
    out = set()
    for s in statements:
        if isinstance(s, Assign):
            out |= {t for t in s.targets if isinstance(t, Name)}
        elif isinstance(s, Alloc) and isinstance(s.target, Name):
            out.add(s.target)
        elif isinstance(s, For):
            out |= {s.var} | bound(s.body)
    return out
