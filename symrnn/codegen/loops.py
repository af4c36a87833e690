"""Element-wise statements of a Numba kernel as loops over their entries (IR to IR).

Numba compiles each array expression (``a += w * b``, ``numpy.tanh(a, a)``,
``(a * b).sum(0)``) as a function of its own through its whole pipeline, and
LLVM then inlines them all into the kernel and optimises the result, so the
compile time of a large cell grew to minutes (issue 15). Here every
element-wise statement becomes a loop nest over the entries of its result,

    for _i in range(_t_f.shape[0]):
        for _j in range(_t_f.shape[1]):
            _t_f[_i, _j] += w_f[_j] * _r_h[_t - 1, _i, _j]
            _t_f[_i, _j] = _nb_sigmoid_scalar(_t_f[_i, _j])

and consecutive statements over the same entries share one nest, so no array
expression is left in the compiled code. An operand broadcasts as NumPy's
rules say (a parameter (n,) read at ``[_j]``, a per-step number (R, 1) at
``[_i, 0]``); the shapes come from ``shapes.py``.

Fusing two statements changes the order of their entries' updates, which
NumPy semantics allow only when no entry that one of them writes is read or
written by the other at another entry. Every access is traced to the array
that owns its memory (``Alias``): through rows of it (``_r_h[_t - 1]``,
exact: the full index is known) or through another view (``flat``, a
reshape, a slice: the same view and the same index, or nothing is proved).
Two accesses to memory that one of them writes must be the same entry, or
differ by a nonzero constant in an axis outside the loops (rows ``_t`` and
``_t + 1``); otherwise the statements stay apart. A single statement whose
output overlaps an operand in another way is computed into a new array first,
as NumPy does.
"""
import itertools
from dataclasses import replace

from . import ir
from .nests import (LOOP_VARS, Access, Alias, Nest, Plain, commute, conflicts, loop_symbols)
from .shapes import Shapes, symbol, ufunc
from .views import (calls, loop_invariant_allocations, pure_view, unused_views_removed,
                    without_empty_loops)

_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/",
              "true_divide": "/", "power": "**"}


class _Unknown(Exception):
    """A shape the pass cannot tell: the statement stays as it is."""


class Loops:
    """``function(f)``: ``f`` with its element-wise statements as fused loop nests.
    ``arguments``: the kernel arguments' shapes (``Program.argument_shapes``);
    ``scalars``: ``{IR function: name of its scalar kernel}`` for the element-wise
    helpers and NumPy functions of the operations."""

    def __init__(self, arguments, scalars):
        self.arguments, self.scalars = dict(arguments), dict(scalars)
        self.fuse = True

    def function(self, f):
        helpers = {k.name for k in self.scalars if isinstance(k, ir.Helper)}
        self.shapes = Shapes(self.arguments, helpers)
        self.alias = {name: Alias(name, (), base=name) for name in self.arguments}
        self.views = itertools.count(1)
        self.named = {}  # view expression -> the temporary name bound to it
        self.temps = itertools.count()
        body = without_empty_loops(unused_views_removed(self._block(f.body)))
        return replace(f, body=body)

    # -- blocks: statements, then fused ------------------------------------------
    def _block(self, statements):
        units = []
        for s in statements:
            units += self._statement(s)
        return self._fused(units)

    def _fused(self, units):
        """``units`` with consecutive loop nests over the same entries merged. A kept
        statement between them moves before the group (``ahead``) or after it
        (``behind``) when the order of the two does not matter (``_commute``)."""
        out, group, ahead, behind = [], [], [], []

        def flush():
            out.extend(m.stmt for m in ahead)
            if group:
                merged = group[0]
                for g in group[1:]:
                    merged = Nest(merged.space, merged.bounds, merged.body + g.body,
                                  merged.accesses + g.accesses, merged.uses | g.uses)
                out.append(merged.statement())
            out.extend(m.stmt for m in behind)
            for part in (group, ahead, behind):
                part.clear()

        for u in units:
            if isinstance(u, Nest):
                if group and self.fuse and self._joins(group, u) and all(
                        commute(u, p) for p in behind):
                    group.append(u)
                    continue
                flush()
                group.append(u)
            elif not group or not self.fuse:
                out.append(u.stmt)
            elif all(commute(u, g) for g in group) and all(commute(u, p) for p in behind):
                ahead.append(u)
            else:
                behind.append(u)
        flush()
        return out

    def _joins(self, group, nest):
        if group[0].space != nest.space:
            return False
        done = [a for g in group for a in g.accesses]
        return not conflicts(done, nest.accesses, loop_symbols(len(nest.space)))

    # -- one statement ------------------------------------------------------------
    def _statement(self, s):
        if isinstance(s, ir.For):
            self.shapes.bind(s)
            outer = self.named  # views named before the loop: not for names the loop binds
            inner = ir.bound(s.body) | {s.var}
            self.named = {k: v for k, v in outer.items() if not (ir.names_in(k) | {v}) & inner}
            body = self._block(s.body)
            self.named = {k: v for k, v in outer.items() if not (ir.names_in(k) | {v}) & inner}
            hoisted = loop_invariant_allocations(s, body)
            body = [b for b in body if b not in hoisted]
            return [self._plain(a) for a in hoisted] + [
                self._plain(replace(s, body=tuple(body)))]
        try:
            return self._lowered(s)
        except _Unknown:
            return [self._plain(s)]

    def _lowered(self, s):
        if isinstance(s, ir.Update) and self._array(s.target):
            return self._nest(s.target, s.value, s.op)
        if isinstance(s, ir.Fill) and self._array(s.target):
            return self._nest(s.target, s.value)
        if isinstance(s, ir.Do) and self._elementwise(s.call) and s.call.out is not None:
            return self._nest(s.call.out, ir.Call(s.call.func, s.call.args))
        if isinstance(s, ir.Assign) and len(s.targets) == 1:
            target, value = s.targets[0], s.value
            if isinstance(target, ir.Index) and self._array(target) and (
                    self._elementwise(value) or self._leaf(value)):
                return self._nest(target, value)  # a copy into rows, not NumPy's setitem
            if isinstance(target, ir.VARIABLES) and self._elementwise(value) \
                    and self._array(value):
                if isinstance(value, ir.Call) and value.out is not None:
                    units = self._nest(value.out, ir.Call(value.func, value.args))
                    return units + [self._plain(ir.assign(target, value.out))]
                return self._new(target, value)
            if isinstance(target, ir.VARIABLES) and self._summed(value):
                return self._sum(target, value)
        pre = []
        s = self._materialised(s, pre)
        return pre + [self._plain(s)]

    def _array(self, node):
        shape = self.shapes.of(node)
        if shape is None:
            raise _Unknown(node)
        return shape != () and shape[:1] != ("tuple",)

    def _elementwise(self, node):
        return (isinstance(node, (ir.BinOp, ir.Neg)) or ufunc(node)
                or isinstance(node, ir.Call) and node.func in self.scalars)

    def _summed(self, node):
        return (isinstance(node, ir.Call) and isinstance(node.func, ir.Attr)
                and node.func.attr == "sum" and node.args == (ir.Const(0),)
                and self._array(node.func.value) and len(self.shapes.of(node.func.value)) == 2)

    def _leaf(self, node):
        """A number, or an array that is read as it is (a name, rows, a view)."""
        return not self._elementwise(node) and not (
            isinstance(node, ir.Call) and not (isinstance(node.func, ir.Attr)
                                               and node.func.attr == "reshape"))

    def _temp(self):
        return ir.Temp("lp", n=next(self.temps))

    # -- loop nests ---------------------------------------------------------------
    def _nest(self, target, value, op=None, check=True):
        """``target[...] (op)= value`` entry by entry (``target`` has the result's shape)."""
        pre, reads = [], []
        target = self._viewed(target, pre)
        space = self.shapes.of(target)
        scalar = self._scalar(value, space, pre, reads)
        store, write = self._entry(target, space, pre)
        write.write = True
        if check and conflicts([write], reads, loop_symbols(len(space))):
            # the output overlaps an operand at other entries: a new array first, as NumPy
            temp = self._temp()
            return pre + self._new(temp, value) + self._nest(target, temp, op, check=False)
        body = [ir.Update(store, op, scalar) if op else ir.Assign((store,), scalar)]
        bounds = tuple(write.sizes[a] for a in range(len(space)))
        uses = set().union(*[ir.names_in(n) for n in body + list(bounds)])
        return pre + [Nest(space, bounds, body, [write] + reads, uses)]

    def _sizes(self, reads, space, node):
        """The IR of each axis' size, read from operands that do not broadcast along it."""
        sizes = []
        for axis in range(len(space)):
            found = [r.sizes[axis] for r in reads if axis in r.sizes]
            if not found:
                raise _Unknown(node)
            sizes.append(found[0])
        return tuple(sizes)

    def _new(self, target, value):
        """``target = value`` for an element-wise ``value``: a new array, filled entry by entry."""
        space = self.shapes.of(value)
        pre, reads = [], []
        self._scalar(value, space, pre, reads)  # operands named first: the sizes are read from them
        into = target if target not in ir.names_in(value) else self._temp()
        units = pre + [self._plain(ir.Alloc(into, self._sizes(reads, space, value)))]
        units += self._nest(into, value, check=False)  # a new array overlaps nothing
        if into != target:
            units.append(self._plain(ir.assign(target, into)))
        return units

    def _sum(self, target, value):
        """``target = (element-wise).sum(0)``: zeros, and each row added in one loop nest."""
        term = value.func.value
        space = self.shapes.of(term)
        pre, reads = [], []
        scalar = self._scalar(term, space, pre, reads)
        bounds = self._sizes(reads, space, value)
        units = pre + [self._plain(ir.Alloc(target, bounds[1:], zeros=True))]
        store = ir.Index(target, (LOOP_VARS[1],))
        write = Access(True, self.alias[target].root, True, (symbol(LOOP_VARS[1]),), entry=store)
        body = [ir.Update(store, "+", scalar)]
        uses = set().union(*[ir.names_in(n) for n in body + list(bounds)])
        return units + [Nest(space, bounds, body, [write] + reads, uses)]

    def _viewed(self, node, pre):
        """``node`` as a name or a name's rows (``a[_t]``): other views are named first."""
        if isinstance(node, ir.VARIABLES) or self._rows_of_name(node):
            return node
        if node in self.named:  # the same view, named before and still valid
            return self.named[node]
        name = self._temp()
        pre.extend(self._statement(ir.assign(name, node)))
        if pure_view(node):
            self.named[node] = name
        return name

    def _rows_of_name(self, node):
        if not (isinstance(node, ir.Index) and isinstance(node.value, ir.VARIABLES)):
            return False
        index = node.index if isinstance(node.index, tuple) else (node.index,)
        return all(not isinstance(i, ir.Slice) and self.shapes.of(i) == () for i in index)

    def _entry(self, node, space, pre):
        """The IR of ``node``'s entry at the loop variables (broadcast against
        ``space``) and its ``Access`` (a read; with the sizes it can tell)."""
        node = self._viewed(node, pre)
        name, prefix = (node, ()) if isinstance(node, ir.VARIABLES) else (
            node.value, node.index if isinstance(node.index, tuple) else (node.index,))
        shape = self.shapes.of(node)
        index, sizes = [], {}
        for k, size in enumerate(shape):
            axis = len(space) - len(shape) + k
            if size == 1 and space[axis] != 1:
                index.append(ir.Const(0))
            else:
                index.append(LOOP_VARS[axis])
                sizes[axis] = ir.Index(ir.Attr(name, "shape"), ir.Const(len(prefix) + k))
        entry = ir.Index(name, tuple(prefix) + tuple(index))
        alias = self.alias.get(name) or Alias(name, (), base=name)
        if alias.prefix is not None and alias.base is not None and alias.base != name and \
                self.alias.get(alias.base) == Alias(alias.root, (), base=alias.base):
            # a row of an array: indexed in the array itself, no view needed
            steps = tuple(alias.steps) + tuple(prefix)
            entry = ir.Index(alias.base, steps + tuple(index))
            first = len(steps) - len(space) + len(shape)  # the array's axis of the nest's axis 0
            sizes = {axis: ir.Index(ir.Attr(alias.base, "shape"), ir.Const(first + axis))
                     for axis in sizes}
            full = tuple(self._symbolic(i) for i in prefix + tuple(index))
        else:
            full = tuple(self._symbolic(i) for i in entry.index)
        if alias.prefix is not None:
            access = Access(False, alias.root, True, tuple(alias.prefix) + full, sizes, entry)
        else:
            access = Access(False, alias.root, False, (alias.view, full), sizes, entry)
        return entry, access

    def _symbolic(self, node):
        size = self.shapes.size(node)
        if size is None:
            raise _Unknown(node)
        return size

    def _scalar(self, node, space, pre, reads):
        """``node`` (element-wise) as the scalar expression of one entry."""
        if isinstance(node, ir.Const):
            return node
        if isinstance(node, ir.BinOp):
            return ir.BinOp(node.op, self._scalar(node.left, space, pre, reads),
                            self._scalar(node.right, space, pre, reads))
        if isinstance(node, ir.Neg):
            return ir.Neg(self._scalar(node.value, space, pre, reads))
        if self._elementwise(node):  # a call
            args = [self._scalar(a, space, pre, reads) for a in node.args]
            if node.func in self.scalars:
                return ir.call(ir.Name(self.scalars[node.func]), *args)
            attr = node.func.attr
            if attr in _OPERATORS and len(args) == 2:
                return ir.BinOp(_OPERATORS[attr], *args)
            if attr == "negative":
                return ir.Neg(args[0])
            if attr == "square":
                return ir.BinOp("*", args[0], args[0])
            return ir.Call(node.func, tuple(args))  # a NumPy ufunc of a number
        shape = self.shapes.of(node)
        if shape is None:
            raise _Unknown(node)
        if shape == ():
            if isinstance(node, ir.VARIABLES):
                return node
            name = self._temp()
            pre.extend(self._statement(ir.assign(name, node)))
            return name
        entry, access = self._entry(node, space, pre)
        reads.append(access)
        return entry

    # -- statements kept: element-wise parts inside them computed first -----------------
    def _materialised(self, node, pre):
        """``node`` with each element-wise array expression inside another
        operation (``dot(a * b, W)``) computed into a new array first."""
        if isinstance(node, ir.Expr) and self._elementwise(node):
            shape = self.shapes.of(node)
            if shape is None:
                raise _Unknown(node)
            if shape != ():
                name = self._temp()
                pre.extend(self._new(name, node))
                return name
        if isinstance(node, (ir.Expr, ir.Stmt)) and not isinstance(node, ir.For):
            changes = {}
            for f in node.__dataclass_fields__:
                value = getattr(node, f)
                new = self._materialised(value, pre)
                if new is not value:
                    changes[f] = new
            return replace(node, **changes) if changes else node
        if isinstance(node, tuple):
            new = tuple(self._materialised(v, pre) for v in node)
            return new if any(a is not b for a, b in zip(new, node)) else node
        return node

    # -- what a kept statement binds, reads and writes ------------------------------------
    def _root(self, node):
        """The alias of the array an expression's value is a view of (None: a new array)."""
        if isinstance(node, ir.VARIABLES):
            return self.alias.get(node) or Alias(node, (), base=node)
        if isinstance(node, ir.Rows):
            return self._root(node.value)
        if isinstance(node, ir.Index) and isinstance(node.value, ir.VARIABLES):
            base = self._root(node.value)
            if self._rows_of_name(node) and base.prefix is not None:
                index = node.index if isinstance(node.index, tuple) else (node.index,)
                try:
                    prefix = tuple(base.prefix) + tuple(self._symbolic(i) for i in index)
                    return Alias(base.root, prefix, base=base.base,
                                 steps=tuple(base.steps) + tuple(index))
                except _Unknown:
                    pass
            return Alias(base.root, None, next(self.views))
        if isinstance(node, ir.Index):
            base = self._root(node.value)
            return None if base is None else Alias(base.root, None, next(self.views))
        if isinstance(node, (ir.Transpose, ir.Attr)) and not (
                isinstance(node, ir.Attr) and node.attr != "T"):
            base = self._root(node.value)
            return None if base is None else Alias(base.root, None, next(self.views))
        if isinstance(node, ir.Call):
            if node.out is not None:
                return self._root(node.out)
            if isinstance(node.func, ir.Attr) and node.func.attr == "reshape" or \
                    node.func == ir.Helper("flat"):
                base = self._root(node.func.value if isinstance(node.func, ir.Attr)
                                  else node.args[0])
                return None if base is None else Alias(base.root, None, next(self.views))
        return None

    def _view(self, node):
        """Whether ``node`` is an array name or a view of one (rows, a slice, a
        reshape, ``flat``, a transpose): evaluating it reads no entry."""
        if isinstance(node, ir.VARIABLES):
            return True
        if isinstance(node, (ir.Rows, ir.Transpose)) or (
                isinstance(node, ir.Attr) and node.attr == "T"):
            return self._view(node.value)
        if isinstance(node, ir.Index):
            index = node.index if isinstance(node.index, tuple) else (node.index,)
            return self._view(node.value) and all(
                isinstance(i, (ir.Slice, ir.Const, ir.BinOp) + ir.VARIABLES) for i in index)
        if isinstance(node, ir.Call) and node.out is None and (
                node.func == ir.Helper("flat") or isinstance(node.func, ir.Attr)
                and node.func.attr == "reshape"):
            return self._view(node.args[0] if node.func == ir.Helper("flat") else node.func.value)
        return False

    def _plain(self, s):
        """``s`` as it is, its effects noted, its names' shapes and aliases recorded."""
        uses = ir.names_in(s)
        binds, writes = set(), set()
        if isinstance(s, (ir.Assign, ir.Alloc)):
            targets = s.targets if isinstance(s, ir.Assign) else (s.target,)
            binds = {t for t in targets if isinstance(t, ir.VARIABLES)}
            writes = {self._root(t).root for t in targets if not isinstance(t, ir.VARIABLES)
                      and self._root(t) is not None}
        if isinstance(s, (ir.Update, ir.Fill)):
            writes = {self._root(s.target).root} if self._root(s.target) else {"?"}
        if isinstance(s, (ir.Do, ir.Assign)):
            call = s.call if isinstance(s, ir.Do) else s.value
            for c in [n for n in calls(call) if n.out is not None]:
                root = self._root(c.out)
                writes.add(root.root if root else "?")
        if isinstance(s, (ir.For, ir.Return, ir.Function)):
            writes = {"*"}
        reads = {(self.alias.get(n) or Alias(n, ())).root for n in uses}
        if isinstance(s, ir.Alloc) or isinstance(s, ir.Assign) and self._view(s.value) \
                and self.shapes.of(s.value) not in (None, ()):
            reads = set()  # sizes and views: no entry is read
        self._record(s)
        return Plain(s, uses, binds, reads, writes)

    def _record(self, s):
        self.shapes.bind(s)
        bound = ir.bound([s])
        if bound:  # a named view that reads a rebound name is no longer that view
            self.named = {k: v for k, v in self.named.items()
                          if not (ir.names_in(k) | {v}) & bound}
        if isinstance(s, ir.Alloc) and isinstance(s.target, ir.VARIABLES):
            self.alias[s.target] = Alias((s.target, next(self.views)), (), base=s.target)
        elif isinstance(s, ir.Assign):
            value = s.value
            first = self._root(value)
            if len(s.targets) > 1 and isinstance(value, ir.Call):
                first = self._root(value.out) if value.out is not None else None
            for k, target in enumerate(s.targets):
                if isinstance(target, ir.VARIABLES):
                    alias = first if k == 0 else None
                    self.alias[target] = alias or Alias((target, next(self.views)), (),
                                                           base=target)
