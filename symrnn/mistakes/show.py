"""Expressions as a person reads them in feedback and hints: h^(t-1), W^T, dL/dh^(t+1).

The plain notation of ``symrnn derive``: a SymPy printer with one method per node.
"""
from sympy import HadamardProduct, MatAdd, MatMul, OneMatrix
from sympy.printing.str import StrPrinter

from ..ops import Elementwise


class FeedbackPrinter(StrPrinter):
    def _wrap(self, expr):
        text = self._print(expr)
        compound = isinstance(expr, (MatAdd, HadamardProduct)) or (
            isinstance(expr, MatMul) and expr.as_coeff_matrices()[0] != 1)
        return f"({text})" if compound else text

    def _print(self, expr, **kwargs):
        if isinstance(expr, Elementwise):
            return f"{expr.text}({self._print(expr.arg)})"
        return super()._print(expr, **kwargs)

    def _print_StepVar(self, expr):
        return f"{expr.name}^({str(expr.time).replace(' ', '')})"

    def _print_Adjoint(self, expr):
        return f"dL/d{self._print(expr.var)}"

    def _print_StepLossAdjoint(self, expr):
        return f"dL^({expr.loss_time})/d{self._print(expr.var)}"

    def _print_MatrixSymbol(self, expr):
        return expr.name

    def _print_SumOverTime(self, expr):
        lo, hi = expr.limits
        return f"sum_{{{expr.index}={lo}}}^{{{hi}}} {self._wrap(expr.term)}"

    def _print_OneMatrix(self, expr):
        return "1^T" if expr.shape[0] == 1 and expr.shape[1] != 1 else "1"

    def _print_ZeroMatrix(self, expr):
        return "0"

    def _print_Identity(self, expr):
        return "I"

    def _print_DiagMatrix(self, expr):
        return f"diag({self._print(expr.args[0])})"

    def _print_Transpose(self, expr):
        if isinstance(expr.arg, OneMatrix):
            return "1^T"
        return f"{self._wrap(expr.arg)}^T"

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        body = " ".join(self._wrap(f) for f in factors)
        if coeff == 1:
            return body
        if coeff == -1:
            return f"-{body}"
        return f"{self._print(coeff)} {body}"

    def _print_HadamardProduct(self, expr):
        return " (.) ".join(f"({self._print(a)})" if isinstance(a, MatMul) else self._wrap(a)
                            for a in expr.args)

    def _print_HadamardPower(self, expr):
        b = self._wrap(expr.base)
        return " (.) ".join([b] * int(expr.exp)) if expr.exp <= 3 else f"{b}^(.{expr.exp})"

    def _print_MatAdd(self, expr):
        texts = [self._print(a) for a in expr.args]
        texts = [x for x in texts if not x.startswith("-")] + \
                [x for x in texts if x.startswith("-")]
        out = texts[0]
        for x in texts[1:]:
            out += f" - {x[1:]}" if x.startswith("-") else f" + {x}"
        return out


_PRINTER = FeedbackPrinter()


def show(expr):
    """``expr`` as the feedback and the hints print it."""
    return _PRINTER.doprint(expr)
