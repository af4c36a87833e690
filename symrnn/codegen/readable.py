"""The readable NumPy backend's printer: a module a student reads beside the sheet.

Its kernels come first: one loop over the steps forward, one backward, each
value under a comment with its equation as the sheet writes it (the forward
equation it computes; for an adjoint, each term of the chain rule and the step
it comes through), in the sheet's names (``h[t]`` for h^(t), ``dL_dh[t]`` for
dL/dh^(t)), one row per sequence (so that W h^(t-1) is ``h[t - 1] @ W.T``).
The checks and the layout of the public call follow, as in every generated
module. The statements are the lowering's, printed; nothing here computes.
"""
import textwrap

from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatPow,
                   MatrixSymbol, OneMatrix, Transpose, ZeroMatrix)

from ..graph.unroll import T, t
from ..model.nodes import Adjoint, Elementwise, StepVar, SumOverTime
from . import ir
from .emit import _ADD, _MUL, NumPyPrinter
from .scheduled import Value

WIDTH = 96  # the readable module's lines, at most (a long equation: several)

FORWARD = ["the forward pass, t = 1, ..., T: the equations of the cell, step by step"]
BACKWARD = ["the backward pass, t = T, ..., 1: the adjoints by the chain rule (those of",
            "step T+1 are 0), and the gradients' sums over t, one term per step"]


class ReadablePrinter(NumPyPrinter):
    """Python for a reader: ``@`` for matrix products, ``np`` and ``range`` by their
    usual names (unless the cell takes them), comments with the equations."""

    def print_module(self, module):
        self.math = _Math({p.name for p in module.cell.params + module.cell.fixed_values})
        self.contributions = module.derivation.contributions
        kernels = [s for s in module.body if isinstance(s, ir.Function)]
        taken = {n.id for n in ir.names_in(tuple(kernels)) if isinstance(n, ir.Name)}
        self.numpy = "np" if "np" not in taken else "_np"
        self.range = "range" if "range" not in taken else "_range"
        docstring, imports, *rest = [s for s in module.body if not isinstance(s, ir.Function)]
        if self.numpy == "np":
            *first, last = imports.groups
            imports = ir.Imports((*first, last + (ir.Import("numpy", alias="np"),)))
        parts = [self.doprint(docstring), self.doprint(imports)]
        parts += [self.doprint(k) for k in kernels]
        parts.append("# " + "-" * 77 + "\n# What follows checks the arguments of the public "
                     "call and lays them out for the\n# kernels above (the same in every module "
                     "symrnn generates).")
        parts += [self.doprint(s) for s in rest]
        return "\n\n".join(parts) + "\n"

    # -- expressions -----------------------------------------------------------------
    def _print_NumPy(self, node):
        return f"{self.numpy}.{node.attr}"

    def _print_Call(self, node):
        if node.func == ir.Helper("dot") and node.out is None and len(node.args) == 2:
            left, right = node.args  # (a * b) @ W, not a * b @ W: the same, harder to read
            return f"{self._paren(left, _MUL + 1)} @ {self._paren(right, _MUL + 1)}"
        return super()._print_Call(node)

    def precedence(self, node):
        if isinstance(node, ir.Call) and node.func == ir.Helper("dot") and node.out is None:
            return _MUL
        return super().precedence(node)

    # -- statements ------------------------------------------------------------------
    def _print_Alloc(self, node, level):
        shape = ", ".join(self._print(s) for s in node.shape)
        return (f"{self._print(node.target)} = {self.numpy}."
                f"{'zeros' if node.zeros else 'empty'}(({shape}))")

    def _print_For(self, node, level):
        bounds = [self._print(node.start), self._print(node.stop)]
        if node.step != 1:
            bounds.append(str(node.step))
        head = (f"{self.indent * level}for {self._print(node.var)} in "
                f"{self.range}({', '.join(bounds)}):")
        return [head] + [line for s in node.body for line in self._statement(s, level + 1)]

    def _print_Function(self, node, level):
        what = ("The loss." if node.name == ir.Name("forward") else
                "The loss and its gradients, by backpropagation through time.")
        pad = self.indent * (level + 1)
        doc = (f'{pad}"""{what}\n\n{pad}Every array holds one row per sequence: x[t - 1] '
               f'and h[t] are x^(t) and\n{pad}h^(t) of the sheet for all the sequences at '
               f'once, so that W h^(t-1) is\n{pad}h[t - 1] @ W.T."""')
        lines = super()._print_Function(node, level)
        return lines[:1] + [doc] + lines[1:]

    def _print_Assign(self, node, level):
        """A long sum over several lines, one term a line, in parentheses."""
        line = super()._print_Assign(node, level)
        terms = _terms(node.value)
        if len(self.indent * level + line) <= WIDTH or len(terms) < 2 or len(node.targets) > 1:
            return line
        pad = self.indent * level
        first, *rest = terms
        head = f"{pad}{self._print(node.targets[0])} = ({self._term(first)}"
        return [head] + [f"{pad}{self.indent}{op} {self._term(x)}" for op, x in rest[:-1]] + \
            [f"{pad}{self.indent}{rest[-1][0]} {self._term(rest[-1][1])})"]

    def _print_Return(self, node, level):
        """``return loss, (gradients...)``, the gradients over several lines if long."""
        line = super()._print_Return(node, level)
        last = node.values[-1]
        if len(self.indent * level + line) <= WIDTH or not isinstance(last, ir.Tuple):
            return line
        pad = self.indent * level
        head = ", ".join(self._print(v) for v in node.values[:-1])
        items = textwrap.wrap(", ".join(self._print(v) for v in last.items) + ",",
                              WIDTH - len(pad) - len(self.indent))
        return [f"{pad}return {head}, ("] + [f"{pad}{self.indent}{i}" for i in items] + \
            [f"{pad})"]

    def _term(self, term):
        return self._paren(term, _ADD + 1) if not isinstance(term, tuple) else \
            self._paren(term[1], _ADD + 1)

    def _print_Block(self, node, level):
        pad = self.indent * level
        comments = [wrapped for c in self._comments(node) for wrapped in textwrap.wrap(
            c, WIDTH - len(pad) - 2, subsequent_indent="      ", break_long_words=False,
            break_on_hyphens=False)]
        return [pad + "# " + c for c in comments] + super()._print_Block(node, level)

    def _comments(self, block):
        label, m = block.label, self.math
        if label.kind == "loop":
            loop = next(s for s in block.body if isinstance(s, ir.For))
            return FORWARD if loop.step > 0 else BACKWARD
        if label.expr is None:
            return []
        step = "^(t)" if label.step or label.kind in ("forward", "adjoint") else ""
        if label.kind == "forward":
            return [f"{label.value.name}{step} = {m(label.expr)}"]
        if label.kind == "adjoint":
            return [f"dL/d{label.value.name}{step} = {m(label.expr)}"] + self._rules(label)
        if label.kind == "gradient":
            name = f"dL/d{label.value.of.name}{'0' if label.value.role == 'grad0' else ''}"
            if label.step:  # added up in the loop: this step's term
                return [f"{name} += {m(label.expr.term)}"]
            return [f"{name} = {m(label.expr)}"]
        if label.kind == "loss":
            return ["the loss: the sum of L^(t) over the steps and the sequences"]
        if label.kind == "fixed":
            return [f"{label.value.name} = {m(label.expr)}"]
        return []

    def _rules(self, label):
        """For each term the chain rule adds to an adjoint: the equation it comes
        through, and the rules that carry it there."""
        out = []
        for key, found in self.contributions.items():
            if not (isinstance(key, StepVar) and key.name == label.value.name):
                continue
            shift = {t: 0, t - 1: 1}.get(key.time)
            if shift is None:
                continue
            for c in found:
                term, consumer = c.term.subs(t, t + shift), c.consumer.subs(t, t + shift)
                out.append(f"  {self.math(term)}: through {self.math(consumer)} "
                           f"({', '.join(c.rules)})")
        return out


def _terms(value):
    """The terms of a sum ``a + b - c`` as ``[a, ("+", b), ("-", c)]``."""
    if isinstance(value, ir.BinOp) and value.op in "+-":
        return _terms(value.left) + [(value.op, value.right)]
    return [value]


class _Math:
    """A matrix expression of the derivation as the sheet writes it in text:
    ``W h^(t-1)`` for a product, ``x^T`` for a transpose, ``*`` element-wise."""

    def __init__(self, params):
        self.params = params

    def __call__(self, e, outer=0):
        text, level = self.form(e)
        return f"({text})" if level < outer else text

    def form(self, e):
        """``(text, level)``: level 0 a sum, 1 a product, 2 an atom."""
        if isinstance(e, StepVar):
            return (e.name if e.name in self.params else f"{e.name}^({_step(e.time)})"), 2
        if isinstance(e, Adjoint):
            var = e.var
            step = f"^({_step(var.time)})" if isinstance(var, StepVar) else ""
            return f"dL/d{var.name}{step}", 2
        if isinstance(e, MatrixSymbol):
            return e.name, 2
        if isinstance(e, OneMatrix):
            return ("1^T" if e.shape[0] == 1 and e.shape[1] != 1 else "1"), 2
        if isinstance(e, Identity):
            return "I", 2
        if isinstance(e, ZeroMatrix):
            return "0", 2
        if isinstance(e, Transpose):
            return f"{self(e.arg, 2)}^T", 2
        if isinstance(e, Elementwise):
            return f"{type(e).name or type(e).__name__.lower()}({self(e.arg)})", 2
        if isinstance(e, HadamardPower):
            return f"{self(e.base, 2)}^{e.exp}", 2
        if isinstance(e, MatPow):
            return f"{self(e.base, 2)}^{e.exp}", 2
        if isinstance(e, SumOverTime):
            lo, hi = e.limits
            return f"sum_{{t={_step(lo)}}}^{{{_step(hi)}}} {self(e.term, 1)}", 0
        if isinstance(e, MatAdd):
            terms = []
            for a in e.args:
                coeff, rest = (a.as_coeff_matrices() if isinstance(a, MatMul) else (1, [a]))
                if coeff == -1:
                    body = rest[0] if len(rest) == 1 else MatMul(*rest)
                    terms.append(("-", self(body, 1)))
                else:
                    terms.append(("+", self(a, 1)))
            terms.sort(key=lambda st: st[0] == "-")
            text = terms[0][1] if terms[0][0] == "+" else "-" + terms[0][1]
            return text + "".join(f" {s} {x}" for s, x in terms[1:]), 0
        if isinstance(e, HadamardProduct):
            return " * ".join(self(a, 2) for a in e.args), 1
        if isinstance(e, MatMul):
            coeff, factors = e.as_coeff_matrices()
            text = " ".join(self(f, 2) for f in factors)
            if coeff == -1:
                return f"-{text}", 1
            return (text if coeff == 1 else f"{coeff} {text}"), 1
        if getattr(e, "is_Number", False) or getattr(e, "is_Symbol", False):
            return str(e), 2
        return str(e), 0


def _step(time):
    """t, t-1, t+1, T, 1: a step as the sheet writes it."""
    for base in (t, T):
        k = time - base
        if k.is_Integer:
            return str(base) if k == 0 else f"{base}{int(k):+d}"
    return str(time)


def SHEET(temp, text):
    """The sheet's names of the temporaries (the ``name`` pass's scheme for this
    backend): ``h`` for the steps of h, ``dL_dh`` for those of dL/dh, ``t``, ``T``."""
    role, of = temp.role, temp.of
    fixed = {"steps": "T", "batch": "B", "step": "t", "loss": "loss"}
    if role in fixed:
        return fixed[role]
    if role == "entry":
        return "ijkl"[temp.n]
    adjoint = isinstance(of, Value) and of.adjoint
    base = text(of)
    value = f"dL_d{base}" if adjoint else base
    if role == "all":
        return value
    if role in ("flat", "rows"):
        return f"{value}_rows"
    if role == "row":
        return f"{value}_t"
    if role == "prev":
        return f"{value}_prev"
    if role == "init":
        return f"{base}0"
    if role == "grad":
        return f"dL_d{base}"
    if role == "grad0":
        return f"dL_d{base}0"
    if role == "transpose":
        return f"{base}_T"
    if role == "logsoftmax":
        return f"log_{base}"
    if role == "shared":
        return f"common{temp.n}"
    n = "" if temp.n is None else temp.n
    return f"{role}{'_' + base if of is not None else ''}{n}"
