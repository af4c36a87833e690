"""invariants: the rows of all steps that a step loop reads, made once before it.

Input: the lowered functions. Output: the same, where each array that a step
loop's body indexes by step (without lists of rows, ``row_lists=False``: an
argument (T, B, n), or rows of all steps viewed as steps, ``v.reshape(T, B,
-1)``) and that the loop does not change is named once before the loop as its
rows, ``_xp.rows(...)``: an array library then makes a view once instead of at
every step, and PyTorch indexes a tuple of rows (JAX the array itself).
"""
from dataclasses import replace

from .. import ir
from .lower.context import BATCH, STEPS, STEP


def run(module):
    return replace(module, functions=tuple(replace(f, body=_statements(f.body))
                                           for f in module.functions))


def _statements(statements):
    out = []
    for s in statements:
        if isinstance(s, ir.Block):
            s = replace(s, body=_statements(s.body))
        elif isinstance(s, ir.For):
            rows = {}
            body = _hoisted(s.body, ir.changed(s.body), rows)
            out += [ir.assign(name, ir.helper("rows", array)) for array, name in rows.items()]
            s = replace(s, body=body)
        out.append(s)
    return tuple(out)


def _is_view(node):
    return (isinstance(node, ir.Call) and node.out is None
            and isinstance(node.func, ir.Attr) and node.func.attr == "reshape"
            and isinstance(node.func.value, ir.VARIABLES)
            and node.args == (STEPS, BATCH, ir.Const(-1)))


def _hoisted(node, changed, rows):
    """``node`` with each read of a step of an array not in ``changed`` made a read of
    its rows (``rows``: array -> the temporary of its rows)."""
    if isinstance(node, ir.Index) and not isinstance(node.index, tuple) and \
            STEP in ir.names_in(node.index):
        array = node.value
        if (isinstance(array, ir.VARIABLES) or _is_view(array)) and \
                not (ir.names_in(array) & changed):
            if array not in rows:
                rows[array] = ir.Temp("steprows", array.func.value if _is_view(array)
                                      else array)
            return ir.Index(rows[array], _hoisted(node.index, changed, rows))
    if isinstance(node, tuple):
        return tuple(_hoisted(n, changed, rows) for n in node)
    if isinstance(node, (ir.Expr, ir.Stmt)) and not isinstance(node, ir.VARIABLES):
        return replace(node, **{k: _hoisted(getattr(node, k), changed, rows)
                                for k in node.__dataclass_fields__})
    return node
