"""eye(D), the identity matrix as a constant of a cell: parsed, derived, verified and
compiled on both backends, against a forward written by hand and its finite differences."""
import numpy as np
import pytest

import symrnn
from symrnn.model.parse import CellSyntaxError

TEXT = """
params: W[D,D] U[D,N] V[M,D]
input:  x[N]
target: y[M]
state:  h[D]
h = tanh((W - eye(D)) @ prev(h) + U @ x + eye(D) @ prev(h) / 2)
o = V @ h
loss = (o - y).T @ (o - y)
"""
D, N, M, T = 3, 2, 4, 5


def problem():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(D, D)), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    return params, rng.normal(size=(T, N)), rng.normal(size=(T, M)), rng.normal(size=D)


def forward(params, x, y, h0):
    h, loss = h0, 0.0
    for t in range(T):
        h = np.tanh((params["W"] - np.eye(D)) @ h + params["U"] @ x[t] + h / 2)
        o = params["V"] @ h
        loss += (o - y[t]) @ (o - y[t])
    return loss


def central_differences(params, x, y, h0, eps=1e-6):
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up = {**params, k: v.copy()}
            up[k][i] += eps
            down = {**params, k: v.copy()}
            down[k][i] -= eps
            g[i] = (forward(up, x, y, h0) - forward(down, x, y, h0)) / (2 * eps)
        out[k] = g
    return out


@pytest.fixture(scope="module")
def derivation():
    return symrnn.derive(symrnn.parse_cell(TEXT, name="leaky"))


def test_eye_is_the_identity_and_verifies(derivation):
    assert derivation.verify(3)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=pytest.mark.numba)])
def test_eye_compiles_to_the_right_numbers(derivation, backend):
    if backend == "numba":
        pytest.importorskip("numba")
    params, x, y, h0 = problem()
    loss, grads = derivation.lambdify(backend)(params, x, y, h0=h0)
    assert abs(loss - forward(params, x, y, h0)) < 1e-12
    fd = central_differences(params, x, y, h0)
    for k in params:
        assert np.abs(grads[k] - fd[k]).max() < 1e-6, k


@pytest.mark.parametrize("line, message", [
    ("h = tanh(eye(Q) @ prev(h) + U @ x)", "eye takes a size"),
    ("h = tanh(eye(x) @ prev(h) + U @ x)", "eye takes a size"),
    ("h = tanh(eye(0) @ prev(h) + U @ x)", "eye takes a size"),
    ("eye = tanh(U @ x)", "reserved"),
])
def test_eye_refuses_what_is_not_a_size(line, message):
    text = TEXT.replace("h = tanh((W - eye(D)) @ prev(h) + U @ x + eye(D) @ prev(h) / 2)",
                        line)
    with pytest.raises(CellSyntaxError, match=message):
        symrnn.parse_cell(text)
