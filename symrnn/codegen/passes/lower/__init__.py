"""lower: each kernel's schedule as statements over arrays, in row layout.

Input: ``module.kernels`` (the schedules). Output: ``module.functions``, the
kernels as ``ir.Function`` (``forward(...) -> loss``, ``gradients(...) ->
(loss, (gradients...))``), each value a ``Block`` of statements labelled with
its definition.

A value computed step by step lives in an array of steps 0..T (T+1 when it is
read at step t+1, see ``Pad``), a value over all steps in rows (T B, n); each
expression is lowered by the one product table (``lower.RowLowering``).
Settings: ``in_place`` (default True: each statement works in one buffer, see
``inplace.py``; False: one assignment per value) and ``row_lists`` (default
True: a loop indexes a list of its arrays' rows, which NumPy indexes faster
than an array; False: the arrays themselves). Every name the kernels make for
themselves is a ``Temp``; sizes come from the shapes of the arguments, never
from the names of the sizes.
"""
import unicodedata
from dataclasses import replace

from ... import ir
from ...scheduled import (Fixed, Gradients, Let, Loop, Loss, Pad, Stacked, Value)
from ...shapes import symbol
from .context import BATCH, LOSS, STEPS, Context, plus
from .loop import lower_loop
from .stacked import block, stacked


def run(module):
    _distinct_identifiers(module.cell)
    functions = tuple(_Kernel(module, kernel).function() for kernel in module.kernels)
    return replace(module, functions=functions)


def arguments(cell):
    """The kernel's arguments: parameters, inputs, targets (by their names) and
    the initial states."""
    return ([ir.Name(p.name) for p in cell.params]
            + [ir.Name(s.name) for s in cell.inputs + cell.targets]
            + [ir.Temp("init", Value(s.name)) for s in cell.states])


def argument_shapes(cell):
    """``{argument: shape}`` in the kernel's layout, in the cell's sizes (and the
    symbols of T and B, see ``shapes.symbol``): a parameter column (n,), a
    matrix (r, c), an input or target (T, B, n), an initial state (B, n)."""
    steps, batch = symbol(STEPS), symbol(BATCH)
    out = {}
    for p in cell.params:
        rows, cols = p.shape
        out[ir.Name(p.name)] = (rows,) if cols == 1 else (rows, cols)
    for s in cell.inputs + cell.targets:
        out[ir.Name(s.name)] = (steps, batch, s.shape[0])
    for s in cell.states:
        out[ir.Temp("init", Value(s.name))] = (batch, s.shape[0])
    return out


def _distinct_identifiers(cell):
    """Raise if two names of ``cell`` are one identifier to Python, which reads
    ``ℌ`` as ``H`` (NFKC): the generated code would confuse them."""
    seen = {}
    for sym in cell.params + cell.inputs + cell.targets + cell.variables:
        same = seen.setdefault(unicodedata.normalize("NFKC", sym.name), sym.name)
        if same != sym.name:
            raise ValueError(f"equations: the names {same!r} and {sym.name!r} are the same "
                             "identifier in Python (NFKC normalisation); choose another name")


class _Kernel:
    """The statements of one kernel, item by item of its schedule."""

    def __init__(self, module, kernel):
        self.module, self.kernel = module, kernel
        self.cx = Context(module, kernel)
        self.allocated = set()  # the groups whose array is allocated

    def function(self):
        cx, kernel = self.cx, self.kernel
        lines = self._head()
        returns = None
        for item in kernel.items:
            if isinstance(item, Fixed):
                lines += self._fixed(item)
            elif isinstance(item, Stacked):
                lines += stacked(cx, item.lets, share=item.share)
            elif isinstance(item, Pad):
                lines += self._pad(item.value, item.forward)
            elif isinstance(item, Loop):
                lines += self._loop(item)
            elif isinstance(item, Loss):
                lines += self._loss(item)
            elif isinstance(item, Gradients):
                more, returns = self._gradients(item)
                lines += more
        if returns is None:
            returns = ir.Return((LOSS,))
        return ir.Function(ir.Name(kernel.name), tuple(arguments(self.module.cell)),
                           tuple(lines) + (returns,))

    def _head(self):
        cell, cx = self.module.cell, self.cx
        per_step = cell.inputs + cell.targets
        first = ir.Attr(ir.Name(per_step[0].name), "shape")
        lines = [ir.Assign((STEPS, BATCH), ir.Tuple((ir.Index(first, ir.Const(0)),
                                                     ir.Index(first, ir.Const(1)))))]
        if not cx.row_lists:  # the loops index the (T, B, n) arrays
            return lines
        for sym in per_step:  # one row per step and sequence
            lines.append(ir.assign(ir.Name(sym.name), ir.call(
                ir.Attr(ir.Name(sym.name), "reshape"), ir.mul(STEPS, BATCH), ir.Const(-1))))
        return lines

    def _fixed(self, item):
        """The named matrices of the parameters, computed once, before anything else."""
        return [block(let.value, let.expr, "fixed",
                      [ir.assign(ir.Name(let.value.name), self.cx.code(let.expr, "stacked"))])
                for let in item.lets]

    # -- arrays of values computed step by step ------------------------------------------
    def _allocate(self, key, rows, shifted, groups):
        """The array of a value computed step by step: steps 0..T, and a zero
        step T+1 when it is read at t+1. A row of a fused sum is its column of the
        group's array (steps, B, k, rows), allocated with its first member."""
        cx = self.cx
        steps = plus(STEPS, 2 if shifted else 1)
        lines = [ir.Alloc(cx.role(key, "all"), (steps, BATCH, rows))]
        for group, members in groups:
            if key in members:
                i = members.index(key)
                if group not in self.allocated:  # one array for all, with the first
                    # member allocated: steps 0..T+1 (those read at t+1 need it)
                    self.allocated.add(group)
                    lines = [ir.Alloc(cx.role(group, "all"), (plus(STEPS, 2), BATCH,
                                                              ir.Const(len(members)), rows))]
                else:
                    lines = []
                part = (ir.Slice(None, None if shifted else steps), ir.Slice(), ir.Const(i))
                lines.append(ir.assign(cx.role(key, "all"), ir.Index(cx.role(group, "all"),
                                                                     part)))
        if shifted:
            lines.append(ir.assign(ir.Index(cx.role(key, "all"), plus(STEPS, 1)),
                                   ir.Const(0.0)))
        return lines

    def _pad(self, key, forward):
        """A stacked value that is read at step t+1: a copy with a zero step T+1
        (for a forward value, see ``_last_again``)."""
        cx = self.cx
        width = ir.Index(ir.Attr(cx.flat(key), "shape"), ir.Const(-1))
        steps = ir.Index(cx.role(key, "all"), ir.Slice(ir.Const(1), plus(STEPS, 1)))
        return [ir.Alloc(cx.role(key, "all"), (plus(STEPS, 2), BATCH, width), zeros=True),
                ir.assign(steps, ir.call(ir.Attr(cx.flat(key), "reshape"), STEPS, BATCH,
                                         ir.Const(-1)))] + (self._last_again(key) if forward
                                                            else [])

    def _last_again(self, key):
        """Step T+1 of a forward value read at t+1 holds step T again: its terms at
        the last step are multiplied by the zero adjoint of step T+1, and a value
        the forward pass computed keeps them finite (a zero would give 1/0 * 0)."""
        cx = self.cx
        last = ir.Index(cx.role(key, "all"), STEPS)
        return [ir.assign(ir.Index(cx.role(key, "all"), plus(STEPS, 1)), last)]

    def _loop(self, loop):
        cx, cell = self.cx, self.module.cell
        forward = loop.direction > 0
        start, stop = (ir.Const(1), plus(STEPS, 1)) if forward else (STEPS, ir.Const(0))
        body, result = lower_loop(cx, loop, start, stop, loop.direction)
        widths = {v: e.shape[0] for v, e in loop.defs}
        lines = [block(let.value, let.expr, "gradient", [ir.Alloc(let.value, self._shape(
            let.expr), zeros=True)]) for let in loop.sums]
        states = {Value(s.name) for s in cell.states}
        for key in loop.stored:
            shifted = key in cx.shifted if forward else True
            lines += self._allocate(key, cx.size(widths[key]), shifted, result.groups)
            if forward and key in states:
                lines.append(ir.assign(ir.Index(cx.role(key, "all"), ir.Const(0)),
                                       cx.init(key)))
        lines += stacked(cx, loop.hoisted, "hoisted", result.filled, share=True, loop=result)
        lines += body
        for key in loop.stored:
            if key not in result.filled.values():  # else the view exists already
                lines.append(ir.assign(cx.flat(key), cx.steps(key, 1)))
            if forward and key in states:
                lines.append(ir.assign(cx.role(key, "prev"), cx.steps(key, 0)))
            if forward and key in cx.shifted:
                lines += self._last_again(key)
        for _, e in loop.defs:
            cx.done(e)
        return lines

    def _shape(self, expr):
        """The storage of a parameter's gradient: a column (n,), a row or a matrix 2-D."""
        rows, cols = expr.shape
        return (self.cx.size(rows),) if cols == 1 else (self.cx.size(rows), self.cx.size(cols))

    def _loss(self, item):
        """``loss = ...``: the sum of the per-step losses, computed directly unless
        they are stored anyway."""
        cx = self.cx
        if item.stored:
            code = ir.assign(LOSS, ir.call(ir.Attr(cx.flat(item.value), "sum")))
        else:
            cx.done(item.expr)
            cx.use("stacked")
            code = ir.assign(LOSS, cx.lowering.total(item.expr))
        return [block(LOSS, item.expr, "loss", [code])]

    def _gradients(self, item):
        cx = self.cx
        keys = [ir.Temp("grad0" if g.state else "grad", Value(g.of)) for g in item.items]
        lets = [Let(k, g.expr) for k, g in zip(keys, item.items)
                if g.expr is not None and not g.in_loop]
        lines = stacked(cx, tuple(item.fixed) + tuple(lets), "gradient", rows=False)
        for key, g in zip(keys, item.items):
            if g.expr is None:  # the loss does not depend on it: zeros of its shape
                shape = tuple(cx.size(d) for d in g.shape)
                lines.append(block(key, None, "gradient", [ir.Alloc(key, shape, zeros=True)]))
        return [block(None, None, "gradients", lines)], ir.Return((LOSS, ir.Tuple(tuple(keys))))
