"""The LSTM and GRU presets: the equations of Goodfellow et al. 10.10, their
derivation checked by verify(T), and the lambdified gradients against the
hand-written BPTT of tests/reference_gated.py and against central finite
differences of that file's own forward passes."""
import functools

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from sympy import HadamardProduct

import symrnn
from symrnn.graph import T, t
from symrnn.model.nodes import Adjoint, StepVar
from conftest import unchanged
from reference import finite_differences, rel_err
from reference_gated import (gru_bptt, gru_forward, lstm_bptt, lstm_forward, over_batch)
from ir_queries import (DOT, calls, generated, imports, kernel, outside_loops, statements,
                        step_loops, temps, value)
from symrnn.codegen import ir
from symrnn.codegen.passes.lower.context import STEP

NEXT = ir.BinOp("+", STEP, ir.Const(1))  # step t+1 in a loop

LSTM_KEYS = ["W_f", "U_f", "b_f", "W_g", "U_g", "b_g", "W_q", "U_q", "b_q", "W", "U", "b", "V"]
GRU_KEYS = ["W_u", "U_u", "b_u", "W_r", "U_r", "b_r", "W", "U", "b", "V"]
CELLS = {
    "lstm": dict(make=symrnn.LSTM, keys=LSTM_KEYS, states=["h0", "s0"],
                 bptt=lstm_bptt, forward=lstm_forward),
    "gru": dict(make=symrnn.GRU, keys=GRU_KEYS, states=["h0"],
                bptt=gru_bptt, forward=gru_forward),
}

# the same cells typed as text: the presets must be exactly these equations
LSTM_TEXT = """
params: W_f[D,D] U_f[D,N] b_f[D]   W_g[D,D] U_g[D,N] b_g[D]
params: W_q[D,D] U_q[D,N] b_q[D]   W[D,D] U[D,N] b[D]   V[M,D]
input:  x[N]
target: y[M]
state:  h[D], s[D]
f = sigmoid(W_f @ prev(h) + U_f @ x + b_f)     # forget gate
g = sigmoid(W_g @ prev(h) + U_g @ x + b_g)     # input gate
q = sigmoid(W_q @ prev(h) + U_q @ x + b_q)     # output gate
a = tanh(W @ prev(h) + U @ x + b)
s = f * prev(s) + g * a
h = tanh(s) * q
o = V @ h
yhat = softmax(o)
loss = -y.T @ log_softmax(o)
"""
GRU_TEXT = """
params: W_u[D,D] U_u[D,N] b_u[D]   W_r[D,D] U_r[D,N] b_r[D]   W[D,D] U[D,N] b[D]   V[M,D]
input:  x[N]
target: y[M]
state:  h[D]
u = sigmoid(W_u @ prev(h) + U_u @ x + b_u)     # update gate
r = sigmoid(W_r @ prev(h) + U_r @ x + b_r)     # reset gate
a = tanh(W @ (r * prev(h)) + U @ x + b)
h = u * prev(h) + (1 - u) * a
o = V @ h
yhat = softmax(o)
loss = -y.T @ log_softmax(o)
"""


@functools.lru_cache(maxsize=None)
def derivation(name):
    return symrnn.derive(CELLS[name]["make"]())


@functools.lru_cache(maxsize=None)
def gradient_function(name):
    return derivation(name).lambdify()


def random_params(name, D, N, M, rng):
    shapes = {"W": (D, D), "U": (D, N), "b": (D,), "V": (M, D)}
    return {k: rng.normal(size=shapes[k[0]]) * (1 / np.sqrt(D) if k[0] == "W" else 1)
            for k in CELLS[name]["keys"]}


def check_against_references(name, D, N, M, T_, seed, labels=True, give_states=True):
    """Generated (loss, grads) vs the hand-written BPTT (to 1e-10) and vs central
    differences of the hand-written forward pass (to 1e-6); returns the errors."""
    spec = CELLS[name]
    rng = np.random.default_rng(seed)
    params = random_params(name, D, N, M, rng)
    x = rng.normal(size=(T_, N))
    y = np.eye(M)[rng.integers(0, M, T_)] if labels else rng.dirichlet(np.ones(M), T_)
    initial = {s: rng.normal(size=D) for s in spec["states"]} if give_states else {}
    f = gradient_function(name)
    target = np.argmax(y, 1) if labels else y  # labels as integers
    loss, grads = unchanged(lambda: f(params, x, target, **initial),
                            *params.values(), x, target, *initial.values())
    ref_loss, ref = spec["bptt"](params, x, y, **initial)
    assert set(grads) == set(spec["keys"]) | set(spec["states"]) == set(ref)
    assert isinstance(loss, float) and abs(loss - ref_loss) <= 1e-10 * max(1.0, abs(ref_loss))
    err_ref = 0.0
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        err_ref = max(err_ref, rel_err(grads[k], ref[k]))
    assert err_ref < 1e-10

    def loss_of(a):  # the independent forward pass, not the generated one
        return spec["forward"]({k: a[k] for k in params}, x, y,
                               **{s: a[s] for s in spec["states"]})[0]

    start = {s: initial.get(s, np.zeros(D)) for s in spec["states"]}
    fd = finite_differences(loss_of, dict(params, **start))
    err_fd = max(rel_err(grads[k], fd[k]) for k in fd)
    assert err_fd < 1e-6
    return err_ref, err_fd


# -- the equations -------------------------------------------------------------------------
@pytest.mark.parametrize("name, text", [("lstm", LSTM_TEXT), ("gru", GRU_TEXT)])
def test_presets_are_the_textbook_equations(name, text):
    preset, typed = CELLS[name]["make"](), symrnn.parse_cell(text, name=name.upper())
    assert typed.equations == preset.equations
    assert typed.params == preset.params and typed.states == preset.states
    assert (typed.inputs, typed.targets) == (preset.inputs, preset.targets)
    assert [p.name for p in preset.params] == CELLS[name]["keys"]
    assert typed.targets_are_distributions and preset.targets_are_distributions
    assert typed.notation == preset.notation == {"yhat": r"\hat{y}"}


def test_lstm_state_carries_the_gradient_through_the_forget_gate():
    d = derivation("lstm")
    D, M = symrnn.LSTM().sizes[0], symrnn.LSTM().sizes[2]
    sv = lambda n, k, rows=D: StepVar(n, k, rows, 1)
    # dL/ds^(t) = dL/ds^(t+1) (.) f^(t+1) + ...: the constant error carousel
    ds = d.adjoints[Adjoint(sv("s", t))]
    assert HadamardProduct(Adjoint(sv("s", t + 1)), sv("f", t + 1)) in ds.args
    assert d.gradients["s0"] == HadamardProduct(Adjoint(sv("s", 1)), sv("f", 1))
    # no step T+1: dL/dh^(T) = V^T dL/do^(T)
    V = symrnn.LSTM().param("V")
    assert d.terminal[Adjoint(sv("h", T))] == V.T * Adjoint(sv("o", T, M))
    assert set(d.gradients) == set(LSTM_KEYS) | {"h0", "s0"}


def test_gru_state_keeps_u_of_the_old_state():
    d = derivation("gru")
    D = symrnn.GRU().sizes[0]
    sv = lambda n, k: StepVar(n, k, D, 1)
    dh = d.adjoints[Adjoint(sv("h", t))]
    assert HadamardProduct(Adjoint(sv("h", t + 1)), sv("u", t + 1)) in dh.args
    assert set(d.gradients) == set(GRU_KEYS) | {"h0"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("T_", [1, 2, 3, 4])
def test_verify(name, T_):
    report = derivation(name).verify(T_)
    assert report.gradients == CELLS[name]["keys"] + CELLS[name]["states"]
    assert report.chain_rule_terms > 0


# -- numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_small_case_against_references(name):
    err_ref, err_fd = check_against_references(name, 3, 4, 2, 5, seed=0)
    assert err_ref < 1e-12 and err_fd < 1e-7


@pytest.mark.parametrize("name", ["lstm", "gru"])
@settings(max_examples=6, deadline=None)
@given(D=st.integers(1, 4), N=st.integers(1, 4), M=st.integers(1, 4), T_=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1), labels=st.booleans(), give_states=st.booleans())
@example(D=1, N=1, M=1, T_=1, seed=1, labels=True, give_states=True)
@example(D=1, N=3, M=2, T_=4, seed=2, labels=False, give_states=True)
@example(D=4, N=2, M=3, T_=6, seed=3, labels=True, give_states=False)
@example(D=2, N=5, M=1, T_=3, seed=4, labels=False, give_states=False)
def test_random_shapes_against_references(name, D, N, M, T_, seed, labels, give_states):
    check_against_references(name, D, N, M, T_, seed, labels, give_states)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("initial", ["omitted", "shared", "per sequence", "mixed"])
def test_batches(name, initial):
    spec = CELLS[name]
    D, N, M, T_, B = 3, 2, 4, 5, 3
    rng = np.random.default_rng(len(initial))
    params = random_params(name, D, N, M, rng)
    x = rng.normal(size=(T_, N, B))
    labels = rng.integers(0, M, (T_, B))
    one_hot = np.eye(M)[labels].transpose(0, 2, 1)                  # (T, M, B)
    states = spec["states"]
    given_states = {
        "omitted": {}, "shared": {s: rng.normal(size=D) for s in states},
        "per sequence": {s: rng.normal(size=(D, B)) for s in states},
        "mixed": {states[0]: rng.normal(size=(D, B)), states[-1]: None} if len(states) > 1
        else {states[0]: None}}[initial]
    f = gradient_function(name)
    loss, grads = f(params, x, labels, **given_states)
    ref_loss, ref = over_batch(spec["bptt"], params, x, one_hot, **given_states)
    assert abs(loss - ref_loss) <= 1e-10 * max(1.0, ref_loss)
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        assert rel_err(grads[k], ref[k]) < 1e-10, k
    # labels and their one-hot columns are the same targets
    loss2, grads2 = f(params, x, one_hot, **given_states)
    assert loss2 == pytest.approx(loss, rel=1e-13)
    assert all(np.allclose(grads2[k], grads[k], rtol=1e-12, atol=1e-14) for k in grads)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_omitted_initial_states_are_zeros(name):
    spec = CELLS[name]
    rng = np.random.default_rng(7)
    params = random_params(name, 2, 3, 3, rng)
    x, labels = rng.normal(size=(4, 3)), rng.integers(0, 3, 4)
    f = gradient_function(name)
    zeros = {s: np.zeros(2) for s in spec["states"]}
    nones = {s: None for s in spec["states"]}
    results = [f(params, x, labels), f(params, x, labels, **nones), f(params, x, labels, **zeros)]
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        assert all(np.array_equal(grads[k], results[0][1][k]) for k in grads)
    ref_loss, ref = spec["bptt"](params, x, np.eye(3)[labels])
    assert abs(results[0][0] - ref_loss) < 1e-12
    assert all(rel_err(results[0][1][s], ref[s]) < 1e-10 for s in spec["states"])


def test_initial_states_are_keywords_named_after_the_states():
    f = gradient_function("lstm")
    rng = np.random.default_rng(8)
    params = random_params("lstm", 2, 2, 2, rng)
    with pytest.raises(TypeError, match="c0"):
        f(params, rng.normal(size=(3, 2)), [0, 1, 0], c0=np.zeros(2))
    with pytest.raises(TypeError):
        gradient_function("gru")(random_params("gru", 2, 2, 2, rng), rng.normal(size=(3, 2)),
                                 [0, 1, 0], s0=np.zeros(2))


def test_generated_loops_only_over_the_recurrences():
    # the LSTM's backward pass carries dL/dh and dL/ds from step t+1; the
    # parameter gradients are sums over t, one matrix product each
    f = kernel(generated(symrnn.LSTM()))
    loop = [s for s in step_loops(f.body) if s.step == -1][0]
    ds = ir.Temp("row", value("s", True))
    carried = ir.Update(ds, "+", ir.mul(ir.Index(ir.Temp("rows", value("s", True)), NEXT),
                                        ir.Index(ir.Temp("rows", value("f")), NEXT)))
    assert carried in statements(loop.body)  # dL/ds carried from t+1
    # the adjoints of the gates' pre-activations, side by side: one product for
    # the four W_k (passes/preactivation.py, passes/gates.py)
    products = [s for s in outside_loops(f) if isinstance(s, ir.Assign)
                and s.targets[0] in temps(s, "product")]
    over_columns = [s for s in products if s.value == ir.call(
        DOT, ir.Transpose(next(iter(temps(s.value, "columns")), None)),
        ir.Temp("prev", value("h")))]
    assert len(over_columns) == 1
    product = over_columns[0].targets[0]
    grad = [s for s in outside_loops(f) if isinstance(s, ir.Assign)
            and s.targets == (ir.Temp("grad", value("W_f")),)]
    assert len(grad) == 1 and grad[0].value.value == product
    assert not temps(loop, "grad")
    # no product of its own: the rows of the derivation's forms (no outer product)
    assert not calls(f, ir.NumPy("outer")) and "symrnn" not in imports(
        gradient_function("lstm").source)


# -- torch.nn.LSTM and torch.nn.GRU written as cells ---------------------------------
# PyTorch's documented equations (one layer), with its parameter names: W_i* act on
# x, W_h* on h^(t-1), and each gate has two biases b_i* and b_h*. The forward passes
# below are written from those equations, not from symrnn.
TORCH_LSTM = """
params: W_ii[H,N] W_hi[H,H] b_ii[H] b_hi[H]   W_if[H,N] W_hf[H,H] b_if[H] b_hf[H]
params: W_ig[H,N] W_hg[H,H] b_ig[H] b_hg[H]   W_io[H,N] W_ho[H,H] b_io[H] b_ho[H]
params: V[M,H]
input:  x[N]
target: y[M]
state:  h[H] c[H]
i = sigmoid(W_ii @ x + b_ii + W_hi @ prev(h) + b_hi)
f = sigmoid(W_if @ x + b_if + W_hf @ prev(h) + b_hf)
g = tanh(W_ig @ x + b_ig + W_hg @ prev(h) + b_hg)
o = sigmoid(W_io @ x + b_io + W_ho @ prev(h) + b_ho)
c = f * prev(c) + i * g
h = o * tanh(c)
loss = 0.5 * (V @ h - y).T @ (V @ h - y)
"""
TORCH_GRU = """
params: W_ir[H,N] W_hr[H,H] b_ir[H] b_hr[H]   W_iz[H,N] W_hz[H,H] b_iz[H] b_hz[H]
params: W_in[H,N] W_hn[H,H] b_in[H] b_hn[H]   V[M,H]
input:  x[N]
target: y[M]
state:  h[H]
r = sigmoid(W_ir @ x + b_ir + W_hr @ prev(h) + b_hr)
z = sigmoid(W_iz @ x + b_iz + W_hz @ prev(h) + b_hz)
n = tanh(W_in @ x + b_in + r * (W_hn @ prev(h) + b_hn))
h = (1 - z) * n + z * prev(h)
loss = 0.5 * (V @ h - y).T @ (V @ h - y)
"""


def _sig(v):
    return 1 / (1 + np.exp(-v))


def torch_lstm_forward(p, x, y, h0, c0):
    h, c, loss = h0, c0, 0.0
    for t_ in range(len(x)):
        gate = {k: p[f"W_i{k}"] @ x[t_] + p[f"b_i{k}"] + p[f"W_h{k}"] @ h + p[f"b_h{k}"]
                for k in "ifgo"}
        c = _sig(gate["f"]) * c + _sig(gate["i"]) * np.tanh(gate["g"])
        h = _sig(gate["o"]) * np.tanh(c)
        loss += 0.5 * np.sum((p["V"] @ h - y[t_]) ** 2)
    return loss


def torch_gru_forward(p, x, y, h0):
    h, loss = h0, 0.0
    for t_ in range(len(x)):
        r = _sig(p["W_ir"] @ x[t_] + p["b_ir"] + p["W_hr"] @ h + p["b_hr"])
        z = _sig(p["W_iz"] @ x[t_] + p["b_iz"] + p["W_hz"] @ h + p["b_hz"])
        n = np.tanh(p["W_in"] @ x[t_] + p["b_in"] + r * (p["W_hn"] @ h + p["b_hn"]))
        h = (1 - z) * n + z * h
        loss += 0.5 * np.sum((p["V"] @ h - y[t_]) ** 2)
    return loss


@pytest.mark.parametrize("text, forward, states", [
    (TORCH_LSTM, torch_lstm_forward, ["h0", "c0"]), (TORCH_GRU, torch_gru_forward, ["h0"])],
    ids=["torch LSTM", "torch GRU"])
@pytest.mark.torch
def test_torch_cells_as_text(text, forward, states):
    cell = symrnn.parse_cell(text)
    d = symrnn.derive(cell)
    d.verify(2)
    f = d.lambdify()
    rng = np.random.default_rng(11)
    H, N, M = 3, 2, 2
    size = {"H": H, "N": N, "M": M}
    params = {p.name: rng.normal(size=tuple(size[str(s)] for s in p.shape if s != 1)) * 0.5
              for p in cell.params}
    x, y = rng.normal(size=(4, N)), rng.normal(size=(4, M))
    starts = {s: rng.normal(size=H) for s in states}
    loss, grads = f(params, x, y, **starts)
    want = forward(params, x, y, *starts.values())
    assert loss == pytest.approx(want, rel=1e-12)
    fd = finite_differences(lambda a: forward({k: a[k] for k in params}, x, y,
                                              *[a[s] for s in states]), dict(params, **starts))
    for k in fd:
        assert rel_err(grads[k], fd[k]) < 1e-6, k


def _sorted(expr):
    """Element-wise products with their factors in one order (a * b is b * a)."""
    return expr.replace(lambda e: isinstance(e, HadamardProduct),
                        lambda e: HadamardProduct(*sorted(e.args, key=str)))


@pytest.mark.torch
def test_the_lstm_preset_is_torchs_lstm_with_renamed_gates():
    # symrnn.LSTM: f forget, g input, q output gate, a candidate, s the cell, one bias
    # per gate (torch's b_i* + b_h*, which only their sum enters): the same step
    from sympy import MatrixSymbol, ZeroMatrix
    torch = symrnn.parse_cell(TORCH_LSTM.replace("H", "D"))
    preset = symrnn.LSTM()
    names = {"W_ii": "U_g", "W_hi": "W_g", "W_if": "U_f", "W_hf": "W_f", "W_ig": "U",
             "W_hg": "W", "W_io": "U_q", "W_ho": "W_q", "b_ii": "b_g", "b_if": "b_f",
             "b_ig": "b", "b_io": "b_q", "i": "g", "g": "a", "o": "q", "c": "s"}
    rename = {}
    for sym in torch.params + torch.variables:
        if sym.name in names:
            rename[sym] = MatrixSymbol(names[sym.name], *sym.shape)
        elif sym.name.startswith("b_h"):
            rename[sym] = ZeroMatrix(*sym.shape)
    step = {rename.get(lhs, lhs).name: _sorted(rhs.xreplace(rename).doit())
            for lhs, rhs in torch.equations[:-1]}
    want = {lhs.name: _sorted(rhs) for lhs, rhs in preset.equations
            if lhs.name in ("f", "g", "q", "a", "s", "h")}
    assert step == want
