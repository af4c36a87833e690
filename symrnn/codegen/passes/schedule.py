"""schedule: which values run step by step, in which loops, and which over all steps.

Input: ``module.problem``. Output: ``module.kernels``, the schedules of the two
kernels (``scheduled.py``): ``forward`` (the loss alone) and ``gradients`` (the
loss and every gradient).

Only the recurrences run step by step: the forward loop carries the states,
the backward loop the adjoints that read step t+1; each runs as one loop per
strongly connected component of its dependencies, in an order where each loop
comes after those it reads, so that what a loop reads of an earlier one is
known for every step (the input projection of a stacked layer is then one
product over all steps). Everything else is computed over all steps at once.

Setting ``loops`` (``module.option``): "split" (the above), or "one" (the
readable backend: one loop forward over every equation of the step, one
backward over every adjoint, every value stored, nothing over all steps but
the gradients).
"""
from dataclasses import replace

from sympy import Basic

from ...graph.reach import components, reachable
from ...graph.unroll import T, t
from ...model.nodes import Adjoint, StepVar, SumOverTime
from .. import ir
from ..scheduled import (BATCH, Fixed, Gradient, Gradients, Kernel, Let, Loop, Loss, Pad, Stacked,
                         Value, value_of)


def run(module):
    problem, cell = module.problem, module.cell
    one = module.option("loops", "split") == "one"
    L = cell.loss_var.name
    eqs = problem.equations
    L_rhs = dict((lhs.name, rhs) for lhs, rhs in eqs)[L]
    L_read = any(L in {v.name for v in rhs.atoms(StepVar)} for lhs, rhs in eqs if lhs.name != L)
    fixed = Fixed(tuple(Let(Value(lhs.name), rhs) for lhs, rhs in problem.fixed))

    needed = _needed(eqs, [L]) - ({L} if not L_read and not one else set())
    builder = _Builder(cell, problem, frozenset(), one)
    items = builder.forward(needed, ())
    forward = Kernel("forward", (fixed,) + tuple(items) + (Loss(L_rhs, L in needed, Value(L)),),
                     frozenset(builder.padded), frozenset(),
                     tuple(rhs for lhs, rhs in eqs if lhs.name in needed) + (L_rhs,), Value(L))

    backward_exprs = (list(problem.adjoints.values()) + list(problem.fixed_adjoints.values())
                      + list(problem.gradients.values()))
    leaves, shifted = set(), set()
    for e in backward_exprs:
        values = {v for v in _leaves(e) if isinstance(v, StepVar)}
        leaves |= {v.name for v in values}
        shifted |= {Value(v.name) for v in values if (v.time - t).is_positive
                    and v.name not in {p.name for p in cell.params}}
    needed = _needed(eqs, leaves | {L}) - (
        {L} if L not in leaves and not L_read and not one else set())
    builder = _Builder(cell, problem, frozenset(shifted), one)
    items = builder.forward(needed, leaves)
    items.append(Loss(L_rhs, L in needed, Value(L)))
    items += builder.backward()
    gradients = _gradients(cell, problem)
    if one:  # the sums over t added up by the backward loop, as a reader does
        items, gradients = _summed_in_loop(items, gradients)
    items.append(gradients)
    gradients = Kernel("gradients", (fixed,) + tuple(items), frozenset(builder.padded),
                       frozenset(shifted),
                       tuple(rhs for lhs, rhs in eqs if lhs.name in needed) + (L_rhs,)
                       + tuple(backward_exprs), Value(L))
    return replace(module, kernels=(forward, gradients))


def _gradients(cell, problem):
    items = []
    for name, e in problem.gradients.items():
        if name in {p.name for p in cell.params}:
            rows, cols = cell.param(name).shape
            shape, state = ((rows,) if cols == 1 else (rows, cols)), False
        else:
            s = next(s for s in cell.states if f"{s.name}0" == name)
            shape, state, name = (BATCH, s.shape[0]), True, s.name
        items.append(Gradient(name, state, None if e.is_ZeroMatrix else e, shape))
    fixed = tuple(Let(Value(a.var.name, True), e) for a, e in problem.fixed_adjoints.items())
    return Gradients(tuple(items), fixed)


def _summed_in_loop(items, gradients):
    """``items`` with the gradients that are sums over all steps added up by the
    last backward loop, and ``gradients`` with those marked ``in_loop``."""
    loops = [i for i, item in enumerate(items) if isinstance(item, Loop) and item.direction < 0]
    if not loops:
        return items, gradients
    sums, kept = [], []
    for g in gradients.items:
        e = g.expr
        if isinstance(e, SumOverTime) and e.index == t and e.limits == (1, T):
            sums.append(Let(ir.Temp("grad0" if g.state else "grad", Value(g.of)), e))
            g = replace(g, in_loop=True)
        kept.append(g)
    items = list(items)
    items[loops[-1]] = replace(items[loops[-1]], sums=tuple(sums))
    return items, replace(gradients, items=tuple(kept))


def _leaves(expr):
    """The adjoints and forward values ``expr`` reads (not the variables inside an adjoint)."""
    if isinstance(expr, (Adjoint, StepVar)):
        return {expr}
    return set().union(*[_leaves(a) for a in expr.args if isinstance(a, Basic)])


def _needed(equations, roots):
    uses = {lhs.name: {v.name for v in rhs.atoms(StepVar)} for lhs, rhs in equations}
    return reachable(roots, uses)


def _read_across(parts, reads):
    """The variables that a component other than their own reads."""
    where = {n: i for i, part in enumerate(parts) for n in part}
    return {m for n, ms in reads.items() for m in ms if where[m] != where[n]}


def _forward_parts(eqs, states):
    """The loop's variables (on a path from a state at t-1 to a state at t),
    and the others that depend on them (computed after the loop)."""
    variables = {lhs.name for lhs, _ in eqs}
    same, prev = {}, {}
    for lhs, rhs in eqs:
        refs = [v for v in rhs.atoms(StepVar) if v.name in variables]
        same[lhs.name] = {v.name for v in refs if v.time == t}
        prev[lhs.name] = {v.name for v in refs if v.time != t}
    reaches_prev = set()
    for lhs, _ in eqs:
        n = lhs.name
        if prev[n] or same[n] & reaches_prev:
            reaches_prev.add(n)
    core = (reaches_prev & reachable(states, same)) | set(states)
    while True:
        after_core = set()
        for lhs, _ in eqs:
            n = lhs.name
            if n not in core and (prev[n] or same[n] & (core | after_core)):
                after_core.add(n)
        # a value of the same step that the loop reads and that needs the loop's
        # values (a state that reads none at t-1 is in the loop all the same)
        inside = after_core & set().union(*[same.get(n, set()) for n in core])
        if not inside:
            return core, after_core
        core |= inside


class _Builder:
    """The items of one kernel; ``padded`` grows as they are made."""

    def __init__(self, cell, problem, shifted, one):
        self.cell, self.problem, self.shifted, self.one = cell, problem, shifted, one
        self.states = [s.name for s in cell.states]
        self.padded = {Value(s) for s in self.states}

    def forward(self, needed, read_after):
        eqs = [(lhs, rhs) for lhs, rhs in self.problem.equations if lhs.name in needed]
        if self.one:
            return self._one_loop(eqs, 1, [(Value(lhs.name), rhs) for lhs, rhs in eqs])
        core, after = _forward_parts(eqs, self.states)
        read_after = set(read_after) | {v.name for lhs, rhs in eqs if lhs.name in after
                                        for v in rhs.atoms(StepVar)}
        reads = {lhs.name: {v.name for v in rhs.atoms(StepVar)} & core
                 for lhs, rhs in eqs if lhs.name in core}
        parts = components([lhs.name for lhs, _ in eqs if lhs.name in core], reads)
        local = {Value(n) for n in core - set(self.states) - read_after
                 - _read_across(parts, reads)}
        self.padded |= {Value(n) for n in core} - local
        before, end = [], []
        for lhs, rhs in eqs:
            if lhs.name in after:
                if Value(lhs.name) in self.shifted:
                    raise NotImplementedError(f"{lhs.name} is read at step t+1 but is not "
                                              "computed in the recurrence")
                end.append(Let(Value(lhs.name), rhs))
            elif lhs.name not in core:
                before.append(Let(Value(lhs.name), rhs))
        items = [Stacked(tuple(before))] if before else []
        stacked = {Value(s.name) for s in self.cell.inputs + self.cell.targets} | {
            Value(lhs.name) for lhs, _ in eqs if lhs.name not in core | after}
        for key in sorted(self.shifted & stacked):  # read at t+1: a step T+1
            self.padded.add(key)
            items.append(Pad(key, forward=True))
        for part in parts:
            defs = tuple((Value(lhs.name), rhs) for lhs, rhs in eqs if lhs.name in part)
            items.append(self._loop(1, defs, local))
        return items + ([Stacked(tuple(end))] if end else [])

    def backward(self):
        defs = self.problem.adjoints
        base = {a: value_of(a) for a in defs}
        if self.one:
            return self._one_loop(None, -1, [(base[a], e) for a, e in defs.items()])
        refers = {base[a]: {value_of(l) for l in e.atoms(Adjoint)} for a, e in defs.items()}
        future = {value_of(l) for e in defs.values() for l in e.atoms(Adjoint)
                  if l.var.time != t}
        # what reads an adjoint of step t+1, itself or through others, runs step by step;
        # a value read at t+1 that reads none (dL/dL^(t) = 1) is stacked and padded
        reads_next = {base[a] for a, e in defs.items()
                      if any(l.var.time != t for l in e.atoms(Adjoint))}
        core = {b for b in refers if reachable([b], refers) & reads_next}
        reads = {b: refers[b] & core for b in core}
        parts = components([base[a] for a in defs if base[a] in core], reads)
        read_after = {value_of(l) for e in list(self.problem.gradients.values())
                      + list(self.problem.fixed_adjoints.values()) for l in e.atoms(Adjoint)}
        local = core - future - read_after - _read_across(parts, reads)
        self.padded |= (core | future) - local
        before, pads = [], []
        for a, e in defs.items():
            if base[a] not in core:
                before.append(Let(base[a], e))
                if base[a] in self.padded:  # used at t+1: stored with a zero step T+1
                    pads.append(base[a])
        items = [Stacked(tuple(before))] if before else []
        items += [Pad(key, forward=False) for key in pads]
        for part in parts:
            items.append(self._loop(-1, tuple((base[a], e) for a, e in defs.items()
                                              if base[a] in part), local))
        return items

    def _loop(self, direction, defs, local):
        part = {v for v, _ in defs}
        carried = []
        for _, e in defs:
            for leaf in _leaves(e):
                v = value_of(leaf)
                step = leaf.var.time if isinstance(leaf, Adjoint) else leaf.time
                if v in part and step != t and v not in carried:
                    carried.append(v)
        return Loop(direction, tuple(Let(v, e) for v, e in defs), tuple(defs),
                    tuple(v for v, _ in defs if v not in local), frozenset(local & part),
                    tuple(carried))

    def _one_loop(self, eqs, direction, defs):
        """Every value of ``defs`` in one loop, each stored (the readable backend);
        before the forward loop, the inputs and targets read at step t+1 padded."""
        if not defs:
            return []
        self.padded |= {v for v, _ in defs}
        pads = []
        if direction > 0:
            sequences = {Value(s.name) for s in self.cell.inputs + self.cell.targets}
            pads = [Pad(key, forward=True) for key in sorted(self.shifted & sequences)]
            self.padded |= {p.value for p in pads}
        return pads + [self._loop(direction, tuple(defs), frozenset())]
