"""Loop nests over the entries of arrays, and the memory they touch (``loops.py``).

``Nest`` holds element-wise statements over the same entries as scalar
statements, with every array ``Access`` they make; ``Plain`` a statement left
as it is, with what it reads and writes. Every access is traced to the array
that owns its memory (``Alias``), so that ``commute`` and ``conflicts`` can tell
whether two of them may run in another order, or as one nest.
"""
from dataclasses import dataclass, field

from . import ir
from .shapes import symbol

LOOP_VARS = tuple(ir.Temp("entry", n=k) for k in range(4))  # the entries' indices


@dataclass(frozen=True)
class Alias:
    """Where an array name's memory is: a view of the array ``root``; ``prefix``
    the scalar indices that select it from ``root`` (None: another kind of view,
    then ``view`` identifies which)."""
    root: str
    prefix: tuple = None
    view: int = 0
    base: ir.Expr = None  # exact views: the name that holds ``root`` itself ...
    steps: tuple = ()     # ... and the IR of ``prefix``, to index it directly


@dataclass
class Access:
    """One array read or written by a loop nest, at the loop variables."""
    write: bool
    root: str
    exact: bool
    key: tuple  # exact: the full index (SymPy); else (view, index)
    sizes: dict = field(default_factory=dict, compare=False)  # axis of the nest -> IR size
    entry: ir.Expr = field(default=None, compare=False)  # how the nest's body reads it


@dataclass
class Nest:
    """One or several element-wise statements over the same entries."""
    space: tuple            # SymPy sizes
    bounds: tuple           # IR of each axis' size
    body: list              # scalar statements
    accesses: list          # Access
    uses: set = field(default_factory=set)

    def statement(self):
        body = tuple(_scalar_replaced(self.body, self.accesses))
        for axis in reversed(range(len(self.space))):
            body = (ir.For(LOOP_VARS[axis], ir.Const(0), self.bounds[axis], 1, body),)
        return body[0]


@dataclass
class Plain:
    """A statement left as a statement, with what it reads, writes and binds."""
    stmt: ir.Stmt
    uses: set
    binds: set
    reads: set
    writes: set


def effects(unit):
    """``(uses, binds, reads, writes)``: names used and bound, roots read and written."""
    if isinstance(unit, Plain):
        return unit.uses, unit.binds, unit.reads, unit.writes
    return (unit.uses, set(), {a.root for a in unit.accesses},
            {a.root for a in unit.accesses if a.write})


def commute(a, b):
    """Whether units ``a`` and ``b`` give the same result in either order."""
    uses_a, binds_a, reads_a, writes_a = effects(a)
    uses_b, binds_b, reads_b, writes_b = effects(b)
    if (writes_a | writes_b) & {"*", "?"}:  # a loop, a return, a write to unknown memory
        return False
    return not (binds_a & uses_b or binds_b & uses_a or writes_a & (reads_b | writes_b)
                or writes_b & reads_a)


def loop_symbols(n):
    return {symbol(v) for v in LOOP_VARS[:n]}


def _conflict(a, b, loop_symbols):
    """Whether accesses ``a`` and ``b`` (one a write, the same root) may touch one
    entry at two different points of the loop nest."""
    if a.exact and b.exact:
        if a.key == b.key:
            return False
        for x, y in zip(a.key, b.key):
            if not ((x.free_symbols | y.free_symbols) & loop_symbols):
                d = x - y
                if d.is_Number and d != 0:
                    return False
        return True
    return a.exact or b.exact or a.key != b.key


def conflicts(first, second, loop_symbols):
    return any(_conflict(a, b, loop_symbols) for a in first for b in second
               if a.root == b.root and (a.write or b.write))



def _scalar_replaced(body, accesses):
    """The nest's ``body`` with each entry it reads or writes held in a local
    number: read once, written back once at the end. Entries of one array that
    are the same memory (``_t_h[_i, _j]`` and ``_r_h[_t, _i, _j]``) share the
    local; the fusion has proved all other entries of written arrays apart."""
    ids = {a.entry: (a.root, a.exact, a.key) for a in accesses}
    local, first, written, out = {}, {}, [], []

    def load(entry):
        key = ids[entry]
        if key not in local:
            local[key] = ir.Temp("scalar", n=len(local))
            first[key] = entry
            out.append(ir.assign(local[key], entry))
        return local[key]

    def read(node):
        if isinstance(node, ir.Index) and node in ids:
            return load(node)
        if isinstance(node, ir.BinOp):
            return ir.BinOp(node.op, read(node.left), read(node.right))
        if isinstance(node, ir.Neg):
            return ir.Neg(read(node.value))
        if isinstance(node, ir.Call):
            return ir.Call(node.func, tuple(read(a) for a in node.args))
        return node

    for s in body:
        target = s.targets[0] if isinstance(s, ir.Assign) else s.target
        value = read(s.value)
        key = ids[target]
        if isinstance(s, ir.Update):
            out.append(ir.Update(load(target), s.op, value))
        else:
            if key not in local:
                local[key] = ir.Temp("scalar", n=len(local))
                first[key] = target
            out.append(ir.assign(local[key], value))
        if key not in written:
            written.append(key)
    out += [ir.assign(first[k], local[k]) for k in written]
    return out


