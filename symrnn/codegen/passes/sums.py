"""sums: the same-form terms of a sum in a loop body, as one product over their rows.

Input: the kernels' schedules. Output: the same, where a loop body's sum whose
terms have one form (a row of a stored value of the loop, possibly a value
hoisted before it, parameters: dL/dh gets W_k^T (sigma'_k * dL/dz_k) from each
gate k) reads a new local value instead, defined by a ``FusedSum`` entry right
before it: the lowering computes it as one product over the rows of the terms
side by side. A loop keeps its sums only if, lowered, their terms are of one
form; else it keeps none (as lowered before).
"""
from collections import Counter
from dataclasses import replace

from sympy import MatAdd, MatrixSymbol, default_sort_key, preorder_traversal
from sympy import Basic, HadamardProduct

from ...graph.unroll import t
from ...model.nodes import Adjoint, StepVar
from ..scheduled import FusedSum, Let, Loop, Value, value_of
from .lower.context import Context, leaves, time_of
from .lower.loop import SumsDiffer, lower_loop
from .lower.context import STEPS
from .. import ir


def run(module):
    params = {p.name for p in module.cell.params}
    names = iter(range(10**9))  # the sums' numbers, in this run
    made = set()
    kernels = []
    for kernel in module.kernels:
        cx = None
        items = []
        for item in kernel.items:
            if isinstance(item, Loop):
                fused = _fused(item, params, names, made)
                if fused is not item:
                    cx = cx or Context(module, kernel)
                    try:  # lowered as a trial: the terms of each sum of one form
                        lower_loop(cx, fused, ir.Const(1), STEPS, item.direction)
                    except SumsDiffer:
                        fused = item
                item = fused
            items.append(item)
        kernels.append(replace(kernel, items=tuple(items)))
    problem = replace(module.problem, internal=module.problem.internal | made)
    return replace(module, kernels=tuple(kernels), problem=problem)


def _fused(loop, params, names, made):
    body = [(let.value, let.expr) for let in loop.body]
    local = set(loop.local)
    hoisted = {let.value for let in loop.hoisted}

    def new_name():
        n = f"_sum{next(names)}"
        made.add(n)
        return n
    sums = _sum_groups(body, set(loop.stored), hoisted, local, params, new_name)
    if not sums:
        return loop
    entries = []
    for i, (key, expr) in enumerate(body):
        if i in sums:
            expr, group = sums[i]
            entries.append(group)
        entries.append(Let(key, expr))
    return replace(loop, body=tuple(entries), local=frozenset(local))


def _sum_groups(body, stored, hoisted, local, params, new_name):
    """{entry: (its new expression, FusedSum)}: in an entry that is a sum, the
    terms of one form, to be computed as one product over the rows of the
    terms side by side."""
    out, taken = {}, set()
    uses = Counter(value_of(l) for _, e in body for l in leaves(e))
    for i, (key, expr) in enumerate(body):
        if not isinstance(expr, MatAdd):
            continue
        forms = {}
        for term in expr.args:
            parts = _term_parts(term, stored, hoisted, local, params)
            if parts is not None:
                forms.setdefault(parts[0], []).append((term,) + parts[1:])
        for form, found in forms.items():
            found = _by_definition(found, body, hoisted)
            rows = [r for _, r, _ in found]
            slots = [p for _, _, p in found if p is not None]
            if len(found) < 2 or len({value_of(r) for r in rows}) < len(rows) or \
                    slots and len({value_of(p) for p in slots}) < len(rows) or \
                    any(uses[value_of(p)] > 1 for p in slots) or \
                    {value_of(r) for r in rows + slots} & taken or \
                    key in {value_of(r) for r in rows}:
                continue
            taken |= {value_of(r) for r in rows + slots}
            terms = [term for term, _, _ in found]
            leaf = StepVar(new_name(), t, *expr.shape)
            local.add(Value(leaf.name))
            rest = [a for a in expr.args if a not in terms]
            out[i] = (MatAdd(*rest, leaf) if rest else leaf,
                      FusedSum(Value(leaf.name), tuple(terms), tuple(rows), tuple(slots)))
            break
    return out


def _commuted(expr):
    """``expr`` with the operands of sums and element-wise products in one order
    (SymPy's sort key), so that the form of a term does not depend on its names."""
    if not isinstance(expr, Basic) or not expr.args or isinstance(
            expr, (StepVar, Adjoint, MatrixSymbol)):
        return expr
    args = [_commuted(a) for a in expr.args]
    if isinstance(expr, (HadamardProduct, MatAdd)):
        args.sort(key=default_sort_key)
    return expr.func(*args)


def _by_definition(found, body, hoisted):
    """The terms ``found`` of a sum with the rows whose definitions in ``body``
    have one form next to each other (they are the group's columns, and rows
    computed alike fuse into one statement on adjacent columns)."""
    defs = dict(body)

    def form(row):
        e = defs.get(value_of(row))
        if e is None:
            return None
        own = {l: StepVar("_slot", time_of(l), *l.shape) for l in leaves(e)
               if value_of(l) in hoisted}
        return _commuted(e.xreplace(own))
    forms = [form(r) for _, r, _ in found]
    first = {}
    for i, f in enumerate(forms):
        first.setdefault(f, i)
    order = sorted(range(len(found)), key=lambda i: (first[forms[i]], i))
    return [found[i] for i in order]


def _term_parts(term, stored, hoisted, local, params):
    """``(form, row, slot)`` of a term: its one row of a stored value of the
    loop, its value computed before the loop (or None), and the term with
    both and its parameters as placeholders; None if it has no such row."""
    rows, slots, replace_ = [], [], {}
    found = [l for l in preorder_traversal(term) if isinstance(l, (StepVar, MatrixSymbol))
             and l.name in params]
    for l in leaves(term):
        b = value_of(l)
        if b in stored and b not in local:
            rows.append(l)
        elif b in hoisted and time_of(l) == t:
            slots.append(l)
    if len(rows) != 1 or len(slots) > 1 or any(term.count(l) != 1 for l in rows + slots):
        return None
    for name, leaf in [("_slota", rows[0])] + [("_slotp", p) for p in slots]:
        var = leaf.var if isinstance(leaf, Adjoint) else leaf
        place = StepVar(name, var.time, *var.shape)
        replace_[leaf] = Adjoint(place) if isinstance(leaf, Adjoint) else place
    for j, p in enumerate(dict.fromkeys(found)):
        replace_[p] = StepVar(f"_slotw{j}", p.time, *p.shape) if isinstance(p, StepVar) \
            else MatrixSymbol(f"_slotw{j}", *p.shape)
    return _commuted(term.xreplace(replace_)), rows[0], (slots[0] if slots else None)
