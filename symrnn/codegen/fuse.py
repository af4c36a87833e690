"""Horizontal fusion of a loop body's statements of the same form (IR to IR).

On a narrow step every NumPy call costs about a microsecond of Python, so the
gates of an LSTM step, ``f = sigmoid(w_f * h_prev + pre_f)``, ``g = ...``,
``q = ...``, each three calls, are worth computing as one: the k gates' rows
of a step are one contiguous (B, k, n) row of an array (steps, B, k, n) that
holds them side by side (a gate's own array ``_all_f`` is its slice
``[:, :, i]``, which everything else reads as before), and the parameters that
differ between the gates are stacked once before the loop: a vector as (k, n),
a matrix P in ``dot(a, P)`` as the columns (n, k m) of one matrix product.

Only statements that are element-wise in their rows fuse: ufuncs, the
operations' element-wise kernels, ``+ - * / **``, rows of the step, and
``dot(a, P)`` of a shared row ``a``. A shared operand, a (B, n) row, is read as
(B, 1, n) so that it broadcasts against the (B, k, n) rows.
"""
import dataclasses
from typing import NamedTuple

import numpy

from . import ir

_OWN_T, _OWN_R = ir.Name("_own_t"), ir.Name("_own_r")  # placeholders


class Member(NamedTuple):
    """An entry of the loop body: its statements, its names (the row view
    ``_t_x`` and the list of rows ``_r_x``), its width (a size), and whether it
    is a row of an array (only those fuse)."""
    lines: list
    t_name: ir.Name
    r_name: ir.Name
    width: object
    stored: bool


class Group(NamedTuple):
    names: tuple      # (t, r): the names of the group's row and list of rows
    positions: list   # the members' positions in the body, the first one's first
    lines: list       # the fused statements (with the group's names)
    stacked: list     # [(name, [the members' names], kind)] to build before the loop


def _rebuild(node, f):
    """``node`` with every Name n replaced by ``f(n)`` (nested ones included)."""
    if isinstance(node, ir.Name):
        return f(node)
    if isinstance(node, tuple):
        return tuple(_rebuild(n, f) for n in node)
    if isinstance(node, (ir.Expr, ir.Stmt)):
        return dataclasses.replace(node, **{k: _rebuild(getattr(node, k), f)
                                            for k in node.__dataclass_fields__})
    return node


def _step_index(node, loop):
    """Whether ``node`` is the loop variable shifted by a constant."""
    return node == loop or (isinstance(node, ir.BinOp) and node.op in "+-"
                            and node.left == loop and isinstance(node.right, ir.Const))


def _vary(j):
    return ir.Name(f"_vary{j}")


class Fuser:
    """``groups(members)``: the groups of same-form members, fused.

    ``varying``: {name: (kind, shape)} of the names that may differ between
    the members of a group (parameters, and constants of the loop such as a
    parameter's transpose); kind "vector" (a 1-D array, broadcast against the
    rows) or "matrix" (only as the second factor of ``dot``).
    ``elementwise``: the names of the helpers that work element by element.
    ``new_names``: () -> the names (t, r) of a new group's row and rows."""

    def __init__(self, loop, batch, varying, elementwise, new_names):
        self.loop, self.batch, self.varying = loop, batch, varying
        self.elementwise, self.new_names = set(elementwise), new_names
        self.kinds = {}

    def _form(self, member):
        """``(statements, varying names)``: the statements with the member's own
        names and its varying names as placeholders (``_own_t``, ``_own_r``,
        ``_vary0``, ...), and the varying names in order of first use; None if
        a statement is not element-wise."""
        order = []

        def rename(n):
            if n == member.t_name:
                return _OWN_T
            if n == member.r_name:
                return _OWN_R
            if n in self.varying:
                if n not in order:
                    order.append(n)
                return _vary(order.index(n))
            return n
        lines = _rebuild(tuple(member.lines), rename)
        self.kinds = {_vary(j): self.varying[n][0] for j, n in enumerate(order)}
        if not all(self._statement(s) for s in lines):
            return None
        return lines, order

    def _statement(self, stmt):
        if isinstance(stmt, ir.Assign):
            return len(stmt.targets) == 1 and _own(stmt.targets[0]) and self._expr(stmt.value)
        if isinstance(stmt, ir.Update):
            return stmt.op in ("+", "-", "*", "/") and _own(stmt.target) \
                and self._expr(stmt.value)
        if isinstance(stmt, ir.Fill):
            return _own(stmt.target) and self._expr(stmt.value)
        if isinstance(stmt, ir.Do):
            return stmt.call.out is not None and self._expr(stmt.call)
        return False

    def _row(self, node):
        """A name of a row, or a list of rows indexed by the step."""
        if isinstance(node, ir.Name):
            return node not in self.kinds
        return (isinstance(node, ir.Index) and isinstance(node.value, ir.Name)
                and node.value not in self.kinds and _step_index(node.index, self.loop))

    def _expr(self, node):
        if isinstance(node, ir.Const):
            return isinstance(node.value, (int, float))
        if isinstance(node, ir.Name) and node in self.kinds:
            return self.kinds[node] == "vector"
        if isinstance(node, (ir.Name, ir.Index)):
            return self._row(node)
        if isinstance(node, ir.BinOp):
            return node.op in ("+", "-", "*", "/", "**") and self._expr(node.left) \
                and self._expr(node.right)
        if isinstance(node, ir.Neg):
            return self._expr(node.value)
        if isinstance(node, ir.Call):
            if node.out is not None and not _own(node.out):
                return False
            if node.func == ir.Helper("dot"):  # of a shared row: one product, see _stacked
                return len(node.args) == 2 and node.out is None and self._row(node.args[0]) \
                    and not _own(node.args[0]) and self.kinds.get(node.args[1]) == "matrix"
            func = node.func
            ok = (isinstance(func, ir.NumPy) and isinstance(getattr(numpy, func.attr, None),
                                                            numpy.ufunc)) or \
                (isinstance(func, ir.Helper) and func.name in self.elementwise)
            return ok and all(self._expr(a) for a in node.args)
        return False

    def _broadcast(self, node, k):
        """A member's statement (with placeholders) for the (B, k, n) rows of the
        group: a shared row read as (B, 1, n), ``dot(a, P)`` as one product with
        the stacked columns, reshaped to (B, k, m)."""
        if _own(node) or node == _OWN_T:
            return node
        if isinstance(node, ir.Call) and node.func == ir.Helper("dot"):
            product = ir.Call(node.func, node.args)  # the shared row as it is
            return ir.call(ir.Attr(product, "reshape"), self.batch, ir.Const(k), ir.Const(-1))
        if isinstance(node, (ir.Name, ir.Index)) and self._row(node):
            return _expand(node)
        if isinstance(node, (ir.Assign, ir.Update, ir.Fill)) or \
                isinstance(node, ir.Call) and node.out is not None:
            # the targets are the group's own rows: only the values are broadcast
            fields = {"value": self._broadcast(node.value, k)} if not isinstance(
                node, ir.Call) else {"args": tuple(self._broadcast(a, k) for a in node.args)}
            return dataclasses.replace(node, **fields)
        if isinstance(node, tuple):
            return tuple(self._broadcast(n, k) for n in node)
        if isinstance(node, (ir.Expr, ir.Stmt)):
            return dataclasses.replace(node, **{f: self._broadcast(getattr(node, f), k)
                                                for f in node.__dataclass_fields__})
        return node

    def groups(self, members):
        """The groups (two or more members) of the same form, fused; a member
        whose statements read another member's names, or that reads what an
        entry between it and the group's first member writes, is left alone."""
        forms = {}
        for i, m in enumerate(members):
            form = self._form(m) if m.stored else None
            if form is not None:
                lines, order = form
                shapes = tuple(self.varying[n] for n in order)
                forms.setdefault((lines, shapes, m.width), []).append((i, order))
        out = []
        for (lines, _, _), found in forms.items():
            picked = _movable(members, found)
            if len(picked) < 2:
                continue
            t_name, r_name = self.new_names()
            mapping = {_OWN_T: t_name, _OWN_R: r_name}
            self.kinds = {_vary(j): self.varying[n][0] for j, n in enumerate(picked[0][1])}
            stacked = []
            for j in range(len(picked[0][1])):
                name = ir.Name(f"_st{r_name.id}_{j}")
                stacked.append((name, [order[j] for _, order in picked],
                                self.varying[picked[0][1][j]][0]))
                mapping[_vary(j)] = name
            fused = [_rebuild(self._broadcast(s, len(picked)), lambda n: mapping.get(n, n))
                     for s in lines]
            out.append(Group((t_name, r_name), [i for i, _ in picked], fused, stacked))
        return out


def _expand(node):
    """A (B, n) row as (B, 1, n)."""
    return ir.Index(node, (ir.Slice(), ir.Const(None)))


def _movable(members, found):
    """The members of ``found`` (in body order) that can move to the first one's
    place: none reads what another of them, or an entry between the first and
    itself, writes, and none writes what another of them reads."""
    picked = [found[0]]
    first = found[0][0]
    for i, order in found[1:]:
        reads = set().union(*[ir.names_in(s) for s in members[i].lines])
        mine = {members[i].t_name, members[i].r_name}
        written = set()
        for j in list(range(first + 1, i)) + [p for p, _ in picked]:
            written |= {members[j].t_name, members[j].r_name}
        if reads & (written - mine):
            continue
        if any(mine & ir.names_in(s) for p, _ in picked for s in members[p].lines):
            continue
        picked.append((i, order))
    return picked


def _own(node):
    """The member's row (``_own_t``) or one of its rows (``_own_r[...]``)."""
    return node == _OWN_T or isinstance(node, ir.Index) and node.value == _OWN_R


