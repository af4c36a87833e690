"""The readable NumPy backend (``symrnn codegen --backend readable``,
``d.lambdify("readable")``): the numbers of the hand-written BPTTs and of finite
differences, the numbers of the fast backends, and the shape a reader expects
(one loop forward, one backward, plain statements, the sheet's names and
equations), asserted on the IR where it is structure and on the printed module
where it is what a reader sees."""
import ast
import sys

import numpy as np
import pytest
from hypothesis import given

import symrnn
from symrnn.codegen import ir
from symrnn.codegen.lambdify import module_source
from symrnn.codegen.readable import ReadablePrinter

from ir_queries import generated, kernel, statements, step_loops
from reference import elman_bptt_batched, finite_differences, rel_err
from reference_gated import gru_bptt, lstm_bptt, over_batch
from test_codegen_cells import COMBINED, check as check_plain
from test_fuzz_cells import _settings, cells, check


def problem(cell, B=3, T=5, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"D": 3, "N": 2, "M": 4}
    params = {p.name: rng.normal(size=tuple(sizes[str(d)] for d in
                                            (p.shape[:1] if p.shape[1] == 1 else p.shape))) / 2
              for p in cell.params}
    x = rng.normal(size=(T, sizes["N"], B))
    y = np.moveaxis(rng.dirichlet(np.ones(sizes["M"]), (T, B)), -1, 1)
    starts = {s.name + "0": rng.normal(size=(sizes["D"], B)) for s in cell.states}
    return params, x, y, starts


@pytest.mark.parametrize("name, reference", [("elman", None), ("lstm", lstm_bptt),
                                             ("gru", gru_bptt)])
def test_against_the_hand_written_bptt_and_the_fast_backend(name, reference):
    cell = {"elman": symrnn.ElmanRNN, "lstm": symrnn.LSTM, "gru": symrnn.GRU}[name]()
    d = symrnn.derive(cell)
    f = d.lambdify("readable")
    params, x, y, starts = problem(cell)
    loss, grads = f(params, x, y, **starts)
    if reference is None:
        ref_loss, ref = elman_bptt_batched(params, x, y, starts["h0"])
    else:
        ref_loss, ref = over_batch(reference, params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 * max(1.0, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10
    fast_loss, fast = d.lambdify()(params, x, y, **starts)
    assert abs(loss - fast_loss) < 1e-12 * max(1.0, abs(fast_loss))
    assert max(rel_err(grads[k], fast[k]) for k in fast) < 1e-12
    assert f.loss(params, x, y, **starts) == pytest.approx(loss, rel=1e-12)


def test_against_finite_differences_of_a_plain_forward():
    # five patterns of products, sums and transposes of parameters in one cell: its
    # loss written by hand, its gradients by central differences (test_codegen_cells.py)
    check_plain("combined", symrnn.derive(symrnn.parse_cell(COMBINED[0])).lambdify("readable"))


def test_against_finite_differences_of_its_own_loss():
    cell = symrnn.GRU()
    f = symrnn.derive(cell).lambdify("readable")
    params, x, y, starts = problem(cell, B=2, T=4, seed=1)
    _, grads = f(params, x, y, **starts)
    numeric = finite_differences(lambda a: f.loss({k: a[k] for k in params}, x, y, h0=a["h0"]),
                                 dict(params, **starts))
    assert max(rel_err(grads[k], numeric[k]) for k in numeric) < 1e-6


@pytest.mark.slow
@_settings(12)
@given(cells())
def test_random_cells(cell):
    # every construct the cells may hold: constants, sizes as coefficients, named
    # matrices, sums, several inputs and targets; checked against a NumPy forward
    # written by the generator and central differences (test_fuzz_cells.py)
    outcome = check(cell, verify=False, backend="readable")
    assert outcome.startswith("refused") or outcome.endswith("readable right"), outcome


def test_one_loop_forward_one_backward_plain_statements():
    cell = symrnn.parse_cell("""params: w1[D] U1[D,N] w2[D] U2[D,D] V[M,D]
input: x[N]
target: y[M]
state: h1[D] h2[D]
h1 = tanh(w1 * prev(h1) + U1 @ x)
h2 = tanh(w2 * prev(h2) + U2 @ h1)
o = V @ h2
loss = 0.5 * (o - y).T @ (o - y)""")
    f = kernel(generated(cell, "readable", until="prune"))
    assert [loop.step for loop in step_loops(f)] == [1, -1]  # two layers, yet one loop each way
    body = statements(f)
    # no buffer taken over, nothing released, no list of rows: each value one assignment,
    # and += only to add up the gradients' sums
    assert not [s for s in body if isinstance(s, (ir.Do, ir.Fill, ir.Release))]
    assert all(s.target.role == "grad" for s in body if isinstance(s, ir.Update))
    assert not [n for n in ir.walk(f) if isinstance(n, ir.Rows)]
    labels = [s.label for s in ir.walk(f) if isinstance(s, ir.Block)]
    assert {lab.value.name for lab in labels if lab.kind == "forward"} >= {"h1", "h2", "o"}
    assert all(lab.expr is not None for lab in labels if lab.kind in ("forward", "adjoint"))


def kernel_source(source, name="gradients"):
    tree = ast.parse(source)
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def test_the_sheet_s_names_and_equations():
    source = module_source(symrnn.derive(symrnn.ElmanRNN()), "readable")
    f = kernel_source(source)
    names = {n.id for n in ast.walk(f) if isinstance(n, ast.Name)}
    assert {"h", "z", "dL_dh", "dL_dz", "dL_dW", "dL_dh0", "t", "T"} <= names
    assert not [n for n in names if n.startswith("_") and n not in (
        "_rowsum", "_softmax", "_log_softmax", "_flat")]  # the runtime's helpers only
    lines = [line.strip() for line in source.splitlines()]
    for comment in ("# h^(t) = tanh(z^(t))", "# z^(t) = U x^(t) + W h^(t-1)",
                    "# dL/dh^(t) = V^T dL/do^(t) + W^T dL/dz^(t+1)",
                    "#   W^T dL/dz^(t+1): through z^(t+1) (MatAdd, MatMul)",
                    "# dL/dW += dL/dz^(t) h^(t-1)^T"):
        assert comment in lines, comment
    assert "h[t] = np.tanh(z[t])" in lines
    assert "dL_dW += dL_dz[t].T @ h[t - 1]" in lines
    assert max(len(line) for line in source[:source.index("# ---")].splitlines()[1:]) <= 100


def test_names_a_cell_takes_are_left_to_it():
    # a cell whose names are the sheet's and NumPy's: the generated names step aside
    cell = symrnn.parse_cell("""params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
dL_dh = W @ prev(h) + U @ x
h = tanh(dL_dh) * sigmoid(dL_dh)
np = V @ h
loss = -y.T @ log_softmax(np)""")
    d = symrnn.derive(cell)
    f = d.lambdify("readable")
    params, x, y, starts = problem(cell)
    loss, grads = f(params, x, y, **starts)
    ref_loss, ref = d.lambdify()(params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 and max(rel_err(grads[k], ref[k]) for k in ref) < 1e-12


def test_a_standalone_module_without_symrnn(tmp_path):
    from symrnn import cli
    out = tmp_path / "readable_lstm.py"
    assert cli.main(["codegen", "--backend", "readable", "--cell", "lstm", "-o", str(out)]) == 0
    namespace = {"__name__": "standalone"}
    blocked = {name: sys.modules.get(name) for name in ("symrnn", "sympy")}
    try:
        sys.modules.update(dict.fromkeys(blocked))  # None: "import symrnn" fails
        exec(compile(out.read_text(), str(out), "exec"), namespace)
    finally:
        sys.modules.update(blocked)
    params, x, y, starts = problem(symrnn.LSTM())
    loss, grads = namespace["loss_and_gradients"](params, x, y, **starts)
    ref_loss, ref = symrnn.derive(symrnn.LSTM()).lambdify()(params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 * max(1.0, abs(ref_loss))


def test_a_printer_that_drops_parentheses_is_caught(monkeypatch):
    # mutation: an operand printed without the parentheses its precedence needs,
    # ((1 - h^2) * dL/dh as 1 - h^2 * dL/dh): the numbers must tell
    monkeypatch.setattr(ReadablePrinter, "_paren", lambda self, node, minimum: self._print(node))
    cell = symrnn.LSTM()
    d = symrnn.derive(cell)
    params, x, y, starts = problem(cell)
    _, ref = d.lambdify()(params, x, y, **starts)
    try:
        _, grads = d.lambdify("readable")(params, x, y, **starts)
    except ValueError:  # shapes that no longer fit: caught too
        return
    assert max(rel_err(grads[k], ref[k]) for k in ref) > 1e-3
