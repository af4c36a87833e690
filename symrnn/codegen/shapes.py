"""The shape of every array expression of a kernel's IR, for the Numba loops.

``loops.py`` writes element-wise statements as loops over the entries of their
arrays, so it needs each operand's rank and which of its axes broadcast (a
parameter vector (n,), a per-step number stored (R, 1)). The shapes of the
kernel's arguments come from the program (``Program.argument_shapes``); the
shape of every other name follows from the statement that binds it, node by
node, as NumPy would compute it. Sizes are SymPy expressions: the argument's
sizes (``D``), and ``_T``, ``_B`` for the steps and the sequences, so that two
shapes are equal when their expressions are.
"""
from functools import reduce
from operator import mul

import numpy
from sympy import Integer, Symbol

from . import ir

ROW_HELPERS = {"softmax", "log_softmax"}  # helpers whose result has the shape of their argument


def symbol(node):
    """The SymPy symbol of a name or a temporary in a size (``_T``, ``w.shape[0]``)."""
    return Symbol(node.id if isinstance(node, ir.Name) else repr(node), integer=True)


def ufunc(node):
    return (isinstance(node, ir.Call) and isinstance(node.func, ir.NumPy)
            and isinstance(getattr(numpy, node.func.attr, None), numpy.ufunc))


def broadcast(shapes):
    """NumPy's broadcast of ``shapes`` (tuples of sizes); None if one is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        full = [d for d in sizes if d != 1]
        out.append(full[0] if full else Integer(1))
    return tuple(out)


class Shapes:
    """``of(expr)``: the shape of an IR expression (a tuple of SymPy sizes, () for a
    number), None when unknown; ``bind(statement)`` records what it binds.
    ``arguments``: ``{name or temporary: shape}``.
    ``elementwise`` (an IR func -> bool) tells which helpers act entry by entry."""

    def __init__(self, arguments, elementwise_helpers=()):
        self.env = dict(arguments)  # name or temporary -> shape
        self.elementwise_helpers = set(elementwise_helpers)

    def size(self, node):
        """An IR size expression as SymPy (``_T + 2``, ``w.shape[0]``)."""
        if isinstance(node, ir.Const):
            return Integer(node.value)
        if isinstance(node, ir.VARIABLES):
            return symbol(node)
        if isinstance(node, ir.BinOp) and node.op in "+-*":
            a, b = self.size(node.left), self.size(node.right)
            return a + b if node.op == "+" else a - b if node.op == "-" else a * b
        if isinstance(node, ir.Index) and isinstance(node.value, ir.Attr) \
                and node.value.attr == "shape" and isinstance(node.index, ir.Const):
            shape = self.of(node.value.value)
            return None if shape is None else shape[node.index.value]
        return None

    def of(self, node):
        method = getattr(self, "_of_" + type(node).__name__, None)
        return None if method is None else method(node)

    def _of_Name(self, node):
        return self.env.get(node)

    _of_Temp = _of_Name

    def _of_Const(self, node):
        return () if isinstance(node.value, (int, float)) else None

    def _of_Rows(self, node):
        return self.of(node.value)

    def _of_Transpose(self, node):
        shape = self.of(node.value)
        return None if shape is None else shape[::-1]

    def _of_Attr(self, node):
        if node.attr == "T":
            return self._of_Transpose(ir.Transpose(node.value))
        return None

    def _of_Neg(self, node):
        return self.of(node.value)

    def _of_BinOp(self, node):
        return broadcast([self.of(node.left), self.of(node.right)])

    def _of_Index(self, node):
        if isinstance(node.value, ir.Attr) and node.value.attr == "shape":
            return ()  # a size
        shape = self.of(node.value)
        if shape is None:
            return None
        index = node.index if isinstance(node.index, tuple) else (node.index,)
        if len(index) > len(shape):
            return None
        out = []
        for axis, i in enumerate(index):
            if isinstance(i, ir.Slice):
                lo = Integer(0) if i.lo is None else self.size(i.lo)
                hi = shape[axis] if i.hi is None else self.size(i.hi)
                if lo is None or hi is None:
                    return None
                out.append(hi - lo)
            elif self.of(i) != ():
                return None
        return tuple(out) + tuple(shape[len(index):])

    def _of_Call(self, node):
        func, args = node.func, node.args
        if isinstance(func, ir.Attr) and func.attr in ("reshape", "sum"):
            shape = self.of(func.value)
            if shape is None:
                return None
            if func.attr == "sum":
                if not args:
                    return ()
                return shape[1:] if args == (ir.Const(0),) else None
            return self._reshape(shape, args)
        if ufunc(node):
            return broadcast([self.of(a) for a in args])
        if isinstance(func, ir.NumPy) and func.attr == "eye" and len(args) == 1:
            n = self.size(args[0])
            return None if n is None else (n, n)
        if not isinstance(func, ir.Helper):
            return None
        shapes = [self.of(a) for a in args]
        if any(s is None for s in shapes):
            return None
        name = func.name
        if name == "flat":
            (s,) = shapes
            return (reduce(mul, s[:-1], Integer(1)), s[-1])
        if name == "dot":
            a, b = shapes
            if len(a) == 2 and len(b) == 2:
                return (a[0], b[1])
            if len(a) == 2 and len(b) == 1:
                return (a[0],)
            if len(a) == 1 and len(b) == 2:
                return (b[1],)
            return None
        if name == "rowsum":
            return (shapes[0][0], Integer(1))
        if name == "vdot":
            return ()
        if name == "log_softmax_and_softmax":
            return ("tuple", shapes[0], shapes[0])
        if name in ROW_HELPERS or name in self.elementwise_helpers:
            return shapes[0]
        return None

    def _reshape(self, shape, args):
        sizes = [self.size(a) if not (isinstance(a, ir.Const) and a.value == -1) else -1
                 for a in args]
        if any(s is None for s in sizes):
            return None
        total = reduce(mul, shape, Integer(1))
        known = reduce(mul, [s for s in sizes if s != -1], Integer(1))
        return tuple(total / known if s == -1 else s for s in sizes)

    # -- statements -------------------------------------------------------------
    def bind(self, s):
        """Record the shapes of the names statement ``s`` binds (not inside a loop body)."""
        if isinstance(s, ir.Alloc) and isinstance(s.target, ir.VARIABLES):
            sizes = tuple(self.size(d) for d in s.shape)
            self.env[s.target] = None if None in sizes else sizes
        elif isinstance(s, ir.For):
            self.env[s.var] = ()
        elif isinstance(s, ir.Assign):
            if len(s.targets) == 1:
                if isinstance(s.targets[0], ir.VARIABLES):
                    self.env[s.targets[0]] = self.of(s.value)
                return
            shape = self.of(s.value) if not isinstance(s.value, ir.Tuple) else \
                ("tuple",) + tuple(self.of(v) for v in s.value.items)
            parts = shape[1:] if shape is not None and shape[:1] == ("tuple",) else \
                [None] * len(s.targets)
            for target, part in zip(s.targets, parts):
                if isinstance(target, ir.VARIABLES):
                    self.env[target] = part
