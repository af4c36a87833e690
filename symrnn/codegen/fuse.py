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
from dataclasses import replace as with_fields  # a node with some fields changed
from typing import NamedTuple

import numpy

from ..ops import OPERATIONS
from . import ir
from .lower import kernel

_OWN_T, _OWN_R = ir.Temp("own", n="row"), ir.Temp("own", n="rows")  # placeholders
SLOT_A, SLOT_P = ir.Temp("slot", n="row"), ir.Temp("slot", n="hoisted")  # in a fused sum
FLAT_ROWS = ir.Temp("slot", n="flat")  # in a fused sum: the rows of the terms as (B, k n)


class Member(NamedTuple):
    """An entry of the loop body: its statements, its names (the row view
    ``_t_x`` and the list of rows ``_r_x``), its width (a size), and whether it
    is a row of an array (only those fuse)."""
    lines: list
    t_name: ir.Expr
    r_name: ir.Expr
    width: object
    stored: bool


class Group(NamedTuple):
    names: tuple      # (t, r): the names of the group's row and list of rows
    positions: list   # the members' positions in the body, in the group's layout
    lines: list       # the fused statements (with the group's names)
    stacked: list     # [(name, [the members' names], kind)] to build before the loop
    parts: list       # [(name, lo, hi)]: lists of the rows' columns lo..hi, made before the loop
    within: tuple = None  # (array, lo, hi): the members are columns lo..hi of an existing
    #                       group's array (a fused sum's), in order; else a new array
    scaled: tuple = ()    # positions of members whose row before the loop is to be scaled
    scale: float = 1.0    # by this factor (see Fuser.groups: one call for two activations)


def _step_index(node, loop):
    """Whether ``node`` is the loop variable shifted by a constant."""
    return node == loop or (isinstance(node, ir.BinOp) and node.op in "+-"
                            and node.left == loop and isinstance(node.right, ir.Const))


def vary(j):
    """The placeholder of the ``j``-th parameter that differs between the members."""
    return ir.Temp("vary", n=j)


def _varies(node):
    return isinstance(node, ir.Temp) and node.role == "vary"


_vary = vary


class Fuser:
    """``groups(members)``: the groups of same-form members, fused.

    ``varying``: {name: (kind, shape)} of the names that may differ between
    the members of a group (parameters, and constants of the loop such as a
    parameter's transpose); kind "vector" (a 1-D array, broadcast against the
    rows) or "matrix" (only as the second factor of ``dot``).
    ``elementwise``: the names of the helpers that work element by element.
    ``new_names``: () -> the names (t, r) of a new group's row and rows."""

    def __init__(self, loop, batch, varying, elementwise, new_names, expanded):
        self.loop, self.batch, self.varying = loop, batch, varying
        self.expanded = expanded  # the lists of rows read as (B, 1, n): name -> list
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
        lines = ir.rebuild(tuple(member.lines), rename)
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
        if isinstance(node, ir.VARIABLES):
            return node not in self.kinds
        return (isinstance(node, ir.Index) and isinstance(node.value, ir.VARIABLES)
                and node.value not in self.kinds and _step_index(node.index, self.loop))

    def _expr(self, node):
        if isinstance(node, ir.Const):
            return isinstance(node.value, (int, float))
        if isinstance(node, ir.VARIABLES) and node in self.kinds:
            return self.kinds[node] == "vector"
        if isinstance(node, ir.VARIABLES + (ir.Index,)):
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
        if isinstance(node, ir.VARIABLES + (ir.Index,)) and self._row(node):
            return _expand(node, self.expanded)
        if isinstance(node, (ir.Assign, ir.Update, ir.Fill)) or \
                isinstance(node, ir.Call) and node.out is not None:
            # the targets are the group's own rows: only the values are broadcast
            fields = {"value": self._broadcast(node.value, k)} if not isinstance(
                node, ir.Call) else {"args": tuple(self._broadcast(a, k) for a in node.args)}
            return with_fields(node, **fields)
        if isinstance(node, tuple):
            return tuple(self._broadcast(n, k) for n in node)
        if isinstance(node, (ir.Expr, ir.Stmt)):
            return with_fields(node, **{f: self._broadcast(getattr(node, f), k)
                                                for f in node.__dataclass_fields__})
        return node

    def groups(self, members, placed=None, prefilled=frozenset()):
        """The groups (two or more members) of the same form, fused; a member
        whose statements read another member's names, or that reads what an
        entry between it and the group's first member writes, is left alone.
        Members whose last statements differ only in an in-place element-wise
        function of their row (the activation: sigmoid for three gates, tanh
        for the fourth) fuse all the same: the function runs on the columns of
        the group that have it, and the group's members are laid out by it.

        ``placed``: {member position: (array, column)} for members that are
        columns of an existing array already; they fuse only with members of
        the same array at adjacent columns (the group is then a view of those).

        A group whose activations are an operation f = outer * g(inner z) + offset
        (``affine_of`` in symrnn/ops.py: sigmoid(z) = tanh(z/2)/2 + 1/2) and
        possibly g itself, and whose rows are a value computed before the loop
        (``prefilled``: those members' positions) plus products with its stacked
        parameters, applies one g to all its columns: ``inner`` is folded into
        the stacked parameters and the values before the loop (``Group.scaled``),
        exactly, since it is a power of two."""
        placed = placed or {}
        forms = {}
        for i, m in enumerate(members):
            form = self._form(m) if m.stored else None
            if form is not None:
                lines, order = form
                shapes = tuple(self.varying[n] for n in order)
                tail = lines[-1] if len(lines) > 1 and _in_place(lines[-1], self) else None
                head = lines[:-1] if tail is not None else lines
                array = placed[i][0] if i in placed else None
                forms.setdefault((head, shapes, m.width, array), []).append((i, order, tail))
        out = []
        for (lines, _, _, array), found in forms.items():
            picked = _movable(members, found)
            within = None
            if array is not None:
                picked = _adjacent(picked, placed)
                within = (array, placed[picked[0][0]][1], placed[picked[-1][0]][1] + 1) \
                    if picked else None
            if len(picked) < 2 or within is not None and len({p[2] for p in picked}) > 1:
                continue
            tails = list(dict.fromkeys(tail for _, _, tail in picked))
            shared = _one_call(lines, tails, picked, prefilled) if within is None else None
            if shared is not None:  # the members of the affine operation first
                tails.sort(key=lambda tail: tail != shared[0])
            picked.sort(key=lambda p: tails.index(p[2]))  # the layout: by activation
            k = len(picked)
            t_name, r_name = self.new_names()
            mapping = {_OWN_T: t_name, _OWN_R: r_name}
            self.kinds = {_vary(j): self.varying[n][0] for j, n in enumerate(picked[0][1])}
            stacked = []
            for j in range(len(picked[0][1])):
                name = ir.Temp("stacked", r_name, j)
                stacked.append((name, [order[j] for _, order, _ in picked],
                                self.varying[picked[0][1][j]][0]))
                mapping[_vary(j)] = name
            fused = [ir.rename(self._broadcast(s, k), mapping) for s in lines]
            if shared is not None:
                tail, positions, (base, inner, outer, offset) = shared
                affine = [p[2] == tail for p in picked]
                for j in positions:
                    name, names, kind = stacked[j]
                    stacked[j] = (name, [ir.mul(ir.Const(inner), n) if scaled else n
                                         for n, scaled in zip(names, affine)], kind)
                n = sum(affine)
                fused += _affine_call(base, outer, offset, t_name, r_name, n, k, self.loop)
                parts = [(ir.Temp("part", r_name, 0), 0, n)] if n < k else []
                out.append(Group((t_name, r_name), [i for i, _, _ in picked], fused, stacked,
                                 parts, within, tuple(p[0] for p, a in zip(picked, affine) if a),
                                 inner))
                continue
            lo, parts = 0, []
            for tail in tails:
                hi = lo + sum(1 for p in picked if p[2] == tail)
                if tail is not None and len(tails) == 1:
                    fused.append(ir.rename(tail, mapping))
                elif tail is not None:  # on the columns lo..hi of the row
                    part, rows = ir.Temp("part", t_name, lo), ir.Temp("part", r_name, lo)
                    parts.append((rows, lo, hi))
                    fused.append(ir.assign(part, ir.Index(rows, self.loop)))
                    fused.append(ir.rename(tail, {**mapping, _OWN_T: part}))
                lo = hi
            out.append(Group((t_name, r_name), [i for i, _, _ in picked], fused, stacked,
                             parts, within))
        return out


def _in_place_call(op):
    """``op``'s NumPy kernel applied to a member's row in place."""
    return ir.Do(ir.Call(kernel(op), (_OWN_T,), _OWN_T))


def _scaled_by(value):
    """The one varying name that ``value`` is linear in as a factor (``dot(a, P)``
    or ``w * a``), or None."""
    def free(n):
        return not any(_varies(m) for m in ir.walk(n))
    if isinstance(value, ir.Call) and value.func == ir.Helper("dot") and value.out is None \
            and len(value.args) == 2 and _varies(value.args[1]) and free(value.args[0]):
        return value.args[1]
    if isinstance(value, ir.BinOp) and value.op == "*":
        for mine, other in ((value.left, value.right), (value.right, value.left)):
            if _varies(mine) and free(other):
                return mine
    return None


def _affine_pair(tails):
    """``(tail of f, f.affine_of)`` when the activations ``tails`` are an operation
    f = outer * g(inner z) + offset, and possibly g itself; else None."""
    by_tail = {}
    for op in OPERATIONS.values():
        if op.kernels.get("numpy") is not None:
            by_tail.setdefault(_in_place_call(op), op)
    ops = [by_tail.get(tail) for tail in tails]
    for f in ops:
        if f is not None and f.affine_of is not None:
            if all(op is f or op is not None and op.name == f.affine_of[0] for op in ops):
                base = OPERATIONS[f.affine_of[0]]
                return _in_place_call(f), (base,) + tuple(f.affine_of[1:])
    return None


def _one_call(head, tails, picked, prefilled):
    """``(tail of f, positions j of the stacked parameters _vary{j} to scale in
    f's members, (g, inner, outer, offset))`` when the group can compute its
    activations with one call of g (see ``groups``); else None."""
    pair = _affine_pair(tails)
    if pair is None or any(p[2] == pair[0] and p[0] not in prefilled for p in picked):
        return None
    scaled = []
    for s in head:
        if isinstance(s, ir.Assign) and s.targets == (_OWN_T,) and _own(s.value):
            continue  # the view of the row
        if not (isinstance(s, ir.Update) and _own(s.target) and s.op in "+-"):
            return None
        name = _scaled_by(s.value)
        if name is None:
            return None
        scaled.append(name)
    uses = [n for s in head for n in ir.walk(s) if _varies(n)]
    if not scaled or any(uses.count(n) != 1 for n in scaled):
        return None
    return pair[0], [n.n for n in scaled], pair[1]


def _affine_call(base, outer, offset, t_name, r_name, n_affine, k, loop):
    """``base`` on the whole (B, k, n) row, then ``outer * v + offset`` on its first
    ``n_affine`` columns (the members of the affine operation, whose inputs are scaled)."""
    lines = [ir.Do(ir.Call(kernel(base), (t_name,), t_name))]
    part = t_name
    if n_affine < k:
        part, rows = ir.Temp("part", t_name, 0), ir.Temp("part", r_name, 0)
        lines.append(ir.assign(part, ir.Index(rows, loop)))
    return lines + [ir.Update(part, "*", ir.Const(outer)), ir.Update(part, "+", ir.Const(offset))]


def _in_place(stmt, fuser):
    """Whether ``stmt`` is ``f(row, row)``: an element-wise function of the row
    (the member's view ``_own_t``) into itself."""
    return (isinstance(stmt, ir.Do) and stmt.call.out == _OWN_T
            and all(a == _OWN_T or isinstance(a, ir.Const) for a in stmt.call.args)
            and fuser._statement(stmt))


def _expand(node, expanded):
    """A (B, n) row as (B, 1, n): a row of a list of rows from a list of those
    views, made before the loop (``expanded``: its name -> the list's name)."""
    if isinstance(node, ir.Index) and isinstance(node.value, ir.VARIABLES):
        rows = ir.Temp("expanded", node.value)
        expanded[rows] = node.value
        return ir.Index(rows, node.index)
    return ir.Index(node, (ir.Slice(), ir.Const(None)))


def _movable(members, found):
    """The members of ``found`` (in body order) that can move to the first one's
    place: none reads what another of them, or an entry between the first and
    itself, writes, and none writes what another of them reads."""
    picked = [found[0]]
    first = found[0][0]
    for i, *rest in found[1:]:
        reads = set().union(*[ir.names_in(s) for s in members[i].lines])
        mine = {members[i].t_name, members[i].r_name}
        written = set()
        for j in list(range(first + 1, i)) + [p[0] for p in picked]:
            written |= {members[j].t_name, members[j].r_name}
        if reads & (written - mine):
            continue
        if any(mine & ir.names_in(s) for p in picked for s in members[p[0]].lines):
            continue
        picked.append((i, *rest))
    return picked


def _adjacent(picked, placed):
    """The longest run of ``picked`` at adjacent columns of their array, by column."""
    picked = sorted(picked, key=lambda p: placed[p[0]][1])
    best, run = [], []
    for p in picked:
        if run and placed[p[0]][1] != placed[run[-1][0]][1] + 1:
            run = []
        run.append(p)
        if len(run) > len(best):
            best = list(run)
    return best


def _own(node):
    """The member's row (``_own_t``) or one of its rows (``_own_r[...]``)."""
    return node == _OWN_T or isinstance(node, ir.Index) and node.value == _OWN_R




# -- sums of same-form terms --------------------------------------------------------

def canonical(code, own, varying):
    """``(form, varying names in order)``: the IR of a term with the names in
    ``own`` renamed as it says and those in ``varying`` as ``_vary0``, ... in the
    order of first use."""
    order = []

    def f(n):
        if n in own:
            return own[n]
        if n in varying:
            if n not in order:
                order.append(n)
            return _vary(order.index(n))
        return n
    return _commuted(ir.rebuild(code, f)), order


def _commuted(node):
    """``node`` with the operands of ``+`` and ``*`` in one order (by their text),
    so that ``a * b`` and ``b * a`` have one form."""
    if isinstance(node, tuple):
        return tuple(_commuted(n) for n in node)
    if not isinstance(node, (ir.Expr, ir.Stmt)):
        return node
    node = with_fields(node, **{f: _commuted(getattr(node, f))
                                        for f in node.__dataclass_fields__})
    if isinstance(node, ir.BinOp) and node.op in ("+", "*"):
        left, right = sorted((node.left, node.right), key=ir.order)
        return ir.BinOp(node.op, left, right)
    return node


_SLOTS = (SLOT_A, SLOT_P)


def _has_slot(node):
    return any(n in _SLOTS for n in ir.walk(node))


def fuse_sum(form, batch, expanded):
    """The sum over k terms of one ``form`` (a term's IR with its rows as
    ``_slota[...]``/``_slotp[...]``, now (B, k, n) rows of the terms side by
    side, and its parameters as ``_vary{j}``): ``dot(X, P)`` as one product
    ``dot(X.reshape(B, -1), [P_1; ...; P_k])``, an element-wise term as
    ``X.sum(1)`` (a product of the terms' rows alone reads them from the list
    ``FLAT_ROWS`` of their (B, k n) views, made before the loop). Returns
    ``(value, {j: "vector" or "matrix"})``, or
    ``(None, None)`` for another form."""
    kinds = {}

    def elementwise(node):
        if isinstance(node, ir.Const):
            return isinstance(node.value, (int, float))
        if isinstance(node, ir.VARIABLES):
            if _varies(node):
                return kinds.setdefault(node, "vector") == "vector"
            return True
        if isinstance(node, ir.Index):
            return isinstance(node.value, ir.VARIABLES) and not _varies(node.value)
        if isinstance(node, ir.BinOp):
            return node.op in ("+", "-", "*", "/", "**") and elementwise(node.left) \
                and elementwise(node.right)
        if isinstance(node, ir.Neg):
            return elementwise(node.value)
        if isinstance(node, ir.Call) and node.out is None:
            func = node.func
            ok = (isinstance(func, ir.NumPy) and isinstance(getattr(numpy, func.attr, None),
                                                            numpy.ufunc))
            return ok and all(elementwise(a) for a in node.args)
        return False

    def expand(node):
        """Shared (B, n) rows read as (B, 1, n); the slots are (B, k, n) already."""
        if isinstance(node, ir.Index) and node.value in _SLOTS:
            return node
        if isinstance(node, (ir.Index,) + ir.VARIABLES) and not _varies(node):
            return _expand(node, expanded)
        if isinstance(node, (ir.BinOp, ir.Neg, ir.Call)):
            return with_fields(node, **{
                f: (tuple(expand(a) for a in getattr(node, f)) if f == "args"
                    else expand(getattr(node, f))) for f in node.__dataclass_fields__
                if f not in ("op", "func", "out")})
        return node

    if isinstance(form, ir.Call) and form.func == ir.Helper("dot") and form.out is None \
            and len(form.args) == 2 and _varies(form.args[1]):
        x, matrix = form.args
        kinds[matrix] = "matrix"
        if not elementwise(x) or not _has_slot(x) or kinds[matrix] != "matrix":
            return None, None
        if isinstance(x, ir.Index) and x.value == _SLOTS[0]:  # a row of the terms as it is:
            flat = ir.Index(FLAT_ROWS, x.index)  # from a list of (B, k n) views of the rows
        else:
            flat = ir.call(ir.Attr(expand(x), "reshape"), batch, ir.Const(-1))
        return ir.Call(form.func, (flat, matrix)), {n.n: k for n, k in kinds.items()}
    if elementwise(form) and _has_slot(form):
        total = ir.call(ir.Attr(expand(form), "sum"), ir.Const(1))
        return total, {n.n: k for n, k in kinds.items()}
    return None, None
