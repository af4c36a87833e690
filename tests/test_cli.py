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
        "version": [SCRIPT, "--version"],
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


@pytest.mark.slow
def test_help(runs):
    assert runs["help"].code == 0 and runs["help"].err == ""
    for command in ("derive", "check", "codegen", "sheet"):
        assert command in runs["help"].out
    text = runs["check help"].out
    assert runs["check help"].code == 0
    for option in ("--T", "--hidden", "--inputs", "--outputs", "--batch", "--seed", "--cell",
                   "--activation", "--output", "--bias"):
        assert option in text


@pytest.mark.slow
def test_version(runs):
    assert runs["version"].code == 0 and runs["version"].err == ""
    assert runs["version"].out == f"symrnn {symrnn.__version__}\n"
    assert "--version" in runs["help"].out


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bad_arguments_exit_2_with_one_line(runs):
    one_line_error(runs["T 0"], 2, "--T", "0")
    one_line_error(runs["unknown activation"], 2, "--activation", "softplus")
    one_line_error(runs["gru bias"], 2, "--bias", "gru")
    one_line_error(runs["lstm output for the sheet"], 2, "--output", "lstm")


@pytest.mark.slow
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
    (["check", "--T", "3000000000"], ["--T", "at most 2147483647"]),
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
    import symrnn.checking.report as check_module

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

    def wrong_fd(loss, arrays, eps=1e-6, entries=None, **options):
        out = real_fd(loss, arrays, eps, entries, **options)
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
    """Stands in for symrnn.documents: records the call, or raises ``error``."""

    def __init__(self, error=None):
        super().__init__("symrnn.documents")
        self.error, self.calls = error, []

    def write_sheet(self, out_dir="output", cell=None, pdf=None, notify=None):
        self.calls.append((out_dir, cell, pdf))
        if self.error is not None:
            raise self.error
        return [Path(out_dir) / "sheet08.tex", Path(out_dir) / "sheet08.pdf"]


class SheetError(RuntimeError):
    pass


def test_sheet_passes_the_model_and_prints_the_paths(monkeypatch, capsys):
    fake = FakeSheet()
    monkeypatch.setitem(sys.modules, "symrnn.documents", fake)
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
    monkeypatch.setitem(sys.modules, "symrnn.documents", FakeSheet(error))
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


# -- processes and files ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["console script", "python -m symrnn"])
def test_ctrl_c_during_the_imports_is_one_line(launcher, tmp_path):
    # the console script runs "from symrnn.cli import main; sys.exit(main())" and
    # python -m imports the package first: neither may import SymPy outside main()
    run = ("runpy.run_path(%r, run_name='__main__')" % SCRIPT if launcher == "console script"
           else "runpy.run_module('symrnn', run_name='__main__', alter_sys=True)")
    code = ("import runpy, sys\n"
            "class Interrupt:  # Ctrl-C while SymPy is being imported\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'sympy':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "sys.argv = ['symrnn', 'check', '--T', '1']\n" + run + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "symrnn: interrupted\n")


@pytest.mark.slow
def test_import_symrnn_does_not_import_sympy():
    done = subprocess.run([sys.executable, "-c", "import sys, symrnn, symrnn.cli; "
                           "print('sympy' in sys.modules, symrnn.ElmanRNN().name, "
                           "'sympy' in sys.modules)"],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    assert done.stdout == "False Elman RNN (tanh, softmax_ce) True\n", done.stderr


@pytest.mark.slow
def test_codegen_replaces_the_file_in_one_step(tmp_path):
    # a file size limit of 8 KiB (as ulimit -f 8): the write fails, the old module stays
    import resource

    target = tmp_path / "rnn.py"
    target.write_text("OLD = 1\n")
    target.chmod(0o640)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = PY + ["codegen", "--cell", "lstm", "-o", str(target)]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    one_line_error(types.SimpleNamespace(code=1, out="", err=done.stderr), 1,
                   f"cannot write {target}: File too large")
    assert target.read_text() == "OLD = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rnn.py"]  # no temporary file
    # without the limit: replaced, with the old file's permissions
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout == f"{target}\n"
    assert "def loss_and_gradients" in target.read_text() or \
        "loss_and_gradients = " in target.read_text()
    assert (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rnn.py"]


def test_codegen_to_a_new_file_gets_the_usual_permissions(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert cli.main(["codegen", "-o", str(tmp_path / "new.py")]) == 0
    finally:
        os.umask(old)
    assert ((tmp_path / "new.py").stat().st_mode & 0o777) == 0o644


def _terminal(monkeypatch):
    """stderr on a pseudo-terminal; returns a function that reads what it shows."""
    import fcntl

    master, slave = os.openpty()
    tty = open(slave, "w", encoding="utf-8", closefd=True)
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("TERM", "xterm")
    fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)

    def shown():
        tty.flush()
        chunks = []
        while True:
            try:
                chunks.append(os.read(master, 65536))
            except BlockingIOError:
                break
        return b"".join(chunks).decode()

    return shown


def test_a_status_line_while_numba_compiles_on_a_terminal(monkeypatch, capsys):
    from symrnn.derivation import Derivation

    real = Derivation.lambdify
    monkeypatch.setattr(Derivation, "lambdify", lambda self, backend="numpy": real(self))
    shown = _terminal(monkeypatch)
    assert cli.main(["check", "--backend", "numba", "--T", "1", "--seed", "0"]) == 0
    screen = shown()
    assert screen.startswith("\rsymrnn check: Numba compiles the kernels (kept for later "
                             "runs) ... 0 s\x1b[K"), repr(screen)
    assert screen.endswith("\r\x1b[K")  # erased before the table is printed
    assert capsys.readouterr().out.endswith("all checks passed\n")
    # NumPy: nothing slow, no status
    assert cli.main(["check", "--T", "1", "--seed", "0"]) == 0
    assert shown() == ""


def test_no_status_line_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    from symrnn.derivation import Derivation

    real = Derivation.lambdify
    monkeypatch.setattr(Derivation, "lambdify", lambda self, backend="numpy": real(self))
    assert cli.main(["check", "--backend", "numba", "--T", "1", "--seed", "0"]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "symrnn.documents", FakeSheet())
    assert cli.main(["sheet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_status_line_while_the_sheet_is_typeset(monkeypatch, capsys):
    class Noting(FakeSheet):
        def write_sheet(self, out_dir="output", cell=None, pdf=None, notify=None):
            notify("no TeX engine found: install latexmk")  # the sheet's own message
            return super().write_sheet(out_dir, cell, pdf)

    monkeypatch.setitem(sys.modules, "symrnn.documents", Noting())
    shown = _terminal(monkeypatch)
    assert cli.main(["sheet"]) == 0
    screen = shown()
    status = "symrnn sheet: deriving, checking and typesetting with LaTeX ... 0 s\x1b[K"
    # the message on a line of its own (the terminal turns \n into \r\n), the status
    # redrawn below it, then erased
    assert screen.startswith("\r" + status), repr(screen)
    assert "\r\x1b[Kno TeX engine found: install latexmk\r\n" in screen
    assert screen.endswith("\r\x1b[K")


def test_not_enough_memory_is_one_line(monkeypatch, capsys):
    import symrnn.checking.report as check_module

    def too_large(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr(check_module, "make_problem", too_large)
    assert cli.main(["check", "--hidden", "100000"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "symrnn check: error: not enough memory for problems of these sizes (Unable to "
        "allocate 74.5 GiB for an array with shape (100000, 100000))\n")


def test_the_extras_are_lower_bounds():
    # a user's own torch or jax stays: no pins; the CPU torch 2.13.0 that
    # scripts/install.sh --test installs satisfies the test extra
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = {name: [line.strip() for line in value.strip().splitlines()]
              for name, value in config["options.extras_require"].items()}
    for name in ("torch", "jax", "test"):
        requirements = [r for r in extras[name] if r.startswith(("torch", "jax"))]
        assert requirements and all(">=" in r and "==" not in r and "<" not in r
                                    for r in requirements), (name, requirements)
    assert "torch>=2.1" in extras["test"] and "torch>=2.1" in extras["torch"]
    install = (ROOT / "scripts" / "install.sh").read_text()
    assert 'pip install -q "torch==2.13.0"' in install
