"""The statement IR of the generated code, from lowering to printing.

The ``lower`` pass builds these nodes from the schedule (``scheduled.py``); later
passes rewrite them; the printers (``emit.py``, ``readable.py``) print them, one
``_print_<Node>`` per node type. Operand order, transposes and parentheses are all
in the tree: a printer adds parentheses from the operators' precedence, never from
the text of an operand, and an output array is a field of a call, not text
appended to it.

Expressions
    Name        a name the cell gives (a variable, a parameter), or a public name of
                the module (``forward``, ``SPEC``)
    Temp        a temporary of the generated code: what it holds (its role), the
                value it belongs to, a number; the ``name`` pass gives it an identifier
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
    Function    ``def name(args): body`` (``compiled``: by Numba)
    Block       statements that compute one value; ``label`` says which (its
                definition, for comments and for the passes that rewrite it)

Module level (``module.py`` assembles them)
    Docstring   the module's docstring
    Import      ``import module`` or ``from module import names``
    Imports     the module's import block: groups of ``Import``, a blank line between
    Copied      the source of a Python object (a runtime module, a kernel), copied
    Data        a Python literal printed over several lines (``SPEC``)
    NameOf      the identifier of a name or temporary, as a string literal
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
class Temp(Expr):
    """A temporary: ``role`` says what it holds, ``of`` the value it belongs to (a
    ``scheduled.Value``, a ``Name``, another ``Temp``, or None) and ``n`` tells
    apart temporaries of one role and value. Equal fields, one temporary."""
    role: str
    of: object = None
    n: object = None


VARIABLES = (Name, Temp)  # the nodes that name an array or a number


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
    name: Expr   # a Name, or a Temp (a compiled step loop)
    args: tuple  # of Name and Temp
    body: tuple = field(default=())
    compiled: bool = False  # compiled by Numba (printed with its helpers)


@dataclass(frozen=True)
class Label:
    """What a ``Block`` computes: ``value`` (its target), ``expr`` (its SymPy
    definition, at step t inside a loop), ``kind`` ("forward", "adjoint",
    "gradient", "hoisted", "prefill", "loss", "fixed", "shared"; a "loop" block
    holds a step loop and what it reads before it, a "gradients" block the
    gradients), ``step`` (inside a step loop, else over all steps at once) and
    ``notes`` (what the lowering found: "stored", "prefilled", ...)."""
    value: object
    expr: object
    kind: str
    step: bool = False
    notes: frozenset = frozenset()


@dataclass(frozen=True)
class Block(Stmt):
    label: Label
    body: tuple


@dataclass(frozen=True)
class Docstring(Stmt):
    text: str


@dataclass(frozen=True)
class Import(Stmt):
    module: str
    names: tuple = ()  # empty: ``import module``
    alias: str = None  # ``import module as alias``


@dataclass(frozen=True)
class Imports(Stmt):
    groups: tuple  # of tuples of Import


@dataclass(frozen=True)
class Copied(Stmt):
    """The source of ``obj`` (a module: without its docstring; a function)."""
    obj: object


@dataclass(frozen=True)
class Data(Expr):
    value: object


@dataclass(frozen=True)
class NameOf(Expr):
    node: Expr


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
    """Every ``Name`` and ``Temp`` in ``node`` (an expression or a statement),
    nested ones included."""
    if isinstance(node, VARIABLES):
        return {node}
    if isinstance(node, (tuple, list)):
        return set().union(*[names_in(n) for n in node])
    if isinstance(node, (Expr, Stmt)):
        return set().union(*[names_in(getattr(node, f)) for f in node.__dataclass_fields__])
    return set()


def walk(node):
    """``node`` and every node inside it, depth first (a temporary's fields are
    not inside it)."""
    yield node
    if isinstance(node, Temp):
        return
    if isinstance(node, (tuple, list)):
        for n in node:
            yield from walk(n)
    elif isinstance(node, (Expr, Stmt)):
        for f in node.__dataclass_fields__:
            yield from walk(getattr(node, f))


def rebuild(node, f):
    """``node`` with every Name and Temp n replaced by ``f(n)`` (nested ones included)."""
    if isinstance(node, VARIABLES):
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
            out |= {t for t in s.targets if isinstance(t, VARIABLES)}
        elif isinstance(s, Alloc) and isinstance(s.target, VARIABLES):
            out.add(s.target)
        elif isinstance(s, For):
            out |= {s.var} | bound(s.body)
        elif isinstance(s, Block):
            out |= bound(s.body)
    return out


def flatten(statements):
    """``statements`` with every ``Block`` replaced by its statements (in loops too)."""
    out = []
    for s in statements:
        if isinstance(s, Block):
            out += flatten(s.body)
        elif isinstance(s, For):
            out.append(replace(s, body=tuple(flatten(s.body))))
        else:
            out.append(s)
    return tuple(out)


def order(node):
    """A sort key of a node from its structure (its type, then its fields), so
    that operands of one form can be put in one order."""
    if isinstance(node, (Expr, Stmt)):
        return (type(node).__name__,
                tuple(order(getattr(node, f)) for f in node.__dataclass_fields__))
    if isinstance(node, (tuple, list)):
        return ("()", tuple(order(n) for n in node))
    if node is None:
        return ("None",)
    if isinstance(node, (int, float)):
        return ("number", float(node))
    return (type(node).__name__, str(node))
