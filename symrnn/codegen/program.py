"""NumPy source for the forward pass and BPTT, structured by the derivation.

Only the recurrences run step by step: the forward loop carries the states, the
backward loop carries the adjoints that refer to step t+1. Everything else,
including every sub-expression of a loop body that does not depend on the
loop's own variables, is computed for all steps at once, and each sum over t
is one matrix product of stacked rows (see ``printer.py``).
"""
from sympy import Basic, HadamardProduct, MatAdd

from ..graph.unroll import shared, t
from ..model.nodes import Adjoint, StepVar
from .printer import RowNumPyPrinter


def _base(leaf):
    return f"d_{leaf.var.name}" if isinstance(leaf, Adjoint) else leaf.name


def _time(leaf):
    return leaf.var.time if isinstance(leaf, Adjoint) else leaf.time


def _leaves(expr):
    """The adjoints and forward values ``expr`` reads (not the variables inside an adjoint)."""
    if isinstance(expr, (Adjoint, StepVar)):
        return {expr}
    return set().union(*[_leaves(a) for a in expr.args if isinstance(a, Basic)])


def _forward_values(expr):
    return {v for v in _leaves(expr) if isinstance(v, StepVar)}


def _closure(start, edges):
    """Everything reachable from ``start`` along ``edges`` (a dict of sets)."""
    seen, todo = set(), list(start)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return seen


class Program:
    """Builds the source of ``forward`` and ``gradients`` for one derivation."""

    def __init__(self, derivation):
        self.d = derivation
        cell = self.cell = derivation.cell
        self.params = [p.name for p in cell.params]
        self.states = [s.name for s in cell.states]
        self.padded = set(self.states)       # arrays indexed by step, 0 and T+1 allowed
        self.temps = 0
        self.printer = RowNumPyPrinter(self._name, self.params)
        self.mode = "stacked"
        self.shifted = set()  # forward values that the backward pass reads at step t+1
        self.local = set()    # loop variables that nothing outside the loop body reads
        self.equations = [(lhs, shared(cell, rhs)) for lhs, rhs in derivation.step]

    # -- names of variables in the three contexts ---------------------------
    def _name(self, leaf):
        if not isinstance(leaf, (StepVar, Adjoint)) or _base(leaf) in self.params:
            return leaf.name
        base, time = _base(leaf), _time(leaf)
        padded = base in self.padded
        if self.mode == "loop" and base in self.local:
            return f"{base}_t"  # lives only in the loop body, at the current step
        if self.mode == "loop":
            k = int(time - t)
            index = k if padded else k - 1
            return f"{base}{'_all' if padded else ''}[_t{f'{index:+d}' if index else ''}]"
        if not time.has(t):  # a concrete step, as in dL/dh^(0) = W^T delta^(1)
            return f"{base}_all[{time}]" if padded else f"{base}[{int(time) - 1}]"
        k = int(time - t)
        if not padded:
            if k != 0:
                raise NotImplementedError(f"{leaf} is not stored step by step")
            return base
        return {0: base, -1: f"{base}_prev"}.get(k, f"{base}_all[{1 + k}:T_{1 + k:+d}]")

    def code(self, expr, mode):
        self.mode = mode
        return self.printer.doprint(expr)

    # -- hoisting loop-invariant work -------------------------------------------
    def _hoist(self, expr, is_loop_leaf, before):
        """``expr`` with its maximal sub-expressions free of loop variables computed
        before the loop (appended to ``before``) and replaced by their names."""
        if not any(is_loop_leaf(l) for l in _leaves(expr)):
            if isinstance(expr, (StepVar, Adjoint)) or self.printer.kind(expr) == "F":
                return expr
            name = f"_pre{self.temps}"
            self.temps += 1
            before.append(f"{name} = {self.code(expr, 'stacked')}")
            return StepVar(name, t, *expr.shape)
        if isinstance(expr, (StepVar, Adjoint)):
            return expr
        args = list(expr.args)
        if isinstance(expr, (MatAdd, HadamardProduct)):
            fixed = [a for a in args if not any(is_loop_leaf(l) for l in _leaves(a))]
            if len(fixed) > 1:
                args = [a for a in args if a not in fixed] + [expr.func(*fixed)]
        return expr.func(*[self._hoist(a, is_loop_leaf, before) if getattr(a, "is_Matrix", False)
                           else a for a in args])

    # -- the forward pass ---------------------------------------------------
    def _forward_parts(self, eqs):
        """The loop's variables (on a path from a state at t-1 to a state at t),
        and the others that depend on them (computed after the loop)."""
        variables = {lhs.name for lhs, _ in eqs}
        same, prev = {}, {}
        for lhs, rhs in eqs:
            refs = [v for v in rhs.atoms(StepVar) if v.name in variables]
            same[lhs.name] = {v.name for v in refs if v.time == t}
            prev[lhs.name] = {v.name for v in refs if v.time != t}
        reaches_prev, after_core = set(), set()
        for lhs, _ in eqs:
            n = lhs.name
            if prev[n] or same[n] & reaches_prev:
                reaches_prev.add(n)
        core = (reaches_prev & _closure(self.states, same)) | set(self.states)
        for lhs, _ in eqs:
            n = lhs.name
            if n not in core and (prev[n] or same[n] & (core | after_core)):
                after_core.add(n)
        return core, after_core

    def _needed(self, roots):
        uses = {lhs.name: {v.name for v in rhs.atoms(StepVar)} for lhs, rhs in self.equations}
        return _closure(roots, uses)

    def forward_lines(self, needed, read_after):
        """The forward pass; ``read_after``: names the backward pass reads."""
        eqs = [(lhs, rhs) for lhs, rhs in self.equations if lhs.name in needed]
        core, after = self._forward_parts(eqs)
        read_after = set(read_after) | {v.name for lhs, rhs in eqs if lhs.name in after
                                        for v in rhs.atoms(StepVar)}
        self.local = core - set(self.states) - read_after
        self.padded |= core - self.local
        before, loop, end = [], [], []
        for lhs, rhs in eqs:
            if lhs.name in core:
                body = self.code(self._hoist(rhs, lambda l: _base(l) in core, before), "loop")
                target = f"{lhs.name}_t" if lhs.name in self.local else f"{lhs.name}_all[_t]"
                loop.append(f"{target} = {body}")
            elif lhs.name in after:
                if lhs.name in self.shifted:
                    raise NotImplementedError(f"{lhs.name} is read at step t+1 but is not "
                                              "computed in the recurrence")
                end.append(f"{lhs.name} = {self.code(rhs, 'stacked')}")
            else:
                before.append(f"{lhs.name} = {self.code(rhs, 'stacked')}")
        lines = before[:]
        stacked = {s.name for s in self.cell.inputs + self.cell.targets} | {
            lhs.name for lhs, _ in eqs if lhs.name not in core | after}
        for name in sorted(self.shifted & stacked):  # read at t+1: a zero step T+1
            lines += [f"{name}_all = numpy.zeros((T_ + 2,) + {name}.shape[1:], dtype=_dtype)",
                      f"{name}_all[1:T_ + 1] = {name}"]
            self.padded.add(name)
        stored = [lhs for lhs, _ in eqs if lhs.name in core - self.local]
        for lhs in stored:
            rows = self.code(lhs.shape[0], "stacked")
            if lhs.name in self.shifted:  # read at t+1 by the backward pass: a zero step T+1
                lines.append(f"{lhs.name}_all = numpy.zeros((T_ + 2, B_, {rows}), dtype=_dtype)")
            else:
                lines.append(f"{lhs.name}_all = numpy.empty((T_ + 1, B_, {rows}), dtype=_dtype)")
            if lhs.name in self.states:
                lines.append(f"{lhs.name}_all[0] = {lhs.name}0")
        lines.append("for _t in range(1, T_ + 1):")
        lines += ["    " + l for l in loop]
        for lhs in stored:
            lines.append(f"{lhs.name} = {lhs.name}_all[1:T_ + 1]")
            if lhs.name in self.states:
                lines.append(f"{lhs.name}_prev = {lhs.name}_all[0:T_]")
        self.local = set()
        return lines + end

    # -- the backward pass ----------------------------------------------------
    def backward_lines(self):
        defs = self.d.adjoints
        base = {a: _base(a) for a in defs}
        refers = {base[a]: {_base(l) for l in e.atoms(Adjoint)} for a, e in defs.items()}
        future = {_base(l) for e in defs.values() for l in e.atoms(Adjoint) if l.var.time != t}
        core = {b for b in refers if _closure([b], refers) & future}
        read_after = {_base(l) for e in self.d.gradients.values() for l in e.atoms(Adjoint)}
        self.local = core - future - read_after
        self.padded |= (core | future) - self.local
        before, loop = [], []
        for a, e in defs.items():
            if base[a] in core:
                body = self.code(self._hoist(e, lambda l: _base(l) in core, before), "loop")
                target = f"{base[a]}_t" if base[a] in self.local else f"{base[a]}_all[_t]"
                loop.append(f"{target} = {body}")
            elif base[a] in self.padded:  # used at t+1: stored with a zero step T+1
                before += [f"{base[a]} = {self.code(e, 'stacked')}",
                           f"{base[a]}_all = numpy.zeros((T_ + 2,) + {base[a]}.shape[1:], dtype=_dtype)",
                           f"{base[a]}_all[1:T_ + 1] = {base[a]}"]
            else:
                before.append(f"{base[a]} = {self.code(e, 'stacked')}")
        lines = before[:]
        stored = [a for a in defs if base[a] in core - self.local]
        for a in stored:
            rows = self.code(a.shape[0], "stacked")
            lines.append(f"{base[a]}_all = numpy.zeros((T_ + 2, B_, {rows}), dtype=_dtype)")
        lines.append("for _t in range(T_, 0, -1):")
        lines += ["    " + l for l in loop]
        lines += [f"{base[a]} = {base[a]}_all[1:T_ + 1]" for a in stored]
        self.local = set()
        return lines

    # -- whole functions --------------------------------------------------------
    def _signature(self):
        cell = self.cell
        args = self.params + [s.name for s in cell.inputs + cell.targets] + [f"{s}0" for s in self.states]
        sizes = []
        for sym in cell.params + cell.inputs + cell.targets:
            per_step = sym in cell.inputs + cell.targets
            for axis, dim in enumerate(sym.shape):
                if dim.is_Symbol and dim not in [s for s, _ in sizes]:
                    sizes.append((dim, f"{sym.name}.shape[{2 if per_step else axis}]"))
        first = cell.inputs[0].name
        lines = [f"T_, B_ = {first}.shape[0], {first}.shape[1]", f"_dtype = {first}.dtype"]
        lines += [f"{s} = {src}" for s, src in sizes]
        return args, lines

    def source(self):
        args, head = self._signature()
        loss = self.cell.loss_var.name
        grad_exprs = self.d.gradients
        forward = self.forward_lines(self._needed([loss]), ()) + [f"loss = {loss}.sum()"]
        self.padded = set(self.states)
        leaves = set()
        for e in list(self.d.adjoints.values()) + list(grad_exprs.values()):
            values = _forward_values(e)
            leaves |= {v.name for v in values}
            self.shifted |= {v.name for v in values if (v.time - t).is_positive
                             and v.name not in self.params}
        full = self.forward_lines(self._needed(leaves | {loss}), leaves) + [f"loss = {loss}.sum()"]
        backward = self.backward_lines()
        grads = [f"grad_{k} = {self.code(e, 'stacked')}" for k, e in grad_exprs.items()]
        returns = ", ".join(f"grad_{k}" for k in grad_exprs)
        indent = lambda ls: "\n".join("    " + l for l in ls)
        return (f"def forward({', '.join(args)}):\n{indent(head + forward)}\n    return loss\n\n\n"
                f"def gradients({', '.join(args)}):\n{indent(head + full + backward + grads)}\n"
                f"    return loss, ({returns},)\n")
