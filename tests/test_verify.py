"""verify(T) against mutations: every rule of the table, broken on purpose, is caught,
and the second route uses neither the rules table nor the code generator."""
import sys

import pytest

import symrnn
from symrnn.derivation import vjps
from symrnn.derivation.verify import VerificationError
from symrnn.ops import Sigmoid, functions
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, Transpose

HEADER = """
params: W[D,D] Q[D,D] U[D,N] V[M,D] w[D]
input:  x[N]
target: y[M]
state:  h[D]
"""


def text_cell(*equations, params="W[D,D] U[D,N] V[M,D]"):
    text = HEADER.replace("W[D,D] Q[D,D] U[D,N] V[M,D] w[D]", params) + "\n".join(equations)
    return symrnn.parse_cell(text, name="test cell")


def op_cell(name):
    """A cell in which the operation ``name`` is on the path from W to the loss."""
    return text_cell("z = W @ prev(h) + U @ x", f"a = {name}(z)", "h = tanh(a)",
                     "o = V @ h", "loss = (o - y).T @ (o - y)")


STRUCTURAL_CELLS = {
    MatAdd: lambda: symrnn.ElmanRNN(),
    MatMul: lambda: symrnn.ElmanRNN(),
    HadamardProduct: lambda: symrnn.LSTM(),
    Transpose: lambda: text_cell("h = tanh((W - W.T) @ prev(h) + U @ x)", "o = V @ h",
                                 "loss = (o - y).T @ (o - y)"),
    HadamardPower: lambda: text_cell("h = tanh(W @ prev(h) ** 2 + U @ x)", "o = V @ h",
                                     "loss = (o - y).T @ (o - y)"),
}


def cell_for(rule):
    if rule in STRUCTURAL_CELLS:
        return STRUCTURAL_CELLS[rule]()
    return op_cell(rule.name)


def test_the_mutation_list_covers_the_whole_rules_table():
    assert set(vjps.VJPS) == set(STRUCTURAL_CELLS) | set(functions().values())


@pytest.mark.parametrize("rule", list(vjps.VJPS), ids=lambda r: r.__name__)
def test_the_cell_for_each_rule_verifies(rule):
    assert symrnn.derive(cell_for(rule)).verify(2)


@pytest.mark.parametrize("rule", list(vjps.VJPS), ids=lambda r: r.__name__)
def test_a_wrong_rule_is_caught(rule, monkeypatch):
    right = vjps.VJPS[rule]
    monkeypatch.setitem(vjps.VJPS, rule,
                        lambda ans, args, i: lambda g: 2 * right(ans, args, i)(g))
    d = symrnn.derive(cell_for(rule))
    with pytest.raises(VerificationError, match="differs from the independent chain rule"):
        d.verify(2)
    assert not d.verify(2, raises=False)


def test_a_plausible_wrong_sigmoid_rule_is_caught_in_the_lstm(monkeypatch):
    monkeypatch.setitem(vjps.VJPS, Sigmoid, lambda ans, args, i: lambda g: HadamardProduct(
        ans, ans, g))
    d = symrnn.derive(symrnn.LSTM())
    for T in (1, 3, 5):
        with pytest.raises(VerificationError):
            d.verify(T)


def test_a_matrix_product_rule_without_transposes_is_caught(monkeypatch):
    def untransposed(ans, args, i):
        return lambda g: MatMul(*args[:i], g, *args[i + 1:]) if i else MatMul(g, *args[1:])
    monkeypatch.setitem(vjps.VJPS, MatMul, untransposed)
    with pytest.raises((VerificationError, ValueError)):
        symrnn.derive(symrnn.ElmanRNN()).verify(2)


def test_the_second_route_uses_neither_the_rules_nor_the_code_generator(monkeypatch):
    d = symrnn.derive(symrnn.LSTM())
    monkeypatch.setattr(vjps, "VJPS", {})
    for name in [m for m in sys.modules if m.startswith("symrnn.codegen")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "symrnn.codegen", None)
    assert d.verify(3)


# the cells that the old check passed while their compiled gradients were wrong, or
# rejected while they were right
ISSUE_CELLS = {
    "sum before @": ("h = tanh((W + Q) @ prev(h) + U @ x)", "o = V @ h"),
    "antisymmetric": ("h = tanh((W - W.T) @ prev(h) + U @ x)", "o = V @ h"),
    "sum of outputs": ("h = tanh(W @ prev(h) + U @ x)", "o = (V + V @ Q) @ h"),
    "product before @": ("h = tanh(W @ Q @ prev(h) + U @ x)", "o = V @ h"),
    "vector weight": ("h = relu(w * prev(h) + U @ x)", "o = V @ h"),
}


@pytest.mark.parametrize("name", ISSUE_CELLS)
def test_cells_with_combined_parameters_verify(name):
    cell = symrnn.parse_cell(HEADER + "\n".join(ISSUE_CELLS[name])
                             + "\nloss = (o - y).T @ (o - y)", name=name)
    d = symrnn.derive(cell)
    for T in (1, 2, 4):
        report = d.verify(T)
        assert set(report.gradients) == {"W", "Q", "U", "V", "w", "h0"}


def test_a_wrong_closed_form_is_reported_by_name():
    d = symrnn.derive(symrnn.GRU())
    d.gradients["W_r"] = 2 * d.gradients["W_r"]
    report = d.verify(2, raises=False)
    assert not report.ok and report.mismatches[0].startswith("W_r:")
