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
