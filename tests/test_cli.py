"""The command line: ``symrnn`` and ``python -m symrnn`` run as subprocesses (all
started at once, then inspected), and ``symrnn.cli.main`` in-process for the
paths that need a stand-in (a failing check, the sheet writer's errors)."""
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import symrnn
from symrnn import cli
from reference import elman_bptt, rel_err

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("symrnn", path=os.path.dirname(sys.executable)) or shutil.which("symrnn")
PY = [sys.executable, "-m", "symrnn"]


def commands(tmp):
    return {
        "help": [SCRIPT, "--help"],
        "check help": PY + ["check", "--help"],
        "derive": PY + ["derive", "--activation", "relu", "--bias"],
        "check": PY + ["check", "--T", "3", "--batch", "2", "--activation", "sigmoid",
                       "--output", "mse", "--bias", "--seed", "4"],
        "check lstm": [SCRIPT, "check", "--cell", "lstm", "--T", "2", "--hidden", "2"],
        "codegen": [SCRIPT, "codegen", "--output", "mse", "--bias", "-o", str(tmp / "rnn.py")],
        "T 0": [SCRIPT, "check", "--T", "0"],
        "unknown activation": PY + ["derive", "--activation", "softplus"],
        "gru bias": PY + ["codegen", "--cell", "gru", "--bias"],
        "lstm output for the sheet": PY + ["sheet", "--cell", "lstm", "--output", "mse"],
        "unwritable": PY + ["codegen", "-o", str(tmp / "no" / "such" / "dir" / "m.py")],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    assert SCRIPT, "the symrnn console script is not installed: pip install -e ."
    tmp = tmp_path_factory.mktemp("cli")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SYMRNN_DEBUG", None)
    started = {name: subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for name, argv in commands(tmp).items()}
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=300)
        results[name] = types.SimpleNamespace(code=process.returncode, out=out, err=err)
    results["tmp"] = tmp
    return results


def one_line_error(run, code, *words):
    assert run.code == code, (run.code, run.out, run.err)
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err and lines[0].startswith("symrnn")
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_help(runs):
    assert runs["help"].code == 0 and runs["help"].err == ""
    for command in ("derive", "check", "codegen", "sheet"):
        assert command in runs["help"].out
    text = runs["check help"].out
    assert runs["check help"].code == 0
    for option in ("--T", "--hidden", "--inputs", "--outputs", "--batch", "--seed", "--cell",
                   "--activation", "--output", "--bias"):
        assert option in text


def test_derive_prints_the_closed_forms(runs):
    run = runs["derive"]
    assert run.code == 0 and run.err == ""
    assert run.out.startswith("Elman RNN (relu, softmax_ce, bias)")
    for line in ("z^(t) = W h^(t-1) + U x^(t) + b",  # the terms in the order of the sheet
                 "dL/do^(t) = yhat^(t) 1^T y^(t) - y^(t)",
                 "dL/dh^(t) = W^T dL/dz^(t+1) + V^T dL/do^(t)",
                 "dL/dz^(t) = dL/dh^(t) .* step(z^(t))",
                 "dL/dh^(T) = V^T dL/do^(T)",
                 "dL/dW = sum_{t=1}^{T} dL/dz^(t) h^(t-1)^T",
                 "dL/db = sum_{t=1}^{T} dL/dz^(t)",
                 "dL/dc = sum_{t=1}^{T} dL/do^(t)",
                 "dL/dh^(0) = W^T dL/dz^(1)"):
        assert f"  {line}\n" in run.out, line


def test_check_prints_a_table_and_passes(runs):
    run = runs["check"]
    assert run.code == 0, run.out + run.err
    lines = run.out.splitlines()
    assert lines[0] == "Elman RNN (sigmoid, mse, bias): seed = 4 (--seed 4 repeats this run)"
    problems = [line for line in lines if line.startswith("problem ")]
    assert len(problems) == 7
    # --T and --batch pin T and B; the other sizes and the layouts vary
    assert all("T = 3, " in line for line in problems)
    assert sum(", B = 2;" in line for line in problems) == 3  # and a batch of one
    for layout in ("one sequence", "h0 = None", "h0 (D,) shared", "h0 (D, B)", "float32"):
        assert any(layout in line for line in problems), layout
    start = lines.index(next(line for line in lines if line.startswith("gradient")))
    rows = {line.split()[0]: line.split() for line in lines[start + 1:start + 8]}
    assert set(rows) == {"W", "U", "V", "b", "c", "h0", "loss"}
    for name in ("W", "U", "V", "b", "c", "h0"):
        reference, numeric, status = rows[name][1], rows[name][2], rows[name][-1]
        assert float(reference) < 1e-9 and float(numeric) < 1e-5 and status == "ok"
    assert run.out.rstrip().endswith("all checks passed")
    lstm = runs["check lstm"]
    assert lstm.code == 0 and lstm.out.startswith("LSTM: seed = ")
    assert all(", D = 2, " in line for line in lstm.out.splitlines() if line.startswith("problem"))
    for name in ("W_f", "b_q", "V", "h0", "s0"):
        assert f"\n{name} " in lstm.out


def test_codegen_writes_a_standalone_module(runs):
    run = runs["codegen"]
    assert run.code == 0 and run.err == ""
    path = runs["tmp"] / "rnn.py"
    assert run.out.strip() == str(path)
    source = path.read_text()
    assert "sympy" not in source and "symrnn import" not in source and "import symrnn" not in source
    rng = np.random.default_rng(0)
    D, N, M, T = 3, 2, 4, 5
    params = {"W": rng.normal(size=(D, D)), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D)), "b": rng.normal(size=D), "c": rng.normal(size=M)}
    x, y, h0 = rng.normal(size=(T, N)), rng.normal(size=(T, M)), rng.normal(size=D)
    np.savez(runs["tmp"] / "data.npz", x=x, y=y, h0=h0, **params)
    # a fresh interpreter in which symrnn and sympy cannot be imported
    script = (
        "import sys; sys.modules['symrnn'] = sys.modules['sympy'] = None\n"
        "import numpy, rnn\n"
        "d = dict(numpy.load('data.npz'))\n"
        "p = {k: d[k] for k in 'WUVbc'}\n"
        "loss, g = rnn.loss_and_gradients(p, d['x'], d['y'], h0=d['h0'])\n"
        "assert abs(rnn.loss(p, d['x'], d['y'], h0=d['h0']) - loss) < 1e-12\n"
        "numpy.savez('out.npz', loss=loss, **g)\n"
        "try:\n"
        "    rnn.loss(p, d['x'][:0], d['y'][:0])\n"
        "except ValueError as e:\n"
        "    print(e)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=runs["tmp"], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=""), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("x: ") and "T = 0" in done.stdout
    out = np.load(runs["tmp"] / "out.npz")
    ref_loss, ref = elman_bptt(params, x, y, h0, output="mse")
    assert float(out["loss"]) == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        assert rel_err(out[k], ref[k]) < 1e-10, k


def test_bad_arguments_exit_2_with_one_line(runs):
    one_line_error(runs["T 0"], 2, "--T", "0")
    one_line_error(runs["unknown activation"], 2, "--activation", "softplus")
    one_line_error(runs["gru bias"], 2, "--bias", "gru")
    one_line_error(runs["lstm output for the sheet"], 2, "--output", "lstm")


def test_io_failure_exits_1_with_one_line(runs):
    one_line_error(runs["unwritable"], 1, "cannot write", str(runs["tmp"] / "no" / "such"))
    assert not (runs["tmp"] / "no").exists()


# -- in-process --------------------------------------------------------------------

@pytest.mark.parametrize("command", [None, "derive", "check", "codegen", "sheet"])
def test_every_command_has_help(command, capsys):
    argv = ([command] if command else []) + ["--help"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: symrnn")
    if command:
        for option in ("--cell", "--activation", "--output", "--bias"):
            assert option in out


@pytest.mark.parametrize("argv, words", [
    (["check", "--T", "x"], ["--T", "'x'"]),
    (["check", "--hidden", "0"], ["--hidden", "0"]),
    (["check", "--batch", "-1"], ["--batch", "-1"]),
    (["check", "--seed", "-2"], ["--seed", "-2"]),
    (["derive", "--output", "hinge"], ["--output", "hinge"]),
    (["derive", "--format", "pdf"], ["--format", "pdf"]),
    (["derive", "--cell", "lstm", "--activation", "relu"], ["--activation", "lstm"]),
    (["frobnicate"], ["frobnicate"]),
    ([], ["COMMAND"]),
    (["check", "--unknown"], ["--unknown"]),
])
def test_more_bad_arguments(argv, words, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symrnn")
    for w in words:
        assert w in lines[0]


def test_check_exits_1_when_a_check_fails(monkeypatch, capsys):
    import symrnn.check as check_module

    # a reference that disagrees in U: the table marks U and the exit code is 1
    real = check_module.reference_for

    def wrong(cell):
        ref = real(cell)

        def shifted(*args, **initial):
            loss, grads = ref(*args, **initial)
            grads["U"] = grads["U"] + 1e-3
            return loss, grads
        return shifted

    monkeypatch.setattr(check_module, "reference_for", wrong)
    assert cli.main(["check", "--T", "2", "--seed", "0"]) == 1
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if "FAILED" in line] == ["U", "FAILED:"]
    monkeypatch.undo()

    # finite differences that disagree in h0
    import symrnn.checking.compare as compare_module
    real_fd = compare_module.finite_differences

    def wrong_fd(loss, arrays, eps=1e-6, entries=None):
        out = real_fd(loss, arrays, eps, entries)
        out["h0"] = out["h0"] * 1.01 + 0.01
        return out

    monkeypatch.setattr(compare_module, "finite_differences", wrong_fd)
    assert cli.main(["check", "--T", "2", "--cell", "gru", "--seed", "0"]) == 1
    assert "FAILED: h0" in capsys.readouterr().out


def test_derive_latex(capsys):
    assert cli.main(["derive", "--format", "latex", "--output", "mse"]) == 0
    out = capsys.readouterr().out
    assert out.count(r"\begin{align*}") == out.count(r"\end{align*}") == 4
    assert r"\partial L" in out and r"\sum_{t=1}^{T}" in out
    assert "Elman RNN (tanh, mse)" in out.splitlines()[0]


def test_codegen_to_standard_output(capsys):
    assert cli.main(["codegen", "--cell", "gru"]) == 0
    source = capsys.readouterr().out
    namespace = {}
    exec(compile(source, "<gru>", "exec"), namespace)
    assert callable(namespace["loss_and_gradients"]) and callable(namespace["loss"])
    assert namespace["SPEC"]["states"] == [("h", "D")]


class FakeSheet(types.ModuleType):
    """Stands in for symrnn.render.sheet: records the call, or raises ``error``."""

    def __init__(self, error=None):
        super().__init__("symrnn.render.sheet")
        self.error, self.calls = error, []

    def write_sheet(self, out_dir="output", cell=None, pdf=None):
        self.calls.append((out_dir, cell, pdf))
        if self.error is not None:
            raise self.error
        return [Path(out_dir) / "sheet08.tex", Path(out_dir) / "sheet08.pdf"]


class SheetError(RuntimeError):
    pass


def test_sheet_passes_the_model_and_prints_the_paths(monkeypatch, capsys):
    fake = FakeSheet()
    monkeypatch.setitem(sys.modules, "symrnn.render.sheet", fake)
    assert cli.main(["sheet", "--out", "somewhere", "--pdf", "--bias",
                     "--activation", "sigmoid"]) == 0
    assert capsys.readouterr().out.split() == [str(Path("somewhere") / "sheet08.tex"),
                                               str(Path("somewhere") / "sheet08.pdf")]
    (out_dir, cell, pdf), = fake.calls
    assert out_dir == "somewhere" and pdf is True
    assert isinstance(cell, symrnn.ElmanRNN) and cell.bias and cell.activation == "sigmoid"
    assert cli.main(["sheet", "--cell", "gru"]) == 0
    out_dir, cell, pdf = fake.calls[-1]
    assert out_dir == "output" and pdf is None and isinstance(cell, symrnn.GRU)


@pytest.mark.parametrize("error, code, words", [
    (SheetError("LaTeX failed:\n! Undefined control sequence.\nl.12"), 1,
     ["LaTeX failed: ! Undefined control sequence. l.12"]),
    (RuntimeError("no TeX engine found: install latexmk"), 1, ["no TeX engine found"]),
    (PermissionError(13, "Permission denied", "/root/out"), 1,
     ["cannot write /root/out", "Permission denied"]),
    (ValueError("the sheet is about the Elman RNN"), 2, ["the sheet is about the Elman RNN"]),
])
def test_sheet_errors(error, code, words, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "symrnn.render.sheet", FakeSheet(error))
    assert cli.main(["sheet", "--pdf"]) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert lines[0].startswith("symrnn sheet: error: ")
    for w in words:
        assert w in lines[0]


def test_an_internal_error_is_one_line_too(monkeypatch, capsys):
    def broken(args, cell):
        raise KeyError("oops")

    monkeypatch.setitem(cli.COMMANDS, "derive", broken)
    monkeypatch.delenv("SYMRNN_DEBUG", raising=False)
    assert cli.main(["derive"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "internal error: KeyError" in lines[0]
    monkeypatch.setenv("SYMRNN_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["derive"])


def test_check_api_for_a_derivation_and_a_cell_without_reference():
    from symrnn.check import check

    report = check(symrnn.derive(symrnn.ElmanRNN(output="upstream")), T=2, batch=3, seed=5)
    assert report.passed and report.has_reference
    assert [r.name for r in report.rows] == ["W", "U", "V", "h0", "loss"]
    from sympy import MatrixSymbol, Rational, symbols

    D, N, M = symbols("D N M", integer=True, positive=True)
    W, U, V = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("V", M, D)
    x, y, h, o = (MatrixSymbol(n, k, 1) for n, k in (("x", N), ("y", M), ("h", D), ("o", M)))
    cell = symrnn.Cell("custom", params=[W, U, V], inputs=[x], targets=[y], states=[h],
                       equations=[(h, symrnn.sigmoid(W * symrnn.prev(h) + U * x)), (o, V * h)],
                       loss=Rational(1, 2) * (o - y).T * (o - y))
    report = check(cell, T=3, hidden=2, inputs=2, outputs=2)
    assert report.passed and not report.has_reference
    assert [r.name for r in report.rows] == ["W", "U", "V", "h0"]
    assert all(r.reference is None and r.finite_differences < 1e-6 for r in report.rows)
    assert "finite differences only" in report.table()
