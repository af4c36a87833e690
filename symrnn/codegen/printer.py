"""NumPy code for matrix expressions in row layout.

A per-step column vector v^(t) of size r is stored as an array (..., r): one
row per time step and batch member, so that one printed expression serves a
single step (B, r) and all steps at once (T, B, r). Products are folded left to
right by the kind of each factor:

    F  a fixed matrix (a parameter)          C  a per-step column (r x 1)
    R  a per-step row (1 x c)                S  a per-step 1 x 1 scalar
    O  a per-step outer product C R, only summed over steps and batch

Every array is two-dimensional: one step (B, r), or all steps stacked (T*B, r),
so that a product with a parameter is a single matrix product either way.
"""
from sympy import OneMatrix
from sympy.printing.numpy import NumPyPrinter

from ..model.nodes import StepVar


def kernel_name(op):
    """The NumPy kernel of an operation: a ufunc's dotted name, or the name of the
    function (``_sigmoid``) that the generated module copies from symrnn/ops.py."""
    kernel = op.kernels["numpy"]
    return kernel if isinstance(kernel, str) else kernel.__name__


def split_sign(term):
    """``(sign, core)`` with ``term = sign * core`` and sign +1 or -1."""
    if term.is_MatMul:
        coeff, factors = term.as_coeff_matrices()
        if coeff == -1:
            return -1, factors[0] if len(factors) == 1 else term.func(*factors)
    return 1, term


class RowNumPyPrinter(NumPyPrinter):
    """Prints in row layout; ``names(leaf)`` gives the code of each variable."""

    def __init__(self, names, params, settings=None, helpers="_"):
        super().__init__(settings or {})
        self.names = names
        self.params = set(params)
        self.helpers = helpers  # the runtime helpers' prefix: _sigmoid, or _nb_sigmoid
        self.shared = {}  # expressions already computed once, by the name that holds them
        self.constants = None  # in a loop body: {code: name} of transposes named before it

    def helper(self, name):
        """The name of a runtime helper (``dot``, ``rowsum``, ``sigmoid``, ...)."""
        return f"{self.helpers}{name}"

    def function(self, node_type):
        """The function of an element-wise node type."""
        name = kernel_name(node_type)
        return name if name.startswith("numpy.") else self.helper(name[1:])

    def _print(self, expr, **kwargs):
        name = self.shared.get(expr)
        return name if name is not None else super()._print(expr, **kwargs)

    # -- kinds ---------------------------------------------------------
    def _per_step(self, expr):
        return any(a.name not in self.params for a in expr.atoms(StepVar))

    def kind(self, expr):
        if not self._per_step(expr):
            return "F"
        rows, cols = expr.shape
        if (rows, cols) == (1, 1):
            return "S"
        if cols == 1:
            return "C"
        if rows == 1:
            return "R"
        return "O"

    def _fixed_T(self, expr):
        if expr.is_Transpose:
            return self._print(expr.arg)
        code = f"{self._print(expr)}.T"
        if self.constants is not None and code[:-2].isidentifier():  # a parameter
            return self.constants.setdefault(code, f"_{code[:-2]}_T")
        return code

    # -- leaves --------------------------------------------------------
    def _print_StepVar(self, expr):
        return self.names(expr)

    _print_Adjoint = _print_StepVar
    _print_MatrixSymbol = _print_StepVar

    def _print_OneMatrix(self, expr):
        return "1.0"

    def _print_ZeroMatrix(self, expr):
        return "0.0"

    def _print_Identity(self, expr):
        if expr.shape != (1, 1):
            raise NotImplementedError(f"identity matrix {expr} in row layout")
        return "1.0"

    # -- operations ----------------------------------------------------
    def _print_MatAdd(self, expr):
        terms = sorted(map(split_sign, expr.args), key=lambda st: -st[0])
        code = "".join(f" {'+' if sign > 0 else '-'} ({self._print(a)})" for sign, a in terms)
        return code[3:] if terms[0][0] > 0 else f"-{code[3:]}"

    def _print_HadamardProduct(self, expr):
        return "*".join(f"({self._print(a)})" for a in expr.args)

    def _print_HadamardPower(self, expr):
        if expr.exp == 2:
            return f"numpy.square({self._print(expr.base)})"
        return f"({self._print(expr.base)})**{self._print(expr.exp)}"

    def _print_Transpose(self, expr):
        if self.kind(expr) == "F":
            return self._fixed_T(expr.arg)
        return self._print(expr.arg)  # a row and a column have the same storage

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        kind, code = self._factor(factors[0])
        for f in factors[1:]:
            kind, code = self._product(kind, code, *self._factor(f))
        if kind == "O":  # summed over the rows: one matrix product
            left = code[0] or "1.0"
            left = left if left.isidentifier() else f"({left})"
            code = f"{self.helper('dot')}({left}.T, {code[1] or '1.0'})"
        if coeff == 1:
            return code
        return f"-({code})" if coeff == -1 else f"({self._print(coeff)})*({code})"

    def _factor(self, f):
        if isinstance(f, OneMatrix) or f.is_Transpose and isinstance(f.arg, OneMatrix):
            return ("R" if f.shape[0] == 1 else "C"), None  # None: a vector of ones
        kind = self.kind(f)
        if kind == "F":
            return "F", (self._print(f), self._fixed_T(f))
        return kind, self._print(f)

    def _product(self, k1, c1, k2, c2):
        def times(a, b):
            return a if b is None else b if a is None else f"({a})*({b})"

        def dot(a, b):  # a row times a column: one number per step
            return f"{self.helper('rowsum')}({times(a, b) or '1.0'})"

        rule, mm = k1 + k2, self.helper("dot")
        if rule == "FF":
            return "F", (f"{mm}({c1[0]}, {c2[0]})", f"{mm}({c2[1]}, {c1[1]})")
        if rule == "FC":
            return "C", f"{mm}({c2}, {c1[1]})"
        if rule == "RF":
            return "R", f"{mm}({c1}, {c2[0]})"
        # a 1x1 factor scales the other one: stored rows broadcast against it
        if rule == "FS":  # a fixed column times a per-step 1x1: a per-step column
            return "C", f"({c2})*({c1[1]})"
        if rule == "SF":  # a per-step 1x1 times a fixed row: a per-step row
            return "R", f"({c1})*({c2[0]})"
        if rule == "CF":  # a per-step column times a fixed 1x1
            return "C", f"({c1})*({c2[0]})"
        if rule == "FR":  # a fixed 1x1 times a per-step row
            return "R", f"({c1[0]})*({c2})"
        if rule == "RC":
            return "S", dot(c1, c2)
        if rule in ("CS", "SR", "SS"):
            return rule.replace("S", "", 1) or "S", times(c1, c2)
        if rule == "CR":
            return "O", (c1, c2)
        if rule == "OC":
            return "C", times(c1[0], dot(c1[1], c2))
        raise NotImplementedError(f"product of a {k1} and a {k2} factor in row layout")

    # -- element-wise functions -----------------------------------------
    def _print_Elementwise(self, expr):
        return f"{self.function(type(expr))}({self._print(expr.arg)})"

    def _print_SumOverTime(self, expr):
        # stacked arrays hold every step and sequence as rows: summing over
        # the steps is summing the rows
        kind = self.kind(expr.term)
        if kind in ("C", "S"):
            return f"({self._print(expr.term)}).sum(0)"
        if kind == "R":  # the gradient of a row parameter w[1, c]: stored (1, c)
            return f"({self._print(expr.term)}).sum(0).reshape(1, -1)"
        return self._print(expr.term)

    def total(self, term):
        """The sum over all steps and sequences of a per-step 1x1 ``term``, a number."""
        coeff, factors = term.as_coeff_matrices() if term.is_MatMul else (1, [term])
        kinds = [self.kind(f) for f in factors]
        if kinds == ["R", "C"]:  # a row times a column at every step: one dot product
            code = f"{self.helper('vdot')}({self._print(factors[0])}, {self._print(factors[1])})"
        else:
            code, coeff = f"({self._print(term)}).sum()", 1
        if coeff == 1:
            return code
        return f"-{code}" if coeff == -1 else f"({self._print(coeff)})*{code}"
