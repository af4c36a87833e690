"""The IR step that keeps Numba's compile time from growing with the cell:
element-wise statements as calls of shared functions (codegen/ewise.py). It is
IR-to-IR, so it is checked without compiling: the NumPy backend built from the
transformed IR must give the same loss and gradients as the untransformed one,
for cells with loops, gates, shifted reads, labels and batches."""
import numpy as np
import pytest

import symrnn
from symrnn.codegen import ir
from symrnn.codegen.ewise import Sharer
from symrnn.codegen.program import Program

def stacked(layers):
    """A stacked narrow LSTM-like cell: in layer k, gates of w * prev(hk) + U @ input."""
    lines = ["params: V[M,D] c[M]", "input: x[N]", "target: y[M]",
             "state: " + " ".join(f"h{k}[D] s{k}[D]" for k in range(1, layers + 1))]
    for k in range(1, layers + 1):
        source, width = ("x", "N") if k == 1 else (f"h{k - 1}", "D")
        lines += [f"params: w_f{k}[D] U_f{k}[D,{width}] w_a{k}[D] U_a{k}[D,{width}]",
                  f"f{k} = sigmoid(w_f{k} * prev(h{k}) + U_f{k} @ {source})",
                  f"a{k} = tanh(w_a{k} * prev(h{k}) + U_a{k} @ {source})",
                  f"s{k} = f{k} * prev(s{k}) + (1 - f{k}) * a{k}",
                  f"h{k} = tanh(s{k}) * f{k}"]
    lines += [f"o = V @ h{layers} + c", "loss = -y.T @ log_softmax(o)"]
    return "\n".join(lines) + "\n"


CELLS = {"elman": symrnn.ElmanRNN, "lstm": symrnn.LSTM, "gru": symrnn.GRU,
         "stacked": lambda: symrnn.parse_cell(stacked(2))}


def transformed(functions):
    sharer = Sharer()
    return [sharer.function(f) for f in functions] + sharer.functions


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
    assert "def _nb_ew0(" in split.source
    rng = np.random.default_rng(7)
    for B in (1, 3):
        params, x, y, starts = problem(cell, rng, B)
        loss, grads = plain(params, x, y, **starts)
        loss2, grads2 = split(params, x, y, **starts)
        assert loss2 == pytest.approx(loss, rel=1e-13)
        assert all(np.allclose(grads2[k], grads[k], rtol=1e-12, atol=1e-14) for k in grads)


def test_adding_layers_adds_no_shared_function():
    def shared(layers):
        sharer = Sharer()
        for f in Program(symrnn.derive(symrnn.parse_cell(stacked(layers)))).functions():
            sharer.function(f)
        return [f.body for f in sharer.functions]

    assert len(shared(2)) == len(shared(4)) and set(shared(2)) == set(shared(4))


def test_update_of_a_name_returns_it():
    a, b = ir.Name("a"), ir.Name("b")
    sharer = Sharer()
    f = sharer.function(ir.Function(ir.Name("k"), (a, b), (ir.Update(a, "+", ir.mul(b, b)),)))
    (form,) = sharer.functions
    assert f.body == (ir.Assign((a,), ir.call(form.name, a, b)),)
    p0, p1 = form.args
    assert form.body == (ir.Update(p0, "+", ir.mul(p1, p1)), ir.Return((p0,)))
