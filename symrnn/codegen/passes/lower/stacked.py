"""Values over all steps at once: statements for a list of ``Let``.

Each value is one ``Block`` of statements that compute it in one buffer
(``inplace.py``); a value that several of them need is computed first, once,
and an array that nothing reads any more is taken over by the statement that
reads it last.
"""
from sympy import preorder_traversal

from ....derivation.subexpressions import repeated
from ....model.nodes import Adjoint, LogSoftmax, Softmax, StepVar
from ... import ir
from ...inplace import makes_array
from .context import BATCH, STEPS, Readers


def block(value, expr, kind, lines, step=False, notes=frozenset()):
    return ir.Block(ir.Label(value, expr, kind, step, frozenset(notes)), tuple(lines))


def dot_then_copy(stmt):
    """``dot(a, b, out)`` as ``out[:] = dot(a, b)``, for an ``out`` that is not contiguous."""
    if isinstance(stmt, ir.Do) and stmt.call.func == ir.Helper("dot"):
        return ir.Fill(stmt.call.out, ir.Call(stmt.call.func, stmt.call.args))
    if any(isinstance(n, ir.Call) and n.func == ir.Helper("dot") and n.out is not None
           for n in ir.walk(stmt)):
        raise NotImplementedError("a product written into a row inside an expression")
    return stmt


def kind_of(value, default):
    return "adjoint" if getattr(value, "adjoint", False) else default


def stacked(cx, lets, kind="forward", filled=None, share=False, rows=True, loop=None):
    """Statements for ``lets`` over all steps at once. ``filled`` maps a value to
    the stored value whose array (already allocated) is to hold it; with
    ``share``, later statements read the values by name (hoisted values, which
    nothing overwrites). ``rows``: the values are per-step rows (not gradients,
    which are computed once). ``loop``: what the lowering of the loop these
    values are hoisted for decided (``loop.LoopResult``)."""
    filled = filled or {}
    cx.use("stacked")

    def candidate(e):
        return (not isinstance(e, (StepVar, Adjoint)) and e not in cx.shared
                and cx.lowering.kind(e) in ("C", "R") and not e.is_Transpose)
    lines = []
    to_share = sorted(repeated([l.expr for l in lets], candidate),
                      key=lambda e: len(list(preorder_traversal(e))))
    later = Readers([l.expr for l in lets])  # the statements after this one
    for let in lets:
        key, e = let.value, let.expr
        what = kind_of(key, kind)
        later.remove(e)
        for r in [r for r in to_share if e.has(r)]:  # computed once, before its first use
            to_share.remove(r)  # (it may read a value computed by an earlier assignment)
            name = cx.temp("shared")
            lines.append(block(name, r, "shared", cx.assign(name, r, "stacked")[0]))
            cx.share(r, name)
        cx.done(e)
        if loop is not None and key in loop.slots:  # a column of a fused sum's array
            lines.append(block(key, e, what, _slot(cx, key, e, loop, share)))
            continue
        if key in filled:
            lines.append(block(filled[key], e, "prefill", _prefill(cx, key, e, filled, loop)))
            continue
        if isinstance(e, Softmax) and any(LogSoftmax(e.arg) in x.atoms(LogSoftmax)
                                          for x in cx.pending.exprs):
            # the loss needs log-softmax(o): both from one exp
            pair = cx.role(key, "logsoftmax")
            cx.share(LogSoftmax(e.arg), pair, replace=True)
            free = cx.free(e, later)
            arg = cx.code(e.arg, "stacked")
            both = ir.helper("log_softmax_and_softmax", arg,
                             out=arg if e.arg in free else None)
            lines.append(block(key, e, what, [ir.Assign((pair, cx.flat(key)), both)]))
            cx.owned.add(key)
            continue
        if rows and not cx.lowering.per_step(e):
            # a value of the parameters alone: the same in every row, stored
            # in every row all the same (it is read row by row)
            r, c = e.shape
            width = cx.size(c if r == 1 else r)
            code = [ir.Alloc(cx.flat(key), (ir.mul(STEPS, BATCH), width))]
            code += cx.assign(cx.flat(key), e, "stacked", into=True)[0]
            lines.append(block(key, e, what, code))
            cx.owned.add(key)
            continue
        free = cx.free(e, later)
        code, _ = cx.assign(cx.flat(key), e, "stacked", ready=free)
        lines.append(block(key, e, what, code))
        if share:
            cx.share(e, cx.flat(key))
        elif makes_array(cx.lowering, e) or e in free:
            cx.owned.add(key)
    return lines


def _slot(cx, key, e, loop, share):
    """A hoisted value that a fused sum reads: a column of the sum's array of them."""
    group, i, k = loop.slots[key]
    lines = []
    if group not in loop.slot_arrays:
        loop.slot_arrays.add(group)
        r, c = e.shape
        width = cx.size(c if r == 1 else r)
        lines.append(ir.Alloc(cx.role(group, "all"), (STEPS, BATCH, ir.Const(k), width)))
    value = cx.temp("tmp")
    lines += cx.assign(value, e, "stacked")[0]
    lines.append(ir.assign(cx.flat(key), ir.helper("flat", ir.Index(
        cx.role(group, "all"), (ir.Slice(), ir.Slice(), ir.Const(i))))))
    lines.append(ir.Fill(cx.flat(key), value))
    if share:
        cx.share(e, cx.flat(key))
    return lines


def _prefill(cx, key, e, filled, loop):
    """A hoisted value that a stored row starts from, computed straight into its array."""
    view = filled[key]
    lines = [ir.assign(cx.flat(view), cx.steps(view, 1))]
    if loop is not None and any(view in members for _, members in loop.groups):
        # a column of a fused sum's array, not contiguous: NumPy's dot cannot
        # write into it (a ufunc can)
        code, _ = cx.assign(cx.flat(view), e, "stacked", into=True)
        try:
            return lines + [dot_then_copy(c) for c in code]
        except NotImplementedError:
            code, _ = cx.assign(cx.flat(key), e, "stacked")
            return lines + code + [ir.Fill(cx.flat(view), cx.flat(key))]
    return lines + cx.assign(cx.flat(view), e, "stacked", into=True)[0]
