"""Batches and the argument conventions of the generated functions: x (T, N, B),
y (T, M, B), h0 None, (D,) or (D, B), integer labels (T,) or (T, B); the loss and
the parameter gradients are sums over the batch, the gradient of h0 has h0's shape."""
import numpy as np
import pytest

import symrnn
from conftest import gradient_function
from reference import elman_bptt, rel_err
from symrnn.checking import Layout, make_problem, over_batch
from symrnn.checking.references import gru_bptt as gru_reference, lstm_bptt as lstm_reference


def random_problem(cell, T, hidden, inputs, outputs, batch):
    """``(params, x, y, initial)``: labels for a softmax output, initial states given."""
    problem = make_problem(cell, 0, T=T, sizes={"D": hidden, "N": inputs, "M": outputs},
                           batch=batch, layout=Layout(batch=True, labels=True, starts="shared"))
    return problem.params, problem.x, problem.y, problem.initial


def batched_reference(reference, params, x, y, initial, state_sizes, classes=None):
    """``reference(params, x, y, states_dict)`` over a batch: see ``over_batch``."""
    keys = list(state_sizes)
    return over_batch(lambda p, x_, y_, **s: reference(
        p, x_, y_, {k: np.zeros(state_sizes[k]) if s.get(k) is None else s[k] for k in keys}),
        params, x, y, classes=classes, **{k: initial.get(k) for k in keys})


D, N, M, T, B = 3, 2, 4, 5, 3


def arrays(seed=0, bias=False, B=B):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    if bias:
        params.update(b=rng.normal(size=D), c=rng.normal(size=M))
    x = rng.normal(size=(T, N, B))
    labels = rng.integers(0, M, size=(T, B))
    y = rng.normal(size=(T, M, B))
    return params, x, labels, y, rng.normal(size=(D, B))


@pytest.mark.parametrize("output", ["softmax_ce", "mse", "upstream"])
@pytest.mark.parametrize("h0_kind", ["none", "vector", "matrix"])
def test_batch_is_the_sum_of_its_sequences(output, h0_kind):
    f = gradient_function(output=output, bias=True)
    params, x, labels, y, h0s = arrays(1, bias=True)
    if output == "softmax_ce":
        y = np.moveaxis(np.eye(M)[labels], -1, 1)  # one-hot (T, M, B)
    h0 = {"none": None, "vector": h0s[:, 0], "matrix": h0s}[h0_kind]
    loss, grads = f(params, x, y, h0=h0)
    total, parts = 0.0, []
    for i in range(B):
        start = None if h0 is None else (h0 if h0.ndim == 1 else h0[:, i])
        loss_i, grads_i = f(params, x[:, :, i], y[:, :, i], h0=start)
        ref_loss, ref = elman_bptt(params, x[:, :, i], y[:, :, i], start, output=output)
        assert loss_i == pytest.approx(ref_loss, rel=1e-12)
        assert all(rel_err(grads_i[k], ref[k]) < 1e-10 for k in ref)
        total += loss_i
        parts.append(grads_i)
    assert loss == pytest.approx(total, rel=1e-12)
    for k in params:
        assert grads[k].shape == params[k].shape
        assert rel_err(grads[k], sum(p[k] for p in parts)) < 1e-12, k
    columns = np.stack([p["h0"] for p in parts], axis=1)  # (D, B)
    if h0_kind == "vector":
        assert grads["h0"].shape == (D,)
        assert rel_err(grads["h0"], columns.sum(1)) < 1e-12
    else:  # (D, B): zeros of that shape when h0 is None and x is batched
        assert grads["h0"].shape == (D, B)
        assert rel_err(grads["h0"], columns) < 1e-12


def test_h0_none_means_zeros_of_the_batch():
    f = gradient_function()
    params, x, labels, _, _ = arrays(2)
    loss, grads = f(params, x, labels)
    loss0, grads0 = f(params, x, labels, h0=np.zeros((D, B)))
    assert loss == loss0 and grads["h0"].shape == (D, B)
    for k in grads:
        assert np.array_equal(grads[k], grads0[k]), k
    loss1, grads1 = f(params, x, labels, h0=np.zeros(D))
    assert loss1 == loss and np.allclose(grads1["h0"], grads["h0"].sum(1), atol=1e-15)


def test_h0_shape_is_kept_without_a_batch():
    f = gradient_function()
    params, x, labels, _, h0s = arrays(3)
    x1, labels1 = x[:, :, 0], labels[:, 0]
    for h0, shape in ((None, (D,)), (h0s[:, 0], (D,)), (h0s[:, :1], (D, 1))):
        loss, grads = f(params, x1, labels1, h0=h0)
        assert grads["h0"].shape == shape
    loss_col, grads_col = f(params, x1, labels1, h0=h0s[:, :1])
    loss_vec, grads_vec = f(params, x1, labels1, h0=h0s[:, 0])
    assert loss_col == loss_vec and np.array_equal(grads_col["h0"][:, 0], grads_vec["h0"])


def test_batch_of_one_equals_a_single_sequence():
    f = gradient_function(activation="relu", output="mse")
    params, x, _, y, h0s = arrays(4, B=1)
    single = f(params, x[:, :, 0], y[:, :, 0], h0=h0s[:, 0])
    batch = f(params, x, y, h0=h0s)
    assert single[0] == pytest.approx(batch[0], rel=1e-14)
    for k in params:
        assert np.allclose(single[1][k], batch[1][k], rtol=1e-14, atol=1e-14)
    assert batch[1]["h0"].shape == (D, 1)
    assert np.allclose(batch[1]["h0"][:, 0], single[1]["h0"], rtol=1e-14, atol=1e-14)


def test_integer_labels_equal_one_hot_targets():
    f = gradient_function(bias=True)
    params, x, labels, _, h0s = arrays(5, bias=True)
    one_hot = np.moveaxis(np.eye(M)[labels], -1, 1)  # (T, M, B)
    cases = [((x, labels), (x, one_hot)),                                   # (T, B)
             ((x[:, :, 1], labels[:, 1]), (x[:, :, 1], one_hot[:, :, 1]))]  # (T,)
    for (xa, la), (xb, yb) in cases:
        for dtype in (np.int64, np.int32, np.uint8):
            loss_l, grads_l = f(params, xa, la.astype(dtype))
            loss_y, grads_y = f(params, xb, yb)
            assert loss_l == pytest.approx(loss_y, rel=1e-14)
            assert f.loss(params, xa, la.astype(dtype)) == pytest.approx(loss_y, rel=1e-14)
            for k in grads_y:
                assert np.allclose(grads_l[k], grads_y[k], rtol=1e-13, atol=1e-14), k
    # a Python list of labels, and integer one-hot rows (T, M), which are targets
    loss_list, _ = f(params, x[:, :, 1], labels[:, 1].tolist())
    loss_int, _ = f(params, x[:, :, 1], one_hot[:, :, 1].astype(int))
    assert loss_list == pytest.approx(loss_int, rel=1e-14)
    assert loss_int == pytest.approx(f(params, x[:, :, 1], one_hot[:, :, 1])[0], rel=1e-14)


def test_labels_only_for_softmax_outputs():
    # for mse an integer y (T, M) is a target of numbers, not labels
    f = gradient_function(output="mse")
    params, x, labels, _, _ = arrays(6)
    y = np.arange(T * M).reshape(T, M) % 3
    loss, _ = f(params, x[:, :, 0], y)
    assert loss == pytest.approx(f(params, x[:, :, 0], y.astype(float))[0], rel=1e-14)
    with pytest.raises(ValueError, match=r"^y: "):
        f(params, x[:, :, 0], labels[:, 0])


def test_initial_state_positionally_and_results_are_fresh():
    f = gradient_function()
    params, x, labels, _, h0s = arrays(7)
    by_keyword = f(params, x, labels, h0=h0s)
    positional = f(params, x, labels, h0s)
    assert by_keyword[0] == positional[0]
    assert all(np.array_equal(by_keyword[1][k], positional[1][k]) for k in by_keyword[1])
    with pytest.raises(TypeError, match="h0"):
        f(params, x, labels, h0s, h0=h0s)
    with pytest.raises(TypeError, match="s0"):
        f(params, x, labels, s0=h0s)
    # the inputs are not modified, and later calls do not change earlier results
    copies = {k: v.copy() for k, v in params.items()}
    first = f(params, x, labels)[1]["W"].copy()
    f(params, 2 * x, labels)
    assert all(np.array_equal(params[k], copies[k]) for k in params)
    assert np.array_equal(f(params, x, labels)[1]["W"], first)


def test_other_dtypes_and_nested_lists():
    f = gradient_function(output="mse")
    params, x, _, y, _ = arrays(8)
    x1, y1 = x[:, :, 0], y[:, :, 0]
    expected = f(params, x1, y1)
    as_float32 = f({k: v.astype(np.float32) for k, v in params.items()}, x1.astype(np.float32),
                   y1.astype(np.float32))
    as_lists = f({k: v.tolist() for k, v in params.items()}, x1.tolist(), y1.tolist())
    fortran = f({k: np.asfortranarray(v) for k, v in params.items()}, np.asfortranarray(x1), y1)
    assert as_lists[0] == expected[0] and fortran[0] == pytest.approx(expected[0], rel=1e-14)
    assert as_float32[0] == pytest.approx(expected[0], rel=1e-5)
    for k in expected[1]:
        assert as_lists[1][k].dtype == np.float64
        assert np.array_equal(as_lists[1][k], expected[1][k])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_gated_cells_take_batches_and_both_initial_states(name):
    # the same conventions for every initial state (h0 and, for the LSTM, s0),
    # against the hand-written references of symrnn.checking
    cell = symrnn.LSTM() if name == "lstm" else symrnn.GRU()
    f = symrnn.derive(cell).lambdify()
    reference = ((lambda p, x, y, s: lstm_reference(p, x, y, s["h0"], s["s0"]))
                 if name == "lstm" else (lambda p, x, y, s: gru_reference(p, x, y, s["h0"])))
    rng = np.random.default_rng(9)
    params, x, labels, _ = random_problem(cell, T, hidden=D, inputs=N, outputs=M, batch=B)
    assert x.shape == (T, N, B) and labels.shape == (T, B)
    state_keys = [s.name + "0" for s in cell.states]
    for kinds in (("none",) * 2, ("vector", "matrix"), ("matrix", "vector")):
        initial = {}
        for key, kind in zip(state_keys, kinds):
            if kind != "none":
                initial[key] = rng.normal(size=(D, B) if kind == "matrix" else D)
        loss, grads = f(params, x, labels, **initial)
        ref_loss, ref = batched_reference(reference, params, x, labels, initial,
                                          dict.fromkeys(state_keys, D), classes=M)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for k in ref:
            assert grads[k].shape == ref[k].shape, k
            assert rel_err(grads[k], ref[k]) < 1e-10, k
        for key, kind in zip(state_keys, kinds):
            assert grads[key].shape == ((D,) if kind == "vector" else (D, B))
