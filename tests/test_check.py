"""The checking stack (symrnn.checking) and ``symrnn.check.check``: the metric, the
random problems in every layout, the hand-written references against finite
differences of their own forward passes, and mutations that each kind of check
catches (a wrong adjoint rule, a generated function wrong on one path only, a
complex gradient)."""
import numpy as np
import pytest
from sympy import HadamardProduct

import symrnn
from symrnn.check import check
from symrnn.checking import (Layout, defect, finite_differences, make_problem, over_batch,
                             reference_for, relative_error, standard_layouts)
from symrnn.checking.references import gru_forward, lstm_forward

MGU = """
params: W_f[D,D] U_f[D,N] b_f[D]
params: W[D,D] U[D,N] b[D]
params: V[M,D]
input:  x[N]
target: y[M]
state:  h[D]
f = sigmoid(W_f @ prev(h) + U_f @ x + b_f)
a = tanh(W @ (f * prev(h)) + U @ x + b)
h = (1 - f) * prev(h) + f * a
o = V @ h
yhat = softmax(o)
loss = -y.T @ log_softmax(o)
"""


def test_relative_error_and_defects():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.2)
    assert relative_error(np.array([1e-9]), np.array([2e-9])) == pytest.approx(1e-9)  # absolute
    assert relative_error(np.zeros(2), np.zeros(3)) == np.inf
    assert relative_error(np.ones(2) + 0j, np.ones(2)) == np.inf   # never cast
    assert relative_error(np.array([np.nan]), np.array([1.0])) == np.inf
    assert defect(np.ones((2, 3)), (2, 3)) is None
    assert defect(np.ones((3, 2)), (2, 3)) == "shape (3, 2), expected (2, 3)"
    assert defect(np.ones(2, complex), (2,)).startswith("complex")
    assert defect(None, (2,)) == "missing"
    assert defect(np.array(["a"]), (1,)).startswith("not real")
    assert defect(np.array([np.inf]), (1,)) == "not finite"


def test_problems_have_the_layouts_they_say():
    cell = symrnn.LSTM()
    seen = set()
    for k, layout in enumerate(standard_layouts(cell)):
        p = make_problem(cell, k, layout=layout)
        D, N, M = p.sizes["D"], p.sizes["N"], p.sizes["M"]
        B = p.batch
        assert (B is not None) == layout.batch
        assert p.x.shape == ((p.T, N, B) if B else (p.T, N))
        if layout.labels:
            assert p.y.dtype.kind == "i" and p.y.shape == ((p.T, B) if B else (p.T,))
            assert p.classes == M
        else:  # one-hot rows
            assert p.y.shape == ((p.T, M, B) if B else (p.T, M))
            assert np.array_equal(p.y.sum(1), np.ones(p.y.sum(1).shape))
        dtype = np.float32 if layout.float32 else np.float64
        assert all(v.dtype == dtype for v in p.params.values()) and p.x.dtype == dtype
        assert p.params["W_f"].shape == (D, D) and p.params["b_f"].shape == (D,)
        shapes = p.gradient_shapes()
        assert set(p.initial) == ({"h0", "s0"} if layout.starts != "none" else set())
        expected = (D, B) if B and layout.starts != "shared" else (D,)
        assert shapes["h0"] == shapes["s0"] == expected
        seen.add((layout.batch, layout.labels, layout.starts, layout.float32))
    assert len(seen) == len(standard_layouts(cell))
    again = make_problem(cell, 3, layout=standard_layouts(cell)[3])
    first = make_problem(cell, 3, layout=standard_layouts(cell)[3])
    assert np.array_equal(again.x, first.x)                       # a seed repeats a problem
    pinned = make_problem(cell, 0, T=9, sizes={"D": 8}, batch=5, layout=Layout(batch=True))
    assert pinned.T == 9 and pinned.sizes["D"] == 8 and pinned.batch == 5
    with pytest.raises(ValueError, match="'H' is not a size"):
        make_problem(cell, 0, sizes={"H": 2})
    with pytest.raises(ValueError, match="T: must be a positive integer"):
        make_problem(cell, 0, T=0)
    with pytest.raises(ValueError, match="per-sequence"):
        Layout(batch=False, starts="per-sequence")
    with pytest.raises(ValueError, match="seed: expected an integer >= 0, got -1"):
        check(cell, seed=-1)
    with pytest.raises(ValueError, match="batch: must be a positive integer"):
        check(cell, batch=0)
    with pytest.raises(ValueError, match="hidden: the cell has no size D"):
        check(symrnn.parse_cell(MGU.replace("D", "H")), hidden=3)


@pytest.mark.parametrize("cell, forward", [
    (symrnn.LSTM(), lambda p, x, y, h0=None, s0=None: lstm_forward(p, x, y, h0, s0)[0]),
    (symrnn.GRU(), lambda p, x, y, h0=None: gru_forward(p, x, y, h0)[0]),
    (symrnn.ElmanRNN("relu", "mse", bias=True), None),
])
def test_each_reference_against_finite_differences_of_its_forward(cell, forward):
    # two independent routes: the hand-written backward pass, and central differences
    # of the hand-written forward pass (over a batch with a shared start)
    bptt = reference_for(cell)
    forward = forward or (lambda *a, **k: bptt(*a, **k)[0])
    p = make_problem(cell, 1, T=3, sizes={"D": 3, "N": 2, "M": 4},
                     layout=Layout(batch=True, labels=False, starts="shared"))
    loss, grads = over_batch(bptt, p.params, p.x, p.y, **p.initial)
    keys = list(p.params)

    def total(arrays):
        return over_batch(lambda *a, **k: (forward(*a, **k), {}), {k: arrays[k] for k in keys},
                          p.x, p.y, **{k: arrays[k] for k in p.initial})[0]

    numeric = finite_differences(total, {**p.params, **p.initial})
    for k in numeric:
        assert relative_error(grads[k], numeric[k]) < 1e-7, k


def test_reference_for_finds_the_textbook_cells_also_as_text():
    lstm_text = """
params: W_f[D,D] U_f[D,N] b_f[D]   W_g[D,D] U_g[D,N] b_g[D]
params: W_q[D,D] U_q[D,N] b_q[D]   W[D,D] U[D,N] b[D]   V[M,D]
input:  x[N]
target: y[M]
state:  h[D], s[D]
f = sigmoid(W_f @ prev(h) + U_f @ x + b_f)
g = sigmoid(W_g @ prev(h) + U_g @ x + b_g)
q = sigmoid(W_q @ prev(h) + U_q @ x + b_q)
a = tanh(W @ prev(h) + U @ x + b)
s = f * prev(s) + g * a
h = tanh(s) * q
o = V @ h
yhat = softmax(o)
loss = -y.T @ log_softmax(o)
"""
    assert reference_for(symrnn.parse_cell(lstm_text)) is not None
    assert reference_for(symrnn.parse_cell(MGU)) is None


def test_check_passes_every_layout_and_covers_them():
    report = check(symrnn.GRU(), seed=11)
    assert report.passed, report.table()
    assert len(report.problems) == len(standard_layouts(symrnn.GRU()))
    assert report.has_reference and report.rows[-1].name == "loss"


# -- mutations: each kind of check fails when the code is broken on purpose -------------

def _broken_sigmoid(monkeypatch):
    from symrnn.derivation.vjps import VJPS
    from symrnn.ops import Sigmoid

    # ans * ans * g in place of ans * (1 - ans) * g
    monkeypatch.setitem(VJPS, Sigmoid,
                        lambda ans, args, i: lambda g: HadamardProduct(ans, ans, g))


def test_a_wrong_adjoint_rule_fails_against_the_reference(monkeypatch):
    _broken_sigmoid(monkeypatch)
    report = check(symrnn.ElmanRNN(activation="sigmoid"), seed=0)
    assert not report.passed
    rows = {r.name: r for r in report.rows}
    assert rows["W"].reference > 1e-3 and rows["W"].finite_differences > 1e-3
    assert rows["V"].passed and rows["loss"].passed   # the forward pass is untouched
    assert "FAILED: W, U, h0" in report.table()


def test_a_wrong_adjoint_rule_fails_against_finite_differences(monkeypatch):
    # a cell without a hand-written reference: finite differences alone catch it
    _broken_sigmoid(monkeypatch)
    report = check(symrnn.parse_cell(MGU, name="MGU"), seed=0)
    assert not report.passed and not report.has_reference
    assert all(r.reference is None for r in report.rows)
    assert {r.name for r in report.rows if not r.passed} >= {"W_f", "U_f", "b_f"}
    assert "finite differences only" in report.table()


def _wrapped(cell, change):
    f = symrnn.derive(cell).lambdify()

    def g(params, x, y, **initial):
        loss, grads = f(params, x, y, **initial)
        return loss, change(grads, x, y, initial)
    g.loss = f.loss
    return g


@pytest.mark.parametrize("change, row, why", [
    # wrong only when h0 is omitted (the API's default): every layout must run that path
    (lambda g, x, y, s: dict(g, h0=g["h0"] * (1.5 if "h0" not in s else 1.0)), "h0", None),
    # wrong only for a shared (D,) start in a batch
    (lambda g, x, y, s: dict(g, h0=g["h0"] * (2.0 if np.ndim(x) == 3 and np.ndim(s.get("h0"))
                                               == 1 else 1.0)), "h0", None),
    # wrong only for one-hot targets (not labels)
    (lambda g, x, y, s: dict(g, V=g["V"] + (0.1 if np.asarray(y).dtype.kind == "f" else 0)),
     "V", None),
    # wrong only for float32 input
    (lambda g, x, y, s: dict(g, U=g["U"] * (1.01 if x.dtype == np.float32 else 1.0)), "U",
     None),
    # complex gradients are rejected, not cast
    (lambda g, x, y, s: dict(g, W=g["W"] + 0j), "W", "complex (complex128)"),
    # a transposed gradient
    (lambda g, x, y, s: dict(g, U=g["U"].T), "U", "shape"),
])
def test_a_function_wrong_on_one_path_fails(change, row, why):
    cell = symrnn.ElmanRNN()
    report = check(cell, seed=2, sizes={"D": 3, "N": 2}, function=_wrapped(cell, change))
    failed = {r.name: r for r in report.rows if not r.passed}
    assert list(failed) == [row], report.table()
    if why:
        assert failed[row].defect.startswith(why)
        assert f"FAILED: {why}" in report.table()


def test_a_function_that_raises_on_a_layout_fails():
    cell = symrnn.ElmanRNN()
    f = symrnn.derive(cell).lambdify()

    def no_float32(params, x, y, **initial):
        if x.dtype == np.float32:
            raise TypeError("float32 is not supported")
        return f(params, x, y, **initial)
    no_float32.loss = f.loss
    report = check(cell, seed=0, function=no_float32)
    assert not report.passed
    assert "the generated function raised TypeError: float32 is not supported" in report.table()
    assert report.table().endswith("FAILED: raised")


# -- kinks and losses that are not finite ------------------------------------------------

RELU_AT_ZERO = """
params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = relu(W @ prev(h)) + tanh(U @ x)
loss = y.T @ (V @ h)
"""


def test_finite_differences_name_the_entries_at_a_kink():
    # |a0| + relu(a1) + relu(-a2) at a = 0 has a kink in a0, a1 and a2; a3 is smooth
    # (a3**2 / 2 + 1e3 a3**2: a large curvature, one-sided gaps that halve)
    def loss(arrays):
        a = arrays["a"]
        return abs(a[0]) + max(a[1], 0.0) + max(-a[2], 0.0) + 1000.5 * a[3] ** 2 + a[4]

    kinks = {}
    numeric = finite_differences(loss, {"a": np.array([0.0, 0.0, 0.0, 0.3, 2.0])},
                                 kinks=kinks)["a"]
    assert kinks == {"a": [(0,), (1,), (2,)]}
    assert numeric[3] == pytest.approx(600.3) and numeric[4] == pytest.approx(1.0)


def test_a_right_relu_gradient_at_a_preactivation_of_0_passes():
    # with h0 omitted (zeros), W h^(0) = 0: every h0 entry sits on relu's kink; the
    # derived gradient takes relu'(0) = 0 and the central differences the mean of the
    # two sides, so those entries are left out and the report says so
    cell = symrnn.parse_cell(RELU_AT_ZERO, name="relu0")
    report = check(cell, seed=1)
    assert report.passed, report.table()
    assert set(report.kinks) == {"h0"}
    assert all(report.problems[k - 1].endswith(("h0 = None", "h0 = None, float32"))
               for k in report.kinks["h0"])
    assert ("not compared with finite differences, at a kink of the loss (e.g. relu at 0, "
            "where the one-sided differences disagree): h0 in problems 1, 5, 6") in report.table()
    rows = {r.name: r for r in report.rows}
    assert rows["h0"].finite_differences < 1e-8  # compared where h0 is given


def test_a_wrong_gradient_next_to_a_kink_still_fails():
    cell = symrnn.parse_cell(RELU_AT_ZERO, name="relu0")
    wrong = _wrapped(cell, lambda g, x, y, s: dict(g, W=g["W"] * 1.001))
    report = check(cell, seed=1, function=wrong)
    assert [r.name for r in report.rows if not r.passed] == ["W"], report.table()


def test_a_row_with_a_defect_then_numbers():
    # a defect in problem 1, numbers in problem 2: the defect stays, no AttributeError
    from symrnn.check import Row

    row = Row("loss")
    row.add(1, None, None, "not finite (-inf)")
    row.add(2, 1e-12, 1e-9, None)
    row.add(3, 1e-3, None, None)
    assert (row.defect, row.problem, row.reference) == ("not finite (-inf)", 1, 1e-3)
    assert not row.passed
    row = Row("W")
    row.add(1, None, None, None)  # nothing compared
    row.add(2, 1e-12, 2e-9, None)
    assert (row.problem, row.finite_differences) == (2, 2e-9) and row.passed


def test_a_loss_that_is_not_finite_fails_in_one_row():
    # log(relu(-y^T y)) is -inf: the table says so in the loss row; nothing else can
    # be compared (finite differences of -inf are no slopes). (log(0 * ...), -inf
    # whatever the data, is refused by the parser)
    text = RELU_AT_ZERO.replace("loss = y.T @ (V @ h)",
                                "loss = y.T @ (V @ h) + log(relu(-(y.T @ y)))")
    cell = symrnn.parse_cell(text, name="log0")
    with np.errstate(all="ignore"):
        report = check(cell, seed=1)
    table = report.table()
    assert not report.passed and report.table().endswith("FAILED: loss")
    assert "FAILED: not finite (-inf)" in [line for line in table.splitlines()
                                           if line.startswith("loss ")][0]
    assert all(line.endswith("not compared") for line in table.splitlines()
               if line.split()[:1] in (["W"], ["U"], ["V"], ["h0"]))
