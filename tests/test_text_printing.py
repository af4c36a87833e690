"""The plain text of symrnn's formulas (``str``, ``symrnn derive``): read back by a
parser written here, each printed formula has the value of the expression it was
printed from, so no parenthesis is missing (and a form that mixes two products
without one, ``a .* b c``, is refused by the parser). And ``str``, ``sympy.latex``
and ``pprint`` of SymPy's containers holding symrnn's nodes read like the sheet."""
import functools
import re

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings, strategies as st
from sympy import (HadamardPower, HadamardProduct, MatAdd, MatMul, MatrixSymbol, Rational,
                   Symbol, Transpose)

import symrnn
from symrnn.graph import T, t
from symrnn.model.nodes import Adjoint, StepVar, SumOverTime
from symrnn.ops import Reciprocal, Sigmoid, Tanh
from symrnn.render.text import TextPrinter

N = 2
STEPS = 2   # T, when a formula is evaluated
BETA = 0.37
A, B, C = (MatrixSymbol(n, N, N) for n in "ABC")
beta = Symbol("beta")
LEAVES = [A, B, C, StepVar("h", t, N, N), StepVar("h", t + 1, N, N), StepVar("h", t - 1, N, N),
          Adjoint(StepVar("g", t, N, N)), Adjoint(StepVar("g", t + 1, N, N)), Adjoint(A)]
COEFFICIENTS = [2, -3, Rational(1, 2), Rational(-3, 10), beta, -beta, 1 - 2 * beta, 2 * beta,
                beta / 3]


def _values():
    rng = np.random.default_rng(3)
    out = {name: rng.uniform(0.5, 1.5, (N, N)) for name in "ABC"}
    out["dL/dA"] = rng.uniform(0.5, 1.5, (N, N))
    for name in ("h", "dL/dg"):
        for time in range(-1, STEPS + 3):
            out[name, time] = rng.uniform(0.5, 1.5, (N, N))
    return out


VALUES = _values()


# ---- the value of an expression tree --------------------------------------------------
def value(e, now):
    if isinstance(e, StepVar):
        return VALUES[e.name, int(e.time.subs(t, now))]
    if isinstance(e, Adjoint):
        var = e.var
        if isinstance(var, StepVar):
            return VALUES["dL/d" + var.name, int(var.time.subs(t, now))]
        return VALUES["dL/d" + var.name]
    if isinstance(e, MatrixSymbol):
        return VALUES[e.name]
    if isinstance(e, MatAdd):
        return sum(value(a, now) for a in e.args)
    if isinstance(e, MatMul):
        out = 1.0
        for a in e.args:
            v = value(a, now)
            out = out @ v if np.ndim(out) and np.ndim(v) else out * v
        return out
    if isinstance(e, Transpose):
        return value(e.arg, now).T
    if isinstance(e, HadamardProduct):
        return functools.reduce(np.multiply, [value(a, now) for a in e.args])
    if isinstance(e, HadamardPower):
        return value(e.base, now) ** int(e.exp)
    if isinstance(e, Reciprocal):
        return 1.0 / value(e.arg, now)
    if isinstance(e, Tanh):
        return np.tanh(value(e.arg, now))
    if isinstance(e, Sigmoid):
        return 1 / (1 + np.exp(-value(e.arg, now)))
    if isinstance(e, SumOverTime):
        return sum(value(e.term, k) for k in range(1, STEPS + 1))
    return float(e.subs(beta, BETA))


# ---- the printed text, read back ----------------------------------------------------------
TOKEN = re.compile(r"\s*(sum_\{t=1\}\^\{T\}|dL/d|\^T|\.\^|\.\*|\./|\^\([^)]*\)|\d+(?:\.\d+)?"
                   r"|[A-Za-z_][A-Za-z0-9_]*|[()+\-/^])")


class Text:
    """A recursive-descent reader of the printer's grammar: a sum of products; a
    product of factors side by side (matrix product) or joined by .* or ./ (entry by
    entry), never both without parentheses; a factor is sum_{t=1}^{T} and a product,
    or a value with ^T, .^k, ^k after it."""

    def __init__(self, text):
        self.tokens, pos = [], 0
        while pos < len(text):
            m = TOKEN.match(text, pos)
            assert m and m.end() > pos, f"cannot read {text[pos:]!r} in {text!r}"
            self.tokens.append(m.group(1))
            pos = m.end()
        self.k = 0

    def peek(self):
        return self.tokens[self.k] if self.k < len(self.tokens) else None

    def take(self, expected=None):
        token = self.peek()
        assert expected is None or token == expected, (expected, token, self.tokens)
        self.k += 1
        return token

    def read(self):
        tree = self.sum()
        assert self.peek() is None, f"left over: {self.tokens[self.k:]}"
        return tree

    def sum(self):
        terms = [("neg", self.product()) if self.peek() == "-" and self.take() else None]
        if terms[0] is None:
            terms = [self.product()]
        while self.peek() in ("+", "-"):
            sign = self.take()
            term = self.product()
            terms.append(term if sign == "+" else ("neg", term))
        return terms[0] if len(terms) == 1 else ("sum", terms)

    def product(self):
        factors, ops = [self.factor()], set()
        while True:
            token = self.peek()
            if token in (".*", "./"):
                ops.add(self.take())
                factors.append(self.factor())
            elif token is not None and token not in ("+", "-", ")", "/"):
                ops.add(" ")
                factors.append(self.factor())
            else:
                break
        assert len(ops) <= 1, f"two products mixed without parentheses: {self.tokens}"
        if not ops:
            return factors[0]
        return ({".*": "had", "./": "div", " ": "mul"}[ops.pop()], factors)

    def factor(self):
        if self.peek() == "sum_{t=1}^{T}":
            self.take()
            return ("sum_t", self.product())
        tree = self.power()
        while self.peek() == "/":  # a scalar quotient: beta/3
            self.take()
            tree = ("quot", tree, self.power())
        return tree

    def power(self):
        tree = self.atom()
        while self.peek() in ("^T", ".^", "^"):
            op = self.take()
            tree = ("T", tree) if op == "^T" else ("pow", tree, self.atom())
        return tree

    def atom(self):
        token = self.take()
        if token == "(":
            tree = self.sum()
            self.take(")")
            return tree
        if token == "dL/d":
            name = self.take()
            time = self.take()[2:-1] if (self.peek() or "").startswith("^(") else None
            return ("leaf", "dL/d" + name, time)
        if re.fullmatch(r"\d+(\.\d+)?", token):
            return ("num", np.float64(token))
        if token in ("tanh", "sigmoid") and self.peek() == "(":
            self.take("(")
            tree = self.sum()
            self.take(")")
            return (token, tree)
        time = self.take()[2:-1] if (self.peek() or "").startswith("^(") else None
        return ("leaf", token, time)


def evaluate(tree, now):
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "leaf":
        _, name, time = tree
        if name == "beta":
            return BETA
        if time is None:
            return VALUES[name]
        return VALUES[name, int(eval(time.replace("t", str(now)), {}))]  # t+1 at t = now
    if kind == "neg":
        return -evaluate(tree[1], now)
    if kind == "sum":
        return sum(evaluate(a, now) for a in tree[1])
    if kind == "mul":
        out = 1.0
        for a in tree[1]:
            v = evaluate(a, now)
            out = out @ v if np.ndim(out) and np.ndim(v) else out * v
        return out
    if kind == "had":
        return functools.reduce(np.multiply, [evaluate(a, now) for a in tree[1]])
    if kind == "div":
        first, *rest = [evaluate(a, now) for a in tree[1]]
        for v in rest:
            first = first / v
        return first
    if kind == "quot":
        return evaluate(tree[1], now) / evaluate(tree[2], now)
    if kind == "T":
        return np.transpose(evaluate(tree[1], now))
    if kind == "pow":
        return evaluate(tree[1], now) ** evaluate(tree[2], now)
    if kind == "tanh":
        return np.tanh(evaluate(tree[1], now))
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-evaluate(tree[1], now)))
    if kind == "sum_t":
        return sum(evaluate(tree[1], k) for k in range(1, STEPS + 1))
    raise AssertionError(tree)


def read_back(text, now=1):
    with np.errstate(all="ignore"):
        return evaluate(Text(text).read(), now)


def same(a, b):
    return np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)


# ---- random trees, every node in every place ---------------------------------------------
def trees(depth=3):
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf
    sub = trees(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda a, b: MatMul(a, b), sub, sub),
        st.builds(lambda c, a: MatMul(c, a), st.sampled_from(COEFFICIENTS), sub),
        st.builds(lambda a, b: MatAdd(a, b), sub, sub),
        st.builds(lambda a, b: MatAdd(a, MatMul(-1, b)), sub, sub),
        st.builds(lambda a, b: HadamardProduct(a, b), sub, sub),
        st.builds(lambda a: HadamardPower(a, 2), sub),
        st.builds(Transpose, sub),
        st.builds(Tanh, sub),
        st.builds(Sigmoid, sub),
        st.builds(Reciprocal, sub),
        st.builds(lambda a: SumOverTime(a, t, 1, T), sub),
    )


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_every_printed_formula_reads_back_to_its_value(expr):
    text = TextPrinter().doprint(expr)
    with np.errstate(all="ignore"):
        want = value(expr, 1)
    assert same(read_back(text), want), (text, expr)


@pytest.mark.parametrize("text", [
    "A B .* C",            # a matrix product beside an entry-wise one
    "A .* B C",
    "2 A .* B",
])
def test_the_reader_refuses_a_mixed_product(text):
    with pytest.raises(AssertionError, match="mixed"):
        Text(text).read()


def test_the_reader_catches_a_missing_parenthesis(monkeypatch):
    # mutation: the printer without parentheses around a transposed product
    monkeypatch.setattr(TextPrinter, "_operand", lambda self, e, level: self._print(e))
    expr = Transpose(MatMul(A, B))
    text = TextPrinter().doprint(expr)
    assert text == "A B^T"
    assert not same(read_back(text), value(expr, 1))


# ---- the findings of issue 23, as printed by symrnn derive -------------------------------
NAMED = """params: A[D,D] W[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
const: beta = 0.65
Ab = (1 - beta) * (A + A.T) + beta * (A - A.T) - 0.05 * eye(D)
h = tanh(Ab @ prev(h) + W @ x)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)
"""

HALVES = """params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
loss = 0.5 * (V @ h - y).T @ (V @ h - y)
"""


def test_a_sum_as_a_coefficient_is_in_parentheses():
    d = symrnn.derive(symrnn.parse_cell(NAMED))
    assert str(d.gradients["A"]) == "(1 - 2 beta) (dL/dA_b)^T + dL/dA_b"
    assert r"(1 - 2 \beta) \left(\frac{\partial L}{\partial \boldsymbol{A}_{b}}\right)^{\top}" \
        in sympy.latex(d.gradients["A"])   # not "- 2 beta - 1 (...)": a sign lost
    assert same(read_back(str(d.gradients["A"]).replace("A_b", "A")),
                      (1 - 2 * BETA) * VALUES["dL/dA"].T + VALUES["dL/dA"])


def test_derive_prints_the_named_matrices_and_their_gradients():
    text = str(symrnn.derive(symrnn.parse_cell(NAMED)))
    assert "Computed once from the parameters:\n  A_b = beta (A - A^T) + (1 - beta) (A + A^T)" \
           " - 0.05 I" in text
    lines = text.splitlines()
    first = lines.index("Gradients:") + 1
    assert lines[first].startswith("  dL/dA_b = sum_{t=1}^{T} ")   # before dL/dA, which reads it
    assert lines[first + 1] == "  dL/dA = (1 - 2 beta) (dL/dA_b)^T + dL/dA_b"


def test_like_terms_are_collected_before_printing():
    text = str(symrnn.derive(symrnn.parse_cell(HALVES)))
    assert "dL/dh^(T) = V^T (V h^(T) - y^(T))" in text       # not 1/2 V^T (...) + V^T (1/2 ...)
    assert "dL/dV = sum_{t=1}^{T} (V h^(t) - y^(t)) h^(t)^T" in text
    assert "L^(t) = 1/2 (V h^(t) - y^(t))^T (V h^(t) - y^(t))" in text
    assert "1/2" not in text.split("Backward")[1]


def test_collected_terms_keep_their_value():
    from symrnn.render.tidy import tidy
    half = Rational(1, 2)
    expr = MatAdd(MatMul(half, A, MatAdd(B, MatMul(-1, C))),
                  MatMul(A, MatAdd(MatMul(half, B), MatMul(-half, C))))
    assert tidy(expr) == MatMul(A, MatAdd(B, MatMul(-1, C)))
    cancelled = MatAdd(MatMul(2, A, B), MatMul(-2, A, B), C)
    assert tidy(cancelled) == C
    for e in (expr, cancelled):
        assert same(value(tidy(e), 1), value(e, 1))


# ---- SymPy's containers of symrnn's nodes -------------------------------------------------
def test_containers_print_like_the_sheet():
    d = symrnn.derive(symrnn.parse_cell(NAMED))
    adjoint = d.adjoints[Adjoint(StepVar("h", t, *d.cell.states[0].shape))]
    assert isinstance(adjoint, MatAdd)
    assert str(adjoint) == "A_b^T ((1 - h^(t+1).^2) .* dL/dh^(t+1)) + V^T dL/do^(t)"
    assert str(d.adjoints) == ("{dL/do^(t): o^(t) - y^(t), dL/dh^(t): A_b^T ((1 - h^(t+1).^2) "
                               ".* dL/dh^(t+1)) + V^T dL/do^(t)}")
    latex = sympy.latex(adjoint)
    assert r"\odot" in latex and r"\boldsymbol{A}_{b}^{\top}" in latex and "circ" not in latex
    pretty = sympy.pretty(adjoint)
    assert pretty == "A_bᵀ ((𝟏 - h⁽ᵗ⁺¹⁾^∘2) ⊙ ∂L/∂h⁽ᵗ⁺¹⁾) + Vᵀ ∂L/∂o⁽ᵗ⁾"


def test_other_expressions_and_printers_are_left_as_they_were():
    assert str(A * B + C) == "A*B + C"
    assert sympy.latex(A.T * B) == r"A^{T} B"

    class Mine(sympy.printing.str.StrPrinter):   # a printer of one's own: its own rules
        def _print_StepVar(self, expr):
            return f"{expr.name}[{expr.time}]"

    h = StepVar("h", t, N, 1)
    assert Mine().doprint(MatMul(A, h)) == "A*h[t]"
    assert Mine().doprint(h) == "h[t]"
