"""The batch as (T, B, N) with ``layout="TBN"`` (the kernel's own layout: no copy) and
the quick path of the argument checks (a call like the last one)."""
import numpy as np
import pytest

import symrnn
from conftest import gradient_function
from reference import elman_bptt, rel_err
from symrnn.codegen.lambdify import module_source

D, N, M, T, B = 3, 2, 4, 5, 3


def problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    x = rng.normal(size=(T, B, N))
    y = np.eye(M)[rng.integers(0, M, size=(T, B))]  # one-hot (T, B, M)
    return params, x, y, rng.normal(size=(B, D))


@pytest.mark.parametrize("h0_kind", ["none", "vector", "matrix"])
def test_tbn_is_the_sum_of_its_sequences(h0_kind):
    f = gradient_function()
    params, x, y, h0s = problem(1)
    h0 = {"none": None, "vector": h0s[0], "matrix": h0s}[h0_kind]
    loss, grads = f(params, x, y, h0=h0, layout="TBN")
    total = 0.0
    parts = []
    for i in range(B):
        start = None if h0 is None else (h0 if h0.ndim == 1 else h0[i])
        ref_loss, ref = elman_bptt(params, x[:, i], y[:, i], start)
        total += ref_loss
        parts.append(ref)
    assert loss == pytest.approx(total, rel=1e-12)
    for k in params:
        assert rel_err(grads[k], sum(p[k] for p in parts)) < 1e-10, k
    rows = np.stack([p["h0"] for p in parts])  # (B, D), as h0 was given
    if h0_kind == "vector":
        assert grads["h0"].shape == (D,) and rel_err(grads["h0"], rows.sum(0)) < 1e-10
    else:
        assert grads["h0"].shape == (B, D) and rel_err(grads["h0"], rows) < 1e-10


def test_tbn_and_tnb_agree_for_the_lstm_with_labels():
    f = symrnn.derive(symrnn.LSTM()).lambdify()
    rng = np.random.default_rng(3)
    names = [p.name for p in symrnn.LSTM().params]
    shapes = {n: (D, N) if n.startswith("U") else (D,) if n.startswith("b") else
              (M, D) if n == "V" else (D, D) for n in names}
    params = {n: rng.normal(size=s) / 2 for n, s in shapes.items()}
    x, labels = rng.normal(size=(T, B, N)), rng.integers(0, M, size=(T, B))
    h0, s0 = rng.normal(size=(B, D)), rng.normal(size=(B, D))
    loss, g = f(params, x, labels, h0=h0, s0=s0, layout="TBN")
    loss2, g2 = f(params, x.transpose(0, 2, 1), labels, h0=h0.T, s0=s0.T)
    assert loss == pytest.approx(loss2, rel=1e-13)
    for k in params:
        assert rel_err(g[k], g2[k]) < 1e-12
    assert rel_err(g["h0"], g2["h0"].T) < 1e-12 and rel_err(g["s0"], g2["s0"].T) < 1e-12
    assert f.loss(params, x, labels, h0=h0, s0=s0, layout="TBN") == pytest.approx(loss, 1e-13)


def test_tbn_reaches_the_kernel_without_a_copy():
    ns = {}
    exec(compile(module_source(symrnn.derive(symrnn.ElmanRNN())), "<test>", "exec"), ns)
    seen = []

    def kernel(*arrays):
        seen.append(arrays)
        return ns["gradients"](*arrays)
    f = ns["gradient_function"](kernel, ns["SPEC"])
    params, x, y, h0 = problem(2)
    for _ in range(2):  # the full checks, then the quick path
        f(params, x, y, h0=h0, layout="TBN")
        arrays = seen.pop()
        assert arrays[3] is x and arrays[4] is y and arrays[5] is h0


def test_layout_errors():
    f = gradient_function()
    params, x, y, h0 = problem(4)
    with pytest.raises(ValueError, match=r"^layout: expected 'TNB' or 'TBN', got 'BTN'$"):
        f(params, x, y, layout="BTN")
    with pytest.raises(ValueError, match=r"^layout: expected 'TNB' or 'TBN', got None$"):
        f.loss(params, x, y, layout=None)
    with pytest.raises(ValueError, match=r"^h0: shape \(2, 3\) does not fit \(B, D\): "
                                         r"B = 2 here but B = 3 from x$"):
        f(params, x, y, h0=np.zeros((2, 3)), layout="TBN")
    with pytest.raises(ValueError, match=r"^y: shape \(5, 4, 3\) does not fit \(T, B, M\)"):
        f(params, x, y.transpose(0, 2, 1), layout="TBN")
    with pytest.raises(ValueError, match=r"^x: expected shape \(T, N\) or \(T, B, N\)"):
        f(params, x[..., None], y, layout="TBN")


def test_quick_path_still_checks_every_call():
    """After a call that fit, the same shapes again: a NaN written in place, an
    Inf in x, another shape and another layout are each still caught."""
    f = symrnn.derive(symrnn.ElmanRNN()).lambdify()  # a fresh cache
    params, x, y, h0 = problem(5)
    f(params, x, y, h0=h0, layout="TBN")
    W = params["W"]
    W[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^params\['W'\]: contains NaN at index \(1, 2\)"):
        f(params, x, y, h0=h0, layout="TBN")
    W[1, 2] = 0.5
    x[2, 1, 0] = -np.inf
    with pytest.raises(ValueError, match=r"^x: contains -Inf at index \(2, 1, 0\)"):
        f(params, x, y, h0=h0, layout="TBN")
    x[2, 1, 0] = 0.0
    h0[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"^h0: contains Inf at index \(0, 0\)"):
        f(params, x, y, h0=h0, layout="TBN")
    h0[0, 0] = 0.0
    with pytest.raises(ValueError, match=r"^x: shape \(5, 3, 2\) does not fit \(T, N, B\)"):
        f(params, x, y, h0=h0)  # the default layout is (T, N, B)
    f(params, x, y, h0=h0, layout="TBN")
    with pytest.raises(ValueError, match=r"^x: shape \(5, 3, 2\) does not fit \(T, B, N\): "
                                         r"N = 2 here but N = 3 from params\['U'\]$"):
        f(dict(params, U=np.zeros((3, 3))), x, y, h0=h0, layout="TBN")
    big = dict(params, W=params["W"] * 1e200)  # finite, sum of squares overflows
    loss, _ = f(big, x, y, h0=h0, layout="TBN")
    assert not np.isnan(loss)
