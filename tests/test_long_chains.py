"""Long chains of equations, z_i = 2 tanh(z_(i-1)): the work of lambdify grows
with the number of equations, not with 2 to its power (22 equations once took a
minute), and no stage recurses once per equation (990 of them once hit Python's
recursion limit). The work is counted (how often SymPy's nodes are read), not
timed; a chain of 990 runs with SYMRNN_FULL_TESTS=1."""
import os

import numpy as np
import pytest
from sympy import Basic

import symrnn
from reference import finite_differences, rel_err


def chain(n):
    lines = ["params: W[D,D] U[D,N] V[M,D]", "input: x[N]", "target: y[M]", "state: h[D]",
             "z0 = W @ prev(h) + U @ x"]
    lines += [f"z{i}=2*tanh(z{i - 1})" for i in range(1, n)]
    lines += [f"h = tanh(z{n - 1}) / {n}", "loss = y.T @ (V @ h)"]
    return symrnn.parse_cell("\n".join(lines), name=f"chain of {n}")


def work(monkeypatch, n):
    """The work of lambdifying a chain of n equations: how often SymPy's nodes are
    asked for their arguments (by symrnn and by SymPy itself)."""
    d = symrnn.derive(chain(n))
    count, args = [0], Basic.args.fget

    def counting(self):
        count[0] += 1
        return args(self)
    with monkeypatch.context() as m:
        m.setattr(Basic, "args", property(counting))
        d.lambdify()
    return count[0]


@pytest.mark.slow
@pytest.mark.parametrize("n", [8, 40])
def test_the_work_of_lambdify_grows_linearly(monkeypatch, n):
    # twice the equations, about twice the work; it grew as 2^n (SymPy's MatMul asks
    # each factor for its shape twice: 8 catches it) and as n^2 (each statement
    # looked at all later ones: 40 catches it)
    small, large = work(monkeypatch, n), work(monkeypatch, 2 * n)
    assert large <= 2.5 * small, (small, large)


def _forward(arrays, x, y, n):
    h, loss = arrays["h0"], 0.0
    for t in range(len(x)):
        z = arrays["W"] @ h + arrays["U"] @ x[t]
        for _ in range(1, n):
            z = 2 * np.tanh(z)
        h = np.tanh(z) / n
        loss += y[t] @ arrays["V"] @ h
    return loss


@pytest.mark.slow
@pytest.mark.parametrize("n", [300] + ([990] if os.environ.get("SYMRNN_FULL_TESTS") else []))
def test_a_long_chain_through_every_stage(n):
    d = symrnn.derive(chain(n))
    assert d.recurrence(d.cell.states[0]).atoms()   # inlined as far as INLINE_LEVELS
    assert d.verify(1)
    f = d.lambdify()
    rng = np.random.default_rng(0)
    arrays = {"W": rng.normal(size=(2, 2)), "U": rng.normal(size=(2, 3)),
              "V": rng.normal(size=(2, 2)), "h0": rng.normal(size=2)}
    x, y = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    loss, grads = f({k: v for k, v in arrays.items() if k != "h0"}, x, y, h0=arrays["h0"])
    assert abs(loss - _forward(arrays, x, y, n)) < 1e-12
    numeric = finite_differences(lambda a: _forward(a, x, y, n), arrays)
    assert all(rel_err(grads[k], numeric[k]) < 1e-6 for k in numeric)
