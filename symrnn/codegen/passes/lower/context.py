"""What the lowering of one kernel knows while it works: the IR of every leaf
in the two contexts (a loop body, or all steps at once), the sizes, the values
computed once, and which arrays a statement may take over.

Every array the kernel makes is a ``Temp`` of a role and the value it belongs
to: ``all`` (the array of steps 0..T, or 0..T+1, of a value computed step by
step), ``rows`` (the list of its per-step rows that a loop indexes), ``row``
(its row at the loop's step, or a value that lives within one step), ``prev``
(its steps 0..T-1 as rows), ``flat`` (the rows of all steps, T B of them, of
an adjoint or of a value a pass made; a variable of the cell is its own name).
"""
from collections import Counter

from sympy import Basic

from ....graph.unroll import t
from ....model.nodes import Adjoint, StepVar
from ... import ir
from ...inplace import assign
from ...lower import RowLowering
from ...scheduled import BATCH as SCHEDULED_BATCH, Value, value_of

STEPS, BATCH, STEP, LOSS = ir.Temp("steps"), ir.Temp("batch"), ir.Temp("step"), ir.Temp("loss")


def time_of(leaf):
    """The step of a leaf; None for the adjoint of a named matrix, which has none."""
    var = leaf.var if isinstance(leaf, Adjoint) else leaf
    return var.time if isinstance(var, StepVar) else None


def leaves(expr):
    """The adjoints and forward values ``expr`` reads (not the variables inside an adjoint)."""
    if isinstance(expr, (Adjoint, StepVar)):
        return {expr}
    return set().union(*[leaves(a) for a in expr.args if isinstance(a, Basic)])


def leaf_counts(expr):
    """``{leaf: occurrences}`` of the adjoints and forward values ``expr`` reads."""
    counts, todo = Counter(), [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, (Adjoint, StepVar)):
            counts[e] += 1
        else:
            todo.extend(a for a in e.args if isinstance(a, Basic))
    return counts


def shift(k):
    """The loop's step shifted by ``k``."""
    return plus(STEP, k)


def plus(a, k):
    return a if k == 0 else ir.BinOp("+" if k > 0 else "-", a, ir.Const(abs(k)))


class Readers:
    """A multiset of expressions, and which of them read each value."""

    def __init__(self, exprs=()):
        self.exprs = Counter()
        self.by_value = {}
        for e in exprs:
            self.add(e)

    def add(self, expr):
        self.exprs[expr] += 1
        for leaf in leaf_counts(expr):
            self.by_value.setdefault(value_of(leaf), Counter())[expr] += 1

    def remove(self, expr):
        """One occurrence of ``expr`` less (if it holds one)."""
        if self.exprs[expr] <= 0:
            return
        self.exprs[expr] -= 1
        if not self.exprs[expr]:
            del self.exprs[expr]
        for leaf in leaf_counts(expr):
            users = self.by_value[value_of(leaf)]
            users[expr] -= 1
            if not users[expr]:
                del users[expr]

    def of(self, key):
        """The expressions that read the value ``key``."""
        return list(self.by_value.get(key, ()))


class Context:
    """The lowering of one kernel (see the module's docstring). ``in_place``:
    statements compute in one buffer each (``inplace.py``), else each value is
    one assignment."""

    def __init__(self, module, kernel):
        self.numbers = Counter()  # the temporaries made so far, by role
        cell = self.cell = module.cell
        self.in_place = module.option("in_place", True)
        self.row_lists = module.option("row_lists", True)
        self.invariants_before = module.option("invariants", "before") == "before"
        self.params = [p.name for p in cell.params]
        self.fixed = [v.name for v in cell.fixed_values]
        self.cell_names = {s.name for s in cell.params + cell.inputs + cell.targets
                           + cell.variables + cell.fixed_values}
        self.states = [Value(s.name) for s in cell.states]
        self.padded = set(kernel.padded)
        self.shifted = set(kernel.shifted)
        self.sizes = self._sizes()
        self.lowering = RowLowering(self.name, self.params + self.fixed, self.size,
                                    ir.mul(STEPS, BATCH), self.temp)
        self.mode = "stacked"
        self.local = set()    # loop variables that nothing outside the loop body reads
        self.rows = set()     # arrays a loop reads as a list of per-step rows
        self.bound = set()    # stored values whose current row a loop body names as a view
        self.shared = {}      # stacked values computed once: expression -> IR
        self.reads_of = {}    # expression -> what it reads, given ``shared`` (see _reads)
        self.owned = set()    # arrays made by this kernel (so free to reuse when dead)
        self.pending = Readers(kernel.readers)  # expressions still to lower

    def temp(self, role, of=None):
        """A new temporary of ``role`` (numbered)."""
        n = self.numbers[role]
        self.numbers[role] += 1
        return ir.Temp(role, of, n)

    # -- the IR of a value in its roles ---------------------------------------------
    def flat(self, v):
        """The rows of all steps of ``v`` (a Value), or ``v`` itself (a Temp)."""
        if not isinstance(v, Value):
            return v
        if not self.row_lists and v in self.sequences():  # kept (T, B, n)
            return ir.helper("flat", ir.Name(v.name))
        if not v.adjoint and v.name in self.cell_names and self.row_lists:
            return ir.Name(v.name)  # (without lists of rows, its name is its array's)
        return ir.Temp("flat", v)

    @staticmethod
    def role(v, role):
        return ir.Temp(role, v)

    def init(self, state):
        return ir.Temp("init", state)

    # -- sizes: from the shapes of the arguments, by position -----------------------
    def _sizes(self):
        """``{size symbol: IR}`` that reads each size from an argument's shape."""
        cell, sizes = self.cell, {}
        per_step = cell.inputs + cell.targets
        for sym in cell.params + per_step:
            for axis, dim in enumerate(sym.shape):
                if dim.is_Symbol and dim not in sizes:
                    axis = -1 if sym in per_step else axis  # (T, B, n), later (T B, n)
                    sizes[dim] = ir.Index(ir.Attr(ir.Name(sym.name), "shape"), ir.Const(axis))
        for s in cell.states:  # an initial state is (B, n) in the kernel
            dim = s.shape[0]
            if dim.is_Symbol and dim not in sizes:
                sizes[dim] = ir.Index(ir.Attr(self.init(Value(s.name)), "shape"), ir.Const(1))
        return sizes

    def size(self, dim):
        """The IR of a size: read from a shape, or a number, or a sum or product of those."""
        if dim is SCHEDULED_BATCH:
            return BATCH
        if dim.is_Integer:
            return ir.Const(int(dim))
        if dim in self.sizes:
            return self.sizes[dim]
        if dim.is_Add or dim.is_Mul:
            op = "+" if dim.is_Add else "*"
            out = self.size(dim.args[0])
            for a in dim.args[1:]:
                out = ir.BinOp(op, out, self.size(a))
            return out
        if dim.is_Pow and dim.exp.is_Integer and dim.exp > 0:  # 1^T 1 of ones(N) * ones(N)
            return ir.BinOp("**", self.size(dim.base), ir.Const(int(dim.exp)))
        raise ValueError(f"size {dim}: no argument has it in its shape")

    # -- the IR of a leaf in the two contexts -----------------------------------------
    def name(self, leaf):
        if not isinstance(leaf, (StepVar, Adjoint)) or isinstance(leaf, StepVar) and (
                leaf.name in self.params or leaf.name in self.fixed):
            return ir.Name(leaf.name)
        if isinstance(leaf, Adjoint) and not isinstance(leaf.var, StepVar):
            return self.flat(Value(leaf.var.name, True))  # of a named matrix: no step
        base, time = value_of(leaf), time_of(leaf)
        padded = base in self.padded
        if self.mode == "loop" and (base in self.local or base in self.bound and time == t):
            return self.role(base, "row")  # lives only in the loop body, or a view of its row
        if self.mode == "loop":
            self.rows.add(base)
            k = int(time - t)
            return ir.Index(self.rows_of(base), shift(k if padded else k - 1))
        if not time.has(t):  # a concrete step, as in dL/dh^(0) = W^T delta^(1)
            k = int(time)
            if padded:
                return ir.Index(self.role(base, "all"), ir.Const(k))
            return ir.Index(self.flat(base), ir.Slice(ir.mul(ir.Const(k - 1), BATCH),
                                                      ir.mul(ir.Const(k), BATCH)))
        k = int(time - t)
        if not padded:
            if k != 0:
                raise NotImplementedError(f"{leaf} is not stored step by step")
            return self.flat(base)
        if k == 0:
            return self.flat(base)
        if k == -1:
            return self.role(base, "prev")
        return self.steps(base, 1 + k)

    def rows_of(self, base):
        """What a loop indexes by step for ``base``: its list of rows, or (without
        lists) its array of steps."""
        if self.row_lists:
            return self.role(base, "rows")
        return self.role(base, "all") if base in self.padded else self.steps_array(base)

    def steps_array(self, base):
        """A value stored as rows of all steps, as an array (T, B, n)."""
        if base in self.sequences():
            return ir.Name(base.name)
        return ir.call(ir.Attr(self.flat(base), "reshape"), STEPS, BATCH, ir.Const(-1))

    def sequences(self):
        return {Value(s.name) for s in self.cell.inputs + self.cell.targets}

    def steps(self, base, first):
        """The stacked rows of steps first .. first + T - 1 of a padded array."""
        window = ir.Slice(ir.Const(first), plus(STEPS, first))
        return ir.helper("flat", ir.Index(self.role(base, "all"), window))

    def use(self, mode):
        """Lower for a loop body ("loop") or for all steps at once ("stacked")."""
        self.mode = mode
        self.lowering.shared = self.shared if mode == "stacked" else {}

    def code(self, expr, mode):
        self.use(mode)
        return self.lowering.lower(expr)

    def assign(self, target, expr, mode, into=False, ready=()):
        """Statements that compute ``expr`` into ``target`` (see ``inplace.py``), and
        the ready value they start from (None if none)."""
        self.use(mode)
        if not self.in_place:
            value = self.lowering.lower(expr)
            if not into or isinstance(target, ir.Index):
                return [ir.assign(target, value)], None
            return [ir.Fill(target, value)], None
        return assign(self.lowering, target, expr, into, ready)

    # -- which arrays a statement may overwrite -----------------------------------
    def done(self, expr):
        """``expr`` is being lowered: it no longer keeps the values it reads alive."""
        self.pending.remove(expr)

    def share(self, expr, name, replace=False):
        """Later statements read ``expr`` as ``name`` (the first name given, unless
        ``replace``): what they read changes."""
        if replace or expr not in self.shared:
            self.shared[expr] = name
            self.reads_of = {}

    def _reads(self, expr):
        """The values ``expr`` reads once lowered (not inside an already named value),
        remembered until a value is named (a long chain of statements asks again and
        again for those of the statements after it)."""
        found = self.reads_of.get(expr)
        if found is None:
            if expr in self.shared:
                found = frozenset()
            elif isinstance(expr, (StepVar, Adjoint)):
                found = frozenset({value_of(expr)})
            else:
                found = frozenset().union(*[self._reads(a) for a in expr.args
                                            if isinstance(a, Basic)])
            self.reads_of[expr] = found
        return found

    def free(self, expr, later):
        """The values ``expr`` reads whose arrays it may take over: made by an
        earlier statement of this kernel (not inputs, not rows of stored
        arrays) and read by nothing lowered later (``self.pending``, and ``later``
        of the statements being written)."""
        if not self.in_place:
            return set()
        mine = {l for l in leaves(expr) if time_of(l) == t and value_of(l) in self.owned
                and value_of(l) not in self.padded and expr.count(l) == 1}
        # else changed in place while still read; asked only of the expressions
        # that name the value at all (a long chain has many of them)
        return {l for l in mine if not any(value_of(l) in self._reads(e) for readers in
                                           (self.pending, later)
                                           for e in readers.of(value_of(l)))}
