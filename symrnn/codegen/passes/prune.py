"""prune: the views of arrays that nothing reads, dropped.

Input: the lowered functions. Output: the same without the statements that
only name a view of an array (the rows of all steps of a value, ``flat(h[1:T +
1])``) when no later statement reads that name: the lowering makes those views
for whatever may read a value over all steps, and a backend that computes
everything step by step reads few of them.
"""
from dataclasses import replace

from .. import ir
from ..views import pure_view


def run(module):
    return replace(module, functions=tuple(_pruned(f) for f in module.functions))


def _pruned(f):
    read = _read(f.body)
    return replace(f, body=_kept(f.body, read))


def _read(body):
    """The names and temporaries that a statement of ``body`` reads (not only binds)."""
    out = set()
    for s in ir.walk(body):
        if isinstance(s, ir.Assign):
            out |= ir.names_in(s.value) | {n for t in s.targets if not isinstance(
                t, ir.VARIABLES) for n in ir.names_in(t)}
        elif isinstance(s, ir.Stmt) and not isinstance(s, (ir.Block, ir.For, ir.Function)):
            out |= ir.names_in(s)
        elif isinstance(s, ir.For):
            out |= ir.names_in((s.start, s.stop))
    return out


def _kept(body, read):
    out = []
    for s in body:
        if isinstance(s, ir.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ir.VARIABLES) and pure_view(s.value) and s.targets[0] not in read:
            continue
        if isinstance(s, (ir.Block, ir.For)):
            s = replace(s, body=_kept(s.body, read))
        out.append(s)
    return tuple(out)
