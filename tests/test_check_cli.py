"""``symrnn check`` on the command line (in-process): the seed it prints repeats a
run, --cell-file for a text cell (also for derive and codegen), --against for a
user's BPTT, and one-line errors (exit 2) for bad arguments and bad cell files."""
import re
import textwrap

import pytest

from symrnn import cli
from test_check import MGU


def run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symrnn ") and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_the_printed_seed_repeats_the_run(capsys):
    code, out, _ = run(["check", "--T", "2"], capsys)
    assert code == 0
    seed = re.match(r"Elman RNN \(tanh, softmax_ce\): seed = (\d+) ", out).group(1)
    problems = [line for line in out.splitlines() if line.startswith("problem")]
    code, again, _ = run(["check", "--T", "2", "--seed", seed], capsys)
    assert code == 0
    assert [line for line in again.splitlines() if line.startswith("problem")] == problems


@pytest.mark.slow
def test_sizes_beyond_the_defaults(capsys):
    code, out, _ = run(["check", "--cell", "gru", "--hidden", "9", "--size", "N=8",
                        "--T", "7", "--seed", "1"], capsys)
    assert code == 0, out
    problems = [line for line in out.splitlines() if line.startswith("problem")]
    assert all(line.startswith(f"problem {k}: T = 7, D = 9, N = 8, M = ")
               for k, line in enumerate(problems, 1))


def test_cell_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mgu.cell").write_text(MGU)
    code, out, _ = run(["check", "--cell-file", "mgu.cell", "--seed", "0"], capsys)
    assert code == 0, out
    assert out.startswith("mgu: seed = 0")
    assert "no hand-written reference for this cell: finite differences only" in out
    assert re.search(r"\nW_f +- +\d\.\de-\d\d +problem \d +ok\n", out)
    code, out, _ = run(["derive", "--cell-file", "mgu.cell"], capsys)
    assert code == 0 and out.startswith("mgu\n") and "dL/dW_f = sum_{t=1}^{T}" in out
    code, out, _ = run(["codegen", "--cell-file", "mgu.cell"], capsys)
    assert code == 0 and "loss_and_gradients" in out


@pytest.mark.parametrize("text, argv, words", [
    ("params: W[D,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\nh = tanh(W @ prev(h))\n"
     "loss = y.T @ unknown(h)\n", [], ["bad.cell", "line 6"]),
    (MGU, ["--cell", "lstm"], ["--cell-file", "--cell"]),
    (MGU, ["--activation", "relu"], ["--cell-file", "--activation"]),
    (MGU, ["--size", "H=3"], ["'H' is not a size"]),
    (MGU, ["--size", "3=H"], ["--size", "NAME=N"]),
])
def test_bad_cell_files_and_arguments_exit_2(text, argv, words, tmp_path, capsys):
    path = tmp_path / "bad.cell"
    path.write_text(text)
    code, out, err = run(["check", "--cell-file", str(path)] + argv, capsys)
    assert code == 2 and out == ""
    one_line(err, *words)


@pytest.mark.parametrize("command", ["check", "derive", "codegen"])
def test_a_missing_cell_file_exits_2(command, tmp_path, capsys):
    code, out, err = run([command, "--cell-file", str(tmp_path / "none.cell")], capsys)
    assert code == 2 and out == ""
    one_line(err, "--cell-file", "cannot read", "none.cell")


USER_BPTT = '''
import numpy as np

def bptt(params, x, y, h0, broken=False):
    W, U, V = params["W"], params["U"], params["V"]
    hs, ps = [h0], []
    for t in range(len(x)):
        hs.append(np.tanh(W @ hs[-1] + U @ x[t]))
        o = V @ hs[-1]
        e = np.exp(o - o.max())
        ps.append(e / e.sum())
    loss = -sum(float(y[t] @ np.log(ps[t])) for t in range(len(x)))
    gW, gU, gV, dh = 0 * W, 0 * U, 0 * V, 0 * h0
    for t in reversed(range(len(x))):
        do = ps[t] - y[t]
        gV += np.outer(do, hs[t + 1])
        dz = (1 - hs[t + 1] ** 2) * (dh + V.T @ do)
        gW += np.outer(dz, hs[t])
        gU += np.outer(dz, x[t])
        dh = (W if broken else W.T) @ dz
    return loss, {"W": gW, "U": gU, "V": gV, "h0": dh}

def broken(params, x, y, h0):
    return bptt(params, x, y, h0, broken=True)
'''


@pytest.mark.slow
def test_against_a_users_function(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "student_bptt.py").write_text(textwrap.dedent(USER_BPTT))
    code, out, err = run(["check", "--against", "student_bptt:bptt", "--seed", "3"], capsys)
    assert code == 0 and err == "", err
    assert out.startswith("student_bptt:bptt: loss and gradients agree with the derived BPTT "
                          "of Elman RNN (tanh, softmax_ce)")
    code, out, err = run(["check", "--against", "student_bptt:broken", "--seed", "3"], capsys)
    assert code == 1 and err == ""
    assert out.startswith("broken: gradient 'h0' is wrong: relative error ")
    assert "first wrong at T = 1, D = 2, " in out
    for argv, words in ((["--against", "student_bptt:missing"], ["has no function 'missing'"]),
                        (["--against", "no_such_module_x:f"], ["cannot import", "no_such"]),
                        (["--against", "not a spec"], ["MODULE:FUNCTION"])):
        code, out, err = run(["check"] + argv, capsys)
        assert code == 2 and out == ""
        one_line(err, "--against", *words)


def test_a_wrong_adjoint_rule_makes_the_command_fail(monkeypatch, capsys):
    # mutation: tanh' = 1 + h*h in place of 1 - h*h
    from sympy import HadamardProduct, OneMatrix

    from symrnn.derivation.vjps import VJPS
    from symrnn.ops import Tanh

    monkeypatch.setitem(VJPS, Tanh, lambda ans, args, i: lambda g: HadamardProduct(
        OneMatrix(*ans.shape) + HadamardProduct(ans, ans), g))
    code, out, _ = run(["check", "--seed", "0"], capsys)
    assert code == 1
    assert out.rstrip().endswith("FAILED: W, U, h0")


def test_backend_is_passed_on_and_a_missing_numba_is_one_line(monkeypatch, capsys):
    from symrnn.derivation import Derivation

    real, asked = Derivation.lambdify, []

    def record(self, backend="numpy"):
        asked.append(backend)
        return real(self)  # the NumPy code, so that the test needs no compilation

    monkeypatch.setattr(Derivation, "lambdify", record)
    assert run(["check", "--backend", "numba", "--T", "1", "--seed", "0"], capsys)[0] == 0
    assert asked == ["numba"]

    def no_numba(self, backend="numpy"):
        raise ImportError("backend='numba' needs Numba: pip install 'symrnn[numba]'")

    monkeypatch.setattr(Derivation, "lambdify", no_numba)
    code, out, err = run(["check", "--backend", "numba"], capsys)
    assert code == 1 and out == ""
    one_line(err, "needs Numba")


# -- --against: the user's function runs in a child process ------------------------------

MORE_BPTT = USER_BPTT + '''
import os, signal, sys, time

def exits(params, x, y, h0):
    sys.exit(0)

def exits_hard(params, x, y, h0):
    os._exit(0)

def crashes(params, x, y, h0):
    os.kill(os.getpid(), signal.SIGSEGV)

def loops(params, x, y, h0):
    while True:
        pass

def sleeps(params, x, y, h0):
    time.sleep(600)

def interrupted(params, x, y, h0):
    with open("child.pid", "w") as f:
        f.write(str(os.getpid()))
    os.kill(os.getppid(), signal.SIGINT)  # as Ctrl-C does to the whole process group
    time.sleep(600)

def one_element_loss(params, x, y, h0):
    loss, grads = bptt(params, x, y, h0)
    return np.array([loss]), grads

def string_loss(params, x, y, h0):
    loss, grads = bptt(params, x, y, h0)
    return str(loss), grads

def with_labels(params, x, y, h0):
    assert y.shape == (len(x),) and y.dtype.kind in "iu", (y.shape, y.dtype)
    return bptt(params, x, np.eye(len(params["V"]))[y], h0)

def _reshape(h0):
    return h0.reshape(100, 100)

def raises(params, x, y, h0):
    return _reshape(h0)
'''


@pytest.fixture
def student_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "student_bptt.py").write_text(textwrap.dedent(MORE_BPTT))
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    return tmp_path


def run_symrnn(argv, cwd, timeout=240):
    """``python -m symrnn`` in a fresh process (a hang fails the test, not the run)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, str(cwd)]))
    env.pop("SYMRNN_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "symrnn"] + argv, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("function, words", [
    ("exits_hard", ["student_bptt:exits_hard exited (exit code 0) instead of returning"]),
    ("crashes", ["student_bptt:crashes was killed by SIGSEGV instead of returning"]),
    ("loops", ["student_bptt:loops did not return within 0.5 s and was stopped "
               "(--timeout 0.5)"]),
    ("sleeps", ["student_bptt:sleeps did not return within 0.5 s and was stopped"]),
])
@pytest.mark.slow
def test_a_function_that_does_not_return_fails_in_one_line(function, words, student_dir):
    code, out, err = run_symrnn(["check", "--against", f"student_bptt:{function}",
                                 "--timeout", "0.5", "--seed", "0"], student_dir)
    assert code == 1 and out == "", (out, err)
    one_line(err, "symrnn check: error: ", *words)


@pytest.mark.slow
def test_ctrl_c_stops_the_check_and_its_child(student_dir):
    import os

    code, out, err = run_symrnn(["check", "--against", "student_bptt:interrupted"],
                                student_dir)
    assert code == 130 and out == ""
    one_line(err, "symrnn check: interrupted")
    pid = int((student_dir / "child.pid").read_text())
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(pid, 0)


@pytest.mark.slow
def test_sys_exit_in_the_function_is_a_failed_check(student_dir, capsys):
    code, out, err = run(["check", "--against", "student_bptt:exits", "--seed", "0"], capsys)
    assert code == 1 and err == ""
    assert out.startswith("exits called sys.exit(0) (on T = ")
    code, out, err = run(["check", "--against", "exits_on_import:f"], capsys)
    assert code == 2 and out == ""
    one_line(err, "cannot import 'exits_on_import': it called sys.exit(3)")


@pytest.mark.parametrize("function, says", [
    ("one_element_loss", "one_element_loss: the loss is not a scalar: an array of shape (1,); "
                         "it must be one real number (a float or a 0-d array); this one holds "
                         "the right value: return float(loss) (or loss.item())"),
    ("string_loss", "string_loss: the loss is a str ("),
])
@pytest.mark.slow
def test_a_loss_that_is_not_a_number_is_a_failed_check(function, says, student_dir, capsys):
    code, out, err = run(["check", "--against", f"student_bptt:{function}", "--seed", "0"],
                         capsys)
    assert code == 1 and err == ""  # a failed check, not "bad arguments"
    assert out.startswith(says) and len(out.strip().splitlines()) == 1, out


@pytest.mark.slow
def test_the_students_traceback_is_shown(student_dir, capsys):
    code, out, err = run(["check", "--against", "student_bptt:raises", "--seed", "0"], capsys)
    assert code == 1 and err == ""
    message, traceback = out.split("\n\n", 1)
    assert message.startswith("raises raised ValueError: cannot reshape array of size ")
    lines = traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    files = [line.split('"')[1] for line in lines if line.startswith('  File "')]
    assert files == [str(student_dir / "student_bptt.py")] * 2  # raises, then _reshape
    assert lines[-1].startswith("ValueError: cannot reshape array of size ")


@pytest.mark.slow
def test_labels(student_dir, capsys):
    code, out, err = run(["check", "--against", "student_bptt:with_labels", "--labels",
                          "--seed", "1"], capsys)
    assert code == 0 and err == "", out
    assert out.startswith("student_bptt:with_labels: loss and gradients agree")
    # without --labels y holds one-hot rows, which the function refuses
    code, out, _ = run(["check", "--against", "student_bptt:with_labels", "--seed", "1"],
                       capsys)
    assert code == 1 and out.startswith("with_labels raised AssertionError: ((")


@pytest.mark.parametrize("argv, words", [
    (["--against", "student_bptt.py:bptt"],
     ["got 'student_bptt.py:bptt'; drop the .py: --against student_bptt:bptt"]),
    (["--against", "lab/student_bptt.py:bptt"], ["drop the .py: --against lab.student_bptt:bptt"]),
    (["--against", "../student_bptt.py:bptt"],
     ["drop the .py and run symrnn in the file's directory"]),
    (["--labels"], ["argument --labels: applies to --against only"]),
    (["--timeout", "3"], ["argument --timeout: applies to --against only"]),
    (["--against", "student_bptt:bptt", "--backend", "numba"], ["argument --backend: not with "
                                                                "--against"]),
    (["--against", "student_bptt:bptt", "--timeout", "0"], ["--timeout", "positive"]),
    (["--against", "student_bptt:bptt", "--timeout", "nan"], ["--timeout", "positive"]),
    (["--against", "student_bptt:bptt", "--labels", "--output", "mse"],
     ["argument --labels: the targets of Elman RNN (tanh, mse) are not class distributions"]),
])
def test_against_argument_errors_exit_2(argv, words, student_dir, capsys):
    code, out, err = run(["check"] + argv, capsys)
    assert code == 2 and out == ""
    one_line(err, *words)


# -- --cell-file: regular files within the parser's limit -----------------------------

@pytest.mark.slow
def test_a_fifo_and_dev_zero_are_refused_at_once(tmp_path):
    import os

    os.mkfifo(tmp_path / "cell.fifo")  # no one writes to it: an open() would block
    for command in ("check", "derive", "codegen", "sheet"):
        code, out, err = run_symrnn([command, "--cell-file", "cell.fifo"], tmp_path, timeout=60)
        assert code == 2 and out == "", err
        one_line(err, "argument --cell-file: cell.fifo is a FIFO, not a regular file")
    code, out, err = run_symrnn(["derive", "--cell-file", "/dev/zero"], tmp_path, timeout=60)
    assert code == 2
    one_line(err, "/dev/zero is a character device, not a regular file")


def test_cell_files_too_long_or_not_files(tmp_path, capsys):
    from symrnn.model.parse import MAX_CHARACTERS

    long = tmp_path / "long.cell"
    long.write_text(MGU + "#" * MAX_CHARACTERS)
    code, out, err = run(["derive", "--cell-file", str(long)], capsys)
    assert code == 2 and out == ""
    one_line(err, f"long.cell has more than {MAX_CHARACTERS} characters, the limit of a cell")
    code, out, err = run(["derive", "--cell-file", str(tmp_path)], capsys)
    assert code == 2
    one_line(err, "is a directory, not a regular file")
    (tmp_path / "latin1.cell").write_bytes(MGU.encode() + b"# caf\xe9\n")
    code, out, err = run(["derive", "--cell-file", str(tmp_path / "latin1.cell")], capsys)
    assert code == 2
    one_line(err, "latin1.cell is not UTF-8 text")


def test_a_cell_file_with_a_byte_order_mark(tmp_path, capsys):
    (tmp_path / "mgu.cell").write_text("\ufeff" + MGU, encoding="utf-8")
    code, out, _ = run(["derive", "--cell-file", str(tmp_path / "mgu.cell")], capsys)
    assert code == 0 and out.startswith("mgu\n")


@pytest.mark.slow
def test_an_import_that_never_ends_is_stopped(student_dir, capsys, monkeypatch):
    (student_dir / "hangs_on_import.py").write_text("while True:\n    pass\n")
    monkeypatch.setattr(cli, "IMPORT_TIMEOUT", 0.5)  # the import's own, longer limit
    code, out, err = run(["check", "--against", "hangs_on_import:f", "--timeout", "0.2"],
                         capsys)
    assert code == 1 and out == ""
    one_line(err, "symrnn check: error: the import of hangs_on_import:f did not finish "
                  "within 0.5 s and was stopped")
