"""The hand-written NumPy BPTT baselines of benchmarks/gradbench (Elman, LSTM,
GRU, stacked narrow LSTM) against symrnn's generated gradients, to 1e-10, for
one sequence and a batch. The baselines are written by hand and share no code
with symrnn; this is what makes their speed a fair yardstick."""
import functools
import os
import sys

import numpy as np
import pytest

import symrnn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from gradbench import cells  # noqa: E402

CELLS = {"elman": cells.elman, "lstm": cells.lstm, "gru": cells.gru,
         "stacked2": lambda: cells.stacked(2), "stacked3": lambda: cells.stacked(3)}


@functools.lru_cache(maxsize=None)
def generated(key):
    cell = CELLS[key]()
    return cell, symrnn.derive(cell.make()).lambdify()


def symrnn_gradients(f, params, x, y, starts):
    """symrnn's public call; a batch goes in symrnn's (T, N, B) layout, the
    starts as (D, B), and the starts' gradients come back as (B, D)."""
    if x.ndim == 2:
        return f(params, x, y, **starts)
    loss, grads = f(params, x.transpose(0, 2, 1), y.transpose(0, 2, 1),
                    **{k: v.T for k, v in starts.items()})
    return loss, {k: v.T if k in starts else v for k, v in grads.items()}


def assert_close(got, want, tol=1e-10):
    (l1, g1), (l2, g2) = got, want
    assert set(g1) == set(g2)
    assert abs(l1 - l2) <= tol * max(1.0, abs(l2))
    for k in g2:
        assert g1[k].shape == g2[k].shape, k
        assert np.max(np.abs(g1[k] - g2[k])) <= tol, k


@pytest.mark.parametrize("key", sorted(CELLS))
@pytest.mark.parametrize("size", [(3, 2, 4, 6, 1), (3, 2, 4, 5, 3)])
def test_baseline_matches_generated_gradients(key, size):
    cell, f = generated(key)
    params, x, y, starts = cells.make_problem(cell, size, seed=sum(size))
    before = {k: v.copy() for k, v in params.items()}
    want = symrnn_gradients(f, params, x, y, starts)
    assert_close(cell.baseline(params, x, y, starts), want)
    if cell.per_step is not None:
        assert_close(cell.per_step(params, x, y, starts), want)
    assert all(np.array_equal(params[k], before[k]) for k in params)  # inputs untouched


def test_stacked_text_is_the_documented_cell():
    """Layer 2 reads h1 of the same step; the recurrent weights are diagonal."""
    text = cells.stacked_text(2)
    assert "f2 = sigmoid(w_f2 * prev(h2) + U_f2 @ h1 + b_f2)" in text
    assert "o = V @ h2 + c" in text
    cell = symrnn.parse_cell(text)
    assert [s.name for s in cell.states] == ["h1", "s1", "h2", "s2"]


@pytest.mark.parametrize("key", sorted(CELLS))
def test_framework_forward_gives_the_baseline_loss(key):
    """The one forward that the PyTorch and JAX implementations share, run
    with NumPy arrays: the same loss as the baseline (their gradients are
    checked against the baseline by the benchmark before it times them)."""
    from gradbench import frameworks
    cell, _ = generated(key)
    for size in [(3, 2, 4, 6, 1), (3, 2, 4, 5, 3)]:
        params, x, y, starts = cells.make_problem(cell, size, seed=1)
        loss = frameworks.loss(frameworks.numpy_namespace(), frameworks.numpy_scan, cell.key,
                               cell.layers, params, starts, cell.states, x, y)
        assert abs(loss - cell.baseline(params, x, y, starts)[0]) < 1e-10
