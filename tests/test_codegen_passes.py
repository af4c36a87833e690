"""Code generation as passes: the registry of backends, the driver, the IR dump
between passes (``symrnn codegen --dump-ir``), passes that keep no state, and
modules that carry only the kernels they call."""
import inspect

import pytest

import symrnn
from symrnn import cli
from symrnn.codegen import driver, ir, targets
from symrnn.codegen.module import Module
from symrnn.codegen.scheduled import Loop

from ir_queries import generated, step_loops

GATES = """params: w1[D] w2[D] U1[D,N] U2[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
g1 = sigmoid(w1 * prev(h) + U1 @ x)
g2 = sigmoid(w2 * prev(h) + U2 @ x)
h = tanh(g1 * prev(h) + g2)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)"""


@pytest.mark.parametrize("backend", sorted(targets.TARGETS))
def test_every_pass_states_what_it_takes_and_gives(backend):
    for p in targets.TARGETS[backend].passes:
        doc = inspect.getdoc(p)
        name = driver.pass_name(p)
        assert doc.splitlines()[0].startswith(name + ": "), name
        assert "Input:" in doc and "Output:" in doc, name
        assert callable(p.run)


def test_each_pass_returns_a_new_module():
    d = symrnn.derive(symrnn.GRU())
    module = driver.start(d, "numpy")
    for p in targets.TARGETS["numpy"].passes:
        after = p.run(module)
        assert isinstance(after, Module) and after is not module, driver.pass_name(p)
        module = after


def test_the_passes_keep_no_state_between_runs():
    # the same cell before and after another: the same module, temporaries included
    a, b = symrnn.derive(symrnn.LSTM()), symrnn.derive(symrnn.parse_cell(GATES))
    for backend in ("numpy", "readable"):
        first = driver.source(a, backend)
        driver.source(b, backend)
        assert driver.source(a, backend) == first


def test_dump_ir_list_and_after_a_pass(capsys):
    assert cli.main(["codegen", "--dump-ir", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        driver.pass_name(p) for p in targets.TARGETS["numpy"].passes]
    assert cli.main(["codegen", "--backend", "numba", "--dump-ir", "list"]) == 0
    assert "loopnests: " in capsys.readouterr().out
    assert cli.main(["codegen", "--dump-ir", "schedule"]) == 0
    out = capsys.readouterr().out
    assert "kernel gradients" in out and "loop t = T..1" in out and "h := tanh(" in out
    assert cli.main(["codegen", "--dump-ir", "lower"]) == 0
    out = capsys.readouterr().out  # temporaries by role and value, blocks by what they compute
    assert "$all(h) = _np.empty(" in out and "# forward h := tanh(" in out
    assert cli.main(["codegen", "--dump-ir", "name"]) == 0
    out = capsys.readouterr().out
    assert "_all_h = _np.empty(" in out and "$" not in out


@pytest.mark.parametrize("argv, words", [
    (["codegen", "--dump-ir", "fuse"],
     "argument --dump-ir: the backend 'numpy' has no pass 'fuse'"),
    (["codegen", "--backend", "readable", "--dump-ir", "gates"], "has no pass 'gates'"),
    (["codegen", "--backend", "jax"], "argument --backend: invalid choice"),
])
def test_dump_ir_and_backend_errors_are_one_line_exit_2(argv, words, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and words in lines[0]


def test_an_unknown_backend_names_the_public_ones():
    # the arrays target makes the kernels of d.torch() and d.jax(): not offered to users
    with pytest.raises(ValueError, match=r"^backend: expected one of 'numpy', 'numba', "
                                         r"'readable', got 'torch'"):
        driver.source(symrnn.derive(symrnn.ElmanRNN()), "torch")


def test_one_schedule_for_every_backend():
    # the schedule pass reads nothing of a backend but its policy: the NumPy and the
    # Numba backends get one schedule of one problem, with the carried values of
    # each loop explicit (what a scan carries)
    from symrnn.codegen.passes import schedule
    d = symrnn.derive(symrnn.parse_cell(GATES))
    numpy = schedule.run(driver.start(d, "numpy")).kernels
    assert numpy == driver.run(d, "numba", until="schedule").kernels
    assert numpy == driver.run(d, "arrays", until="schedule").kernels  # PyTorch's and JAX's
    loops = [i for k in numpy for i in k.items if isinstance(i, Loop)]
    assert loops and all(loop.carried for loop in loops)


def test_only_the_kernels_a_module_calls():
    # the Elman network calls tanh (a NumPy ufunc) and softmax: not the sigmoid's
    # helper; a Numba module no NumPy kernel at all
    body = generated(symrnn.ElmanRNN(), until="assemble").body
    copied = {getattr(s.obj, "__name__", None) for s in body if isinstance(s, ir.Copied)}
    assert "_log_softmax" in copied and "_sigmoid" not in copied and "_relu" not in copied
    module = generated(symrnn.ElmanRNN(), "numba", until="assemble")
    assert all(f.compiled for f in module.functions)
    assert [f.name.id for f in module.functions] == ["forward", "gradients"]
    copied = {getattr(s.obj, "__name__", None) for s in module.body if isinstance(s, ir.Copied)}
    assert "_nb_tanh_scalar" in copied and "_nb_sigmoid_scalar" not in copied


def test_the_numba_backend_lowers_once(monkeypatch):
    from symrnn.codegen.passes import lower
    calls = []
    run = lower.run
    monkeypatch.setattr(lower, "run", lambda module: calls.append(1) or run(module))
    driver.run(symrnn.derive(symrnn.ElmanRNN()), "numba")
    assert len(calls) == 1


def test_a_stacked_cell_has_a_loop_per_layer_but_the_readable_one_each_way():
    text = ("params: w1[D] U1[D,N] w2[D] U2[D,D] V[M,D]\ninput: x[N]\ntarget: y[M]\n"
            "state: h1[D] h2[D]\nh1 = tanh(w1 * prev(h1) + U1 @ x)\n"
            "h2 = tanh(w2 * prev(h2) + U2 @ h1)\no = V @ h2\nloss = 0.5 * (o - y).T @ (o - y)")
    cell = symrnn.parse_cell(text)
    assert len(step_loops(generated(cell).function("gradients"))) == 4
    assert len(step_loops(generated(cell, "readable", until="prune").function("gradients"))) == 2
