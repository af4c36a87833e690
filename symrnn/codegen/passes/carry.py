"""carry: a product that a backward step reads at step t and at t+1, computed once per step.

Input: the kernels' schedules. Output: the same, where each backward loop's
definitions hold such a product as an adjoint of its own, stored and padded.

The GRU's dL/dr(t) reads ``W^T dz_a(t)`` and its dL/dh(t) reads
``W^T dz_a(t+1)``: the same matrix-vector product, once at step t and again
one step later. Such a product becomes an adjoint of its own, ``_carry{n}``,
stored by the loop at step t (right before its first reader) and read as a
row at step t+1: one product per step instead of two.

Step T+1 of a stored adjoint is zero; so is the product there, since it is
linear in the loop's adjoints (checked, not assumed).
"""
from sympy import Add, HadamardProduct, MatAdd, MatMul, MatrixSymbol, Transpose, preorder_traversal

from dataclasses import replace

from ...graph.unroll import t
from ...model.nodes import Adjoint, StepVar
from ..scheduled import Let, Loop, value_of


def run(module):
    names = iter(range(10**9))  # the carried products' numbers, in this run
    kernels = []
    made = set()
    for kernel in module.kernels:
        items, padded = [], set(kernel.padded)
        for item in kernel.items:
            if isinstance(item, Loop) and item.direction < 0:
                item = _carried(item, names, padded, made)
            items.append(item)
        kernels.append(replace(kernel, items=tuple(items), padded=frozenset(padded)))
    problem = replace(module.problem, internal=module.problem.internal | made)
    return replace(module, kernels=tuple(kernels), problem=problem)


def _carried(loop, names, padded, made):
    part = {v for v, _ in loop.defs}
    defs = carry_products(loop.defs, lambda a: value_of(a) in part,
                          lambda: f"_carry{next(names)}")
    defs = tuple((value_of(a) if isinstance(a, Adjoint) else a, e) for a, e in defs)
    carried = {v for v, _ in defs} - part
    if not carried:
        return loop
    padded |= carried
    made |= {v.name for v in carried}
    return replace(loop, body=tuple(Let(v, e) for v, e in defs), defs=defs,
                   stored=tuple(v for v, _ in defs if v not in loop.local),
                   carried=loop.carried + tuple(v for v, _ in defs if v in carried))


def _linear(expr, is_mine):
    """Whether ``expr`` is linear in the adjoints that ``is_mine`` accepts (and
    reads no other adjoint)."""
    if isinstance(expr, Adjoint):
        return is_mine(expr)
    has = [a for a in expr.args if getattr(a, "is_Matrix", False)
           and any(isinstance(n, Adjoint) for n in preorder_traversal(a))]
    if isinstance(expr, (MatAdd, Add)):
        return len(has) == len(expr.args) and all(_linear(a, is_mine) for a in has)
    if isinstance(expr, (MatMul, HadamardProduct, Transpose)):
        return len(has) == 1 and _linear(has[0], is_mine)
    return False


def _has_parameter(expr):
    return any(isinstance(f, MatrixSymbol) or isinstance(f, Transpose)
               and isinstance(f.arg, MatrixSymbol) for f in expr.args)


def _candidates(expr, is_mine):
    """The products of a parameter and the loop's adjoints of step t in ``expr``."""
    out = []
    for node in preorder_traversal(expr):
        if isinstance(node, MatMul) and node.shape[1] == 1 and _has_parameter(node) \
                and _linear(node, is_mine):
            times = {a.var.time for a in node.atoms(Adjoint)}
            if times == {t}:
                out.append(node)
    return out


def carry_products(defs, is_mine, new_name):
    """``defs`` ([(adjoint, expression)] of one backward loop, in the loop's
    order) with each product read at step t and at step t+1 computed once,
    as an adjoint of its own (``new_name()``) inserted before its first reader."""
    defs = list(defs)
    done = set()
    while True:
        exprs = [e for _, e in defs]
        found = None
        for e in exprs:
            for p in _candidates(e, is_mine):
                later = p.subs(t, t + 1)
                if p not in done and any(x.has(later) for x in exprs):
                    found = p
                    break
            if found is not None:
                break
        if found is None:
            return defs
        done.add(found)
        var = StepVar(new_name(), t, *found.shape)
        swap = {found: Adjoint(var), found.subs(t, t + 1): Adjoint(var.at(t + 1))}
        first = next(i for i, (_, e) in enumerate(defs) if e.has(found))
        defs = [(a, e.xreplace(swap)) for a, e in defs]
        defs.insert(first, (Adjoint(var), found))
