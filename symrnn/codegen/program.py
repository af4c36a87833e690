"""NumPy source for the forward pass and BPTT, structured by the derivation.

Only the recurrences run step by step: the forward loop carries the states, the
backward loop carries the adjoints that refer to step t+1. Everything else,
including every sub-expression of a loop body that does not depend on the
loop's own variables, is computed for all steps at once, and each sum over t
is one matrix product of stacked rows (see ``printer.py``). Each statement
works in one buffer (see ``inplace.py``), and a value that several gradients
use is computed once.
"""
from collections import Counter

from sympy import Basic, HadamardProduct, MatAdd, preorder_traversal

from ..graph.unroll import shared, t
from ..model.nodes import Adjoint, LogSoftmax, Softmax, StepVar
from .inplace import assign, makes_array
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


def _repeated(exprs, is_candidate):
    """The largest sub-expressions that occur more than once in ``exprs``."""
    counts = Counter()

    def count(e):
        counts[e] += 1
        if counts[e] == 1:
            for a in e.args:
                if getattr(a, "is_Matrix", False):
                    count(a)

    for e in exprs:
        count(e)
    found = []

    def pick(e):
        if counts[e] > 1 and is_candidate(e):
            if e not in found:
                found.append(e)
            return
        for a in e.args:
            if getattr(a, "is_Matrix", False):
                pick(a)

    for e in exprs:
        pick(e)
    return found


def _inline_single_use(body, local):
    """Loop statements with each loop-local value that one statement reads once
    written into that statement instead."""
    body = list(body)
    for name in [n for n, _ in body if n in local]:
        readers = [(i, l) for i, (_, e) in enumerate(body) for l in _leaves(e)
                   if _base(l) == name and _time(l) == t]
        if len(readers) == 1 and body[readers[0][0]][1].count(readers[0][1]) == 1:
            i, leaf = readers[0]
            value = dict(body)[name]
            body[i] = (body[i][0], body[i][1].xreplace({leaf: value}))
            body = [(n, e) for n, e in body if n != name]
    return body


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

    def __init__(self, derivation, row_lists=True, helpers="_"):
        self.d = derivation
        self.row_lists = row_lists  # loops read rows from Python lists (else from 3-D views)
        cell = self.cell = derivation.cell
        self.params = [p.name for p in cell.params]
        self.states = [s.name for s in cell.states]
        self.padded = set(self.states)       # arrays indexed by step, 0 and T+1 allowed
        self.temps = 0
        self.printer = RowNumPyPrinter(self._name, self.params, helpers=helpers)
        self.flat = self.printer.helper("flat")
        self.mode = "stacked"
        self.shifted = set()  # forward values that the backward pass reads at step t+1
        self.local = set()    # loop variables that nothing outside the loop body reads
        self.rows = set()     # arrays a loop reads as a list of per-step rows
        self.bound = set()    # stored values whose current row a loop body names x_t
        self.shared = {}      # stacked values computed once: expression -> name
        self.owned = set()    # arrays made by this function (so free to reuse when dead)
        self.pending = []     # expressions still to print in this function
        self.equations = [(lhs, shared(cell, rhs)) for lhs, rhs in derivation.step]

    # -- names of variables in the three contexts ---------------------------
    def _name(self, leaf):
        if not isinstance(leaf, (StepVar, Adjoint)) or _base(leaf) in self.params:
            return leaf.name
        base, time = _base(leaf), _time(leaf)
        padded = base in self.padded
        if self.mode == "loop" and (base in self.local or base in self.bound and time == t):
            return f"{base}_t"  # lives only in the loop body, or a view of the current row
        if self.mode == "loop":
            self.rows.add(base)
            k = int(time - t)
            index = k if padded else k - 1
            return f"{base}_r[_t{f'{index:+d}' if index else ''}]"
        if not time.has(t):  # a concrete step, as in dL/dh^(0) = W^T delta^(1)
            k = int(time)
            return f"{base}_all[{k}]" if padded else f"{base}[{k - 1}*B_:{k}*B_]"
        k = int(time - t)
        if not padded:
            if k != 0:
                raise NotImplementedError(f"{leaf} is not stored step by step")
            return base
        return {0: base, -1: f"{base}_prev"}.get(k, f"{self.flat}({base}_all[{1 + k}:T_{1 + k:+d}])")

    def _use(self, mode):
        """Print for a loop body ("loop") or for all steps at once ("stacked")."""
        self.mode = mode
        self.printer.shared = self.shared if mode == "stacked" else {}

    def code(self, expr, mode):
        self._use(mode)
        return self.printer.doprint(expr)

    def assign(self, target, expr, mode, into=False, ready=()):
        """Lines that compute ``expr`` into ``target`` (see ``inplace.py``), and
        the ready value they start from (None if none)."""
        self._use(mode)
        return assign(self.printer, target, expr, into, ready)

    def stacked(self, assignments, filled=None, share=False):
        """Lines for ``[(name, expr)]`` over all steps at once; a value that
        several of them need is computed first, once. ``filled`` maps a name to
        the stored value whose array (already allocated) is to hold it; with
        ``share``, later statements read the values by name (hoisted values,
        which nothing overwrites)."""
        filled = filled or {}
        self._use("stacked")
        def candidate(e):
            return (not isinstance(e, (StepVar, Adjoint)) and e not in self.shared
                    and self.printer.kind(e) in ("C", "R") and not e.is_Transpose)
        lines = []
        for e in sorted(_repeated([e for _, e in assignments], candidate),
                        key=lambda e: len(list(preorder_traversal(e)))):
            name = f"_cse{self.temps}"
            self.temps += 1
            lines += self.assign(name, e, "stacked")[0]
            self.shared[e] = name
        for i, (name, e) in enumerate(assignments):
            self._done(e)
            if name in filled:
                view = filled[name]
                lines.append(f"{view} = {self.flat}({view}_all[1:T_ + 1])")
                lines += self.assign(view, e, "stacked", into=True)[0]
                continue
            group = [x for _, x in assignments[i + 1:]]
            if isinstance(e, Softmax) and any(LogSoftmax(e.arg) in x.atoms(LogSoftmax)
                                              for x in self.pending):
                # the loss needs log-softmax(o): both from one exp
                self.shared[LogSoftmax(e.arg)] = pair = f"_log{name}"
                free = self._free(e, group)
                out = ", " + self.code(e.arg, "stacked") if e.arg in free else ""
                lines.append(f"{pair}, {name} = {self.printer.helper('log_softmax_and_softmax')}("
                             f"{self.code(e.arg, 'stacked')}{out})")
                self.owned |= {pair, name}
                continue
            free = self._free(e, group)
            code, _ = self.assign(name, e, "stacked", ready=free)
            lines += code
            if share:
                self.shared.setdefault(e, name)
            elif makes_array(self.printer, e) or e in free:
                self.owned.add(name)
        return lines

    # -- which arrays a statement may overwrite -----------------------------------
    def _done(self, expr):
        """``expr`` is being printed: it no longer keeps the values it reads alive."""
        if expr in self.pending:
            self.pending.remove(expr)

    def _reads(self, expr):
        """The names ``expr`` reads once printed (not inside an already named value)."""
        if expr in self.shared:
            return set()
        if isinstance(expr, (StepVar, Adjoint)):
            return {_base(expr)}
        return set().union(*[self._reads(a) for a in expr.args if isinstance(a, Basic)])

    def _free(self, expr, group):
        """The values ``expr`` reads whose arrays it may take over: made by an
        earlier statement of this function (not inputs, not rows of stored
        arrays) and read by nothing printed later."""
        later = set().union(*[self._reads(e) for e in list(self.pending) + group])
        return {l for l in _leaves(expr) if _time(l) == t and _base(l) in self.owned
                and _base(l) not in later and _base(l) not in self.padded}

    # -- hoisting loop-invariant work -------------------------------------------
    def _hoist(self, expr, is_loop_leaf, before):
        """``expr`` with its maximal sub-expressions free of loop variables computed
        before the loop (appended to ``before`` as ``(name, expr)``) and replaced
        by their names."""
        if not any(is_loop_leaf(l) for l in _leaves(expr)):
            if isinstance(expr, (StepVar, Adjoint)) or self.printer.kind(expr) == "F":
                return expr
            name = f"_pre{self.temps}"
            self.temps += 1
            before.append((name, expr))
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

    def _loop(self, header, body, stored, hoisted):
        """The loop ``header`` over ``body`` ([(name, expr)]; the names in
        ``stored`` are rows of arrays, the others live in one step), preceded by
        the lists of per-step rows it reads and writes. Returns the lines and
        ``{hoisted name: stored name}`` for the ``hoisted`` values that a stored
        row starts from: they are to be computed straight into its array."""
        body = _inline_single_use(body, self.local)
        uses = Counter(_base(l) for _, e in body for l in _leaves(e))
        hoisted = {l for _, e in body for l in _leaves(e)
                   if _base(l) in hoisted and uses[_base(l)] == 1}
        self.rows, self.bound, filled, lines = set(), set(), {}, []
        self.printer.constants = constants = {}
        for name, expr in body:
            if name in stored:
                code, used = self.assign(f"{name}_t", expr, "loop", True, hoisted)
                if len(code) > 1:  # several updates of the row: through a local view
                    code.insert(0, f"{name}_t = {name}_r[_t]")
                    self.bound.add(name)
                else:
                    code, used = self.assign(f"{name}_r[_t]", expr, "loop", True, hoisted)
                self.rows.add(name)
                if used is not None:
                    filled[_base(used)] = name
            else:
                code, _ = self.assign(f"{name}_t", expr, "loop")
            lines += code
        self.printer.constants, self.bound = None, set()
        self.rows -= set(filled)
        wrap = "list({})" if self.row_lists else "{}"
        rows = [f"{n}_r = " + wrap.format(f"{n}_all" if n in self.padded else
                                          f"{n}.reshape(T_, B_, -1)") for n in sorted(self.rows)]
        rows += [f"{name} = {code}" for code, name in constants.items()]
        return rows + [header] + ["    " + l for l in lines], filled

    def _allocate(self, name, rows, shifted):
        """The array of a value computed step by step: steps 0..T, and a zero
        step T+1 when it is read at t+1."""
        if not shifted:
            return [f"{name}_all = numpy.empty((T_ + 1, B_, {rows}))"]
        return [f"{name}_all = numpy.empty((T_ + 2, B_, {rows}))",
                f"{name}_all[T_ + 1] = 0.0"]

    def _pad(self, name):
        """A stacked value that is read at step t+1: a copy with a zero step T+1."""
        self.padded.add(name)
        return [f"{name}_all = numpy.zeros((T_ + 2, B_, {name}.shape[-1]))",
                f"{name}_all[1:T_ + 1] = {name}.reshape(T_, B_, -1)"]

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
        """The forward pass of the values ``needed``; ``read_after``: the names
        the backward pass reads."""
        eqs = [(lhs, rhs) for lhs, rhs in self.equations if lhs.name in needed]
        core, after = self._forward_parts(eqs)
        read_after = set(read_after) | {v.name for lhs, rhs in eqs if lhs.name in after
                                        for v in rhs.atoms(StepVar)}
        self.local = core - set(self.states) - read_after
        self.padded |= core - self.local
        before, hoisted, loop, end = [], [], [], []
        for lhs, rhs in eqs:
            if lhs.name in core:
                loop.append((lhs.name, self._hoist(rhs, lambda l: _base(l) in core, hoisted)))
            elif lhs.name in after:
                if lhs.name in self.shifted:
                    raise NotImplementedError(f"{lhs.name} is read at step t+1 but is not "
                                              "computed in the recurrence")
                end.append((lhs.name, rhs))
            else:
                before.append((lhs.name, rhs))
        lines = self.stacked(before)
        stacked = {s.name for s in self.cell.inputs + self.cell.targets} | {
            lhs.name for lhs, _ in eqs if lhs.name not in core | after}
        for name in sorted(self.shifted & stacked):  # read at t+1: a zero step T+1
            lines += self._pad(name)
        stored = [lhs for lhs, _ in eqs if lhs.name in core - self.local]
        loop, filled = self._loop("for _t in range(1, T_ + 1):", loop, {l.name for l in stored},
                                  {n for n, _ in hoisted})
        for lhs in stored:
            lines += self._allocate(lhs.name, self.code(lhs.shape[0], "stacked"),
                                    lhs.name in self.shifted)
            if lhs.name in self.states:
                lines.append(f"{lhs.name}_all[0] = {lhs.name}0")
        lines += self.stacked(hoisted, filled, share=True) + loop
        for lhs in stored:
            if lhs.name not in filled.values():  # else the view exists already
                lines.append(f"{lhs.name} = {self.flat}({lhs.name}_all[1:T_ + 1])")
            if lhs.name in self.states:
                lines.append(f"{lhs.name}_prev = {self.flat}({lhs.name}_all[0:T_])")
        self.local = set()
        for lhs, rhs in eqs:
            if lhs.name in core:
                self._done(rhs)
        return lines + self.stacked(end)

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
        before, hoisted, loop, pads = [], [], [], []
        for a, e in defs.items():
            if base[a] in core:
                loop.append((base[a], self._hoist(e, lambda l: _base(l) in core, hoisted)))
            else:
                before.append((base[a], e))
                if base[a] in self.padded:  # used at t+1: stored with a zero step T+1
                    self.padded.discard(base[a])
                    pads.append(base[a])
        stored = [a for a in defs if base[a] in core - self.local]
        loop, filled = self._loop("for _t in range(T_, 0, -1):", loop, {base[a] for a in stored},
                                  {n for n, _ in hoisted})
        lines = self.stacked(before)
        for name in pads:
            lines += self._pad(name)
        for a in stored:
            lines += self._allocate(base[a], self.code(a.shape[0], "stacked"), True)
        lines += self.stacked(hoisted, filled, share=True) + loop
        lines += [f"{base[a]} = {self.flat}({base[a]}_all[1:T_ + 1])" for a in stored
                  if base[a] not in filled.values()]
        self.local = set()
        for a, e in defs.items():
            if base[a] in core:
                self._done(e)
        return lines

    # -- whole functions --------------------------------------------------------
    def _signature(self):
        cell = self.cell
        per_step = [s.name for s in cell.inputs + cell.targets]
        args = self.params + per_step + [f"{s}0" for s in self.states]
        sizes = []
        for sym in cell.params + cell.inputs + cell.targets:
            for axis, dim in enumerate(sym.shape):
                if dim.is_Symbol and dim not in [s for s, _ in sizes]:
                    axis = 2 if sym.name in per_step else axis
                    sizes.append((dim, f"{sym.name}.shape[{axis}]"))
        first = cell.inputs[0].name
        lines = [f"T_, B_ = {first}.shape[0], {first}.shape[1]"]
        lines += [f"{s} = {src}" for s, src in sizes]
        lines += [f"{n} = {n}.reshape(T_ * B_, -1)  # one row per step and sequence"
                  for n in per_step]
        return args, lines

    def _loss(self, rhs, stored):
        """``loss = ...``: the sum of the per-step losses ``rhs``, computed
        directly unless they are ``stored`` anyway."""
        if stored:
            return [f"loss = {self.cell.loss_var.name}.sum()"]
        self._done(rhs)
        self._use("stacked")
        return [f"loss = {self.printer.total(rhs)}"]

    def _start(self, needed, later):
        """A new function: it computes ``needed`` and then prints ``later``."""
        self.padded, self.shared, self.owned = set(self.states), {}, set()
        self.pending = [rhs for lhs, rhs in self.equations if lhs.name in needed] + later

    def source(self, prefix=""):
        """``def {prefix}forward(...)`` and ``def {prefix}gradients(...)``."""
        args, head = self._signature()
        L = self.cell.loss_var.name
        L_rhs = dict((lhs.name, rhs) for lhs, rhs in self.equations)[L]
        L_read = any(L in {v.name for v in rhs.atoms(StepVar)}
                     for lhs, rhs in self.equations if lhs.name != L)

        needed = self._needed([L]) - ({L} if not L_read else set())
        self._start(needed, [L_rhs])
        forward = self.forward_lines(needed, ()) + self._loss(L_rhs, L in needed)

        grad_exprs = self.d.gradients
        backward_exprs = list(self.d.adjoints.values()) + list(grad_exprs.values())
        leaves = set()
        for e in backward_exprs:
            values = _forward_values(e)
            leaves |= {v.name for v in values}
            self.shifted |= {v.name for v in values if (v.time - t).is_positive
                             and v.name not in self.params}
        needed = self._needed(leaves | {L}) - ({L} if L not in leaves and not L_read else set())
        self._start(needed, [L_rhs] + backward_exprs)
        full = self.forward_lines(needed, leaves) + self._loss(L_rhs, L in needed)
        backward = self.backward_lines()
        grads = self.stacked([(f"grad_{k}", e) for k, e in grad_exprs.items()])
        returns = ", ".join(f"grad_{k}" for k in grad_exprs)
        indent = lambda ls: "\n".join("    " + l for l in ls)
        return (f"def {prefix}forward({', '.join(args)}):\n{indent(head + forward)}\n"
                "    return loss\n\n\n"
                f"def {prefix}gradients({', '.join(args)}):\n"
                f"{indent(head + full + backward + grads)}\n"
                f"    return loss, ({returns},)\n")
