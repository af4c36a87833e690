"""Horizontal fusion of a loop body's statements of the same form (IR to IR).

On a narrow step every NumPy call costs about a microsecond of Python, so the
gates of an LSTM step, ``f = sigmoid(w_f * h_prev + pre_f)``, ``g = ...``,
``q = ...``, each three calls, are worth computing as one: the rows of the k
gates of a step are one (k, B, n) view of an array (k, steps, B, n) that holds
the k gates' arrays side by side (each gate's own array ``_all_f`` is its
slice ``[i]``, contiguous, so everything else reads it as before), and the
parameters that differ between the gates are stacked once before the loop.

Only statements that are element-wise in their rows fuse: ufuncs, the
operations' element-wise kernels, ``+ - * / **``, rows of the step, and
``dot(a, P)`` with a parameter P (which becomes ``matmul`` with the stacked
(k, n, m) parameters). A shared operand, a (B, n) row, broadcasts against the
(k, B, n) rows; a differing vector parameter is stacked as (k, 1, n).
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

    def __init__(self, loop, varying, elementwise, new_names):
        self.loop, self.varying = loop, varying
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
            return len(stmt.targets) == 1 and self._row(stmt.targets[0]) \
                and self._expr(stmt.value)
        if isinstance(stmt, ir.Update):
            return stmt.op in ("+", "-", "*", "/") and self._row(stmt.target) \
                and self._expr(stmt.value)
        if isinstance(stmt, ir.Fill):
            return self._row(stmt.target) and self._expr(stmt.value)
        if isinstance(stmt, ir.Do):
            return self._expr(stmt.call)
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
            if node.out is not None and not self._row(node.out):
                return False
            if node.func == ir.Helper("dot"):
                return len(node.args) == 2 and self._expr(node.args[0]) \
                    and self.kinds.get(node.args[1]) == "matrix"
            func = node.func
            ok = (isinstance(func, ir.NumPy) and isinstance(getattr(numpy, func.attr, None),
                                                            numpy.ufunc)) or \
                (isinstance(func, ir.Helper) and func.name in self.elementwise)
            return ok and all(self._expr(a) for a in node.args)
        return False

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
            stacked = []
            for j in range(len(picked[0][1])):
                name = ir.Name(f"_st{r_name.id}_{j}")
                stacked.append((name, [order[j] for _, order in picked],
                                self.varying[picked[0][1][j]][0]))
                mapping[_vary(j)] = name
            fused = [_matmul(s) for s in _rebuild(lines, lambda n: mapping.get(n, n))]
            out.append(Group((t_name, r_name), [i for i, _ in picked], fused, stacked))
        return out


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


def _matmul(node):
    """``dot(a, P)`` with stacked P (k, n, m) as ``matmul``, which gives (k, B, m)."""
    if isinstance(node, tuple):
        return tuple(_matmul(n) for n in node)
    if isinstance(node, (ir.Expr, ir.Stmt)):
        node = dataclasses.replace(node, **{k: _matmul(getattr(node, k))
                                            for k in node.__dataclass_fields__})
        if isinstance(node, ir.Call) and node.func == ir.Helper("dot"):
            return ir.Call(ir.NumPy("matmul"), node.args, node.out)
    return node
