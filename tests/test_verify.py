"""verify(T) against mutations: every rule of the table, broken on purpose, is caught,
and the second route uses neither the rules table nor the code generator."""
import sys

import pytest

import symrnn
from symrnn.derivation import vjps
from symrnn.derivation.verify import VerificationError
from symrnn.ops import Sigmoid, functions
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, MatPow, Transpose

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
    MatPow: lambda: text_cell("h = tanh(W @ W @ W @ prev(h) + U @ x)", "o = V @ h",
                              "loss = (o - y).T @ (o - y)"),
}


def cell_for(rule):
    if rule in STRUCTURAL_CELLS:
        return STRUCTURAL_CELLS[rule]()
    return op_cell(rule.name)


def test_the_mutation_list_covers_the_whole_rules_table():
    assert set(vjps.VJPS) == set(STRUCTURAL_CELLS) | set(functions().values())


@pytest.mark.slow
@pytest.mark.parametrize("rule", list(vjps.VJPS), ids=lambda r: r.__name__)
def test_the_cell_for_each_rule_verifies(rule):
    assert symrnn.derive(cell_for(rule)).verify(2)


@pytest.mark.slow
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


# -- step T+1: the loss's own terms of a step that does not exist -------------------

LOSS_READS_PREV = {
    "log-softmax of prev(h)": ("h = tanh(W @ prev(h) + U @ x)",
                               "loss = -y.T @ log_softmax(V @ prev(h))"),
    "prev(h) squared": ("h = tanh(W @ prev(h) + U @ x)",
                        "loss = prev(h).T @ prev(h) + y.T @ (V @ h)"),
}


@pytest.mark.parametrize("name", LOSS_READS_PREV)
def test_a_loss_that_reads_prev_verifies(name):
    d = symrnn.derive(text_cell(*LOSS_READS_PREV[name]))
    for T in (1, 2, 3):
        assert d.verify(T)


@pytest.mark.parametrize("name", LOSS_READS_PREV)
def test_a_term_of_step_T_plus_1_left_in_is_caught(name, monkeypatch):
    # the derivation before the fix: dL^(t+1)/dh^(t) without dL/dL^(t+1), so that
    # it stays at t = T, where step T+1 does not exist; the generated code reads
    # step T there again, and so does verify: every T catches it
    import importlib
    from symrnn.derivation.reverse import adjoint_sum
    derive_module = importlib.import_module("symrnn.derivation.derive")
    monkeypatch.setattr(derive_module, "_carried", lambda found, loss: adjoint_sum(found))
    d = symrnn.derive(text_cell(*LOSS_READS_PREV[name]))
    for T in (1, 2, 3):
        assert not d.verify(T, raises=False)


def test_after_a_failed_verify_no_code_is_built(monkeypatch):
    right = vjps.VJPS[MatMul]
    monkeypatch.setitem(vjps.VJPS, MatMul, lambda ans, args, i: lambda g: 2 * right(
        ans, args, i)(g))
    d = symrnn.derive(symrnn.ElmanRNN())
    monkeypatch.setitem(vjps.VJPS, MatMul, right)
    d.lambdify()   # nothing found wrong yet: built
    assert not d.verify(2, raises=False)
    for build in (d.lambdify, lambda: d.lambdify("numba"), lambda: d.torch(D=2, N=2, M=2),
                  d.jax):
        with pytest.raises(ValueError, match=r"derivation: .* refused, since verify\(T=2\) "
                                             r"found dL/d"):
            build()
    from symrnn.codegen.lambdify import module_source
    with pytest.raises(ValueError, match="verify"):
        module_source(d)


def test_a_verify_that_raised_also_refuses():
    d = symrnn.derive(symrnn.GRU())
    d.gradients["W_r"] = 2 * d.gradients["W_r"]
    with pytest.raises(VerificationError):
        d.verify(1)
    with pytest.raises(ValueError, match="W_r: the closed form differs"):
        d.lambdify()


# -- a verdict for every accepted cell, and its arguments checked ---------------------

@pytest.mark.parametrize("equation", [
    "h = tanh(W @ prev(h) + U @ (0 * x))",
    "h = 0 * prev(h) + tanh(U @ x)",
    "h = tanh(W @ prev(h) + U @ exp(exp(exp(x))))",
    "h = tanh(W @ prev(h) + U @ exp(exp(exp(10 * x))))",
    "h = relu(W @ prev(h) + U @ (0 * x))",
])
@pytest.mark.slow
def test_verify_returns_a_verdict(equation):
    d = symrnn.derive(text_cell(equation, "o = V @ h", "loss = (o - y).T @ (o - y)"))
    report = d.verify(2, raises=False)
    assert report.ok or report.undecided and not report.mismatches
    if not report.ok:   # overflow at every point: not verified, and not found wrong either
        assert d.failed_verification is None
        with pytest.raises(VerificationError, match="could not compare"):
            d.verify(2)


def test_verify_sizes_by_name_symbol_or_default():
    d = symrnn.derive(symrnn.ElmanRNN())
    D = next(s for s in d.cell.sizes if s.name == "D")
    assert d.verify(1, sizes={"D": 3}).sizes == {"D": 3, "N": 3, "M": 2}
    assert d.verify(1, sizes={D: 1, "M": 1}).sizes == {"D": 1, "N": 3, "M": 1}
    from sympy import Symbol
    assert d.verify(1, sizes={Symbol("N"): 2}).sizes == {"D": 2, "N": 2, "M": 2}


@pytest.mark.parametrize("sizes, message", [
    ({"D": 0}, r"sizes\['D'\]: expected an integer from 1 to 8, got 0"),
    ({"D": 2.0}, r"sizes\['D'\]: expected an integer"),
    ({"D": True}, r"sizes\['D'\]: expected an integer"),
    ({"D": 100}, r"sizes\['D'\]: expected an integer from 1 to 8"),
    ({"Q": 2}, r"sizes: 'Q' is not a size of the cell \(its sizes: D, N, M\)"),
    ({3: 2}, r"sizes: 3 is not a size of the cell"),
    ([2, 3], r"sizes: expected a dict"),
])
def test_verify_sizes_are_checked(sizes, message):
    with pytest.raises(ValueError, match=message):
        symrnn.derive(symrnn.ElmanRNN()).verify(1, sizes=sizes)
