"""NumPy source for the forward pass and BPTT, structured by the derivation.

Only the recurrences run step by step: the forward loop carries the states, the
backward loop carries the adjoints that refer to step t+1. Everything else,
including every sub-expression of a loop body that does not depend on the
loop's own variables, is computed for all steps at once, and each sum over t
is one matrix product of stacked rows (see ``lower.py``). Each statement
works in one buffer (see ``inplace.py``), and a value that several gradients
use is computed once.

The result is IR (``ir.py``): ``functions()`` returns ``forward`` and
``gradients`` as ``ir.Function`` nodes, which ``emit.py`` prints for NumPy and
for Numba. Every name the generated code makes for itself starts with ``_``,
which no name of a cell may (see ``Key``); sizes come from the shapes of the
arguments, never from the names of the sizes.
"""
import unicodedata
from collections import Counter
from typing import NamedTuple

from sympy import Basic, HadamardProduct, MatAdd, MatrixSymbol, preorder_traversal

from ..derivation.subexpressions import repeated
from ..graph.reach import components, reachable
from ..graph.unroll import shared, t
from ..model.nodes import Adjoint, LogSoftmax, Softmax, StepVar
from ..ops import OPERATIONS
from . import ir
from .carried import carry_products
from .fuse import FLAT_ROWS, Fuser, Member, canonical, fuse_sum
from .inplace import assign, makes_array
from .lower import RowLowering, kernel
from .preactivation import preactivation_adjoints

T_NAME, B_NAME, LOOP, LOSS = ir.Name("_T"), ir.Name("_B"), ir.Name("_t"), ir.Name("_loss")
# the helpers that work element by element (those with a scalar kernel for Numba)
_ELEMENTWISE = {kernel(op).name for op in OPERATIONS.values()
                if op.kernels.get("numba") is not None and isinstance(kernel(op), ir.Helper)}


class Key(NamedTuple):
    """A value of the program: a variable of the cell (or an internal temporary,
    whose name starts with ``_``), or the adjoint of a variable.

    Its names in the generated code: the stacked rows are the variable's own name
    (``h``) or ``_d_h`` for the adjoint; an array with a role is ``_{role}_h`` or
    ``_d{role}_h`` (``_all_h``, ``_dall_h``, ``_t_h``, ``_r_h``, ``_prev_h``). A role
    has no ``_``, so the name says its role and its variable unambiguously, and a
    name of a cell, which never starts with ``_``, is never one of them."""
    name: str
    adjoint: bool = False

    def flat(self):
        return ir.Name(f"_d_{self.name}" if self.adjoint else self.name)

    def role(self, role):
        return ir.Name(f"_{'d' if self.adjoint else ''}{role}_{self.name}")


def _base(leaf):
    return Key(leaf.var.name, True) if isinstance(leaf, Adjoint) else Key(leaf.name)


def _time(leaf):
    """The step of a leaf; None for the adjoint of a named matrix, which has none."""
    var = leaf.var if isinstance(leaf, Adjoint) else leaf
    return var.time if isinstance(var, StepVar) else None


def _leaves(expr):
    """The adjoints and forward values ``expr`` reads (not the variables inside an adjoint)."""
    if isinstance(expr, (Adjoint, StepVar)):
        return {expr}
    return set().union(*[_leaves(a) for a in expr.args if isinstance(a, Basic)])


def _forward_values(expr):
    return {v for v in _leaves(expr) if isinstance(v, StepVar)}


# how many values may be written into one another: a longer chain stays several
# statements (SymPy's MatMul asks each factor for its shape twice, so that the
# cost of a nested expression doubles with each c * f(...) it holds)
INLINE_DEPTH = 6


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


def _inline_single_use(body, local):
    """Loop statements with each loop-local value that one statement reads once
    written into that statement instead (at most INLINE_DEPTH values deep)."""
    body = dict(body)
    leaves = {key: _leaf_counts(e) for key, e in body.items()}
    readers = {}   # a value -> the statements that read it at step t
    for key, counts in leaves.items():
        for leaf in counts:
            if _time(leaf) == t:
                readers.setdefault(_base(leaf), set()).add(key)
    depth = dict.fromkeys(body, 0)
    for name in [n for n in body if n in local]:
        found = readers.get(name, set())
        if len(found) != 1:
            continue
        reader = next(iter(found))
        leaf = [l for l in leaves[reader] if _base(l) == name and _time(l) == t]
        if len(leaf) != 1 or leaves[reader][leaf[0]] != 1 or depth[name] >= INLINE_DEPTH:
            continue
        body[reader] = body[reader].xreplace({leaf[0]: body.pop(name)})
        del leaves[reader][leaf[0]]
        for l, k in leaves.pop(name).items():
            leaves[reader][l] += k
            if _time(l) == t:
                readers[_base(l)].discard(name)
                readers[_base(l)].add(reader)
        depth[reader] = max(depth[reader], depth[name] + 1)
    return list(body.items())


def _read_across(parts, reads):
    """The variables that a component other than their own reads."""
    where = {n: i for i, part in enumerate(parts) for n in part}
    return {m for n, ms in reads.items() for m in ms if where[m] != where[n]}


class Readers:
    """A multiset of expressions, and which of them name each value (``Key``)."""

    def __init__(self, exprs=()):
        self.exprs = Counter()
        self.by_value = {}
        for e in exprs:
            self.add(e)

    def add(self, expr):
        self.exprs[expr] += 1
        for leaf in _leaf_counts(expr):
            self.by_value.setdefault(_base(leaf), Counter())[expr] += 1

    def remove(self, expr):
        """One occurrence of ``expr`` less (if it holds one)."""
        if self.exprs[expr] <= 0:
            return
        self.exprs[expr] -= 1
        if not self.exprs[expr]:
            del self.exprs[expr]
        for leaf in _leaf_counts(expr):
            users = self.by_value[_base(leaf)]
            users[expr] -= 1
            if not users[expr]:
                del users[expr]

    def of(self, key):
        """The expressions that name the value ``key``."""
        return list(self.by_value.get(key, ()))


class SumGroup(NamedTuple):
    expr: object   # the entry's expression with the terms replaced by ``leaf``
    terms: list    # the terms of one form
    rows: list     # the row of a stored value in each term
    slots: list    # the value computed before the loop in each term (or empty)
    leaf: object   # the loop-local value that holds their sum


def _commuted(expr):
    """``expr`` with the operands of sums and element-wise products in one order
    (by their text), so that the form of a term does not depend on its names."""
    if not isinstance(expr, Basic) or not expr.args or isinstance(
            expr, (StepVar, Adjoint, MatrixSymbol)):
        return expr
    args = [_commuted(a) for a in expr.args]
    if isinstance(expr, (HadamardProduct, MatAdd)):
        args.sort(key=str)
    return expr.func(*args)


def _dot_then_copy(stmt):
    """``dot(a, b, out)`` as ``out[:] = dot(a, b)``, for an ``out`` that is not contiguous."""
    if isinstance(stmt, ir.Do) and stmt.call.func == ir.Helper("dot"):
        return ir.Fill(stmt.call.out, ir.Call(stmt.call.func, stmt.call.args))
    if any(isinstance(n, ir.Call) and n.func == ir.Helper("dot") and n.out is not None
           for n in ir.walk(stmt)):
        raise NotImplementedError("a product written into a row inside an expression")
    return stmt


def _index(k):
    """``_t + k`` (the loop's step shifted by ``k``)."""
    return LOOP if k == 0 else ir.BinOp("+" if k > 0 else "-", LOOP, ir.Const(abs(k)))


def _plus(a, k):
    return a if k == 0 else ir.BinOp("+" if k > 0 else "-", a, ir.Const(abs(k)))


def _read_only(made, loop):
    """The statements of ``made`` (each names one value before ``loop``) whose
    value the loop or a later one of them reads: the lists of rows of members
    of a fused group are read through the group's list (a list of T rows costs
    a view per step to make)."""
    needed = ir.names_in(loop)
    kept = []
    for s in reversed(made):
        if set(s.targets) & needed:
            kept.append(s)
            needed |= ir.names_in(s.value)
    return kept[::-1]


def _released(body, args):
    """``body`` with a ``Release`` after the last top-level statement that uses
    an array the function made, so that the arrays that only led to the loss
    (the log-softmax of the outputs, ...) are freed before the backward pass
    allocates its own: the peak memory of a call is then that of its live arrays."""
    made = {t for s in body if isinstance(s, (ir.Assign, ir.Alloc))
            for t in (s.targets if isinstance(s, ir.Assign) else (s.target,))
            if isinstance(t, ir.Name)} - set(args) - {T_NAME, B_NAME, LOSS}
    last = {}
    for i, s in enumerate(body):
        for n in ir.names_in(s) & made:
            last[n] = i
    kept = ir.names_in(body[-1]) if isinstance(body[-1], ir.Return) else set()
    out = []
    for i, s in enumerate(body):
        out.append(s)
        done = sorted((n for n, j in last.items() if j == i and n not in kept),
                      key=lambda n: n.id)
        if done and i < len(body) - 1:
            out.append(ir.Release(tuple(done)))
    return tuple(out)


def _distinct_identifiers(cell):
    """Raise if two names of ``cell`` are one identifier to Python, which reads
    ``ℌ`` as ``H`` (NFKC): the generated code would confuse them."""
    seen = {}
    for sym in cell.params + cell.inputs + cell.targets + cell.variables:
        same = seen.setdefault(unicodedata.normalize("NFKC", sym.name), sym.name)
        if same != sym.name:
            raise ValueError(f"equations: the names {same!r} and {sym.name!r} are the same "
                             "identifier in Python (NFKC normalisation); choose another name")


class Program:
    """Builds the IR of ``forward`` and ``gradients`` for one derivation."""

    def __init__(self, derivation, fuse=False):
        self.d = derivation
        self.fuse = fuse      # fuse same-form statements of a loop body (NumPy only, fuse.py)
        self.groups = []      # the fused groups of the last loop: [(group key, [member keys])]
        self.group_keys = {}  # a group's name of its list of rows -> its key
        self.slots = {}       # a value computed before a loop -> (group, position, size)
        self.slot_arrays = set()  # the groups of those whose array is allocated
        self.expanded = {}        # in a loop: lists of rows read as (B, 1, n) -> their list
        self.allocated = set()    # the groups of rows whose array is allocated
        self.columns = {}         # a member's stacked rows -> (its group, column, width)
        self.scaled = {}          # rows filled before a loop -> the factor to scale them by
        cell = self.cell = derivation.cell
        _distinct_identifiers(cell)
        self.params = [p.name for p in cell.params]
        self.fixed = [v.name for v in cell.fixed_values]  # named matrices, computed once
        self.states = [Key(s.name) for s in cell.states]
        self.padded = set(self.states)       # arrays indexed by step, 0 and T+1 allowed
        self.temps = 0
        self.lowering = RowLowering(self._name, self.params + self.fixed,
                                    lambda dim: self.size(dim),
                                   ir.mul(T_NAME, B_NAME))
        self.mode = "stacked"
        self.shifted = set()  # forward values that the backward pass reads at step t+1
        self.local = set()    # loop variables that nothing outside the loop body reads
        self.rows = set()     # arrays a loop reads as a list of per-step rows
        self.bound = set()    # stored values whose current row a loop body names _t_x
        self.shared = {}      # stacked values computed once: expression -> IR name
        self.reads_of = {}    # expression -> what it reads, given ``shared`` (see _reads)
        self.owned = set()    # arrays made by this function (so free to reuse when dead)
        self.pending = Readers()  # expressions still to lower in this function
        self.equations = [(lhs, shared(cell, rhs)) for lhs, rhs in derivation.step]
        self.adjoints, self.gradients = derivation.adjoints, derivation.gradients
        self.fixed_adjoints = derivation.fixed_adjoints  # of the named matrices
        if fuse:  # the adjoints of pre-activations, where a gate's adjoint is only read so
            once = {**self.gradients, **self.fixed_adjoints}  # keys: names, Adjoint nodes
            self.adjoints, once = preactivation_adjoints(self.adjoints, once)
            self.gradients = {k: once[k] for k in self.gradients}
            self.fixed_adjoints = {k: once[k] for k in self.fixed_adjoints}
        self.sizes = self._sizes()

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
                sizes[dim] = ir.Index(ir.Attr(Key(s.name).role("init"), "shape"), ir.Const(1))
        return sizes

    def size(self, dim):
        """The IR of a size: read from a shape, or a number, or a sum or product of those."""
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

    # -- names of variables in the three contexts ---------------------------
    def _name(self, leaf):
        if not isinstance(leaf, (StepVar, Adjoint)) or isinstance(leaf, StepVar) and (
                leaf.name in self.params or leaf.name in self.fixed):
            return ir.Name(leaf.name)
        if isinstance(leaf, Adjoint) and not isinstance(leaf.var, StepVar):
            return Key(leaf.var.name, True).flat()  # of a named matrix: no step
        base, time = _base(leaf), _time(leaf)
        padded = base in self.padded
        if self.mode == "loop" and (base in self.local or base in self.bound and time == t):
            return base.role("t")  # lives only in the loop body, or a view of the current row
        if self.mode == "loop":
            self.rows.add(base)
            k = int(time - t)
            return ir.Index(base.role("r"), _index(k if padded else k - 1))
        if not time.has(t):  # a concrete step, as in dL/dh^(0) = W^T delta^(1)
            k = int(time)
            if padded:
                return ir.Index(base.role("all"), ir.Const(k))
            return ir.Index(base.flat(), ir.Slice(ir.mul(ir.Const(k - 1), B_NAME),
                                                  ir.mul(ir.Const(k), B_NAME)))
        k = int(time - t)
        if not padded:
            if k != 0:
                raise NotImplementedError(f"{leaf} is not stored step by step")
            return base.flat()
        if k == 0:
            return base.flat()
        if k == -1:
            return base.role("prev")
        return self._steps(base, 1 + k)

    def _steps(self, base, first):
        """The stacked rows of steps first .. first + T - 1 of a padded array."""
        window = ir.Slice(ir.Const(first), _plus(T_NAME, first))
        return ir.helper("flat", ir.Index(base.role("all"), window))

    def _use(self, mode):
        """Lower for a loop body ("loop") or for all steps at once ("stacked")."""
        self.mode = mode
        self.lowering.shared = self.shared if mode == "stacked" else {}

    def code(self, expr, mode):
        self._use(mode)
        return self.lowering.lower(expr)

    def assign(self, target, expr, mode, into=False, ready=()):
        """Statements that compute ``expr`` into ``target`` (see ``inplace.py``), and
        the ready value they start from (None if none)."""
        self._use(mode)
        return assign(self.lowering, target, expr, into, ready)

    def stacked(self, assignments, filled=None, share=False, rows=True):
        """Statements for ``[(key, expr)]`` over all steps at once; a value that
        several of them need is computed first, once. ``filled`` maps a key to
        the stored value whose array (already allocated) is to hold it; with
        ``share``, later statements read the values by name (hoisted values,
        which nothing overwrites). ``rows``: the values are per-step rows (not
        gradients, which are computed once)."""
        filled = filled or {}
        self._use("stacked")

        def candidate(e):
            return (not isinstance(e, (StepVar, Adjoint)) and e not in self.shared
                    and self.lowering.kind(e) in ("C", "R") and not e.is_Transpose)
        lines = []
        to_share = sorted(repeated([e for _, e in assignments], candidate),
                          key=lambda e: len(list(preorder_traversal(e))))
        later = Readers([e for _, e in assignments])  # the statements after this one
        for i, (key, e) in enumerate(assignments):
            later.remove(e)
            for r in [r for r in to_share if e.has(r)]:  # computed once, before its first use
                to_share.remove(r)  # (it may read a value computed by an earlier assignment)
                name = ir.Name(f"_cse{self.temps}")
                self.temps += 1
                lines += self.assign(name, r, "stacked")[0]
                self._share(r, name)
            self._done(e)
            if key in self.slots:  # a column of a group's array (a fused sum reads them)
                group, i, k = self.slots[key]
                if group not in self.slot_arrays:
                    self.slot_arrays.add(group)
                    rows, cols = e.shape
                    width = self.size(cols if rows == 1 else rows)
                    lines.append(ir.Alloc(group.role("all"), (T_NAME, B_NAME, ir.Const(k), width)))
                value = ir.Name(f"_tmp{self.temps}")
                self.temps += 1
                lines += self.assign(value, e, "stacked")[0]
                lines.append(ir.assign(key.flat(), ir.helper("flat", ir.Index(
                    group.role("all"), (ir.Slice(), ir.Slice(), ir.Const(i))))))
                lines.append(ir.Fill(key.flat(), value))
                if share:
                    self._share(e, key.flat())
                continue
            if key in filled:
                view = filled[key]
                lines.append(ir.assign(view.flat(), self._steps(view, 1)))
                if any(view in members for _, members in self.groups):
                    # a column of a group's array, not contiguous: NumPy's dot
                    # cannot write into it (a ufunc can)
                    code, _ = self.assign(view.flat(), e, "stacked", into=True)
                    try:
                        lines += [_dot_then_copy(c) for c in code]
                    except NotImplementedError:
                        code, _ = self.assign(key.flat(), e, "stacked")
                        lines += code + [ir.Fill(view.flat(), key.flat())]
                else:
                    lines += self.assign(view.flat(), e, "stacked", into=True)[0]
                if view in self.scaled:
                    lines.append(ir.Update(view.flat(), "*", ir.Const(self.scaled[view])))
                continue
            if isinstance(e, Softmax) and any(LogSoftmax(e.arg) in x.atoms(LogSoftmax)
                                              for x in self.pending.exprs):
                # the loss needs log-softmax(o): both from one exp
                pair = key.role("ls")
                self._share(LogSoftmax(e.arg), pair, replace=True)
                free = self._free(e, later)
                arg = self.code(e.arg, "stacked")
                both = ir.helper("log_softmax_and_softmax", arg, out=arg if e.arg in free else None)
                lines.append(ir.Assign((pair, key.flat()), both))
                self.owned |= {Key(pair.id), key}
                continue
            if rows and not self.lowering._per_step(e):
                # a value of the parameters alone: the same in every row, stored
                # in every row all the same (it is read row by row)
                rows, cols = e.shape
                width = self.size(cols if rows == 1 else rows)
                lines.append(ir.Alloc(key.flat(), (ir.mul(T_NAME, B_NAME), width)))
                lines += self.assign(key.flat(), e, "stacked", into=True)[0]
                self.owned.add(key)
                continue
            free = self._free(e, later)
            code, _ = self.assign(key.flat(), e, "stacked", ready=free)
            lines += code
            if share:
                self._share(e, key.flat())
            elif makes_array(self.lowering, e) or e in free:
                self.owned.add(key)
        return lines

    # -- which arrays a statement may overwrite -----------------------------------
    def _done(self, expr):
        """``expr`` is being lowered: it no longer keeps the values it reads alive."""
        self.pending.remove(expr)

    def _share(self, expr, name, replace=False):
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
                found = frozenset({_base(expr)})
            else:
                found = frozenset().union(*[self._reads(a) for a in expr.args
                                            if isinstance(a, Basic)])
            self.reads_of[expr] = found
        return found

    def _free(self, expr, later):
        """The values ``expr`` reads whose arrays it may take over: made by an
        earlier statement of this function (not inputs, not rows of stored
        arrays) and read by nothing lowered later (``self.pending``, and ``later``
        of the statements being written)."""
        mine = {l for l in _leaves(expr) if _time(l) == t and _base(l) in self.owned
                and _base(l) not in self.padded and expr.count(l) == 1}
        # else changed in place while still read; asked only of the expressions
        # that name the value at all (a long chain has many of them)
        return {l for l in mine if not any(_base(l) in self._reads(e) for readers in
                                           (self.pending, later) for e in readers.of(_base(l)))}

    # -- hoisting loop-invariant work -------------------------------------------
    def _hoist(self, expr, is_loop_leaf, before):
        """``expr`` with its maximal sub-expressions free of loop variables computed
        before the loop (appended to ``before`` as ``(key, expr)``) and replaced
        by their names."""
        if not any(is_loop_leaf(l) for l in _leaves(expr)):
            if isinstance(expr, (StepVar, Adjoint)) or self.lowering.kind(expr) == "F":
                return expr
            name = f"_pre{self.temps}"
            self.temps += 1
            before.append((Key(name), expr))
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

    def _loop(self, start, stop, step, body, stored, hoisted, sum_terms=True):
        """The loop over ``body`` ([(key, expr)]; the keys in ``stored`` are rows
        of arrays, the others live in one step), preceded by the lists of
        per-step rows it reads and writes. Returns the statements and ``{hoisted
        key: stored key}`` for the ``hoisted`` values that a stored row starts
        from: they are to be computed straight into its array. The groups of
        fused rows are left in ``self.groups`` (their arrays are to be allocated
        together, see ``_allocate``)."""
        self.groups, self.slots, self.expanded = [], {}, {}
        body0, body_keys = body, []
        body = _inline_single_use(body, self.local)
        if not body:
            return [], {}
        sums = self._sum_groups(body, stored, hoisted) if self.fuse and sum_terms else {}
        body = [(key, sums[i].expr if i in sums else expr) for i, (key, expr) in enumerate(body)]
        uses = Counter(_base(l) for _, e in body for l in _leaves(e))
        hoisted_keys = hoisted
        hoisted = {l for _, e in body for l in _leaves(e)
                   if _base(l) in hoisted and uses[_base(l)] == 1}
        self.rows, self.bound, filled, codes = set(), set(), {}, []
        self.lowering.constants = constants = {}
        after = []  # the stacked parameters and rows of fused sums, after the constants
        for i, (key, expr) in enumerate(body):
            if i in sums:
                fused = self._sum_lines(sums[i], after)
                if fused is None:  # not of one form once lowered: without fused sums
                    self.lowering.constants, self.bound = None, set()
                    return self._loop(start, stop, step, body0, stored, hoisted_keys, False)
                codes.append(fused)
                body_keys.append(None)
            if key in stored:
                code, used = self.assign(key.role("t"), expr, "loop", True, hoisted)
                if len(code) > 1:  # several updates of the row: through a local view
                    code.insert(0, ir.assign(key.role("t"), ir.Index(key.role("r"), LOOP)))
                    self.bound.add(key)
                else:
                    code, used = self.assign(ir.Index(key.role("r"), LOOP), expr, "loop", True,
                                             hoisted)
                self.rows.add(key)
                if used is not None:
                    filled[_base(used)] = key
            else:
                code, _ = self.assign(key.role("t"), expr, "loop")
            codes.append(code)
            body_keys.append((key, expr))
        self.lowering.constants, self.bound = None, set()
        if not any(codes):  # every row was computed before the loop, straight into its array
            return [], filled
        summed = {_base(r) for g in sums.values() for r in g.rows}
        # a row of a group is not contiguous: NumPy's dot cannot write into it
        codes = [[_dot_then_copy(s) for s in code] if entry is not None and entry[0] in summed
                 else code for entry, code in zip(body_keys, codes)]
        self.rows -= set(filled)
        rows, sources = [], {}
        for key in sorted(self.rows):
            steps = key.role("all") if key in self.padded else ir.call(
                ir.Attr(key.flat(), "reshape"), T_NAME, B_NAME, ir.Const(-1))
            rows.append(ir.assign(key.role("r"), ir.Rows(steps)))
            sources[key.role("r")] = steps
        rows += [ir.assign(name, value) for name, value in constants.values()] + after
        # the entries of the body next to their statements (a fused sum: None)
        entries = [(e, c) for e, c in zip(body_keys, codes) if e is not None]
        body, entry_codes = [e for e, _ in entries], [c for _, c in entries]
        placed = {j: (a_key, members.index(key)) for a_key, members in self.groups
                  for j, (key, _) in enumerate(body) if key in members}  # fused sums' rows
        prefilled = {j for j, (key, _) in enumerate(body) if key in filled.values()}
        groups = self._fused(body, entry_codes, stored, constants, placed, prefilled) \
            if self.fuse else []
        for g in groups:  # scaled before the loop (one call for two activations, fuse.py)
            self.scaled.update((body[i][0], g.scale) for i in g.scaled)
        fused = {i: g for g in groups for i in g.positions}
        lines, i = [], 0
        for entry, code in zip(body_keys, codes):
            if entry is None:
                lines += code
                continue
            group = fused.get(i)
            if group is None:
                lines += code
            elif i == min(group.positions):
                lines += self._group_lines(group, body, entry_codes + [
                    c for e, c in zip(body_keys, codes) if e is None], rows)
            i += 1
        for name, rows_name in self.expanded.items():  # rows (B, 1, n), see fuse._expand
            rows.append(ir.assign(name, ir.Rows(ir.Index(sources[rows_name], (
                ir.Slice(), ir.Slice(), ir.Const(None))))))
        loop = ir.For(LOOP, start, stop, step, tuple(lines))
        return _read_only(rows, loop) + [loop], filled

    # -- sums of same-form terms (fuse.py) ----------------------------------------
    def _sum_groups(self, body, stored, hoisted):
        """{entry: SumGroup}: in an entry that is a sum, the terms of one form
        (a row of a stored value, a value computed before the loop, parameters:
        dL/dh gets W_k^T (sigma'_k * dL/dz_k) from each gate k), to be computed
        as one product over the rows of the terms side by side."""
        out, taken = {}, set()
        uses = Counter(_base(l) for _, e in body for l in _leaves(e))
        for i, (key, expr) in enumerate(body):
            if not isinstance(expr, MatAdd):
                continue
            forms = {}
            for term in expr.args:
                parts = self._term_parts(term, stored, hoisted)
                if parts is not None:
                    forms.setdefault(parts[0], []).append((term,) + parts[1:])
            for form, found in forms.items():
                found = self._by_definition(found, body, hoisted)
                rows = [r for _, r, _ in found]
                slots = [p for _, _, p in found if p is not None]
                if len(found) < 2 or len({_base(r) for r in rows}) < len(rows) or \
                        slots and len({_base(p) for p in slots}) < len(rows) or \
                        any(uses[_base(p)] > 1 for p in slots) or \
                        {_base(r) for r in rows + slots} & taken or key in {_base(r) for r in rows}:
                    continue
                taken |= {_base(r) for r in rows + slots}
                terms = [term for term, _, _ in found]
                self.temps += 1
                leaf = StepVar(f"_sum{self.temps}", t, *expr.shape)
                self.local.add(Key(leaf.name))
                rest = [a for a in expr.args if a not in terms]
                out[i] = SumGroup(MatAdd(*rest, leaf) if rest else leaf, terms, rows, slots, leaf)
                break
        return out

    def _by_definition(self, found, body, hoisted):
        """The terms ``found`` of a sum with the rows whose definitions in ``body``
        have one form next to each other (they are the group's columns, and rows
        computed alike fuse into one statement on adjacent columns)."""
        defs = dict(body)

        def form(row):
            e = defs.get(_base(row))
            if e is None:
                return ""
            own = {l: StepVar("_slot", _time(l), *l.shape) for l in _leaves(e)
                   if _base(l) in hoisted}
            return str(_commuted(e.xreplace(own)))
        forms = [form(r) for _, r, _ in found]
        first = {f: forms.index(f) for f in forms}
        order = sorted(range(len(found)), key=lambda i: (first[forms[i]], i))
        return [found[i] for i in order]

    def _term_parts(self, term, stored, hoisted):
        """``(form, row, slot)`` of a term: its one row of a stored value of the
        loop, its value computed before the loop (or None), and the term with
        both and its parameters as placeholders; None if it has no such row."""
        rows, slots, replace = [], [], {}
        params = [l for l in preorder_traversal(term) if isinstance(l, (StepVar, MatrixSymbol))
                  and l.name in self.params]
        for l in _leaves(term):
            b = _base(l)
            if b in stored and b not in self.local:
                rows.append(l)
            elif b in hoisted and _time(l) == t:
                slots.append(l)
        if len(rows) != 1 or len(slots) > 1 or any(term.count(l) != 1 for l in rows + slots):
            return None
        for name, leaf in [("_slota", rows[0])] + [("_slotp", p) for p in slots]:
            var = leaf.var if isinstance(leaf, Adjoint) else leaf
            place = StepVar(name, var.time, *var.shape)
            replace[leaf] = Adjoint(place) if isinstance(leaf, Adjoint) else place
        for j, p in enumerate(dict.fromkeys(params)):
            replace[p] = StepVar(f"_slotw{j}", p.time, *p.shape) if isinstance(p, StepVar) \
                else MatrixSymbol(f"_slotw{j}", *p.shape)
        return _commuted(term.xreplace(replace)), rows[0], (slots[0] if slots else None)

    def _sum_lines(self, group, after):
        """``[_t__sumN = ...]``: the terms of ``group`` as one product over the
        (B, k, n) rows of their values side by side (see ``fuse.fuse_sum``), or
        None if, once lowered, the terms are not of one form. The stacked
        parameters and the lists of rows go to ``after`` (before the loop)."""
        rows_before = set(self.rows)
        forms, names = [], []
        slots = group.slots or [None] * len(group.rows)
        for term, row, slot in zip(group.terms, group.rows, slots):
            code = self.code(term, "loop")
            row_ir = self.code(row, "loop")
            slot_ir = self.code(slot, "loop") if slot is not None else None
            if not isinstance(row_ir, ir.Index) or slot is not None and not isinstance(
                    slot_ir, ir.Index):
                self.rows = rows_before
                return None
            varying = {ir.Name(p) for p in self.params} | {
                name for name, value in self.lowering.constants.values()
                if isinstance(value, ir.Transpose) and value.value in
                {ir.Name(p) for p in self.params}}
            own = {row_ir.value: ir.Name("_slota")}
            if slot_ir is not None:
                own[slot_ir.value] = ir.Name("_slotp")
            form, order = canonical(code, own, varying)
            forms.append(form)
            names.append(order)
        # the terms' shared rows are read as before; the slots from the group's list
        self.rows -= {_base(p) for p in group.slots}
        self.rows |= {_base(r) for r in group.rows}
        if any(f != forms[0] for f in forms) or any(len(n) != len(names[0]) for n in names):
            return None
        k = len(group.rows)
        self.temps += 1
        a_key = Key(f"_fused{self.temps}", isinstance(group.rows[0], Adjoint))
        mapping = {ir.Name("_slota"): a_key.role("r")}
        self.groups.append((a_key, [_base(r) for r in group.rows]))
        after.append(ir.assign(a_key.role("r"), ir.Rows(a_key.role("all"))))
        if group.slots:
            self.temps += 1
            p_key = Key(f"_fused{self.temps}")
            for i, slot in enumerate(group.slots):
                self.slots[_base(slot)] = (p_key, i, k)
            mapping[ir.Name("_slotp")] = p_key.role("r")
            after.append(ir.assign(p_key.role("r"), ir.Rows(p_key.role("all"))))
        value, kinds = fuse_sum(forms[0], B_NAME, self.expanded)
        if value is None:
            return None
        for j, kind in kinds.items():
            members = ir.Tuple(tuple(n[j] for n in names))
            name = ir.Name(f"_st{a_key.role('r').id}_{j}")
            after.append(ir.assign(name, ir.numpy_call("stack", members) if kind == "vector"
                                   else ir.numpy_call("concatenate", members, ir.Const(0))))
            mapping[ir.Name(f"_vary{j}")] = name
        if FLAT_ROWS in ir.names_in(value):
            flat = a_key.role("rf")
            whole = a_key.role("all")
            mapping[FLAT_ROWS] = flat
            after.append(ir.assign(flat, ir.Rows(ir.call(ir.Attr(whole, "reshape"), ir.Index(
                ir.Attr(whole, "shape"), ir.Const(0)), B_NAME, ir.Const(-1)))))
        value = ir.rename(value, mapping)
        return [ir.assign(Key(group.leaf.name).role("t"), value)]

    # -- horizontal fusion (fuse.py) ----------------------------------------------
    def _fused(self, body, codes, stored, constants, placed, prefilled):
        """The groups of same-form rows of a loop body, fused."""
        varying = {}
        for p in self.cell.params:
            varying[ir.Name(p.name)] = ("vector" if p.shape[1] == 1 else "matrix", p.shape)
        for key, (name, value) in constants.items():  # a parameter's transpose
            if isinstance(key, tuple) and isinstance(value, ir.Transpose) \
                    and value.value in varying and varying[value.value][0] == "matrix":
                varying[name] = ("matrix", key[1].T.shape)
        members = [Member(code, key.role("t"), key.role("r"), expr.shape, key in stored)
                   for (key, expr), code in zip(body, codes)]

        def names():
            self.temps += 1
            group = Key(f"_fused{self.temps}", body[0][0].adjoint)
            self.group_keys[group.role("r")] = group
            return group.role("t"), group.role("r")
        return Fuser(LOOP, B_NAME, varying, _ELEMENTWISE, names, self.expanded).groups(
            members, placed, prefilled)

    def _group_lines(self, group, body, codes, rows):
        """The fused statements of ``group``, in the place of its first member;
        the rows of the stacked parameters and of the group are made before the
        loop (appended to ``rows``), its array after (``self.groups``)."""
        keys = [body[i][0] for i in group.positions]
        key = self.group_keys[group.names[1]]
        for name, members, kind in group.stacked:  # vectors (k, n), matrices side by side
            value = ir.numpy_call("stack", ir.Tuple(tuple(members))) if kind == "vector" else \
                ir.numpy_call("concatenate", ir.Tuple(tuple(members)), ir.Const(1))
            rows.append(ir.assign(name, value))
        if group.within is not None:  # columns of a fused sum's array
            array, lo, hi = group.within
            rows.append(ir.assign(key.role("r"), ir.Rows(ir.Index(array.role("all"), (
                ir.Slice(), ir.Slice(), ir.Slice(ir.Const(lo), ir.Const(hi)))))))
        else:
            rows.append(ir.assign(key.role("r"), ir.Rows(key.role("all"))))
        for name, lo, hi in group.parts:  # the rows' columns lo..hi (one activation)
            rows.append(ir.assign(name, ir.Rows(ir.Index(key.role("all"), (
                ir.Slice(), ir.Slice(), ir.Slice(ir.Const(lo), ir.Const(hi)))))))
        if group.within is None:
            self.groups.append((key, keys))
        lines = list(group.lines)
        others = set().union(*[ir.names_in(s) for i, code in enumerate(codes)
                               if i not in group.positions for s in code])
        for member in keys:  # the row of a member that other statements read by its view
            if member.role("t") in others:
                lines.append(ir.assign(member.role("t"), ir.Index(member.role("r"), LOOP)))
        return lines

    def _allocate(self, key, rows, shifted):
        """The array of a value computed step by step: steps 0..T, and a zero
        step T+1 when it is read at t+1. A member of a fused group is its slice
        of the group's array (steps, B, k, rows), allocated with its first member."""
        steps = _plus(T_NAME, 2 if shifted else 1)
        lines = [ir.Alloc(key.role("all"), (steps, B_NAME, rows))]
        for group, members in self.groups:
            if key in members:
                i = members.index(key)
                self.columns[key.flat()] = (group, i, rows)
                if group not in self.allocated:  # one array for all, with the first
                    # member allocated: steps 0..T+1 (those read at t+1 need it)
                    self.allocated.add(group)
                    lines = [ir.Alloc(group.role("all"), (_plus(T_NAME, 2), B_NAME,
                                                          ir.Const(len(members)), rows))]
                else:
                    lines = []
                part = (ir.Slice(None, None if shifted else steps), ir.Slice(), ir.Const(i))
                lines.append(ir.assign(key.role("all"), ir.Index(group.role("all"), part)))
        if shifted:
            lines.append(ir.assign(ir.Index(key.role("all"), _plus(T_NAME, 1)), ir.Const(0.0)))
        return lines

    def _pad(self, key, forward=False):
        """A stacked value that is read at step t+1: a copy with a zero step T+1
        (for a forward value, see ``_last_again``)."""
        self.padded.add(key)
        width = ir.Index(ir.Attr(key.flat(), "shape"), ir.Const(-1))
        steps = ir.Index(key.role("all"), ir.Slice(ir.Const(1), _plus(T_NAME, 1)))
        return [ir.Alloc(key.role("all"), (_plus(T_NAME, 2), B_NAME, width), zeros=True),
                ir.assign(steps, ir.call(ir.Attr(key.flat(), "reshape"), T_NAME, B_NAME,
                                         ir.Const(-1)))] + (self._last_again(key) if forward else [])

    def _last_again(self, key):
        """Step T+1 of a forward value read at t+1 holds step T again: its terms at
        the last step are multiplied by the zero adjoint of step T+1, and a value
        the forward pass computed keeps them finite (a zero would give 1/0 * 0)."""
        last = ir.Index(key.role("all"), T_NAME)
        return [ir.assign(ir.Index(key.role("all"), _plus(T_NAME, 1)), last)]

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
        states = [s.name for s in self.states]
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

    def _needed(self, roots):
        uses = {lhs.name: {v.name for v in rhs.atoms(StepVar)} for lhs, rhs in self.equations}
        return reachable(roots, uses)

    def forward_lines(self, needed, read_after):
        """The forward pass of the values ``needed``; ``read_after``: the names
        the backward pass reads. The loop's variables run as one loop per
        strongly connected component of their dependencies, in an order where
        each loop comes after those it reads: what a loop reads of an earlier
        one is then known for every step, and computed for all steps at once
        (the input projection of a stacked layer is one matrix product)."""
        eqs = [(lhs, rhs) for lhs, rhs in self.equations if lhs.name in needed]
        core, after = self._forward_parts(eqs)
        read_after = set(read_after) | {v.name for lhs, rhs in eqs if lhs.name in after
                                        for v in rhs.atoms(StepVar)}
        reads = {lhs.name: {v.name for v in rhs.atoms(StepVar)} & core
                 for lhs, rhs in eqs if lhs.name in core}
        parts = components([lhs.name for lhs, _ in eqs if lhs.name in core], reads)
        read_across = _read_across(parts, reads)
        self.local = {Key(n) for n in core - {s.name for s in self.states} - read_after
                      - read_across}
        self.padded |= {Key(n) for n in core} - self.local
        before, end = [], []
        for lhs, rhs in eqs:
            if lhs.name in after:
                if Key(lhs.name) in self.shifted:
                    raise NotImplementedError(f"{lhs.name} is read at step t+1 but is not "
                                              "computed in the recurrence")
                end.append((Key(lhs.name), rhs))
            elif lhs.name not in core:
                before.append((Key(lhs.name), rhs))
        lines = self.stacked(before)
        stacked = {Key(s.name) for s in self.cell.inputs + self.cell.targets} | {
            Key(lhs.name) for lhs, _ in eqs if lhs.name not in core | after}
        for key in sorted(self.shifted & stacked):  # read at t+1: a step T+1
            lines += self._pad(key, forward=True)
        for part in parts:
            lines += self._forward_loop([(lhs, rhs) for lhs, rhs in eqs if lhs.name in part])
        self.local = set()
        return lines + self.stacked(end)

    def _forward_loop(self, eqs):
        """The loop of one component ``eqs`` of the forward recurrence, with the
        work before it that does not depend on its own variables."""
        part = {lhs.name for lhs, _ in eqs}
        hoisted, loop = [], []
        for lhs, rhs in eqs:
            loop.append((Key(lhs.name), self._hoist(rhs, lambda l: _base(l).name in part
                                                    and not _base(l).adjoint, hoisted)))
        stored = [lhs for lhs, _ in eqs if Key(lhs.name) not in self.local]
        loop, filled = self._loop(ir.Const(1), _plus(T_NAME, 1), 1, loop,
                                  {Key(l.name) for l in stored}, {k for k, _ in hoisted})
        lines = []
        for lhs in stored:
            key = Key(lhs.name)
            lines += self._allocate(key, self.size(lhs.shape[0]), key in self.shifted)
            if key in self.states:
                lines.append(ir.assign(ir.Index(key.role("all"), ir.Const(0)), key.role("init")))
        lines += self.stacked(hoisted, filled, share=True) + loop
        for lhs in stored:
            key = Key(lhs.name)
            if key not in filled.values():  # else the view exists already
                lines.append(ir.assign(key.flat(), self._steps(key, 1)))
            if key in self.states:
                lines.append(ir.assign(key.role("prev"), self._steps(key, 0)))
            if key in self.shifted:
                lines += self._last_again(key)
        for _, rhs in eqs:
            self._done(rhs)
        return lines

    # -- the backward pass ----------------------------------------------------
    def backward_lines(self):
        """The backward pass: the adjoints that need step t+1 run step by step,
        one loop per strongly connected component as in ``forward_lines``
        (here from step T down)."""
        defs = self.adjoints
        base = {a: _base(a) for a in defs}
        refers = {base[a]: {_base(l) for l in e.atoms(Adjoint)} for a, e in defs.items()}
        future = {_base(l) for e in defs.values() for l in e.atoms(Adjoint) if l.var.time != t}
        # what reads an adjoint of step t+1, itself or through others, runs step by step;
        # a value read at t+1 that reads none (dL/dL^(t) = 1) is stacked and padded
        reads_next = {base[a] for a, e in defs.items() if any(l.var.time != t
                                                               for l in e.atoms(Adjoint))}
        core = {b for b in refers if reachable([b], refers) & reads_next}
        reads = {b: refers[b] & core for b in core}
        parts = components([base[a] for a in defs if base[a] in core], reads)
        read_after = {_base(l) for e in list(self.gradients.values())
                      + list(self.fixed_adjoints.values()) for l in e.atoms(Adjoint)}
        self.local = core - future - read_after - _read_across(parts, reads)
        self.padded |= (core | future) - self.local
        before, pads = [], []
        for a, e in defs.items():
            if base[a] not in core:
                before.append((base[a], e))
                if base[a] in self.padded:  # used at t+1: stored with a zero step T+1
                    self.padded.discard(base[a])
                    pads.append(base[a])
        lines = self.stacked(before)
        for key in pads:
            lines += self._pad(key)
        for part in parts:
            lines += self._backward_loop([(a, e) for a, e in defs.items() if base[a] in part])
        self.local = set()
        return lines

    def _backward_loop(self, defs):
        """The loop of one component ``defs`` ([(adjoint, expression)]) of the
        backward recurrence, with the work before it that does not depend on
        its own adjoints."""
        part = {_base(a) for a, _ in defs}
        if self.fuse:  # a product read at step t and at t+1: once per step (carried.py)
            defs = carry_products(defs, lambda a: _base(a) in part, self._carry_name)
            carried = {_base(a) for a, _ in defs} - part
            part |= carried
            self.padded |= carried
        hoisted, loop = [], []
        for a, e in defs:
            loop.append((_base(a), self._hoist(e, lambda l: _base(l) in part, hoisted)))
        stored = [a for a, _ in defs if _base(a) not in self.local]
        loop, filled = self._loop(T_NAME, ir.Const(0), -1, loop, {_base(a) for a in stored},
                                  {k for k, _ in hoisted})
        lines = []
        for a in stored:
            lines += self._allocate(_base(a), self.size(a.shape[0]), True)
        lines += self.stacked(hoisted, filled, share=True) + loop
        lines += [ir.assign(_base(a).flat(), self._steps(_base(a), 1)) for a in stored
                  if _base(a) not in filled.values()]
        for _, e in defs:
            self._done(e)
        return lines

    def _fused_gradients(self, items):
        """``(statements, the other items)``: gradients of one form that read one
        member each of a fused group ([(key, expression)]; ``W_k`` gets
        ``dot(dz_k.T, h_prev)`` for each gate k), from adjacent columns of the
        group's array, as one product over those columns (a view, (T B, k n)),
        whose rows are the gradients. Only forms whose rows are the member's
        columns: ``dot(z.T, R)`` and ``z.sum(0)``."""
        self._use("stacked")
        slot = ir.Name("_slotg")
        forms = {}
        for key, e in items:
            code = self.lowering.lower(e)
            mine = [n for n in ir.names_in(code) if n in self.columns]
            if len(mine) != 1:
                continue
            form = ir.rename(code, {mine[0]: slot})
            by_rows = form == ir.call(ir.Attr(slot, "sum"), ir.Const(0)) or (
                isinstance(form, ir.Call) and form.func == ir.Helper("dot") and form.out is None
                and len(form.args) == 2 and form.args[0] == ir.Transpose(slot)
                and slot not in ir.names_in(form.args[1]))
            if by_rows:
                group, i, width = self.columns[mine[0]]
                forms.setdefault((form, group, width), []).append((i, key, e))
        lines, done = [], set()
        for (form, group, width), found in forms.items():
            found.sort(key=lambda f: f[0])
            runs = [[found[0]]]
            for f in found[1:]:
                if f[0] == runs[-1][-1][0] + 1:
                    runs[-1].append(f)
                else:
                    runs.append([f])
            for run in runs:
                if len(run) < 2:
                    continue
                lo, hi = run[0][0], run[-1][0] + 1
                self.temps += 1
                view, value = ir.Name(f"_cols{self.temps}"), ir.Name(f"_rows{self.temps}")
                columns = ir.Index(group.role("all"), (ir.Slice(ir.Const(1), _plus(T_NAME, 1)),
                                                       ir.Slice(), ir.Slice(ir.Const(lo),
                                                                            ir.Const(hi))))
                lines.append(ir.assign(view, ir.call(ir.Attr(columns, "reshape"),
                                                     ir.mul(T_NAME, B_NAME), ir.Const(-1))))
                lines.append(ir.assign(value, ir.rename(form, {slot: view})))
                for i, key, e in run:
                    j = i - lo
                    part = ir.Slice(ir.mul(ir.Const(j), width) if j else None,
                                    ir.mul(ir.Const(j + 1), width) if j + 1 > 1 else width)
                    lines.append(ir.assign(key.flat(), ir.Index(value, part)))
                    done.add(key)
                    self._done(e)
        return lines, [(k, e) for k, e in items if k not in done]

    def _carry_name(self):
        self.temps += 1
        return f"_carry{self.temps}"

    # -- whole functions --------------------------------------------------------
    def arguments(self):
        """The kernel's arguments: parameters, inputs, targets (by their names) and
        the initial states (``_init_h``)."""
        cell = self.cell
        return ([p.name for p in cell.params] + [s.name for s in cell.inputs + cell.targets]
                + [Key(s.name).role("init").id for s in cell.states])

    def argument_shapes(self, steps, batch):
        """``{argument: shape}`` in the kernel's layout, in the cell's sizes, with
        ``steps`` and ``batch`` for T and B: a parameter column (n,), a matrix
        (r, c), an input or target (T, B, n), an initial state (B, n)."""
        cell, out = self.cell, {}
        for p in cell.params:
            rows, cols = p.shape
            out[p.name] = (rows,) if cols == 1 else (rows, cols)
        for s in cell.inputs + cell.targets:
            out[s.name] = (steps, batch, s.shape[0])
        for s in cell.states:
            out[Key(s.name).role("init").id] = (batch, s.shape[0])
        return out

    def _head(self):
        per_step = self.cell.inputs + self.cell.targets
        first = ir.Attr(ir.Name(per_step[0].name), "shape")
        lines = [ir.Assign((T_NAME, B_NAME), ir.Tuple((ir.Index(first, ir.Const(0)),
                                                       ir.Index(first, ir.Const(1)))))]
        for sym in per_step:  # one row per step and sequence
            lines.append(ir.assign(ir.Name(sym.name), ir.call(
                ir.Attr(ir.Name(sym.name), "reshape"), ir.mul(T_NAME, B_NAME), ir.Const(-1))))
        return lines

    def _loss(self, rhs, stored):
        """``_loss = ...``: the sum of the per-step losses ``rhs``, computed
        directly unless they are ``stored`` anyway."""
        if stored:
            return [ir.assign(LOSS, ir.call(ir.Attr(Key(self.cell.loss_var.name).flat(), "sum")))]
        self._done(rhs)
        self._use("stacked")
        return [ir.assign(LOSS, self.lowering.total(rhs))]

    def _start(self, needed, later):
        """A new function: it computes ``needed`` and then lowers ``later``."""
        self.padded, self.shared, self.owned = set(self.states), {}, set()
        self.reads_of = {}
        self.scaled = {}
        self.pending = Readers([rhs for lhs, rhs in self.equations if lhs.name in needed]
                               + later)

    def _grad_key(self, name):
        """``_grad_W`` for a parameter, ``_grad0_h`` for the initial state of h."""
        if name in self.params:
            return Key(f"_grad_{name}")
        state = next(s for s in self.states if f"{s.name}0" == name)
        return Key(f"_grad0_{state.name}")

    def _zero_gradient(self, key, name):
        """The gradient of a value the loss does not depend on: zeros of its shape."""
        if name in self.params:
            rows, cols = self.cell.param(name).shape
            shape = (self.size(rows),) if cols == 1 else (self.size(rows), self.size(cols))
        else:
            state = next(s for s in self.cell.states if f"{s.name}0" == name)
            shape = (B_NAME, self.size(state.shape[0]))
        return ir.Alloc(key.flat(), shape, zeros=True)

    def functions(self):
        """``forward(...) -> loss`` and ``gradients(...) -> (loss, (grads...))`` as IR."""
        args = tuple(ir.Name(a) for a in self.arguments())
        L = self.cell.loss_var.name
        L_rhs = dict((lhs.name, rhs) for lhs, rhs in self.equations)[L]
        L_read = any(L in {v.name for v in rhs.atoms(StepVar)}
                     for lhs, rhs in self.equations if lhs.name != L)

        needed = self._needed([L]) - ({L} if not L_read else set())
        self._start(needed, [L_rhs])
        forward = self.forward_lines(needed, ()) + self._loss(L_rhs, L in needed)

        grad_exprs = self.gradients
        fixed_adjoints = self.fixed_adjoints
        backward_exprs = (list(self.adjoints.values()) + list(fixed_adjoints.values())
                          + list(grad_exprs.values()))
        leaves = set()
        for e in backward_exprs:
            values = _forward_values(e)
            leaves |= {v.name for v in values}
            self.shifted |= {Key(v.name) for v in values if (v.time - t).is_positive
                             and v.name not in self.params}
        needed = self._needed(leaves | {L}) - ({L} if L not in leaves and not L_read else set())
        self._start(needed, [L_rhs] + backward_exprs)
        full = self.forward_lines(needed, leaves) + self._loss(L_rhs, L in needed)
        backward = self.backward_lines()
        keys = {name: self._grad_key(name) for name in grad_exprs}
        zero = [self._zero_gradient(keys[n], n) for n, e in grad_exprs.items() if e.is_ZeroMatrix]
        items = [(keys[n], e) for n, e in grad_exprs.items() if not e.is_ZeroMatrix]
        fused, items = self._fused_gradients(items) if self.fuse else ([], items)
        # the named matrices' adjoints (each a sum over t), then the gradients they reach
        fixed = [(Key(a.var.name, True), e) for a, e in fixed_adjoints.items()]
        grads = fused + self.stacked(fixed + items, rows=False)
        returns = ir.Return((LOSS, ir.Tuple(tuple(k.flat() for k in keys.values()))))
        head = self._head()
        self._start(set(), [])
        named = self._fixed_values()
        return (ir.Function(ir.Name("forward"), args,
                            _released(head + named + forward + [ir.Return((LOSS,))], args)),
                ir.Function(ir.Name("gradients"), args,
                            _released(head + named + full + backward + grads + zero + [returns],
                                      args)))

    def _fixed_values(self):
        """The named matrices of the parameters, computed once, before anything else."""
        return [ir.assign(ir.Name(lhs.name), self.code(rhs, "stacked"))
                for lhs, rhs in self.cell.fixed]
