"""release: each array the kernel made is released after its last use.

Input: the lowered functions. Output: the same as flat statements (no
``Block``), with a ``Release`` after the last top-level statement that reads an
array the function made, so that the arrays that only led to the loss (the
log-softmax of the outputs, ...) are freed before the backward pass allocates
its own: the peak memory of a call is then that of its live arrays. (NumPy
deletes the names; Numba compiles no ``del`` and prints nothing.)
"""
from dataclasses import replace

from .. import ir
from .lower.context import BATCH, LOSS, STEPS


def run(module):
    return replace(module, functions=tuple(_released(f) for f in module.functions))


def _released(f):
    body = ir.flatten(f.body)
    made = {t for s in body if isinstance(s, (ir.Assign, ir.Alloc))
            for t in (s.targets if isinstance(s, ir.Assign) else (s.target,))
            if isinstance(t, ir.VARIABLES)} - set(f.args) - {STEPS, BATCH, LOSS}
    last = {}
    for i, s in enumerate(body):
        for n in ir.names_in(s) & made:
            last[n] = i
    kept = ir.names_in(body[-1]) if isinstance(body[-1], ir.Return) else set()
    out = []
    for i, s in enumerate(body):
        out.append(s)
        done = sorted((n for n, j in last.items() if j == i and n not in kept), key=ir.order)
        if done and i < len(body) - 1:
            out.append(ir.Release(tuple(done)))
    return replace(f, body=tuple(out))
