"""A loop-nested kernel cleaned up: views that nothing reads, loops left empty, and
new arrays that can be made once before a loop (``loops.py``)."""
from dataclasses import replace

from . import ir
from .nests import LOOP_VARS


def loop_invariant_allocations(loop, body):
    """The ``Alloc`` statements of a loop body that can run once before the loop:
    a new array whose sizes the loop does not change, bound nowhere else in the
    body and never bound to another name (so no step keeps it past its own end):
    its entries are garbage at every step either way."""
    inner = ir.bound(body) | {loop.var}
    aliased = set()  # names bound to another name or a view of one (not entries read in nests)
    for s in body:
        for n in _nested(s):
            if isinstance(n, ir.Assign) and pure_view(n.value):
                aliased |= ir.names_in(n.value)
    hoisted = []
    for s in body:
        if not (isinstance(s, ir.Alloc) and isinstance(s.target, ir.VARIABLES)) or s.zeros:
            continue
        others = [b for b in body if b is not s and s.target in ir.bound([b])]
        if not (ir.names_in(s.shape) & inner) and not others and s.target not in aliased:
            hoisted.append(s)
    return hoisted


def _nested(s):
    """``s`` and the statements in its loops, not inside loop nests over entries."""
    yield s
    if isinstance(s, ir.For) and s.var not in LOOP_VARS:
        for b in s.body:
            yield from _nested(b)


def pure_view(node):
    """Whether evaluating ``node`` only names memory (a name, rows, a reshape, a
    transpose): then a binding of it that nothing reads can go."""
    if isinstance(node, ir.VARIABLES):
        return True
    if isinstance(node, (ir.Rows, ir.Transpose)) or isinstance(node, ir.Attr) and node.attr == "T":
        return pure_view(node.value)
    if isinstance(node, ir.Index):
        return pure_view(node.value)
    if isinstance(node, ir.Call) and node.out is None:
        if node.func == ir.Helper("flat"):
            return pure_view(node.args[0])
        if isinstance(node.func, ir.Attr) and node.func.attr == "reshape":
            return pure_view(node.func.value)
    return False


def _view_binding(s):
    return (isinstance(s, ir.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], ir.VARIABLES)
            and pure_view(s.value))


def without_empty_loops(statements):
    """``statements`` without loops left with nothing to do (a loop whose only
    statement was a view that nothing read)."""
    out = []
    for s in statements:
        if isinstance(s, ir.For):
            body = without_empty_loops(s.body)
            if not body:
                continue
            s = replace(s, body=body)
        out.append(s)
    return tuple(out)


def unused_views_removed(body):
    """``body`` without the bindings of views that no statement reads (the loop
    nests index the arrays themselves, so most rows ``_t_h = _r_h[_t]`` are unused)."""
    while True:
        used = set()

        def collect(statements):
            for s in statements:
                if isinstance(s, ir.For):
                    used.update(ir.names_in((s.var, s.start, s.stop)))
                    collect(s.body)
                elif _view_binding(s):
                    used.update(ir.names_in(s.value))
                elif not isinstance(s, ir.Release):
                    used.update(ir.names_in(s))

        collect(body)

        def prune(statements):
            out = []
            for s in statements:
                if isinstance(s, ir.For):
                    out.append(replace(s, body=tuple(prune(s.body))))
                elif _view_binding(s) and s.targets[0] not in used:
                    continue
                elif isinstance(s, ir.Release):
                    names = tuple(n for n in s.names if n in used)
                    if names:
                        out.append(ir.Release(names))
                else:
                    out.append(s)
            return out

        pruned = prune(body)
        if pruned == list(body):
            return pruned
        body = pruned


def calls(node):
    if isinstance(node, ir.Call):
        yield node
    if isinstance(node, (ir.Expr, ir.Stmt)):
        for f in node.__dataclass_fields__:
            yield from calls(getattr(node, f))
    elif isinstance(node, tuple):
        for n in node:
            yield from calls(n)
