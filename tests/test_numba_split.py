"""The IR steps that make Numba compile big cells in seconds: element-wise
statements as calls of shared functions (codegen/ewise.py) and kernels cut
into parts (codegen/outline.py). Both are IR-to-IR, so they are checked
without compiling: the NumPy backend built from the transformed IR (parts of
at most 2 statements, so that loops are cut too) must give the same loss and
gradients as the untransformed one, for cells with loops, gates, shifted
reads, labels and batches."""
import numpy as np
import pytest

import symrnn
from symrnn.codegen import ir, outline
from symrnn.codegen.ewise import Sharer
from symrnn.codegen.outline import Outliner
from symrnn.codegen.program import Program

STACKED = """
params: w_f1[D] U_f1[D,N] w_a1[D] U_a1[D,N] w_f2[D] U_f2[D,D] w_a2[D] U_a2[D,D] V[M,D] c[M]
input: x[N]
target: y[M]
state: h1[D] s1[D] h2[D] s2[D]
f1 = sigmoid(w_f1 * prev(h1) + U_f1 @ x)
a1 = tanh(w_a1 * prev(h1) + U_a1 @ x)
s1 = f1 * prev(s1) + (1 - f1) * a1
h1 = tanh(s1)
f2 = sigmoid(w_f2 * prev(h2) + U_f2 @ h1)
a2 = tanh(w_a2 * prev(h2) + U_a2 @ h1)
s2 = f2 * prev(s2) + (1 - f2) * a2
h2 = tanh(s2) * f2
o = V @ h2 + c
loss = -y.T @ log_softmax(o)
"""

CELLS = {"elman": symrnn.ElmanRNN, "lstm": symrnn.LSTM, "gru": symrnn.GRU,
         "stacked": lambda: symrnn.parse_cell(STACKED)}


def transformed(functions, size=2):
    sharer = Sharer()
    out = [g for f in functions for g in Outliner(size).outline(sharer.function(f))]
    return out + sharer.functions


def problem(cell, rng, B):
    sizes = {"D": 3, "N": 2, "M": 4}
    params = {p.name: rng.normal(size=tuple(sizes[str(d)] for d in p.shape if str(d) != "1"))
              / 2 for p in cell.params}
    T = 5
    x = rng.normal(size=(T, 2) if B == 1 else (T, 2, B))
    y = rng.integers(0, 4, T) if B == 1 else np.moveaxis(rng.dirichlet(np.ones(4), (T, B)), -1, 1)
    starts = {s.name + "0": rng.normal(size=3 if B == 1 else (3, B)) for s in cell.states}
    return params, x, y, starts


@pytest.mark.parametrize("name", list(CELLS))
def test_transformed_kernels_give_the_same_numbers(name, monkeypatch):
    cell = CELLS[name]()
    d = symrnn.derive(cell)
    plain = d.lambdify()
    original = Program.functions
    monkeypatch.setattr(Program, "functions", lambda self: transformed(original(self)))
    split = d.lambdify()
    assert "_part" in split.source and "def _nb_ew0(" in split.source
    rng = np.random.default_rng(7)
    for B in (1, 3):
        params, x, y, starts = problem(cell, rng, B)
        loss, grads = plain(params, x, y, **starts)
        loss2, grads2 = split(params, x, y, **starts)
        assert loss2 == pytest.approx(loss, rel=1e-13)
        assert all(np.allclose(grads2[k], grads[k], rtol=1e-12, atol=1e-14) for k in grads)


def test_same_forms_share_one_function():
    # the two layers of the stacked cell have the same statements: adding a layer
    # adds no shared function
    functions = Program(symrnn.derive(symrnn.parse_cell(STACKED))).functions()
    sharer = Sharer()
    for f in functions:
        sharer.function(f)
    forms = {tuple(type(s).__name__ for s in g.body) for g in sharer.functions}
    assert len(sharer.functions) < 20 and len(forms) <= len(sharer.functions)


def test_a_part_returns_what_later_statements_read_and_no_loop_variable():
    a, b, c, t = (ir.Name(n) for n in "abct")
    body = (ir.assign(b, ir.mul(a, a)),
            ir.For(t, ir.Const(0), ir.Const(3), 1, (ir.Update(c, "+", b),)),
            ir.assign(a, ir.add(b, c)),
            ir.Return((a,)))
    f = ir.Function(ir.Name("k"), (a, c), body)
    main, *parts = Outliner(1).outline(f)
    assert [p.args for p in parts] == [(a,), (b, c)]
    assert [p.body[-1] for p in parts] == [ir.Return((b,)), ir.Return((a,))]
    assert main.body[1] == body[1]  # a loop of one statement keeps its body
    assert main.body[-1] == ir.Return((a,))
    assert outline.reads(body[1:2]) == {"b", "c"}  # t is bound by the loop
