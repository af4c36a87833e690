"""The rewrites that give the NumPy kernels of gated cells their per-step shape:
adjoints of pre-activations (codegen/passes/preactivation.py), products carried
from step t to t-1 of the backward loop (passes/carry.py), same-form writes of a
fused sum's columns as one statement, the weight gradients of a group as one
product, and one tanh for sigmoid and tanh gates (passes/gates.py, fuse.py).

The numbers of every cell are checked by the fuzz tests and tests/test_gated.py;
here: that each rewrite happens where it should and not where it must not,
with the generated gradients checked against finite differences."""
import numpy as np
from sympy import HadamardProduct

import symrnn
from symrnn.codegen import ir
from symrnn.codegen.passes.lower.context import STEP
from symrnn.codegen.passes.preactivation import factor_common, preactivation_adjoints
from symrnn.graph import t
from symrnn.model.nodes import Adjoint, StepVar, SumOverTime

from ir_queries import DOT, calls, generated, group, kernel, statements, step_loops, value
from test_fuzz_cells import Builder, FuzzCell, _sigmoid, check

NEXT = ir.BinOp("+", STEP, ir.Const(1))  # step t+1 in a loop


def _loop(cell, direction):
    """The (one) step loop of ``gradients`` that runs forward (+1) or backward (-1)."""
    loops = [s for s in step_loops(kernel(generated(cell)).body) if s.step == direction]
    assert len(loops) == 1
    return loops[0]


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
    cell = symrnn.GRU()
    loop = _loop(cell, -1)
    products = calls(loop, DOT)
    # the fused sum over u and r, and W^T dz_a(t), which dL/dh(t-1) reads at step t+1:
    # computed at step t into the row of a value of its own, read there one step later
    assert len(products) == 2, products
    into = [c for c in products if isinstance(c.out, ir.Index) and c.out.index == STEP]
    assert len(into) == 1 and into[0].args[1] == ir.Name("W")
    assert into[0].args[0].index == STEP and into[0].args[0].value.of.adjoint
    carried = into[0].out.value
    assert carried.role == "rows" and carried.of.adjoint
    assert carried.of.name not in {v.name for v in cell.variables}  # a value of its own
    assert ir.Index(carried, NEXT) in set(ir.walk(loop.body))


def test_lstm_backward_step_writes_the_gates_of_one_form_at_once():
    loop = _loop(symrnn.LSTM(), -1)
    # dz_f, dz_g, dz_a = dL/ds times factors known before the loop: one statement
    ds = ir.Index(ir.Temp("row", value("s", True)), (ir.Slice(), ir.Const(None)))
    scaled = [s for s in statements(loop.body) if isinstance(s, ir.Update) and s.op == "*"
              and s.value == ds and isinstance(s.target, ir.Index)
              and group(s.target.value) is not None]
    assert len(scaled) == 1, scaled
    assert len(statements(loop.body)) <= 8
    # no activation derivative inside the loop
    assert not any(isinstance(n, ir.BinOp) and n.op == "-" and n.left == ir.Const(1.0)
                   for n in ir.walk(loop.body))


def test_sigmoid_and_tanh_gates_share_one_tanh_per_step():
    cell = symrnn.LSTM()
    loop = _loop(cell, 1)
    assert not calls(loop, ir.Helper("sigmoid"))
    assert len(calls(loop, ir.NumPy("tanh"))) == 2  # all four gates, then tanh(s)
    half = [ir.mul(ir.Const(0.5), ir.Temp("transpose", ir.Name(w))) for w in ("W_f", "W_g", "W_q")]
    stacked = ir.numpy_call("concatenate", ir.Tuple(tuple(half) + (
        ir.Temp("transpose", ir.Name("W")),)), ir.Const(1))
    assert stacked in set(ir.walk(kernel(generated(cell)).body))


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
    f = kernel(generated(symrnn.parse_cell(DIAGONAL)))
    assert ir.mul(ir.Const(0.5), ir.Name("w_i")) in set(ir.walk(f.body))
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
