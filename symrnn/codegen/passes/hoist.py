"""hoist: the work of a loop body that reads none of the loop's own values, before the loop.

Input: the kernels' schedules. Output: the same, where each loop's body has its
maximal sub-expressions free of the loop's values replaced by hoisted values
(``Loop.hoisted``, computed over all steps at once: ``U x`` of every step is one
matrix product), and each local value that one statement of the body reads
once written into that statement.
"""
from collections import Counter
from dataclasses import replace

from sympy import Basic, HadamardProduct, MatAdd

from ...graph.unroll import t
from ...model.nodes import Adjoint, StepVar
from ..lower import is_fixed
from ..scheduled import Let, Loop, value_of

# how many values may be written into one another: a longer chain stays several
# statements (SymPy's MatMul asks each factor for its shape twice, so that the
# cost of a nested expression doubles with each c * f(...) it holds)
INLINE_DEPTH = 6


def run(module):
    cell = module.cell
    fixed = {p.name for p in cell.params} | {v.name for v in cell.fixed_values}
    names = iter(range(10**9))  # the hoisted values' numbers, in this run
    made = set()
    kernels = []
    for kernel in module.kernels:
        items = []
        for item in kernel.items:
            if isinstance(item, Loop):
                item = _hoisted(item, fixed, names, made)
            items.append(item)
        kernels.append(replace(kernel, items=tuple(items)))
    problem = replace(module.problem, internal=module.problem.internal | made)
    return replace(module, kernels=tuple(kernels), problem=problem)


def _hoisted(loop, fixed, names, made):
    part = {v for v, _ in loop.defs}
    if loop.direction > 0:  # a forward loop: its values (an adjoint is none of them)
        part_names = {p.name for p in part}

        def mine(leaf):
            v = value_of(leaf)
            return v.name in part_names and not v.adjoint
    else:
        def mine(leaf):
            return value_of(leaf) in part
    hoisted, body = [], []

    def name():
        n = f"_pre{next(names)}"
        made.add(n)
        return n
    for v, e in loop.defs:
        body.append((v, hoist(e, mine, hoisted, fixed, name)))
    body = inline_single_use(body, loop.local)
    return replace(loop, body=tuple(Let(v, e) for v, e in body), hoisted=tuple(hoisted))


def _leaves(expr):
    if isinstance(expr, (Adjoint, StepVar)):
        return {expr}
    return set().union(*[_leaves(a) for a in expr.args if isinstance(a, Basic)])


def _time(leaf):
    """The step of a leaf; None for the adjoint of a named matrix, which has none."""
    var = leaf.var if isinstance(leaf, Adjoint) else leaf
    return var.time if isinstance(var, StepVar) else None


def hoist(expr, is_loop_leaf, before, fixed, new_name):
    """``expr`` with its maximal sub-expressions free of loop variables computed
    before the loop (appended to ``before`` as ``Let``) and replaced by new values."""
    if not any(is_loop_leaf(l) for l in _leaves(expr)):
        if isinstance(expr, (StepVar, Adjoint)) or is_fixed(expr, fixed):
            return expr
        var = StepVar(new_name(), t, *expr.shape)
        before.append(Let(value_of(var), expr))
        return var
    if isinstance(expr, (StepVar, Adjoint)):
        return expr
    args = list(expr.args)
    if isinstance(expr, (MatAdd, HadamardProduct)):
        constant = [a for a in args if not any(is_loop_leaf(l) for l in _leaves(a))]
        if len(constant) > 1:
            args = [a for a in args if a not in constant] + [expr.func(*constant)]
    return expr.func(*[hoist(a, is_loop_leaf, before, fixed, new_name)
                       if getattr(a, "is_Matrix", False) else a for a in args])


def _leaf_counts(expr):
    """``{leaf: occurrences}`` of the adjoints and forward values ``expr`` reads."""
    counts, todo = Counter(), [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, (Adjoint, StepVar)):
            counts[e] += 1
        else:
            todo.extend(a for a in e.args if isinstance(a, Basic))
    return counts


def inline_single_use(body, local):
    """Loop statements ``[(value, expr)]`` with each loop-local value that one
    statement reads once written into that statement instead (at most
    INLINE_DEPTH values deep)."""
    body = dict(body)
    leaves = {key: _leaf_counts(e) for key, e in body.items()}
    readers = {}   # a value -> the statements that read it at step t
    for key, counts in leaves.items():
        for leaf in counts:
            if _time(leaf) == t:
                readers.setdefault(value_of(leaf), set()).add(key)
    depth = dict.fromkeys(body, 0)
    for name in [n for n in body if n in local]:
        found = readers.get(name, set())
        if len(found) != 1:
            continue
        reader = next(iter(found))
        leaf = [l for l in leaves[reader] if value_of(l) == name and _time(l) == t]
        if len(leaf) != 1 or leaves[reader][leaf[0]] != 1 or depth[name] >= INLINE_DEPTH:
            continue
        body[reader] = body[reader].xreplace({leaf[0]: body.pop(name)})
        del leaves[reader][leaf[0]]
        for l, k in leaves.pop(name).items():
            leaves[reader][l] += k
            if _time(l) == t:
                readers[value_of(l)].discard(name)
                readers[value_of(l)].add(reader)
        depth[reader] = max(depth[reader], depth[name] + 1)
    return list(body.items())
