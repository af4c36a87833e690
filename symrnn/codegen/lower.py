"""Matrix expressions as IR expressions (``ir.py``) in row layout.

A per-step column vector v^(t) of size r is stored as an array (..., r): one
row per time step and batch member, so that one expression serves a single
step (B, r) and all steps at once (T*B, r). Products are folded left to right
by the kind of each factor:

    F  a fixed matrix (a parameter)          C  a per-step column (r x 1)
    R  a per-step row (1 x c)                S  a per-step 1 x 1 scalar
    O  a per-step outer product C R, only summed over steps and batch

In row layout a product F c is ``rows @ F^T``: a fixed factor is carried with
its transpose, which is built from the tree (the transpose of a parameter is a
``Transpose`` node, that of a computed fixed expression a ``Transpose`` node
around it, that of a product the product of the transposes in reverse order),
so that every operand order and parenthesis comes from the expression.
"""
import math

from sympy import S, MatAdd, MatMul, OneMatrix, sympify

from ..model.constant import constant, uniform
from ..model.nodes import StepVar, SumOverTime, constant_values
from . import ir
from .kernels import kernel  # noqa: F401 (the lowering of an operation calls it)


def is_fixed(expr, params):
    """Whether ``expr`` reads no per-step value (only the parameters ``params``:
    names, with the named matrices of the parameters)."""
    return not any(a.name not in params for a in expr.atoms(StepVar))


def split_sign(term):
    """``(sign, core)`` with ``term = sign * core`` and sign +1 or -1."""
    if term.is_MatMul:
        coeff, factors = term.as_coeff_matrices()
        if coeff == -1:
            return -1, factors[0] if len(factors) == 1 else term.func(*factors)
    return 1, term


def number(value):
    """A SymPy number as an IR constant (a float), or a ValueError if it has none."""
    try:
        f = float(value)
    except (OverflowError, TypeError):
        f = None
    if f is None or f != f or abs(f) == float("inf"):
        raise ValueError(f"coefficient {value} is not a finite float; the generated code "
                         "computes in float64")
    return ir.Const(f)


def _reshape(code, *shape):
    return ir.call(ir.Attr(code, "reshape"), *map(ir.Const, shape))


def _ones(f):
    """Whether ``f`` is a row or a column of ones (a product reads it as a sum)."""
    return (isinstance(f, OneMatrix) or f.is_Transpose and isinstance(f.arg, OneMatrix)) \
        and 1 in f.shape


class RowLowering:
    """Lowers expressions in row layout; ``names(leaf)`` gives the IR of each variable."""

    def __init__(self, names, params, size=None, rows=None, temp=None):
        self.names = names
        self.temp = temp or (lambda role: ir.Temp(role, n=len(self.constants)))
        self.size = size  # the IR of a size symbol (read from a shape), for eye(D)
        self.rows = rows  # the IR of the number of stacked rows (steps times sequences)
        self.params = set(params)
        self.shared = {}     # expressions already computed once: expression -> IR name
        # in a loop body: {key: (temporary, IR)} of the fixed values named before it
        self.constants = None

    def lower(self, expr):
        name = self.shared.get(expr)
        if name is not None:
            return name
        if getattr(expr, "is_Matrix", False) and constant(expr):
            value = uniform(expr)  # a number broadcasts against any rows
            if value is not None and math.isfinite(value):
                return self.number(value)
        for cls in type(expr).__mro__:
            method = getattr(self, "_lower_" + cls.__name__, None)
            if method is not None:
                return method(expr)
        raise NotImplementedError(f"{type(expr).__name__} in row layout: {expr}")

    def number(self, value):
        """A coefficient: a number, named constants (numbers here), or a number times
        sizes (``ones(D).T @ ones(D)`` is D), read from the arguments' shapes."""
        value = sympify(value)
        values = constant_values(value)
        if values:
            value = value.xreplace(values)
        if value.free_symbols and self.size is not None:
            c, sizes = value.as_coeff_Mul()
            return self._scale(c, self.size(sizes)) if c != 1 else self.size(sizes)
        return number(value)

    # -- kinds ---------------------------------------------------------
    def per_step(self, expr):
        return not is_fixed(expr, self.params)

    def kind(self, expr):
        if not self.per_step(expr):
            return "F"
        rows, cols = expr.shape
        if (rows, cols) == (1, 1):
            return "S"
        if cols == 1:
            return "C"
        if rows == 1:
            return "R"
        return "O"

    def _named(self, key, value, name):
        """A fixed ``value``: in a loop body, a temporary computed once before the loop."""
        if self.constants is None or isinstance(value, ir.VARIABLES + (ir.Const,)):
            return value
        if key not in self.constants:
            self.constants[key] = (name or self.temp("fixed"), value)
        return self.constants[key][0]

    def fixed(self, expr):
        """A fixed expression (no per-step value)."""
        return self._named(expr, self._stored(expr.shape, self.lower(expr)), None)

    def fixed_T(self, expr):
        """The transpose of a fixed expression, from the tree: the argument of a
        transpose, or a ``Transpose`` node around the (computed) expression."""
        if expr.is_Transpose:
            return self.fixed(expr.arg)
        value = self.lower(expr)
        if isinstance(value, ir.Const):
            return self._named(("T", expr), self._stored(expr.shape[::-1], value), None)
        name = ir.Temp("transpose", of=value) if isinstance(value, ir.Name) else None
        return self._named(("T", expr), ir.Transpose(value), name)

    def _stored(self, shape, code):
        """A constant ``code`` (a number: c times ones) as the array that holds a
        fixed value of ``shape``: a column 1-D, a row or a matrix 2-D."""
        if not isinstance(code, ir.Const) or tuple(shape) == (1, 1):
            return code
        rows, cols = shape
        return self.full((rows,) if cols == 1 else (rows, cols), code)

    # -- leaves --------------------------------------------------------
    def _lower_StepVar(self, expr):
        return self.names(expr)

    _lower_Adjoint = _lower_StepVar
    _lower_MatrixSymbol = _lower_StepVar

    def _lower_OneMatrix(self, expr):
        return self.number(1)

    def _lower_ZeroMatrix(self, expr):
        return self.number(0)

    def _lower_Identity(self, expr):
        if expr.shape == (1, 1):
            return self.number(1)
        return ir.numpy_call("eye", self.size(expr.shape[0]))

    def _lower_Number(self, expr):
        return self.number(expr)

    # -- operations ----------------------------------------------------
    def _lower_MatAdd(self, expr):
        terms = sorted(map(split_sign, expr.args), key=lambda st: -st[0])
        sign, first = terms[0]
        out = self.lower(first) if sign > 0 else ir.Neg(self.lower(first))
        for sign, term in terms[1:]:
            out = ir.BinOp("+" if sign > 0 else "-", out, self.lower(term))
        return out

    def _lower_HadamardProduct(self, expr):
        out = self.lower(expr.args[0])
        for a in expr.args[1:]:
            out = ir.mul(out, self.lower(a))
        return out

    def _lower_HadamardPower(self, expr):
        if expr.exp == 2:
            return ir.numpy_call("square", self.lower(expr.base))
        exp = ir.Const(int(expr.exp)) if expr.exp.is_Integer else self.number(expr.exp)
        return ir.BinOp("**", self.lower(expr.base), exp)

    def _lower_Transpose(self, expr):
        if self.kind(expr) == "F" and 1 not in expr.shape:
            return self.fixed_T(expr.arg)
        if self.kind(expr) == "F":  # a fixed row or column: stored as its entries, (n,) or (1, n)
            return self.lower(expr.arg)
        return self.lower(expr.arg)  # a row and a column have the same storage

    def _lower_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        if self.kind(expr) == "F":  # a product of parameters: left to right
            code = self._fixed_factor(factors[0])
            for f in factors[1:]:
                code = ir.helper("dot", code, self._fixed_factor(f))
            if expr.shape[1] == 1:  # a fixed column is stored 1-D, as a parameter
                code = _reshape(code, -1)
            return self._named(expr, self._scale(coeff, code), None)  # in a loop: before it
        # a row of ones times a per-step column (a column of ones after a per-step row)
        # sums it: 1^T v is a row sum; anywhere else it is a fixed factor like any other
        runs = []  # each run of fixed factors is one fixed product: [factor, role]
        for f in factors:
            role = "ones" if _ones(f) else "fixed" if self.kind(f) == "F" else "step"
            if runs and role == "fixed" and runs[-1][1] == "fixed":
                runs[-1][0] = MatMul(runs[-1][0], f)
            else:
                runs.append([f, role])
        first, role = runs[0]
        if role == "ones":  # it sums the factor after it, or it is fixed
            after = runs[1] if len(runs) > 1 else None
            sums = after is not None and after[1] == "step" and self.kind(after[0]) == (
                "C" if first.shape[0] == 1 else "R")
            role = "ones" if sums else "fixed"
        kind, code = self._factor(first, role)
        shape = first.shape
        for f, role in runs[1:]:
            if role == "ones":  # it sums the product before it, or it is fixed
                role = "ones" if kind in (("C",) if f.shape[0] == 1 else ("R", "O")) \
                    else "fixed"
            kind, code = self._product(kind, code, *self._factor(f, role))
            shape = (shape[0], f.shape[1])
            if kind in "CRS":  # the kind of the product so far, from its shape
                kind = "S" if shape == (1, 1) else "C" if shape[1] == 1 else \
                    "R" if shape[0] == 1 else kind
        if kind == "O" and code[2] is not None:  # one side fixed: the other one summed
            left, right, fixed = code
            if left is None or right is None:
                raise NotImplementedError(f"{expr}: a sum of outer products with ones")
            column = _reshape(left if fixed == 0 else ir.call(ir.Attr(left, "sum"), ir.Const(0)),
                              -1, 1)
            code = ir.mul(column, right if fixed == 1 else ir.call(ir.Attr(right, "sum"),
                                                                    ir.Const(0)))
        elif kind == "O" and None in code[:2]:  # a column (row) of ones times a row (column)
            left, right, _ = code
            rows, cols = expr.shape
            left = self.full((rows, S.One), self.number(1)) if left is None else _reshape(
                ir.call(ir.Attr(left, "sum"), ir.Const(0)), -1, 1)
            right = self.full((S.One, cols), self.number(1)) if right is None else ir.call(
                ir.Attr(right, "sum"), ir.Const(0))
            code = ir.mul(left, right)
        elif kind == "O":  # summed over the rows: one matrix product
            left, right, _ = code
            code = ir.helper("dot", ir.Transpose(left), right)
        return self._scale(coeff, code)

    def _lower_MatPow(self, expr):  # A @ A @ ... (the parser makes it of a positive integer)
        if not (expr.exp.is_Integer and expr.exp >= 1):
            raise NotImplementedError(f"the matrix power {expr}")
        return self.lower(MatMul(*[expr.base] * int(expr.exp)))

    def _fixed_factor(self, f):
        """A factor of a fixed product as a 2-D array (a parameter column is
        stored 1-D, a transposed row 2-D: both made the column they are)."""
        code = self.lower(f)
        rows, cols = f.shape
        if isinstance(code, ir.Const):  # a constant: the matrix of its entries
            return self.full((rows, cols), code)
        if cols == 1:
            return _reshape(code, -1, 1)
        return _reshape(code, 1, -1) if rows == 1 else code

    def full(self, shape, value):
        """The array of ``shape`` (size symbols) with every entry ``value``."""
        return ir.numpy_call("full", ir.Tuple(tuple(self.size(d) for d in shape)), value)

    def _scale(self, coeff, code):
        if coeff == 1:
            return code
        return ir.Neg(code) if coeff == -1 else ir.mul(self.number(coeff), code)

    def _factor(self, f, role):
        if role == "ones":
            return ("R" if f.shape[0] == 1 else "C"), None  # None: a vector of ones
        if role == "fixed":
            return "F", f  # lowered as needed
        return self.kind(f), self.lower(f)

    def _product(self, k1, c1, k2, c2):
        def times(a, b):
            return a if b is None else b if a is None else ir.mul(a, b)

        def dot(a, b):  # a row times a column: one number per step
            return ir.helper("rowsum", times(a, b) or self.number(1))

        def mm(a, b):
            return ir.helper("dot", a, b)

        rule = k1 + k2
        if rule == "FF":  # a fixed product, folded before it meets a per-step factor
            return "F", MatMul(c1, c2)
        if rule == "FC" and c1.shape[0] == 1:  # a fixed row times a column: a number
            return "S", dot(c2, self.fixed(c1))
        if rule == "FC":  # F c is, in rows, c F^T
            return "C", mm(c2, self.fixed_T(c1))
        if rule == "RF" and c2.shape[1] == 1:  # a row times a fixed column: a number
            return "S", dot(c1, self.fixed_T(c2))
        if rule == "RF":
            return "R", mm(c1, self.fixed(c2))
        # a 1x1 factor scales the other one: stored rows broadcast against it
        if rule == "FS":  # a fixed column times a per-step 1x1: a per-step column
            return "C", ir.mul(c2, self.fixed_T(c1))
        if rule == "SF":  # a per-step 1x1 times a fixed row: a per-step row
            return "R", ir.mul(c1, self.fixed(c2))
        if rule == "CF" and c2.shape[0] == 1 and c2.shape[1] != 1:  # an outer product
            return "O", (c1, self.fixed(c2), 1)
        if rule == "CF":  # a per-step column times a fixed 1x1
            return "C", ir.mul(c1, self.fixed(c2))
        if rule == "FR" and c1.shape[0] != 1:  # a fixed column times a row: an outer product
            return "O", (self.fixed_T(c1), c2, 0)  # the column in row storage
        if rule == "FR":  # a fixed 1x1 times a per-step row
            return "R", ir.mul(self.fixed(c1), c2)
        if rule == "RC":
            return "S", dot(c1, c2)
        if rule in ("CS", "SC"):
            return "C", times(c1, c2)
        if rule in ("SR", "RS"):
            return "R", times(c1, c2)
        if rule == "SS":
            return "S", times(c1, c2)
        if rule == "CR":
            return "O", (c1, c2, None)
        if rule == "OC":
            return "C", times(c1[0], dot(c1[1], c2))
        if rule == "OF" and c2.shape[1] == 1:  # c (r F) with F a column: c times a number
            return "C", times(c1[0], dot(c1[1], self.fixed_T(c2)))
        if rule == "OF" and c1[1] is not None:  # c (r F): the row times F at every step
            return "O", (c1[0], mm(c1[1], self.fixed(c2)), c1[2])
        if rule == "OF" and c1[2] is None:  # c (1^T F): the column sums of F, fixed
            ones = self.full((S.One, c2.shape[0]), self.number(1))
            return "O", (c1[0], mm(ones, self.fixed(c2)), 1)
        if rule == "FO" and c2[0] is not None:  # (F c) r
            return "O", (mm(c2[0], self.fixed_T(c1)), c2[1], c2[2])
        if rule == "FO" and c2[2] is None:  # (F 1) r: the row sums of F, fixed
            ones = self.full((c1.shape[1],), self.number(1))
            return "O", (mm(self.fixed(c1), ones), c2[1], 0)
        raise NotImplementedError(f"product of a {k1} and a {k2} factor in row layout")

    # -- element-wise functions -----------------------------------------
    def _lower_Elementwise(self, expr):
        arg = self.lower(expr.arg)
        if self.kind(expr) == "F" and expr.shape[1] == 1:
            # a fixed column, stored 1-D: the kernel runs on it as one row (the
            # compiled kernels take 2-D arrays); a constant one, as the row of its entries
            row = self.full((1, expr.shape[0]), arg) if isinstance(arg, ir.Const) else \
                _reshape(arg, 1, -1)
            return _reshape(ir.call(kernel(type(expr)), row), -1)
        return ir.call(kernel(type(expr)), arg)

    def _lower_SumOverTime(self, expr):
        # stacked arrays hold every step and sequence as rows: summing over
        # the steps is summing the rows
        fixed = [a for a in expr.term.args if not self.per_step(a)] \
            if isinstance(expr.term, MatAdd) else []
        if fixed and len(fixed) < len(expr.term.args):  # summed apart: the fixed terms T B times
            rest = [a for a in expr.term.args if a not in fixed]
            return ir.add(*[self.lower(SumOverTime(MatAdd(*part), *expr.args[1:]))
                            for part in (rest, fixed)])
        kind = self.kind(expr.term)
        term = self.lower(expr.term)
        if kind == "F":  # the same at every step and sequence: times their number
            rows, cols = expr.shape
            if isinstance(term, ir.Const):
                shape = (rows,) if cols == 1 else (rows, cols)
                return self.full(shape, ir.mul(term, self.rows))
            total = ir.mul(self.rows, term)
            if cols == 1:   # stored as a parameter column, (n,)
                return _reshape(total, -1)
            return _reshape(total, 1, -1) if rows == 1 else total
        if kind in ("C", "S"):
            return ir.call(ir.Attr(term, "sum"), ir.Const(0))
        if kind == "R":  # the gradient of a row parameter w[1, c]: stored (1, c)
            return ir.call(ir.Attr(ir.call(ir.Attr(term, "sum"), ir.Const(0)), "reshape"),
                           ir.Const(1), ir.Const(-1))
        return term

    def total(self, term):
        """The sum over all steps and sequences of a per-step 1x1 ``term``, a number."""
        coeff, factors = term.as_coeff_matrices() if term.is_MatMul else (1, [term])
        kinds = [self.kind(f) for f in factors]
        if kinds == ["R", "C"]:  # a row times a column at every step: one dot product
            code = ir.helper("vdot", self.lower(factors[0]), self.lower(factors[1]))
        elif not self.per_step(term):  # the same at every step and sequence
            code = ir.mul(self.rows, self.lower(term))
            if not isinstance(code.right, ir.Const):  # a 1x1 array of the parameters
                code = ir.call(ir.Attr(code, "sum"))
            coeff = 1
        else:
            code, coeff = ir.call(ir.Attr(self.lower(term), "sum")), 1
        if coeff == 1:
            return code
        return ir.Neg(code) if coeff == -1 else ir.mul(self.number(coeff), code)
