"""The symbolic side: model as data, copies per step, closed forms, verify(T)."""
import pytest
from sympy import HadamardProduct, MatMul, MatrixSymbol, OneMatrix, symbols

import symrnn
from symrnn.derivation.verify import VerificationError
from symrnn.graph import T, UnrolledGraph, t
from symrnn.model.nodes import Adjoint, StepVar, SumOverTime, Tanh

D, N, M = symbols("D N M", integer=True, positive=True)
W, U, V = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("V", M, D)


def sv(name, time, rows):
    return StepVar(name, time, rows, 1)


def adj(name, time, rows):
    return Adjoint(sv(name, time, rows))


def test_model_holds_the_seed_equations():
    cell = symrnn.ElmanRNN()
    eqs = {lhs.name: rhs for lhs, rhs in cell.equations}
    assert list(eqs) == ["z", "h", "o", "yhat", "L"]
    assert eqs["h"] == Tanh(MatrixSymbol("z", D, 1))
    assert cell.sizes == (D, N, M)
    assert [p.name for p in cell.params] == ["W", "U", "V"]


def test_unrolled_graph_gives_every_step_its_own_copies():
    graph = UnrolledGraph(symrnn.ElmanRNN(), 3)
    for k, step in enumerate(graph.steps, start=1):
        used = {v for _, rhs in step for v in rhs.atoms(StepVar) if v.name in "WUV"}
        assert used == {StepVar(p, k, *s) for p, s in (("W", (D, D)), ("U", (D, N)), ("V", (M, D)))}
    assert len(set(graph.copies(W))) == 3
    z2 = graph.steps[1][0][1]
    assert z2 == StepVar("W", 2, D, D) * sv("h", 1, D) + StepVar("U", 2, D, N) * sv("x", 2, N)


def test_closed_form_has_the_structure_of_the_slide(seed_derivation):
    d = seed_derivation
    delta = adj("z", t, D)
    # dL/dW = sum_t delta^(t) h^(t-1)^T, dL/dU = sum_t delta^(t) x^(t)^T
    assert d.gradients["W"] == SumOverTime(delta * sv("h", t - 1, D).T, t, 1, T)
    assert d.gradients["U"] == SumOverTime(delta * sv("x", t, N).T, t, 1, T)
    assert d.gradients["V"] == SumOverTime(adj("o", t, M) * sv("h", t, D).T, t, 1, T)
    assert d.gradients["h0"] == W.T * adj("z", 1, D)
    # delta^(t) = (1 - h^(t) * h^(t)) (.) dL/dh^(t)
    h = sv("h", t, D)
    assert d.adjoints[delta] == HadamardProduct(OneMatrix(D, 1) - HadamardProduct(h, h),
                                                adj("h", t, D))
    # dL/dh^(t) = V^T dL/do^(t) + W^T delta^(t+1); at t = T the second term is absent
    assert d.adjoints[adj("h", t, D)] == V.T * adj("o", t, M) + W.T * adj("z", t + 1, D)
    assert d.terminal == {adj("h", T, D): V.T * adj("o", T, M)}
    # dL/do^(t) = yhat (1^T y) - y: derived from log-softmax, not assumed
    y, yhat = sv("y", t, M), sv("yhat", t, M)
    assert d.adjoints[adj("o", t, M)] == MatMul(yhat, OneMatrix(1, M), y) - y


def test_recurrence_in_states_only_keeps_the_consistent_order(seed_derivation):
    # the book's misprint puts diag(...) after the adjoint; the derivation has
    # W^T ((1 - h^(t+1) * h^(t+1)) (.) dL/dh^(t+1)): W^T multiplies the whole product
    rec = seed_derivation.recurrence(symrnn.ElmanRNN().states[0])
    h1 = sv("h", t + 1, D)
    future = W.T * HadamardProduct(OneMatrix(D, 1) - HadamardProduct(h1, h1), adj("h", t + 1, D))
    assert future in rec.args
    assert not rec.atoms(Adjoint) - {adj("h", t + 1, D)}


def test_contributions_record_the_rules(seed_derivation):
    found = seed_derivation.contributions
    to_h = found[sv("h", t, D)]
    assert [c.consumer.name for c in to_h] == ["o"]
    to_prev = found[sv("h", t - 1, D)]
    assert [(c.consumer.name, c.rules) for c in to_prev] == [("z", ("MatAdd", "MatMul"))]


@pytest.mark.parametrize("T_", range(1, 7))
def test_verify_seed_network(seed_derivation, T_):
    report = seed_derivation.verify(T_)
    assert report.gradients == ["W", "U", "V", "h0"]
    # D = 2, N = 3, M = 2: 38 scalar partial derivatives per step (z: 2 x 10, h: 2,
    # o: 2 x 4, yhat: 2 x 2, L: 4)
    assert report.chain_rule_terms == 38 * T_
    assert report and report.ok


@pytest.mark.parametrize("model", [
    dict(activation="sigmoid", bias=True), dict(activation="relu", output="mse"),
    dict(activation="identity", output="upstream", bias=True)])
def test_verify_variants(model):
    d = symrnn.derive(symrnn.ElmanRNN(**model))
    for T_ in (1, 3, 5):
        assert set(d.verify(T_).gradients) == set(d.gradients)


def test_verify_catches_a_wrong_closed_form():
    d = symrnn.derive(symrnn.ElmanRNN())
    h_adj = adj("h", t, D)
    d.adjoints[h_adj] = d.adjoints[h_adj].xreplace({W.T: W})  # the classic slip
    with pytest.raises(VerificationError, match="dL/dh|W|U|h0"):
        d.verify(3)
    d = symrnn.derive(symrnn.ElmanRNN())
    d.gradients["W"] = d.gradients["W"].xreplace({sv("h", t - 1, D): sv("h", t, D)})
    with pytest.raises(VerificationError, match="W"):
        d.verify(2)
    d = symrnn.derive(symrnn.ElmanRNN())
    d.terminal[adj("h", T, D)] = 2 * V.T * adj("o", T, M)
    with pytest.raises(VerificationError, match=r"dL/dh\^\(T\)"):
        d.verify(2)
    d = symrnn.derive(symrnn.ElmanRNN())
    d.gradients["V"] = 2 * d.gradients["V"]
    with pytest.raises(VerificationError, match="V"):
        d.verify(2)


def test_verify_rejects_bad_T(seed_derivation):
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(ValueError, match="T"):
            seed_derivation.verify(bad)


def test_cell_rejects_bad_equations():
    x, h, z = MatrixSymbol("x", N, 1), MatrixSymbol("h", D, 1), MatrixSymbol("z", D, 1)
    y = MatrixSymbol("y", D, 1)
    with pytest.raises(ValueError, match="before it is defined"):
        symrnn.Cell("bad", params=[W], inputs=[x], targets=[y], states=[h],
                    equations=[(z, W * h), (h, symrnn.tanh(z))], loss=y.T * h)
    with pytest.raises(ValueError, match="shape"):
        symrnn.Cell("bad", params=[W, U], inputs=[x], targets=[y], states=[h],
                    equations=[(z, U * x), (h, U)], loss=y.T * h)
    with pytest.raises(ValueError, match="no equation"):
        symrnn.Cell("bad", params=[W], inputs=[x], targets=[y], states=[h],
                    equations=[(z, W * symrnn.prev(z))], loss=y.T * z)


@pytest.mark.parametrize("argument, kwargs", [
    ("activation", dict(activation="softplus")), ("output", dict(output="hinge")),
    ("bias", dict(bias="yes"))])
def test_elman_rejects_unknown_options(argument, kwargs):
    with pytest.raises(ValueError, match=argument):
        symrnn.ElmanRNN(**kwargs)
