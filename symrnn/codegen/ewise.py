"""Element-wise statements as calls of shared functions, for Numba (IR to IR).

Numba compiles every array expression of a function (``a += w * b``,
``numpy.tanh(a, a)``) through its whole pipeline again, about a second each
on a busy machine, so a cell with hundreds of such statements took minutes
(issue 15). Here each element-wise statement becomes a call of a small
function that holds the statement with its operands as arguments; two
statements of the same form (the gates of every layer of a stacked cell, the
same update in the forward and the backward pass) call the same function,
which Numba compiles once per argument types. Operands that are not
element-wise (a name, a row ``a[t]``, a product ``dot(a, b)``) are computed by
the caller as before and passed in; constants stay in the shared function.
"""
import dataclasses

import numpy

from . import ir

PARAM = "_p"  # the shared functions' parameters: _p0, _p1, ...


def _ufunc(node):
    return (isinstance(node, ir.Call) and isinstance(node.func, ir.NumPy)
            and isinstance(getattr(numpy, node.func.attr, None), numpy.ufunc))


def _elementwise(node):
    return isinstance(node, (ir.BinOp, ir.Neg)) or _ufunc(node)


class Sharer:
    """``function(f)``: ``f`` with its element-wise statements replaced by calls;
    ``functions``: the shared functions they call, one per form."""

    def __init__(self, prefix="_nb_ew"):
        self.prefix, self.forms = prefix, {}

    @property
    def functions(self):
        return list(self.forms.values())

    def function(self, f):
        return dataclasses.replace(f, body=self._body(f.body))

    def _body(self, statements):
        return tuple(self._statement(s) for s in statements)

    def _statement(self, s):
        if isinstance(s, ir.For):
            return dataclasses.replace(s, body=self._body(s.body))
        if isinstance(s, ir.Update) and isinstance(s.target, ir.Name):
            # returns the target: a scalar is rebound, an array comes back as itself
            leaves = {s.target: ir.Name(PARAM + "0")}
            form = ir.Update(leaves[s.target], s.op, self._abstract(s.value, leaves))
            call = self._call((form, ir.Return((leaves[s.target],))), leaves)
            return ir.Assign((s.target,), call)
        if isinstance(s, ir.Do) and _ufunc(s.call):
            leaves = {}
            return ir.Do(self._call((ir.Do(self._abstract(s.call, leaves)),), leaves))
        if isinstance(s, ir.Fill) and _elementwise(s.value):
            leaves = {}
            target = self._abstract(s.target, leaves)
            form = ir.Fill(target, self._abstract(s.value, leaves))
            return ir.Do(self._call((form,), leaves))
        if (isinstance(s, ir.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ir.Name)
                and _elementwise(s.value)):
            leaves = {}
            form = ir.Return((self._abstract(s.value, leaves),))
            return ir.Assign(s.targets, self._call((form,), leaves))
        return s

    def _abstract(self, node, leaves):
        """``node`` with each operand that is not element-wise (nor a constant)
        replaced by a parameter, the same one for equal operands."""
        if isinstance(node, ir.Const):
            return node
        if isinstance(node, ir.BinOp):
            return ir.BinOp(node.op, self._abstract(node.left, leaves),
                            self._abstract(node.right, leaves))
        if isinstance(node, ir.Neg):
            return ir.Neg(self._abstract(node.value, leaves))
        if _ufunc(node):
            out = None if node.out is None else self._abstract(node.out, leaves)
            return ir.Call(node.func, tuple(self._abstract(a, leaves) for a in node.args), out)
        if node not in leaves:
            leaves[node] = ir.Name(f"{PARAM}{len(leaves)}")
        return leaves[node]

    def _call(self, body, leaves):
        params = tuple(leaves.values())
        key = (params, body)
        if key not in self.forms:
            name = ir.Name(f"{self.prefix}{len(self.forms)}")
            self.forms[key] = ir.Function(name, params, body)
        return ir.Call(self.forms[key].name, tuple(leaves))
