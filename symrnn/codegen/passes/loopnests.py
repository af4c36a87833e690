"""loopnests: the kernels compiled whole by Numba, their element-wise statements as loop nests.

Input: the functions (printed for NumPy so far). Output: the same, each
element-wise statement a loop nest over its entries (``loops.py``: Numba
compiles no array expression then) and marked ``compiled`` — if the two
kernels hold at most ``WHOLE_KERNELS_UP_TO`` statements so; else unchanged, for
``outline``.

Whole kernels save the interpreter's microseconds between the loops on short
sequences, but LLVM's compile time grows faster than a function's length: 4.9 s
for the Elman network (109 statements), 10.6 s for the LSTM (475), minutes for
stacked cells, against 2-5 s for their loops alone.
"""
from dataclasses import replace

from .. import ir
from ..kernels import scalar_names
from ..loops import Loops
from .lower import argument_shapes

WHOLE_KERNELS_UP_TO = 200


def run(module):
    loops = Loops(argument_shapes(module.cell), scalar_names())
    whole = [replace(loops.function(f), compiled=True) for f in module.functions]
    if sum(isinstance(n, ir.Stmt) for n in ir.walk(tuple(whole))) > WHOLE_KERNELS_UP_TO:
        return module
    return replace(module, functions=tuple(whole))
