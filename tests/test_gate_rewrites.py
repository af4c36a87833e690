"""The rewrites that give the NumPy kernels of gated cells their per-step shape:
adjoints of pre-activations (codegen/preactivation.py), products carried from
step t to t-1 of the backward loop (codegen/carried.py), same-form writes of a
fused sum's columns as one statement, the weight gradients of a group as one
product, and one tanh for sigmoid and tanh gates (codegen/fuse.py).

The numbers of every cell are checked by the fuzz tests and tests/test_gated.py;
here: that each rewrite happens where it should and not where it must not,
with the generated gradients checked against finite differences."""
import itertools
import re

import numpy as np
from sympy import HadamardProduct

import symrnn
from symrnn.codegen.preactivation import factor_common, preactivation_adjoints
from symrnn.graph import t
from symrnn.model.nodes import Adjoint, StepVar, SumOverTime

from test_fuzz_cells import Builder, FuzzCell, _sigmoid, check


def _loop(source, header):
    """The body of the generated ``gradients``' loop that starts with ``header``."""
    gradients = source[source.index("def gradients"):]
    after = gradients[gradients.index(header):].split("\n")[1:]
    return [line.strip() for line in itertools.takewhile(
        lambda line: line.startswith(" " * 8), after)]


def _cell(text, params, steps, states):
    b = Builder(None)
    b.params = params
    b.steps = steps
    return FuzzCell(text, b, states, [("x", "N")], [("y", "M")],
                    [lambda env: 0.5 * (env["o"] - env["y"]) @ (env["o"] - env["y"])])


def test_gate_adjoints_become_adjoints_of_their_pre_activations():
    d = symrnn.derive(symrnn.LSTM())
    adjoints, gradients = preactivation_adjoints(d.adjoints, d.gradients)
    names = {a.var.name for a in adjoints}
    assert {"_in_f", "_in_g", "_in_q", "_in_a"} <= names
    assert not {"f", "g", "q", "a"} & names
    D = d.cell.param("W_f").shape[0]
    z = Adjoint(StepVar("_in_f", t, D, 1))
    h_prev = StepVar("h", t - 1, D, 1)
    assert gradients["W_f"] == SumOverTime(z * h_prev.T, t, 1, symrnn.graph.T)
    # dL/dz_f = sigma'(f) * dL/df: the activation's derivative joins the definition
    f = StepVar("f", t, D, 1)
    factors = adjoints[Adjoint(z.var)].args
    assert f in factors and any(a != f and a.has(f) for a in factors)  # f and 1 - f


def test_a_sum_with_a_common_adjoint_factor_is_factored():
    D = symrnn.derive(symrnn.GRU()).cell.param("W").shape[0]
    dh, a, h = (Adjoint(StepVar("h", t, D, 1)), StepVar("a", t, D, 1),
                StepVar("h", t - 1, D, 1))
    assert factor_common(-HadamardProduct(dh, a) + HadamardProduct(dh, h)) == \
        HadamardProduct(dh, h - a)
    other = Adjoint(StepVar("a", t, D, 1))
    same = HadamardProduct(dh, a) + HadamardProduct(other, h)
    assert factor_common(same) == same


LINEAR_A = """params: W[D, D] U[D, N] V[M, D]
input: x[N]
target: y[M]
state: h[D]
a = W @ prev(h) + U @ x
h = tanh(a)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)"""


def test_an_adjoint_read_without_the_factor_keeps_its_name_and_numbers():
    # dL/da is read as W^T dL/da(t+1) and in dL/dW: not a factor of an
    # element-wise product, so it stays; dL/dh is only read as (1 - h^2) dL/dh
    d = symrnn.derive(symrnn.parse_cell(LINEAR_A))
    adjoints, _ = preactivation_adjoints(d.adjoints, d.gradients)
    names = {a.var.name for a in adjoints}
    assert "a" in names and "_in_a" not in names
    assert "_in_h" in names and "h" not in names
    cell = _cell(LINEAR_A, {"W": ("D", "D"), "U": ("D", "N"), "V": ("M", "D")},
                 [("a", lambda env: env["W"] @ env["prev h"] + env["U"] @ env["x"]),
                  ("h", lambda env: np.tanh(env["a"])), ("o", lambda env: env["V"] @ env["h"])],
                 [("h", "D")])
    assert check(cell, verify=False, T=4).endswith("numpy right")


def test_the_gru_computes_w_times_its_candidates_adjoint_once_per_step():
    source = symrnn.derive(symrnn.GRU()).lambdify().source
    loop = _loop(source, "for _t in _range(_T, 0, -1):")
    products = [line for line in loop if "_dot(" in line]
    # the fused sum over u and r, and W^T dz_a(t), which dL/dh(t-1) reads at step t
    assert len(products) == 2, loop
    assert any(re.search(r"_dot\(_dr__in_a\[_t\], W, _dr__carry\d+\[_t\]\)", line)
               for line in loop)
    assert any(re.search(r"_dr__carry\d+\[_t \+ 1\]", line) for line in loop)


def test_lstm_backward_step_writes_the_gates_of_one_form_at_once():
    source = symrnn.derive(symrnn.LSTM()).lambdify().source
    loop = _loop(source, "for _t in _range(_T, 0, -1):")
    # dz_f, dz_g, dz_a = dL/ds times factors known before the loop: one statement
    assert sum(bool(re.fullmatch(r"_dr__fused\d+\[_t\] \*= _dt_s\[:, None\]", line))
               for line in loop) == 1, loop
    assert len(loop) <= 8, loop
    assert "1.0 -" not in "\n".join(loop)  # no activation derivative inside the loop


def test_sigmoid_and_tanh_gates_share_one_tanh_per_step():
    source = symrnn.derive(symrnn.LSTM()).lambdify().source
    loop = _loop(source, "for _t in _range(1, _T + 1, 1):")
    assert not any("_sigmoid(" in line for line in loop), loop
    tanhs = [line for line in loop if "_np.tanh(" in line]
    assert len(tanhs) == 2, loop  # all four gates, then tanh(s)
    assert re.search(r"_np\.concatenate\(\(0\.5 \* _tr_W_f, 0\.5 \* _tr_W_g, "
                     r"0\.5 \* _tr_W_q, _tr_W\), 1\)", source)


DIAGONAL = """params: w_i[D] w_c[D] W_o[D, D] U_i[D, N] U_c[D, N] U_o[D, N] b_i[D] V[M, D]
input: x[N]
target: y[M]
state: h[D]
i = sigmoid(w_i * prev(h) + U_i @ x + b_i)
c = tanh(w_c * prev(h) + U_c @ x)
r = sigmoid(W_o @ prev(h) + U_o @ x)
h = i * c + r * prev(h)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)"""


def test_a_folded_sigmoid_gives_the_numbers_of_the_cell():
    # a sigmoid and a tanh gate of one form (diagonal weights) share a tanh; the
    # third gate has another form; the gradients against finite differences
    source = symrnn.derive(symrnn.parse_cell(DIAGONAL)).lambdify().source
    assert "0.5 * w_i" in source
    params = {"w_i": ("D", None), "w_c": ("D", None), "W_o": ("D", "D"), "U_i": ("D", "N"),
              "U_c": ("D", "N"), "U_o": ("D", "N"), "b_i": ("D", None), "V": ("M", "D")}
    steps = [
        ("i", lambda e: _sigmoid(e["w_i"] * e["prev h"] + e["U_i"] @ e["x"] + e["b_i"])),
        ("c", lambda e: np.tanh(e["w_c"] * e["prev h"] + e["U_c"] @ e["x"])),
        ("r", lambda e: _sigmoid(e["W_o"] @ e["prev h"] + e["U_o"] @ e["x"])),
        ("h", lambda e: e["i"] * e["c"] + e["r"] * e["prev h"]),
        ("o", lambda e: e["V"] @ e["h"])]
    cell = _cell(DIAGONAL, params, steps, [("h", "D")])
    assert check(cell, verify=False, T=4).endswith("numpy right")
