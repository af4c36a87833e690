"""``symrnn grade``: exit 0 for a right answer, 1 for a wrong one (the feedback says
why), 2 for an unreadable answer or bad arguments (one line on stderr, no
traceback). The commands run as subprocesses, all started at once."""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow     # every test reads the runs of subprocesses

ROOT = Path(__file__).resolve().parents[1]
PY = [sys.executable, "-m", "symrnn", "grade"]
RIGHT = r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}"

GRU_TEXT = """params: W_u[D,D] U_u[D,N] b_u[D] W[D,D] U[D,N] b[D] V[M,D]
input: x[N]
target: y[M]
state: h[D]
u = sigmoid(W_u @ prev(h) + U_u @ x + b_u)
a = tanh(W @ prev(h) + U @ x + b)
h = u * prev(h) + (1 - u) * a
o = V @ h
loss = -y.T @ log_softmax(o)
"""


def commands(tmp):
    (tmp / "mgu.cell").write_text(GRU_TEXT)
    (tmp / "answer.tex").write_text(r"W^\top \delta^{(1)}")
    return {
        "right": PY + ["--gradient", "W", "--answer", RIGHT],
        "right text": PY + ["--gradient", "W", "--syntax", "text", "--answer",
                            "sum(t=1..T, dL_dz(t) @ h(t-1).T)"],
        "wrong": PY + ["--gradient", "W", "--answer", r"\sum_{t=1}^{T} \delta^{(t)} h^{(t)\top}"],
        "json": PY + ["--cell", "lstm", "--gradient", "dL/ds", "--json", "--answer",
                      r"\frac{\partial L}{\partial h^{(t)}} \odot q^{(t)} "
                      r"\odot (1 - \tanh(s^{(t)})^2)"],
        "file": PY + ["--gradient", "h0", "--answer-file", str(tmp / "answer.tex")],
        "cell file": PY + ["--cell-file", str(tmp / "mgu.cell"), "--gradient", "dL/da",
                           "--answer", r"(1 - u_t) \odot \frac{\partial L}{\partial h_t}"],
        "elman options": PY + ["--activation", "sigmoid", "--output", "mse", "--gradient",
                               "dL/dz", "--answer",
                               r"h_t \odot (1 - h_t) \odot \frac{\partial L}{\partial h_t}"],
        "unreadable": PY + ["--gradient", "W", "--answer", r"\sum_{t=1}^{T} \delta^{(t)} } h"],
        "unknown symbol": PY + ["--gradient", "W", "--answer", r"\sum_t q_t h_{t-1}^T"],
        "bad key": PY + ["--gradient", "Q", "--answer", RIGHT],
        "no answer": PY + ["--gradient", "W"],
        "two answers": PY + ["--gradient", "W", "--answer", RIGHT, "--answer-file", "x"],
        "missing file": PY + ["--gradient", "W", "--answer-file", str(tmp / "nope.tex")],
        "cell file and cell": PY + ["--cell", "lstm", "--cell-file", str(tmp / "mgu.cell"),
                                    "--gradient", "W", "--answer", "W"],
        "hostile": PY + ["--gradient", "W", "--answer", "(" * 5000],
        "power tower": PY + ["--gradient", "W", "--answer", r"9^{9^{9}}"],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grade")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SYMRNN_DEBUG", None)
    started = {name: subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for name, argv in commands(tmp).items()}
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=300)
        results[name] = types.SimpleNamespace(code=process.returncode, out=out, err=err)
    return results


@pytest.mark.parametrize("name", ["right", "right text", "file", "cell file", "elman options"])
def test_right_answers_exit_0(runs, name):
    run = runs[name]
    assert run.code == 0, (run.out, run.err)
    assert run.out.startswith("Correct") and "Score: 1." in run.out and run.err == ""


def test_a_wrong_answer_exits_1_with_the_named_mistake(runs):
    run = runs["wrong"]
    assert run.code == 1 and run.err == ""
    assert "Time shift: dL/dW uses h^(t) where the derivation has h^(t-1)" in run.out
    assert "Score: 0.6." in run.out


def test_json(runs):
    run = runs["json"]
    assert run.code == 1
    result = json.loads(run.out)
    assert result["correct"] is False and result["score"] == 0.5
    assert [m["key"] for m in result["mistakes"]] == ["recurrent term"]
    assert [p["right"] for p in result["parts"]] == [True, False]


@pytest.mark.parametrize("name, words", [
    ("unreadable", ["column 29", "unexpected '}'", ">>}<<"]),
    ("unknown symbol", ["column 8", "unknown symbol 'q_t'"]),
    ("bad key", ["argument --gradient", "'Q' is not a gradient"]),
    ("no answer", ["one of the arguments --answer --answer-file is required"]),
    ("two answers", ["not allowed with"]),
    ("missing file", ["argument --answer-file: cannot read"]),
    ("cell file and cell", ["--cell-file", "cannot be combined with --cell"]),
    ("hostile", ["more than 2000 symbols"]),
    ("power tower", ["superscript"]),
])
def test_errors_exit_2_on_one_line(runs, name, words):
    run = runs[name]
    assert run.code == 2, (run.out, run.err)
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symrnn grade: error: "), run.err
    assert "Traceback" not in run.err
    for w in words:
        assert w in lines[0], (w, lines[0])
