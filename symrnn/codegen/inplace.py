"""Statements that compute an expression in a single buffer.

``a = numpy.tanh(p + q @ W)`` allocates three arrays; the same value as

    a = _dot(q, W)
    a += p
    numpy.tanh(a, a)

allocates one, and none at all when ``a`` is a row of an array that already
exists (a state at step t). The first operation of a chain allocates the buffer
(or writes into the given one); every further operation updates it in place.
Only operands whose storage has the full shape of the result can hold it: a
per-step 1x1 value (stored (..., 1)) or a parameter broadcasts instead.

A chain may also start from a value that is already in the buffer, or from an
array that nothing reads afterwards (``ready``): then it takes that buffer over.

The statements are IR (``ir.py``); the output array is the ``out`` of a call,
which the printers pass positionally (Numba accepts no ``out=`` keyword for ufuncs).
"""

from dataclasses import dataclass, field

from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul

from ..model.nodes import Adjoint, Elementwise, StepVar
from . import ir
from .lower import kernel, split_sign

_UFUNC = {MatAdd: ("add", "+"), HadamardProduct: ("multiply", "*")}


@dataclass
class Buffer:
    """Where a chain leaves its value.

    target   the IR of the buffer (a row ``_r_h[_t]``) or of a new name
    into     True: ``target`` exists and is passed as the output array
    ready    values the chain may start from without computing them: with
             ``into``, ``target`` already holds them; without, their arrays
             are free to be taken over
    used     the ready value the chain started from, if any
    """
    target: str
    into: bool = False
    ready: frozenset = frozenset()
    used: list = field(default_factory=list)


def assign(lowering, target, expr, into=False, ready=()):
    """IR statements that leave the value of ``expr`` in ``target`` (see ``Buffer``);
    returns ``(lines, the ready value used or None)``."""
    buf = Buffer(target, into, frozenset(ready))
    lines = _assign(lowering, buf, expr)
    return lines, (buf.used[0] if buf.used else None)


def _assign(lowering, buf, expr):
    code, target = lowering.lower, buf.target
    expr = _plain(lowering, expr)
    if expr in buf.ready:
        return _take(lowering, buf, expr)
    if lowering.kind(expr) == "F":  # a fixed value (into a buffer: broadcast to every row)
        return [_copy(buf, code(expr))]
    if expr in lowering.shared or isinstance(expr, (StepVar, Adjoint)):
        return [_copy(buf, code(expr))]
    if isinstance(expr, Elementwise):
        func = kernel(type(expr))
        if expr.arg in buf.ready or makes_array(lowering, expr.arg):
            return _assign(lowering, buf, expr.arg) + [ir.Do(ir.Call(func, (target,), target))]
        return [_call(func, [code(expr.arg)], buf)]
    if isinstance(expr, HadamardPower) and expr.exp == 2:
        return [_call(ir.NumPy("square"), [code(expr.base)], buf)]
    if isinstance(expr, (MatAdd, HadamardProduct)):
        return _fold(lowering, buf, expr)
    if isinstance(expr, MatMul):
        sign, core = split_sign(expr)
        if sign < 0 and (core in buf.ready or makes_array(lowering, core)):
            return _assign(lowering, buf, core) + [_negate(target)]
        if sign < 0:  # a stored value: negated into the buffer, never in its own array
            return [_call(ir.NumPy("negative"), [code(core)], buf)]
        scaled = _scaled(lowering, expr)
        if scaled:  # a column times a per-step number: computed as the column, then scaled
            column, number = scaled
            if column in buf.ready or makes_array(lowering, column):
                return _assign(lowering, buf, column) + [ir.Update(target, "*", code(number))]
            return [_call(ir.NumPy("multiply"), [code(column), code(number)], buf)]
        value = code(expr)
        if buf.into and isinstance(value, ir.Call) and value.func == ir.Helper("dot") \
                and value.out is None:  # a product with a parameter: written into the buffer
            return [ir.Do(ir.with_out(value, target))]
        return [_copy(buf, value)]
    return [_copy(buf, code(expr))]


def _scaled(lowering, product):
    """``(column, number)`` when ``product`` is a per-step column (row) times a
    per-step 1x1 value such as ``yhat (1^T y)``; None otherwise."""
    coeff, factors = product.as_coeff_matrices()
    if coeff != 1 or len(factors) < 2:
        return None
    for vector, rest in ((factors[0], factors[1:]), (factors[-1], factors[:-1])):
        number = rest[0] if len(rest) == 1 else MatMul(*rest)
        if lowering.kind(vector) == lowering.kind(product) and lowering.kind(number) == "S":
            return vector, number
    return None


def _plain(lowering, expr):
    """``expr`` without transposes of per-step values (a row and a column have
    the same storage)."""
    while expr.is_Transpose and lowering.kind(expr) != "F":
        expr = expr.arg
    return expr


def makes_array(lowering, expr):
    """Whether ``expr`` is worth computing in the result's buffer: an operation
    that makes a new array (not a stored value) with the result's full storage."""
    expr = _plain(lowering, expr)
    return (not isinstance(expr, (StepVar, Adjoint)) and expr not in lowering.shared
            and lowering.kind(expr) in ("C", "R"))


def _reaches(buf, expr):
    """Whether the chain of ``expr`` can start from a ready value."""
    if expr in buf.ready:
        return True
    return isinstance(expr, (MatAdd, HadamardProduct, Elementwise, MatMul)) and any(
        _reaches(buf, a) for a in expr.args)


def _take(lowering, buf, value):
    """Start from ``value``, which is in the buffer or whose array is free."""
    buf.used.append(value)
    return [] if buf.into else [ir.assign(buf.target, lowering.lower(value))]


def _fold(lowering, buf, expr):
    """A sum or an element-wise product: the first full-shaped operation makes
    (or fills) the buffer, the other operands are added or multiplied in."""
    func, update = _UFUNC[type(expr)]
    code, target = lowering.lower, buf.target
    terms = [split_sign(a) if expr.is_MatAdd else (1, a) for a in expr.args]
    full = [i for i, (_, a) in enumerate(terms) if lowering.kind(a) in ("C", "R")]
    chained = [i for i in full if terms[i][1] in buf.ready or makes_array(lowering, terms[i][1])]
    # prefer a chain that starts from a ready value, then an operation (it
    # allocates anyway), then a plus sign
    order = sorted(chained or full, key=lambda i: (not _reaches(buf, terms[i][1]),
                                                   terms[i][1] in buf.ready,
                                                   i not in chained, terms[i][0] < 0))
    if not order:
        return [_copy(buf, code(expr))]
    sign, head = terms.pop(order[0])
    positive = [i for i, (s, _) in enumerate(terms) if s > 0]
    if order[0] in chained:
        lines = _assign(lowering, buf, head)
        if sign < 0:  # -head + rest: subtract the buffer from a term with a plus sign
            lines.append(ir.Do(ir.numpy_call("subtract", code(terms.pop(positive[0])[1]), target,
                                             out=target)) if positive else _negate(target))
    elif sign > 0:  # a stored value: the first binary operation makes the buffer
        other_sign, other = terms.pop(0)
        op = func if other_sign > 0 else "subtract"
        lines = [_call(ir.NumPy(op), [code(head), code(other)], buf)]
    elif positive:
        lines = [_call(ir.NumPy("subtract"), [code(terms.pop(positive[0])[1]), code(head)], buf)]
    else:
        lines = [_call(ir.NumPy("negative"), [code(head)], buf)]
    for s, a in terms:
        lines.append(ir.Update(target, update if s > 0 else "-", code(a)))
    return lines


def _negate(target):
    return ir.Do(ir.numpy_call("negative", target, out=target))


def _call(func, args, buf):
    if buf.into:
        return ir.Do(ir.Call(func, tuple(args), buf.target))
    return ir.assign(buf.target, ir.Call(func, tuple(args)))


def _copy(buf, value):
    return ir.Fill(buf.target, value) if buf.into else ir.assign(buf.target, value)
