"""invariants: the rows of the arrays that a step loop indexes by step, made once before it.

Input: the lowered functions. Output: the same, where each array that a step
loop's body indexes by step (without lists of rows, ``row_lists=False``) is
named once before the loop as its rows, ``_xp.rows(...)``: an argument
(T, B, n), rows of all steps viewed as steps (``v.reshape(T, B, -1)``), or an
array of steps that the loop writes. A read of a step of an array the loop
does not change is then an index into its rows; one of an array the loop
writes is ``_xp.row(array, rows, t)``, and a write ``array = _xp.set_row(array,
rows, t, value)``. PyTorch indexes a tuple of views made once (``unbind``:
views of the array's memory, which a write goes through), instead of making
a view of the array at every read and write; JAX indexes the arrays themselves.
"""
from dataclasses import replace

from .. import ir
from .lower.context import BATCH, STEP, STEPS


def run(module):
    return replace(module, functions=tuple(replace(f, body=_statements(f.body))
                                           for f in module.functions))


def _statements(statements):
    out = []
    for s in statements:
        if isinstance(s, ir.Block):
            s = replace(s, body=_statements(s.body))
        elif isinstance(s, ir.For):
            loop = _Loop(ir.changed(s.body))
            body = loop.rewrite(s.body)
            out += [ir.assign(name, ir.helper("rows", array))
                    for array, name in loop.rows.items()]
            s = replace(s, body=body)
        out.append(s)
    return tuple(out)


def _is_view(node):
    return (isinstance(node, ir.Call) and node.out is None
            and isinstance(node.func, ir.Attr) and node.func.attr == "reshape"
            and isinstance(node.func.value, ir.VARIABLES)
            and node.args == (STEPS, BATCH, ir.Const(-1)))


def _by_step(node):
    """Whether ``node`` indexes an array (a name, or a view of one) by the loop's step."""
    return (isinstance(node, ir.Index) and not isinstance(node.index, tuple)
            and STEP in ir.names_in(node.index)
            and (isinstance(node.value, ir.VARIABLES) or _is_view(node.value)))


class _Loop:
    """The rewriting of one loop's body; ``rows``: array -> the temporary of its rows."""

    def __init__(self, changed):
        self.changed, self.rows = changed, {}

    def _rows(self, array):
        if array not in self.rows:
            self.rows[array] = ir.Temp("steprows", array.func.value if _is_view(array)
                                       else array)
        return self.rows[array]

    def rewrite(self, node):
        if isinstance(node, ir.Assign) and len(node.targets) == 1 and \
                _by_step(node.targets[0]) and isinstance(node.targets[0].value, ir.VARIABLES):
            array, index = node.targets[0].value, node.targets[0].index
            return ir.assign(array, ir.helper("set_row", array, self._rows(array),
                                              self.rewrite(index), self.rewrite(node.value)))
        if _by_step(node):
            array, index = node.value, self.rewrite(node.index)
            if ir.names_in(array) & self.changed:
                return ir.helper("row", array, self._rows(array), index)
            return ir.Index(self._rows(array), index)
        if isinstance(node, tuple):
            return tuple(self.rewrite(n) for n in node)
        if isinstance(node, (ir.Expr, ir.Stmt)) and not isinstance(node, ir.VARIABLES):
            return replace(node, **{k: self.rewrite(getattr(node, k))
                                    for k in node.__dataclass_fields__})
        return node
