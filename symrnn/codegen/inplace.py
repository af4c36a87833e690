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

The output array is passed positionally, ``numpy.tanh(a, a)``: Numba compiles
the same statements and accepts no ``out=`` keyword for ufuncs.
"""
from dataclasses import dataclass, field

from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul

from ..model.nodes import Adjoint, Elementwise, StepVar
from .printer import split_sign

_UFUNC = {MatAdd: ("numpy.add", "+="), HadamardProduct: ("numpy.multiply", "*=")}


@dataclass
class Buffer:
    """Where a chain leaves its value.

    target   the code of the buffer (a row ``h_r[_t]``) or of a new name
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


def assign(printer, target, expr, into=False, ready=()):
    """Lines that leave the value of ``expr`` in ``target`` (see ``Buffer``);
    returns ``(lines, the ready value used or None)``."""
    buf = Buffer(target, into, frozenset(ready))
    lines = _assign(printer, buf, expr)
    return lines, (buf.used[0] if buf.used else None)


def _assign(printer, buf, expr):
    code, target = printer._print, buf.target
    expr = _plain(printer, expr)
    if expr in buf.ready:
        return _take(printer, buf, expr)
    if expr in printer.shared or isinstance(expr, (StepVar, Adjoint)):
        return [_copy(buf, code(expr))]
    if isinstance(expr, Elementwise):
        func = printer.function(type(expr))
        if expr.arg in buf.ready or makes_array(printer, expr.arg):
            return _assign(printer, buf, expr.arg) + [f"{func}({target}, {target})"]
        return [_call(func, [code(expr.arg)], buf)]
    if isinstance(expr, HadamardPower) and expr.exp == 2:
        return [_call("numpy.square", [code(expr.base)], buf)]
    if isinstance(expr, (MatAdd, HadamardProduct)):
        return _fold(printer, buf, expr)
    if isinstance(expr, MatMul):
        sign, core = split_sign(expr)
        if sign < 0:
            return _assign(printer, buf, core) + [f"numpy.negative({target}, {target})"]
        scaled = _scaled(printer, expr)
        if scaled:  # a column times a per-step number: computed as the column, then scaled
            column, number = scaled
            if column in buf.ready or makes_array(printer, column):
                return _assign(printer, buf, column) + [f"{target} *= {code(number)}"]
            return [_call("numpy.multiply", [code(column), code(number)], buf)]
        if buf.into and code(expr).startswith(printer.helper("dot") + "("):  # a product with a parameter
            return [f"{code(expr)[:-1]}, {target})"]
    return [_copy(buf, code(expr))]


def _scaled(printer, product):
    """``(column, number)`` when ``product`` is a per-step column (row) times a
    per-step 1x1 value such as ``yhat (1^T y)``; None otherwise."""
    coeff, factors = product.as_coeff_matrices()
    if coeff != 1 or len(factors) < 2:
        return None
    for vector, rest in ((factors[0], factors[1:]), (factors[-1], factors[:-1])):
        number = rest[0] if len(rest) == 1 else MatMul(*rest)
        if printer.kind(vector) == printer.kind(product) and printer.kind(number) == "S":
            return vector, number
    return None


def _plain(printer, expr):
    """``expr`` without transposes of per-step values (a row and a column have
    the same storage)."""
    while expr.is_Transpose and printer.kind(expr) != "F":
        expr = expr.arg
    return expr


def makes_array(printer, expr):
    """Whether ``expr`` is worth computing in the result's buffer: an operation
    that makes a new array (not a stored value) with the result's full storage."""
    expr = _plain(printer, expr)
    return (not isinstance(expr, (StepVar, Adjoint)) and expr not in printer.shared
            and printer.kind(expr) in ("C", "R"))


def _reaches(buf, expr):
    """Whether the chain of ``expr`` can start from a ready value."""
    if expr in buf.ready:
        return True
    return isinstance(expr, (MatAdd, HadamardProduct, Elementwise, MatMul)) and any(
        _reaches(buf, a) for a in expr.args)


def _take(printer, buf, value):
    """Start from ``value``, which is in the buffer or whose array is free."""
    buf.used.append(value)
    return [] if buf.into else [f"{buf.target} = {printer._print(value)}"]


def _fold(printer, buf, expr):
    """A sum or an element-wise product: the first full-shaped operation makes
    (or fills) the buffer, the other operands are added or multiplied in."""
    func, update = _UFUNC[type(expr)]
    code, target = printer._print, buf.target
    terms = [split_sign(a) if expr.is_MatAdd else (1, a) for a in expr.args]
    full = [i for i, (_, a) in enumerate(terms) if printer.kind(a) in ("C", "R")]
    chained = [i for i in full if terms[i][1] in buf.ready or makes_array(printer, terms[i][1])]
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
        lines = _assign(printer, buf, head)
        if sign < 0:  # -head + rest: subtract the buffer from a term with a plus sign
            lines.append(f"numpy.subtract({code(terms.pop(positive[0])[1])}, {target}, {target})"
                         if positive else f"numpy.negative({target}, {target})")
    elif sign > 0:  # a stored value: the first binary operation makes the buffer
        other_sign, other = terms.pop(0)
        op = func if other_sign > 0 else "numpy.subtract"
        lines = [_call(op, [code(head), code(other)], buf)]
    elif positive:
        lines = [_call("numpy.subtract", [code(terms.pop(positive[0])[1]), code(head)], buf)]
    else:
        lines = [_call("numpy.negative", [code(head)], buf)]
    for s, a in terms:
        lines.append(f"{target} {update if s > 0 else '-='} {code(a)}")
    return lines


def _call(func, args, buf):
    if buf.into:
        return f"{func}({', '.join(args)}, {buf.target})"
    return f"{buf.target} = {func}({', '.join(args)})"


def _copy(buf, code):
    return f"{buf.target}[:] = {code}" if buf.into else f"{buf.target} = {code}"
