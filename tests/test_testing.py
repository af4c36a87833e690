"""symrnn.testing.check_bptt on hand-written Elman BPTTs: a correct one passes
quietly; each seeded bug (missing transpose, off-by-one time shift, missing
terminal case, the diag factor on the wrong side as in the misprint of Goodfellow et
al. eq. 10.21) is reported with the right gradient key and the smallest T and sizes."""
import re

import numpy as np
import pytest

import symrnn
from symrnn.testing import assert_gradients, check_bptt, problems

CELL = symrnn.ElmanRNN()   # z = W h^(t-1) + U x, h = tanh(z), o = V h, softmax + CE


def my_bptt(params, x, y, h0, bug=None):
    """A student's BPTT for one sequence, written with dL/dh^(t) as on the slide."""
    W, U, V = params["W"], params["U"], params["V"]
    T = len(x)
    hs, ps = [h0], []
    for t in range(T):
        hs.append(np.tanh(W @ hs[-1] + U @ x[t]))
        o = V @ hs[-1]
        e = np.exp(o - o.max())
        ps.append(e / e.sum())
    loss = -sum(float(y[t] @ np.log(ps[t])) for t in range(T))
    gW, gU, gV = np.zeros_like(W), np.zeros_like(U), np.zeros_like(V)
    dh = np.zeros_like(h0)                       # dL/dh^(t) through step t+1
    last = T - 2 if bug == "terminal" else T - 1
    if bug == "terminal":                        # the last step handled apart, and its
        do = ps[T - 1] - y[T - 1]                # V term forgotten
        dh = V.T @ do
        dz = (1 - hs[T] ** 2) * dh
        gW += np.outer(dz, hs[T - 1])
        gU += np.outer(dz, x[T - 1])
        dh = W.T @ dz
    for t in range(last, -1, -1):
        do = ps[t] - y[t]
        gV += np.outer(do, hs[t + 1])
        dh = dh + V.T @ do
        dz = (1 - hs[t + 1] ** 2) * dh
        gW += np.outer(dz, hs[t])
        gU += np.outer(dz, x[t - 1] if bug == "shift" else x[t])
        if bug == "transpose":
            dh = W @ dz
        elif bug == "diag":  # diag(1 - h^(t+1)^2) W^T dL/dh^(t+1), not W^T diag(..) dL/dh^(t+1)
            dh = (1 - hs[t + 1] ** 2) * (W.T @ dh)
        else:
            dh = W.T @ dz
    return loss, {"W": gW, "U": gU, "V": gV, "h0": dh}


def buggy(bug):
    def bptt(params, x, y, h0):
        return my_bptt(params, x, y, h0, bug)
    bptt.__name__ = f"my_bptt_{bug}"
    return bptt


def test_a_correct_bptt_passes_quietly():
    assert check_bptt(my_bptt, CELL, seed=1) is None


@pytest.mark.parametrize("bug, key, first_T, with_h0", [
    # dL/dh^(t-1) = W dL/dz^(t): h0 is wrong from T = 1 on, W from T = 2 on
    ("transpose", "h0", 1, True),
    ("transpose", "W", 2, False),
    ("shift", "U", 2, True),         # x^(t-1) in place of x^(t)
    ("terminal", "V", 1, True),      # the V term of step T left out
    # the textbook misprint's order, diag(1 - h^2) W^T dL/dh in place of W^T diag(1 - h^2) dL/dh
    ("diag", "h0", 1, True),
    ("diag", "W", 2, False),
])
def test_a_seeded_bug_is_named(bug, key, first_T, with_h0):
    bptt = buggy(bug)
    if not with_h0:  # the gradient of h0 is optional
        def bptt(params, x, y, h0, inner=bptt):
            loss, grads = inner(params, x, y, h0)
            return loss, {k: v for k, v in grads.items() if k != "h0"}
        bptt.__name__ = f"my_bptt_{bug}"
    with pytest.raises(AssertionError) as caught:
        check_bptt(bptt, CELL, seed=0)
    message = str(caught.value)
    first = message.splitlines()[0]
    assert first.startswith(f"my_bptt_{bug}: gradient {key!r} is wrong: relative error "), message
    assert float(re.search(r"relative error (\S+)", first).group(1)) > 1e-5
    assert f"first wrong at T = {first_T}, " in message
    where = next(line for line in message.splitlines() if "first wrong at" in line)
    sizes = dict(re.findall(r"(\w) = (\d+)", where))
    # shrunk to sizes of 2: with D = 1, W^T = W and the diag factor commutes; with
    # M = 1 the softmax is constant and every gradient 0
    assert sizes["D"] == sizes["N"] == sizes["M"] == "2"


def test_wrong_shapes_and_complex_gradients_are_named_not_cast():
    def complex_V(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, dict(grads, V=grads["V"] + 0j)

    def transposed_U(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, dict(grads, U=grads["U"].T)

    with pytest.raises(AssertionError, match=r"gradient 'V' is wrong: complex"):
        check_bptt(complex_V, CELL)
    # (N, D) in place of (D, N): a wrong shape; shrunk to D = N, wrong values
    with pytest.raises(AssertionError, match=r"transposed_U: gradient 'U' is wrong"):
        check_bptt(transposed_U, CELL, sizes={"D": 3, "N": 2})


def test_a_wrong_loss_is_named():
    # gradients right, loss twice too large
    def double_loss(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return 2 * loss, grads

    with pytest.raises(AssertionError, match="the loss is wrong"):
        check_bptt(double_loss, CELL)


def test_assert_gradients_with_hypothesis():
    hypothesis = pytest.importorskip("hypothesis")

    @hypothesis.settings(max_examples=15, deadline=None, database=None)
    @hypothesis.given(problems(CELL, max_T=4, max_size=3))
    def right(problem):
        assert_gradients(my_bptt, CELL, *problem)

    right()

    @hypothesis.settings(max_examples=30, deadline=None, database=None)
    @hypothesis.given(problems(CELL, max_T=4, max_size=3))
    def wrong(problem):
        assert_gradients(buggy("shift"), CELL, *problem)

    with pytest.raises(AssertionError, match="'U' is wrong"):
        wrong()


def test_finite_differences_alone_catch_a_bug(monkeypatch):
    # mutation: the derived gradients replaced by the buggy function itself, so that
    # only the finite differences of its own loss are left to catch the bug
    import symrnn.testing as testing

    bad = buggy("shift")
    monkeypatch.setattr(testing, "_cell_and_derived", lambda cell: (CELL, None, bad))
    with pytest.raises(AssertionError, match=r"gradient 'U' is wrong: relative error \S+ "
                                             r"against finite differences of my_bptt_shift's"):
        check_bptt(bad, CELL)


def test_bad_options_are_one_value_error():
    with pytest.raises(ValueError, match="trials: must be a positive integer"):
        check_bptt(my_bptt, CELL, trials=0)
    with pytest.raises(ValueError, match="labels: the targets of .* are not class"):
        check_bptt(my_bptt, symrnn.ElmanRNN(output="mse"), labels=True)
    with pytest.raises(ValueError, match="'H' is not a size"):
        check_bptt(my_bptt, CELL, sizes={"H": 2})


def test_hypothesis_is_needed_only_for_the_strategy(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "hypothesis" or m.startswith("hypothesis.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    check_bptt(my_bptt, CELL, trials=1)
    with pytest.raises(ImportError, match="needs hypothesis: pip install hypothesis"):
        problems(CELL)
