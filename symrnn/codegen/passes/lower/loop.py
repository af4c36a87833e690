"""One step loop: its body as statements, and what it reads before it.

The body's entries (``Let``) each become a ``Block`` of statements: a stored
value is computed into its row of its array (through a view of the row when
that takes several statements), a local one into a row of its own. A hoisted
value that a stored row's chain starts from is computed straight into the
row's array, before the loop (``LoopResult.filled``). Before the loop come the
lists of per-step rows the body indexes, and the fixed values it reads
(transposes of the parameters, products of them).

A ``FusedSum`` entry becomes one product over the rows of its terms side by
side (``fuse.fuse_sum``): the stored values it reads are columns of one array
(``LoopResult.groups``), its hoisted values columns of another
(``LoopResult.slots``).
"""
from collections import Counter

from ....model.nodes import Adjoint
from ... import ir
from ...fuse import FLAT_ROWS, SLOT_A, SLOT_P, canonical, fuse_sum, vary
from ...scheduled import FusedSum, Let, Value, value_of
from .context import BATCH, STEP, STEPS, leaves
from .stacked import block, dot_then_copy


class LoopResult:
    """What the lowering of a loop decided for the statements around it."""

    def __init__(self):
        self.filled = {}       # hoisted value -> the stored value whose array holds it
        self.groups = []       # [(group Value, [member Values])]: arrays of fused sums' rows
        self.slots = {}        # hoisted value -> (group Value, column, columns)
        self.slot_arrays = set()
        self.expanded = {}     # lists of rows read as (B, 1, n) -> their list


def read_only(made, loop):
    """The statements of ``made`` (each names one value before ``loop``) whose
    value the loop or a later one of them reads."""
    needed = ir.names_in(loop)
    kept = []
    for s in reversed(made):
        if set(s.targets) & needed:
            kept.append(s)
            needed |= ir.names_in(s.value)
    return kept[::-1]


def lower_loop(cx, loop, start, stop, step):
    """``(statements, LoopResult)`` for ``loop`` (a ``scheduled.Loop``)."""
    result = LoopResult()
    stored = set(loop.stored)
    hoisted_keys = {let.value for let in loop.hoisted}
    lets = [e for e in loop.body if isinstance(e, Let)]
    uses = Counter(value_of(l) for let in lets for l in leaves(let.expr))
    hoisted = {l for let in lets for l in leaves(let.expr)
               if value_of(l) in hoisted_keys and uses[value_of(l)] == 1}
    cx.local = set(loop.local)
    cx.rows, cx.bound, codes = set(), set(), []
    constants = {}
    cx.lowering.constants = constants if cx.invariants_before else None
    after = []  # the stacked parameters and rows of fused sums, after the constants
    kind = "adjoint" if loop.direction < 0 else "forward"
    for entry in loop.body:
        if isinstance(entry, FusedSum):
            codes.append((None, block(entry.leaf, None, "sum",
                                      _sum_lines(cx, entry, after, result), step=True)))
            continue
        key, expr = entry.value, entry.expr
        notes = set()
        if key in stored:
            row = cx.role(key, "row")
            code, used = cx.assign(row, expr, "loop", True, hoisted)
            if len(code) > 1:  # several updates of the row: through a local view
                code.insert(0, ir.assign(row, ir.Index(cx.rows_of(key), STEP)))
                cx.bound.add(key)
            else:
                code, used = cx.assign(ir.Index(cx.rows_of(key), STEP), expr, "loop", True,
                                       hoisted)
            cx.rows.add(key)
            notes.add("stored")
            if used is not None:
                result.filled[value_of(used)] = key
        else:
            code, _ = cx.assign(cx.role(key, "row"), expr, "loop")
        codes.append((key, (expr, code, notes)))
    for let in loop.sums:  # a gradient, added up step by step
        codes.append((let.value, (let.expr, _summand(cx, let), {"sum"})))
    cx.lowering.constants, cx.bound = None, set()
    if not any(entry[1] if key is not None else entry.body for key, entry in codes):
        cx.local = set()
        return [], result  # every row was computed before the loop, straight into its array
    summed = {m: (group, members.index(m)) for group, members in result.groups
              for m in members}
    prefilled = set(result.filled.values())
    lines = []
    for key, entry in codes:
        if key is None:
            lines.append(entry)
            continue
        expr, code, notes = entry
        if key in summed:  # a row of a fused sum's array is not contiguous: NumPy's dot
            code = [dot_then_copy(s) for s in code]  # cannot write into it
            notes.add(("column",) + summed[key])
        if key in prefilled:
            notes.add("prefilled")
        what = "gradient" if "sum" in notes else kind
        lines.append(block(key, expr, what, code, step=True, notes=notes))
    cx.rows -= set(result.filled)
    rows, sources = [], {}
    for key in sorted(cx.rows, key=_order):
        if not cx.row_lists:
            continue
        steps = cx.role(key, "all") if key in cx.padded else ir.call(
            ir.Attr(cx.flat(key), "reshape"), STEPS, BATCH, ir.Const(-1))
        rows.append(ir.assign(cx.rows_of(key), ir.Rows(steps)))
        sources[cx.rows_of(key)] = steps
    rows += [ir.assign(name, value) for name, value in constants.values()] + after
    for name, rows_name in result.expanded.items():  # rows (B, 1, n), see fuse.expand
        rows.append(ir.assign(name, ir.Rows(ir.Index(sources[rows_name], (
            ir.Slice(), ir.Slice(), ir.Const(None))))))
    body = ir.For(STEP, start, stop, step, tuple(lines))
    cx.local = set()
    return [block(None, None, "loop", read_only(rows, body) + [body])], result


def _summand(cx, let):
    """``value += its term at step t``, summed over the sequences of the step."""
    cx.use("loop")
    rows, cx.lowering.rows = cx.lowering.rows, BATCH  # a fixed term: once per sequence
    try:
        return [ir.Update(let.value, "+", cx.lowering.lower(let.expr))]
    finally:
        cx.lowering.rows = rows


def _order(value):
    """Values in a stable order (a fused sum's group, a Temp, after the names)."""
    return (not isinstance(value.name, str), str(value.name), value.adjoint)


class SumsDiffer(Exception):
    """The terms of a fused sum are not of one form once lowered (``passes/sums.py``
    tries the lowering of a loop with its sums before it keeps them)."""


def _sum_lines(cx, group, after, result):
    """``[leaf = ...]``: the terms of ``group`` as one product over the (B, k, n)
    rows of their values side by side (see ``fuse.fuse_sum``). The stacked
    parameters and the lists of rows go to ``after`` (before the loop)."""
    forms, names = [], []
    slots = group.slots or [None] * len(group.rows)
    for term, row, slot in zip(group.terms, group.rows, slots):
        code = cx.code(term, "loop")
        row_ir = cx.code(row, "loop")
        slot_ir = cx.code(slot, "loop") if slot is not None else None
        if not isinstance(row_ir, ir.Index) or slot is not None and not isinstance(
                slot_ir, ir.Index):
            raise SumsDiffer(term)
        varying = {ir.Name(p) for p in cx.params} | {
            name for name, value in cx.lowering.constants.values()
            if isinstance(value, ir.Transpose) and value.value in
            {ir.Name(p) for p in cx.params}}
        own = {row_ir.value: SLOT_A}
        if slot_ir is not None:
            own[slot_ir.value] = SLOT_P
        form, order = canonical(code, own, varying)
        forms.append(form)
        names.append(order)
    # the terms' shared rows are read as before; the slots from the group's list
    cx.rows -= {value_of(p) for p in group.slots}
    cx.rows |= {value_of(r) for r in group.rows}
    if any(f != forms[0] for f in forms) or any(len(n) != len(names[0]) for n in names):
        raise SumsDiffer(group)
    value, kinds = fuse_sum(forms[0], BATCH, result.expanded)
    if value is None:
        raise SumsDiffer(group)
    k = len(group.rows)
    a_key = Value(cx.temp("sums"), isinstance(group.rows[0], Adjoint))
    mapping = {SLOT_A: cx.rows_of(a_key)}
    result.groups.append((a_key, [value_of(r) for r in group.rows]))
    after.append(ir.assign(cx.rows_of(a_key), ir.Rows(cx.role(a_key, "all"))))
    if group.slots:
        p_key = Value(cx.temp("sums"))
        for i, slot in enumerate(group.slots):
            result.slots[value_of(slot)] = (p_key, i, k)
        mapping[SLOT_P] = cx.rows_of(p_key)
        after.append(ir.assign(cx.rows_of(p_key), ir.Rows(cx.role(p_key, "all"))))
    for j, kind in kinds.items():
        members = ir.Tuple(tuple(n[j] for n in names))
        name = ir.Temp("stacked", cx.rows_of(a_key), j)
        after.append(ir.assign(name, ir.numpy_call("stack", members) if kind == "vector"
                               else ir.numpy_call("concatenate", members, ir.Const(0))))
        mapping[vary(j)] = name
    if FLAT_ROWS in ir.names_in(value):
        flat, whole = cx.role(a_key, "flatrows"), cx.role(a_key, "all")
        mapping[FLAT_ROWS] = flat
        after.append(ir.assign(flat, ir.Rows(ir.call(ir.Attr(whole, "reshape"), ir.Index(
            ir.Attr(whole, "shape"), ir.Const(0)), BATCH, ir.Const(-1)))))
    value = ir.rename(value, mapping)
    return [ir.assign(cx.role(group.leaf, "row"), value)]
