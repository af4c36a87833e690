"""The lambdified gradients of the seed network against finite differences and
against the independent NumPy BPTT in tests/reference.py."""
import numpy as np
from hypothesis import given, settings, strategies as st

import symrnn
from conftest import gradient_function
from ir_queries import DOT, calls, generated, imports, kernel, outside_loops, value
from symrnn.codegen import ir
from reference import elman_bptt, finite_differences, rel_err


def problem(D, N, M, T, seed, labels=True):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / np.sqrt(D), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    x = rng.normal(size=(T, N))
    y = np.eye(M)[rng.integers(0, M, T)] if labels else rng.dirichlet(np.ones(M), T)
    return params, x, y, rng.normal(size=D)


def check(D, N, M, T, seed, labels=True):
    f = gradient_function()
    params, x, y, h0 = problem(D, N, M, T, seed, labels)
    loss, grads = f(params, x, y, h0=h0)
    ref_loss, ref = elman_bptt(params, x, y, h0)
    assert set(grads) == {"W", "U", "V", "h0"}
    assert abs(loss - ref_loss) <= 1e-10 * max(1.0, abs(ref_loss))
    for k in ref:
        assert grads[k].shape == ref[k].shape
        assert rel_err(grads[k], ref[k]) < 1e-10, k
    fd = finite_differences(lambda a: f.loss({k: a[k] for k in "WUV"}, x, y, h0=a["h0"]),
                            dict(params, h0=h0))
    for k in fd:
        assert rel_err(grads[k], fd[k]) < 1e-6, k


def test_seed_network_small():
    check(3, 4, 2, 5, seed=0)


def test_probability_targets():
    check(4, 3, 5, 7, seed=1, labels=False)


@settings(max_examples=40, deadline=None)
@given(D=st.integers(1, 5), N=st.integers(1, 5), M=st.integers(1, 5), T=st.integers(1, 12),
       seed=st.integers(0, 2**32 - 1))
def test_random_shapes_and_lengths(D, N, M, T, seed):
    check(D, N, M, T, seed)


def test_h0_defaults_to_zeros():
    f = gradient_function()
    params, x, y, h0 = problem(3, 2, 4, 6, seed=2)
    loss, grads = f(params, x, y)
    ref_loss, ref = elman_bptt(params, x, y, np.zeros(3))
    assert abs(loss - ref_loss) < 1e-12 and rel_err(grads["h0"], ref["h0"]) < 1e-10
    assert grads["W"].dtype == np.float64 and isinstance(loss, float)


def test_gradient_is_generated_from_the_derivation(seed_derivation):
    # the lambdified function is the printed derivation: its source holds the
    # stacked sums of the closed form, and no hand-written outer-product loop
    f = kernel(generated(symrnn.ElmanRNN()))
    assert not calls(f, ir.NumPy("outer")) and "symrnn" not in imports(gradient_function().source)
    closed_form = ir.Assign((ir.Temp("grad", value("W")),), ir.call(
        DOT, ir.Transpose(ir.Temp("flat", value("z", True))), ir.Temp("prev", value("h"))))
    assert closed_form in outside_loops(f)
