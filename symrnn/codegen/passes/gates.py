"""gates: statements of one form in a step loop, computed as one (the gates of a cell).

Input: the lowered functions (``Block`` per value, a ``Block`` "loop" per step
loop with the statements before it). Output: the same, where the same-form
statements of a loop body (the LSTM's four gates) are one statement on the
(B, k, n) row of one array that holds their rows side by side (``fuse.py``):
their arrays become its columns, the parameters that differ between them are
stacked before the loop, a sigmoid and a tanh gate share one tanh. The
gradients of one form that read adjacent columns of such an array (``W_k``
gets ``dot(dz_k.T, h_prev)`` for each gate k) become one product over those
columns, whose rows are the gradients.
"""
from dataclasses import replace

from .. import ir
from ..fuse import Fuser, Member
from ..kernels import elementwise_helpers
from ..scheduled import Value
from .lower.context import BATCH, STEP, STEPS, plus
from .lower.loop import read_only
from .lower.stacked import dot_then_copy

ELEMENTWISE = elementwise_helpers()


def run(module):
    return replace(module, functions=tuple(_Function(module, f).run() for f in module.functions))


def _rows(v):
    return ir.Temp("rows", v)


def _row(v):
    return ir.Temp("row", v)


def _all(v):
    return ir.Temp("all", v)


def _flat(v, cell_names):
    if not v.adjoint and v.name in cell_names:
        return ir.Name(v.name)
    return ir.Temp("flat", v)


class _Function:
    def __init__(self, module, f):
        cell = module.cell
        self.cell, self.f = cell, f
        self.cell_names = {s.name for s in cell.params + cell.inputs + cell.targets
                           + cell.variables + cell.fixed_values}
        self.groups = 0
        self.new = []     # [(group Value, [member Values])] whose array is to be made
        self.scaled = {}  # member Value -> the factor its prefilled rows are scaled by
        self.fused = set()  # members of a group (whose prefilled rows are not contiguous)

    def run(self):
        body = [self._loop(s) if _is(s, "loop") else s for s in self.f.body]
        body = [self._prefilled(s) if _is(s, "prefill") else s for s in body]
        self.body = self._arrays(body)
        body = [self._gradients(s) if _is(s, "gradients") else s for s in self.body]
        return replace(self.f, body=tuple(body))

    # -- one loop ------------------------------------------------------------------------
    def _loop(self, block):
        *prelude, loop = block.body
        entries = [(i, s) for i, s in enumerate(loop.body) if s.label.kind != "sum"]
        body = [s for _, s in entries]
        varying = {}
        for p in self.cell.params:
            varying[ir.Name(p.name)] = ("vector" if p.shape[1] == 1 else "matrix", p.shape)
        for s in prelude:  # a parameter's transpose, named before the loop
            if isinstance(s.value, ir.Transpose) and s.value.value in varying \
                    and varying[s.value.value][0] == "matrix":
                varying[s.targets[0]] = ("matrix", varying[s.value.value][1][::-1])
        members = [Member(list(s.body), _row(s.label.value), _rows(s.label.value),
                          s.label.expr.shape, "stored" in s.label.notes) for s in body]
        placed = {j: (note[1], note[2]) for j, s in enumerate(body) for note in s.label.notes
                  if isinstance(note, tuple) and note[0] == "column"}
        prefilled = {j for j, s in enumerate(body) if "prefilled" in s.label.notes}
        expanded = {}

        def names():
            self.groups += 1
            group = Value(ir.Temp("gates", n=self.groups), body[0].label.value.adjoint)
            return _row(group), _rows(group)
        groups = Fuser(STEP, BATCH, varying, ELEMENTWISE, names, expanded).groups(
            members, placed, prefilled)
        if not groups:
            return block
        for g in groups:  # scaled before the loop (one call for two activations, fuse.py)
            self.scaled.update((body[i].label.value, g.scale) for i in g.scaled)
        prelude, at, dropped = list(prelude), {}, set()
        for group in groups:
            mine = {entries[j][0] for j in group.positions}
            others = [x for k, x in enumerate(loop.body) if k not in mine]
            at[min(mine)] = self._group(group, body, others, prelude)
            dropped |= mine
        out = [at[i] if i in at else s for i, s in enumerate(loop.body)
               if i in at or i not in dropped]
        sources = {s.targets[0]: s.value.value for s in prelude
                   if isinstance(s.value, ir.Rows)}
        made = {s.targets[0] for s in prelude}
        for name, rows_name in expanded.items():  # rows (B, 1, n), see fuse.expand
            if name not in made:
                prelude.append(ir.assign(name, ir.Rows(ir.Index(sources[rows_name], (
                    ir.Slice(), ir.Slice(), ir.Const(None))))))
        loop = replace(loop, body=tuple(out))
        return replace(block, body=tuple(read_only(prelude, loop)) + (loop,))

    def _group(self, group, body, others, prelude):
        """The fused statements of ``group``, in the place of its first member;
        the stacked parameters and the group's rows are made before the loop
        (appended to ``prelude``), its array with its members' arrays."""
        keys = [body[i].label.value for i in group.positions]
        rows = group.names[1]
        gv = rows.of
        for name, members, kind in group.stacked:  # vectors (k, n), matrices side by side
            value = ir.numpy_call("stack", ir.Tuple(tuple(members))) if kind == "vector" else \
                ir.numpy_call("concatenate", ir.Tuple(tuple(members)), ir.Const(1))
            prelude.append(ir.assign(name, value))
        if group.within is not None:  # columns of a fused sum's array
            array, lo, hi = group.within
            prelude.append(ir.assign(rows, ir.Rows(ir.Index(_all(array), (
                ir.Slice(), ir.Slice(), ir.Slice(ir.Const(lo), ir.Const(hi)))))))
        else:
            prelude.append(ir.assign(rows, ir.Rows(_all(gv))))
            self.new.append((gv, keys))
        for name, lo, hi in group.parts:  # the rows' columns lo..hi (one activation)
            prelude.append(ir.assign(name, ir.Rows(ir.Index(_all(gv), (
                ir.Slice(), ir.Slice(), ir.Slice(ir.Const(lo), ir.Const(hi)))))))
        self.fused |= set(keys)
        lines = list(group.lines)
        read = set().union(*[ir.names_in(s) for s in others])
        for member in keys:  # the row of a member that other statements read by its view
            if _row(member) in read:
                lines.append(ir.assign(_row(member), ir.Index(_rows(member), STEP)))
        label = ir.Label(gv, None, "fused", True, frozenset(keys))
        return ir.Block(label, tuple(lines))

    # -- the arrays of the groups, and the rows computed before the loops ------------------
    def _prefilled(self, s):
        """The rows of a member computed before its loop: into a column of the
        group's array (NumPy's dot cannot write into it: a copy), scaled by the
        factor its group folded into its parameters."""
        v = s.label.value
        body = list(s.body)
        if v in self.fused:
            body = [dot_then_copy(x) for x in body]
        if v in self.scaled:
            body.append(ir.Update(_flat(v, self.cell_names), "*", ir.Const(self.scaled[v])))
        return replace(s, body=tuple(body))

    def _arrays(self, body):
        """The arrays of the members of a new group: columns of one array (steps
        0..T+1, B, k, n), allocated in the place of its first member's."""
        member = {m: (gv, i, len(ms)) for gv, ms in self.new for i, m in enumerate(ms)}
        done, out = set(), []
        for s in body:
            target = s.target if isinstance(s, ir.Alloc) else None
            v = target.of if isinstance(target, ir.Temp) and target.role == "all" else None
            if v not in member:
                out.append(s)
                continue
            gv, i, k = member[v]
            steps, batch, rows = s.shape
            if gv not in done:
                done.add(gv)
                out.append(ir.Alloc(_all(gv), (plus(STEPS, 2), batch, ir.Const(k), rows)))
            shifted = steps == plus(STEPS, 2)
            part = (ir.Slice(None, None if shifted else steps), ir.Slice(), ir.Const(i))
            out.append(ir.assign(_all(v), ir.Index(_all(gv), part)))
        return out

    # -- gradients over the columns of a group ----------------------------------------------
    def _gradients(self, block):
        """Gradients of one form that read one member each of a group, from
        adjacent columns of the group's array, as one product over those columns
        (a view, (T B, k n)), whose rows are the gradients. Only forms whose rows
        are the member's columns: ``dot(z.T, R)`` and ``z.sum(0)``."""
        columns = self._columns()
        slot = ir.Temp("slot", n="gradient")
        forms = {}
        for i, s in enumerate(block.body):
            if not (_is(s, "gradient") and len(s.body) == 1 and isinstance(s.body[0], ir.Assign)
                    and len(s.body[0].targets) == 1):
                continue
            code = s.body[0].value
            mine = [n for n in ir.names_in(code) if n in columns]
            if len(mine) != 1:
                continue
            form = ir.rename(code, {mine[0]: slot})
            by_rows = form == ir.call(ir.Attr(slot, "sum"), ir.Const(0)) or (
                isinstance(form, ir.Call) and form.func == ir.Helper("dot") and form.out is None
                and len(form.args) == 2 and form.args[0] == ir.Transpose(slot)
                and slot not in ir.names_in(form.args[1]))
            if by_rows:
                group, column, width = columns[mine[0]]
                forms.setdefault((form, group, width), []).append((column, i, s))
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
                self.groups += 1
                view, value = ir.Temp("columns", n=self.groups), ir.Temp("product", n=self.groups)
                cols = ir.Index(_all(group), (ir.Slice(ir.Const(1), plus(STEPS, 1)), ir.Slice(),
                                              ir.Slice(ir.Const(lo), ir.Const(hi))))
                lines.append(ir.assign(view, ir.call(ir.Attr(cols, "reshape"),
                                                     ir.mul(STEPS, BATCH), ir.Const(-1))))
                lines.append(ir.assign(value, ir.rename(form, {slot: view})))
                for column, i, s in run:
                    j = column - lo
                    part = ir.Slice(ir.mul(ir.Const(j), width) if j else None,
                                    ir.mul(ir.Const(j + 1), width) if j + 1 > 1 else width)
                    lines.append(replace(s, body=(ir.assign(s.body[0].targets[0],
                                                            ir.Index(value, part)),)))
                    done.add(i)
        if not lines:
            return block
        rest = [s for i, s in enumerate(block.body) if i not in done]
        return replace(block, body=tuple(lines + rest))

    def _columns(self):
        """``{a member's rows of all steps: (its group, its column, its width)}`` for
        the arrays of this function that hold several values side by side."""
        sizes, out = {}, {}
        for s in ir.walk(self.body):
            if isinstance(s, ir.Alloc) and isinstance(s.target, ir.Temp) and len(s.shape) == 4:
                sizes[s.target.of] = s.shape[3]
        for s in ir.walk(self.body):
            if isinstance(s, ir.Assign) and len(s.targets) == 1 and isinstance(
                    s.targets[0], ir.Temp) and s.targets[0].role == "all" and isinstance(
                    s.value, ir.Index) and isinstance(s.value.value, ir.Temp) \
                    and s.value.value.of in sizes and isinstance(s.value.index, tuple):
                v, group = s.targets[0].of, s.value.value.of
                out[_flat(v, self.cell_names)] = (group, s.value.index[2].value, sizes[group])
        return out


def _is(s, kind):
    return isinstance(s, ir.Block) and s.label.kind == kind
