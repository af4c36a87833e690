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


@pytest.mark.slow
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
    import symrnn.checking.against as testing

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


# -- messages that teach: each case written by hand as a student would get it wrong ----

def student(bug=None, mean=None):
    """A second hand-written Elman BPTT, with dL/dh^(t) split into its direct term and
    the term through step t+1, so that each classic mistake is one change."""
    def bptt(params, x, y, h0):
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
        through_next = np.zeros_like(h0)            # W^T dL/dz^(t+1)
        for t in reversed(range(T)):
            do = ps[t] - y[t]
            gV += np.outer(do, hs[t + 1])
            dh = V.T @ do + (0.0 if bug == "cut" else through_next)
            h_of_z = hs[t] if bug == "tanh at t-1" else hs[t + 1]
            dz = (1 - h_of_z ** 2) * dh
            gW += np.outer(dz, hs[t + 1] if bug == "h(t) in dW" else hs[t])
            gU += np.outer(dz, x[t])
            through_next = W.T @ dz
        grads = {"W": gW.T if bug == "dW transposed" else gW, "U": gU, "V": gV,
                 "h0": through_next}
        if mean == "loss and grads":
            return loss / T, {k: v / T for k, v in grads.items()}
        return loss, grads
    bptt.__name__ = "student"
    return bptt


def failure(fn, cell=CELL, **options):
    with pytest.raises(AssertionError) as caught:
        check_bptt(fn, cell, **options)
    return str(caught.value)


def test_the_second_student_is_right():
    check_bptt(student(), CELL, seed=2)


@pytest.mark.parametrize("bug, first, hint", [
    ("dW transposed", "student: gradient 'W' is wrong: relative error",
     "likely mistake: 'W' is the right gradient transposed (an outer product in the wrong "
     "order?)"),
    ("cut", "student: gradient 'W' is wrong: relative error",
     "likely mistake: the recurrence is cut: dL/dh^(t) lacks its term through step t+1 "
     "(dL/dz^(t+1)), so each step keeps only its direct term"),
    ("h(t) in dW", "student: gradient 'W' is wrong: relative error",
     "likely mistake: dL/dW uses h^(t) where the derivation has h^(t-1)"),
    ("tanh at t-1", "student: gradient 'W' is wrong: relative error",
     "likely mistake: dL/dz^(t) uses h^(t-1) where the derivation has h^(t)"),
])
def test_a_classic_mistake_is_named(bug, first, hint):
    message = failure(student(bug))
    lines = message.splitlines()
    assert lines[0].startswith(first), message
    assert lines[1] == "  " + hint, message
    assert lines[2].startswith("  first wrong at T = "), message


def test_the_transposed_recurrence_of_the_first_student_is_named():
    message = failure(buggy("transpose"))
    assert "  likely mistake: dL/dh^(t) uses W where the derivation has W^T\n" in message


@pytest.mark.parametrize("bug", ["terminal", "diag", "shift"])
def test_no_mistake_is_named_when_none_fits(bug):
    # the V term of step T left out, the diag factor on the wrong side, x^(t-1): none of
    # the mistakes made on purpose gives these values, so no guess is printed
    assert "likely mistake" not in failure(buggy(bug))


def test_a_mean_over_the_steps_is_named():
    # T = 4 asked; shrunk to the first T at which a mean differs from a sum
    message = failure(student(mean="loss and grads"), T=4)
    assert message.startswith("student: the loss is wrong: relative error 5.0e-01 against the "
                              "loss of Elman RNN (tanh, softmax_ce)\n"), message
    assert ("  likely mistake: the loss and 'W', 'U', 'V', 'h0' are 1/T of the right values "
            "(T = 2): BPTT sums the steps' contributions, it does not average them\n"
            "  first wrong at T = 2, ") in message


def test_a_mean_over_the_batch_is_named():
    def batch_mean(params, x, y, h0):
        B = x.shape[2]
        loss, grads = 0.0, {}
        for b in range(B):  # the student's one-sequence BPTT per sequence, then a mean
            lb, gb = my_bptt(params, x[:, :, b], y[:, :, b], h0)
            loss += lb / B
            for k, v in gb.items():
                grads[k] = grads.get(k, 0) + v / B
        grads["V"] = grads["V"] * B  # right: only the others are averaged
        return loss, grads

    message = failure(batch_mean, T=2, batch=3)
    assert ("  likely mistake: the loss and 'W', 'U', 'h0' are 1/B of the right values "
            "(B = 3): the loss is the sum over the batch, not its mean\n") in message, message


def test_a_sign_error_is_named():
    def ascent(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, dict(grads, U=-grads["U"])

    assert "  likely mistake: 'U' is the right gradient times -1\n" in failure(ascent)


def test_a_mistake_in_another_cell_is_named():
    # the hand-written LSTM of symrnn.checking (not derived), its W_f gradient transposed
    # and its input-gate gradients averaged over the steps
    from symrnn.checking.references import lstm_bptt

    def lstm(params, x, y, h0, s0):
        loss, grads = lstm_bptt(params, x, y, h0, s0)
        grads["W_f"] = grads["W_f"].T
        for k in ("W_g", "U_g", "b_g"):
            grads[k] = grads[k] / len(x)
        return loss, grads

    message = failure(lstm, symrnn.LSTM(), T=3, sizes={"D": 3})
    assert "  likely mistake: 'W_f' is the right gradient transposed" in message, message
    assert "  likely mistake: 'W_g', 'U_g', 'b_g' are 1/T of the right gradients (T = 3)" \
        in message, message


@pytest.mark.parametrize("loss, says", [
    (lambda loss, T: np.array([loss]),
     "student: the loss is not a scalar: an array of shape (1,); it must be one real number "
     "(a float or a 0-d array); this one holds the right value: return float(loss) (or "
     "loss.item()) (on T = "),
    (lambda loss, T: np.full(T, loss / T),
     "student: the loss is not a scalar: an array of shape (4,); it must be one real number "
     "(a float or a 0-d array); its entries add up to the right loss: return their sum (the "
     "loss is the sum over the steps) (on T = 4, "),
    (lambda loss, T: "0.25",
     "student: the loss is a str ('0.25'), not a number; it must be one real number"),
    (lambda loss, T: complex(loss, 1),
     "student: the loss is complex ("),
    (lambda loss, T: float("nan"),
     "student: the loss is not finite (nan); it must be one real number"),
])
def test_a_loss_that_is_not_a_scalar_is_one_clear_message(loss, says):
    def wrong_loss(params, x, y, h0):
        value, grads = my_bptt(params, x, y, h0)
        return loss(value, len(x)), grads
    wrong_loss.__name__ = "student"

    message = failure(wrong_loss, T=4)
    assert message.startswith(says), message
    assert len(message.splitlines()) == 1


def test_the_keys_expected_and_received_are_listed():
    def d_names(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, {"d" + k: v for k, v in grads.items()}

    assert failure(d_names) == ("d_names: grads has no key 'W', 'U', 'V': the keys are the "
                                "names of the parameters, 'W', 'U', 'V' (and optionally "
                                "'h0'); got 'dW', 'dU', 'dV', 'dh0'")

    def lower(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, dict(grads, w=grads.pop("W"))

    assert failure(lower).startswith("lower: grads has no key 'W': the keys are the names of "
                                     "the parameters, 'W', 'U', 'V' (and optionally 'h0'); "
                                     "got 'U', 'V', 'h0', 'w'")


def _shape_of(h0):
    return h0.reshape(100, 100)  # a student's helper that fails


def test_an_exception_keeps_the_students_own_traceback():
    import traceback

    def raising(params, x, y, h0):
        return _shape_of(h0)

    with pytest.raises(AssertionError) as caught:
        check_bptt(raising, CELL, seed=0)
    error = caught.value
    assert str(error).startswith("raising raised ValueError: cannot reshape array of size ")
    cause = error.__cause__
    assert isinstance(cause, ValueError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert [f.name for f in frames] == ["raising", "_shape_of"]  # theirs, from their call on
    assert {f.filename for f in frames} == {__file__}
    # the AssertionError itself carries no frame of symrnn's below check_bptt
    assert [f.name for f in traceback.extract_tb(error.__traceback__)] == [
        "test_an_exception_keeps_the_students_own_traceback", "check_bptt"]


def test_sys_exit_in_the_function_is_a_failure_not_an_exit():
    def exits(params, x, y, h0):
        raise SystemExit(0)

    assert failure(exits).startswith("exits called sys.exit(0) (on T = ")


@pytest.mark.slow
def test_pytest_shows_no_symrnn_source(tmp_path):
    # a student's test file run by pytest: the failure shows their line and the message,
    # not symrnn's source (``__tracebackhide__``) nor its frames
    import subprocess
    import sys
    import textwrap

    (tmp_path / "test_student.py").write_text(textwrap.dedent('''
        import numpy as np
        import symrnn
        from symrnn.testing import check_bptt, assert_gradients

        def bptt(params, x, y, h0):
            raise ValueError("the student's own error")

        def test_mine():
            check_bptt(bptt, symrnn.ElmanRNN())

        def test_one_problem():
            rng = np.random.default_rng(0)
            p = {"W": rng.normal(size=(2, 2)), "U": rng.normal(size=(2, 2)),
                 "V": rng.normal(size=(2, 2))}
            assert_gradients(lambda *a, **k: (1.0, {}), symrnn.ElmanRNN(), p,
                             rng.normal(size=(3, 2)), np.eye(2)[[0, 1, 0]], np.zeros(2))
    '''))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path / "test_student.py")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    out = done.stdout
    assert "2 failed" in out, out
    assert 'raise ValueError("the student\'s own error")' in out  # their frame, shown
    assert "E       AssertionError: bptt raised ValueError: the student's own error" in out
    assert "E       AssertionError: <lambda>: grads has no key 'W', 'U', 'V'" in out
    assert "testing.py" not in out and "def check_bptt" not in out and "_call(" not in out, out


def test_a_mistake_made_in_one_formula_only_is_named():
    # the recurrence cut for dW only (dU and dh0 use the whole one): the cut fits every
    # wrong value, so it is named, though it would change more
    def cut_in_dW(params, x, y, h0):
        loss, grads = student()(params, x, y, h0)
        grads["W"] = student("cut")(params, x, y, h0)[1]["W"]
        return loss, grads

    message = failure(cut_in_dW)
    assert message.splitlines()[1].startswith("  likely mistake: the recurrence is cut: ")


def test_odd_values_get_the_failure_without_a_hint():
    def ragged(params, x, y, h0):
        loss, grads = my_bptt(params, x, y, h0)
        return loss, dict(grads, W=[[1.0, 2.0], [3.0]])

    assert failure(ragged).startswith("ragged: gradient 'W' is wrong: not an array (list)")
