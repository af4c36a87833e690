"""Every Elman variant (activation x output x bias), unbatched and batched: derived
by the same engine, verified by verify(T), lambdified, and the gradients checked
against finite differences and the independent NumPy BPTT of tests/reference.py."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sympy import MatMul, OneMatrix

import symrnn
from conftest import derivation, gradient_function, unchanged
from reference import elman_bptt, elman_bptt_batched, finite_differences, rel_err
from symrnn.graph import t
from symrnn.model.nodes import Adjoint, StepVar

ACTIVATIONS = ["tanh", "sigmoid", "relu", "identity"]
OUTPUTS = ["softmax_ce", "mse", "upstream"]
MODELS = [dict(activation=a, output=o, bias=b)
          for a, o, b in itertools.product(ACTIVATIONS, OUTPUTS, [False, True])]


def model_id(model):
    return f"{model['activation']}-{model['output']}{'-bias' if model['bias'] else ''}"


def make_problem(model, D, N, M, T, B, seed, h0_kind="vector"):
    """Random arrays for ``model``; B None means unbatched. Softmax targets are
    distributions; h0_kind is "none", "vector" (D,) or "matrix" (D, B)."""
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / np.sqrt(D), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    if model["bias"]:
        params["b"], params["c"] = rng.normal(size=D), rng.normal(size=M)
    extra = () if B is None else (B,)
    x = rng.normal(size=(T, N) + extra)
    if model["output"] == "softmax_ce":
        y = rng.dirichlet(np.ones(M), size=(T,) + extra)      # (T, [B,] M)
        y = np.moveaxis(y, -1, 1)                             # (T, M[, B])
    else:
        y = rng.normal(size=(T, M) + extra)
    h0 = {"none": None, "vector": rng.normal(size=D),
          "matrix": rng.normal(size=(D,) + (extra or (1,)))}[h0_kind]
    return params, x, y, h0


def check_against_references(model, params, x, y, h0, fd=True):
    f = gradient_function(**model)
    loss, grads = unchanged(lambda: f(params, x, y, h0=h0), *params.values(), x, y, h0)
    options = dict(activation=model["activation"], output=model["output"])
    if np.ndim(x) == 3:
        ref_loss, ref = elman_bptt_batched(params, x, y, h0, **options)
    else:
        start = None if h0 is None else np.asarray(h0).reshape(-1)
        ref_loss, ref = elman_bptt(params, x, y, start, **options)
        if h0 is not None:
            ref["h0"] = ref["h0"].reshape(np.shape(h0))
    assert isinstance(loss, float)
    assert set(grads) == set(params) | {"h0"}
    assert abs(loss - ref_loss) <= 1e-10 * max(1.0, abs(ref_loss))
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        assert rel_err(grads[k], ref[k]) < 1e-10, k
    if fd:
        start = np.zeros(ref["h0"].shape) if h0 is None else np.asarray(h0, float)
        numeric = finite_differences(
            lambda a: f.loss({k: a[k] for k in params}, x, y, h0=a["h0"]),
            dict(params, h0=start))
        for k in numeric:
            assert rel_err(grads[k], numeric[k]) < 1e-6, k
    return loss, grads


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_every_variant_against_references(model, batched):
    params, x, y, h0 = make_problem(model, D=3, N=2, M=3, T=4, B=2 if batched else None,
                                    seed=len(model_id(model)) + batched)
    check_against_references(model, params, x, y, h0)


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_every_variant_is_verified_by_the_engine(model):
    d = derivation(**model)
    expected = {"W", "U", "V", "h0"} | ({"b", "c"} if model["bias"] else set())
    assert set(d.gradients) == expected
    assert set(d.verify(3).gradients) == expected


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_every_variant_has_its_equations(model):
    cell = symrnn.ElmanRNN(**model)
    assert [p.name for p in cell.params] == ["W", "U", "V"] + (["b", "c"] if model["bias"] else [])
    eqs = {lhs.name: rhs for lhs, rhs in cell.equations}
    assert set(eqs) >= {"z", "h", "o", "L"}
    names = {s.name for s in eqs["z"].atoms(type(cell.params[0]))}
    assert ("b" in names) == model["bias"]
    assert ("c" in {s.name for s in eqs["o"].atoms(type(cell.params[0]))}) == model["bias"]


def test_softmax_cross_entropy_adjoint_is_derived_not_assumed():
    # the loss is written -y^T log_softmax(o); the adjoint of o comes out of the
    # LogSoftmax rule as yhat (1^T y) - y, for every variant with that head
    for model in MODELS:
        if model["output"] != "softmax_ce":
            continue
        d = derivation(**model)
        M = d.cell.param("V").shape[0]
        o, y, yhat = (StepVar(n, t, M, 1) for n in ("o", "y", "yhat"))
        assert d.adjoints[Adjoint(o)] == MatMul(yhat, OneMatrix(1, M), y) - y
        rules = {r for c in d.contributions[o] for r in c.rules}
        assert "LogSoftmax" in rules and "Softmax" not in rules


def test_softmax_cross_entropy_gradient_numerically():
    # with T = 1 and the bias c, dL/dc = dL/do^(1): yhat - y for a distribution y,
    # and yhat (1^T y) - y for any non-negative weights y
    f = gradient_function(activation="tanh", output="softmax_ce", bias=True)
    rng = np.random.default_rng(3)
    D, N, M = 3, 2, 4
    params = {"W": rng.normal(size=(D, D)), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D)), "b": rng.normal(size=D), "c": rng.normal(size=M)}
    x = rng.normal(size=(1, N))
    h0 = rng.normal(size=D)
    o = params["V"] @ np.tanh(params["W"] @ h0 + params["U"] @ x[0] + params["b"]) + params["c"]
    yhat = np.exp(o - o.max()) / np.exp(o - o.max()).sum()
    for y in (np.eye(M)[[2]], rng.dirichlet(np.ones(M), 1), 3.0 * rng.random((1, M))):
        _, grads = f(params, x, y, h0=h0)
        assert np.allclose(grads["c"], yhat * y.sum() - y[0], atol=1e-13)
        if np.isclose(y.sum(), 1):
            assert np.allclose(grads["c"], yhat - y[0], atol=1e-13)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_huge_logits_stay_finite(activation):
    # logits of 1e4 (and pre-activations of 1e4): log-sum-exp keeps the softmax,
    # the cross-entropy and their gradients finite, and nothing overflows
    f = gradient_function(activation=activation, output="softmax_ce", bias=True)
    D, N, M, T = 2, 2, 3, 4
    params = {"W": np.eye(D), "U": 1e4 * np.ones((D, N)), "V": np.zeros((M, D)),
              "b": np.zeros(D), "c": np.array([1e4, -1e4, 0.0])}
    x = np.ones((T, N))
    labels = np.array([0, 1, 2, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        loss, grads = f(params, x, labels)
        again = f.loss(params, x, labels)
    # -log_softmax(c) = (0, 2e4, 1e4) up to log(1 + e^-1e4) = 0
    assert loss == pytest.approx(0 + 2e4 + 1e4 + 2e4, rel=1e-12)
    assert again == pytest.approx(loss, rel=1e-12)
    assert np.allclose(grads["c"], 4 * np.eye(M)[0] - np.eye(M)[labels].sum(0))
    # logits of 1e4 that come through V h^(t), against the reference's log-sum-exp
    params["V"] = np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]]) * 1e4
    if activation in ("relu", "identity"):
        params["V"] /= 2e4 * np.arange(1, T + 1).max()  # h^(t) grows like 2e4 t
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        loss, grads = f(params, x, labels)
    ref_loss, ref = elman_bptt(params, x, np.eye(M)[labels], None, activation=activation)
    assert np.isfinite(loss) and loss > 1e3
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        assert np.all(np.isfinite(grads[k])), k
        assert rel_err(grads[k], ref[k]) < 1e-10, k


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(MODELS), D=st.integers(1, 5), N=st.integers(1, 5),
       M=st.integers(1, 5), T=st.integers(1, 9), B=st.one_of(st.none(), st.integers(1, 4)),
       h0_kind=st.sampled_from(["none", "vector", "matrix"]), seed=st.integers(0, 2**32 - 1))
def test_random_shapes(model, D, N, M, T, B, h0_kind, seed):
    params, x, y, h0 = make_problem(model, D, N, M, T, B, seed, h0_kind)
    # finite differences on the smaller problems, the reference on all of them
    small = D * (D + N + M + 2) + M * (1 + D) <= 40
    loss, grads = check_against_references(model, params, x, y, h0, fd=small)
    expected = (D,) if h0_kind == "vector" else (D, B or 1) if h0_kind == "matrix" else (
        (D,) if B is None else (D, B))
    assert grads["h0"].shape == expected
