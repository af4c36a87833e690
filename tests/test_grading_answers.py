r"""Answers as students write them, graded for the Elman RNN, the LSTM and the GRU.

Each row: the cell, the gradient asked for, the answer as typed, whether it is
right, and the catalogue key of the mistake the feedback must name (None: no
mistake named). Right answers come in several equivalent forms (LaTeX with
\delta or with the adjoint of h, diag or \odot, subscript or superscript time,
bold or plain, the text syntax); every typical mistake of ``CATALOGUE`` and
``MODIFIERS`` appears at least once, each a formula a student types, not the
derived one transformed. The catalogue tests are proven able to fail at the end:
with a catalogue entry emptied, the rows that name it no longer do.
"""
import pytest

from symrnn.grading import CATALOGUE, AnswerSyntaxError, Grader, MODIFIERS
from symrnn.mistakes import catalogue as mistakes_module

DL = r"\frac{\partial L}{\partial h^{(t)}}"
DLn = r"\frac{\partial L}{\partial h^{(t+1)}}"

ROWS = [
    # -- Elman, dL/dW: right in several forms ------------------------------------------
    ("elman", "W", r"\sum_{t=1}^{T} \delta^{(t)} \bm{h}^{(t-1)\top}", True, None),
    ("elman", "W",
     rf"\sum_{{t=1}}^{{T}} \operatorname{{diag}}(1-\bm h^{{(t)}}\odot \bm h^{{(t)}}) {DL} \bm "
     rf"h^{{(t-1)\top}}", True, None),
    ("elman", "W",
     r"\sum_t \left((1-(h_t)^2) \circ \frac{\partial L}{\partial h_t}\right) h_{t-1}^T",
     True, None),
    ("elman", "W",
     r"\sum_{k=1}^{T} \mathrm{diag}(1 - \tanh^2(z^{(k)})) \nabla_{h^{(k)}} L \cdot "
     r"(h^{(k-1)})^{\mathsf{T}}", True, None),
    ("elman", "W",
     r"\sum_{t=1}^T \text{diag}(\tanh'(W h^{t-1} + U x^{t})) \frac{dL}{dh^{t}} {h^{t-1}}'",
     True, None),
    ("elman", "W", "sum(t=1..T, diag(1 - h(t)*h(t)) @ dL_dh(t) @ h(t-1).T)", True, None),
    ("elman", "W", "sum_{t=1}^{T} dL/dz^(t) h^(t-1)^T", True, None),
    ("elman", "W", "∑_t diag(1 − h_t ⊙ h_t) ∂L/∂h_t h_{t-1}ᵀ", True, None),
    ("elman", "W",
     r"\frac{\partial L}{\partial W} = \sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}", True, None),
    # -- Elman, dL/dW: each typical mistake ------------------------------------------------
    ("elman", "W", r"\sum_{t=1}^{T} \delta^{(t)} h^{(t)\top}", False, "time shift"),
    ("elman", "W", rf"\sum_{{t=1}}^{{T}} {DL} h^{{(t-1)\top}}", False, "activation derivative"),
    ("elman", "W",
     rf"\sum_{{t=1}}^{{T}} \operatorname{{diag}}(h^{{(t)}} \odot (1 - h^{{(t)}})) {DL} "
     rf"h^{{(t-1)\top}}", False, "wrong derivative"),
    ("elman", "W",
     rf"\sum_{{t=1}}^{{T}} \operatorname{{diag}}(1 - h^{{(t)}}) {DL} h^{{(t-1)\top}}",
     False, "wrong derivative"),
    ("elman", "W",
     r"\sum_{t=1}^{T} \operatorname{diag}(1 - (h^{(t)})^2) V^\top (\hat{y}^{(t)} - y^{(t)}) "
     r"h^{(t-1)\top}", False, "recurrent term"),
    ("elman", "W",
     r"\sum_{t=1}^{T} \frac{\partial L^{(t)}}{\partial z^{(t)}} h^{(t-1)\top}",
     False, "recurrent term"),
    ("elman", "W", r"\delta^{(t)} h^{(t-1)\top}", False, "sum"),
    ("elman", "W", r"\frac{1}{T} \sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}", False, "mean"),
    ("elman", "W", r"\sum_{t=1}^{T} h^{(t-1)} \delta^{(t)\top}", False, "transposed"),
    ("elman", "W", r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)}", False, "transpose repair"),
    ("elman", "W", r"\sum_{t=1}^{T} (-\delta^{(t)}) h^{(t-1)\top}", False, "sign"),
    ("elman", "W", r"\sum_{t=2}^{T} \delta^{(t)} h^{(t-1)\top}", False, "limits"),
    ("elman", "W", r"2 \sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}", False, "factor"),
    # -- Elman, the recurrence dL/dh^(t) and dL/dh^(0) ---------------------------------------
    ("elman", "dL/dh",
     rf"V^\top (\hat y^{{(t)}} - y^{{(t)}}) + W^\top \operatorname{{diag}}(1 - h^{{(t+1)}} \odot "
     rf"h^{{(t+1)}}) {DLn}", True, None),
    ("elman", "dL/dh", "V.T @ dL_do(t) + W.T @ dL_dz(t+1)", True, None),
    ("elman", "dL/dh",
     rf"V^\top (\hat y^{{(t)}} - y^{{(t)}}) + \operatorname{{diag}}(1 - h^{{(t+1)}} \odot "
     rf"h^{{(t+1)}}) W^\top {DLn}", False, "diag side"),
    ("elman", "dL/dh",
     rf"V^\top (\hat y^{{(t)}} - y^{{(t)}}) + W^\top {DLn} \operatorname{{diag}}(1 - "
     rf"(h^{{(t+1)}})^2)", False, "diag order"),
    ("elman", "dL/dh", r"V^\top (\hat y^{(t)} - y^{(t)}) + W \delta^{(t+1)}", False, "transpose"),
    ("elman", "dL/dh", r"V^\top (\hat y^{(t)} - y^{(t)})", False, "recurrent term"),
    ("elman", "dL/dh",
     rf"V^\top (\hat y^{{(t)}} - y^{{(t)}}) + W^\top \operatorname{{diag}}(1 - h^{{(t)}} \odot "
     rf"h^{{(t)}}) {DLn}", False, "time shift"),
    ("elman", "h0", r"W^\top \delta^{(1)}", True, None),
    ("elman", "h0",
     r"W^\top \operatorname{diag}(1 - h_1 \odot h_1) \frac{\partial L}{\partial h_1}", True, None),
    ("elman", "h0", r"W \delta^{(1)}", False, "transpose"),
    # -- LSTM ------------------------------------------------------------------------------
    ("lstm", "W_f",
     r"\sum_{t=1}^{T} \left(\frac{\partial L}{\partial s^{(t)}} \odot s^{(t-1)} \odot f^{(t)} "
     r"\odot (1 - f^{(t)})\right) h^{(t-1)\top}", True, None),
    ("lstm", "W_f",
     r"\sum_t \operatorname{diag}(\sigma'(W_f h_{t-1} + U_f x_t + b_f)) \frac{\partial "
     r"L}{\partial f_t} h_{t-1}^T", True, None),
    ("lstm", "W_f",
     r"\sum_{t=1}^{T} \left(\frac{\partial L}{\partial s^{(t)}} \odot s^{(t-1)}\right) "
     r"h^{(t-1)\top}", False, "activation derivative"),
    ("lstm", "W_f",
     r"\sum_{t=1}^{T} \left(\frac{\partial L}{\partial s^{(t)}} \odot f^{(t)} \odot (1 - "
     r"f^{(t)})\right) h^{(t-1)\top}", False, "gate factor"),
    ("lstm", "W_f",
     r"\sum_{t=1}^{T} \left(\frac{\partial L}{\partial s^{(t)}} \odot s^{(t)} \odot f^{(t)} \odot "
     r"(1 - f^{(t)})\right) h^{(t-1)\top}", False, "time shift"),
    ("lstm", "dL/ds",
     r"\frac{\partial L}{\partial h^{(t)}} \odot q^{(t)} \odot (1 - \tanh(s^{(t)})^2) + "
     r"\frac{\partial L}{\partial s^{(t+1)}} \odot f^{(t+1)}", True, None),
    ("lstm", "dL/ds",
     r"\frac{\partial L}{\partial h^{(t)}} \odot q^{(t)} \odot (1 - \tanh(s^{(t)})^2) + "
     r"\frac{\partial L}{\partial s^{(t+1)}}", False, "gate factor"),
    ("lstm", "dL/ds",
     r"\frac{\partial L}{\partial h^{(t)}} \odot q^{(t)} \odot (1 - \tanh(s^{(t)})^2)",
     False, "recurrent term"),
    ("lstm", "dL/ds",
     r"\frac{\partial L}{\partial h^{(t)}} \odot q^{(t)} + \frac{\partial L}{\partial s^{(t+1)}} "
     r"\odot f^{(t+1)}", False, "activation derivative"),
    ("lstm", "dL/dq",
     r"\frac{\partial L}{\partial h^{(t)}} \odot s^{(t)}", False, "missing function"),
    ("lstm", "V", r"\sum_t (\hat{y}_t - y_t) h_t^\top", True, None),
    ("lstm", "V", r"\sum_t (y_t - \hat{y}_t) h_t^\top", False, "sign"),
    ("lstm", "b",
     r"\sum_t \frac{\partial L}{\partial s_t} \odot g_t \odot (1 - a_t^2)", True, None),
    # -- GRU -------------------------------------------------------------------------------
    ("gru", "W",
     r"\sum_{t=1}^{T} \left((1-u^{(t)}) \odot \frac{\partial L}{\partial h^{(t)}} \odot (1 - "
     r"a^{(t)} \odot a^{(t)})\right) (r^{(t)} \odot h^{(t-1)})^\top", True, None),
    ("gru", "W",
     r"\sum_{t=1}^{T} \left((1-u^{(t)}) \odot \frac{\partial L}{\partial h^{(t)}} \odot (1 - "
     r"a^{(t)} \odot a^{(t)})\right) h^{(t-1)\top}", False, "gate factor"),
    ("gru", "W_u",
     r"\sum_t \operatorname{diag}(u_t \odot (1-u_t)) \left(\frac{\partial L}{\partial h_t} \odot "
     r"(h_{t-1} - a_t)\right) h_{t-1}^T", True, None),
    ("gru", "W_u",
     r"\sum_t \operatorname{diag}(u_t \odot (1-u_t)) \left(\frac{\partial L}{\partial h_t} \odot "
     r"(a_t - h_{t-1})\right) h_{t-1}^T", False, "sign"),
    ("gru", "dL/da", r"(1 - u^{(t)}) \odot \frac{\partial L}{\partial h^{(t)}}", True, None),
    ("gru", "dL/da",
     r"u^{(t)} \odot \frac{\partial L}{\partial h^{(t)}}", False, "gate complement"),
    ("gru", "dL/dh",
     r"V^T(\hat y_t - y_t) + u_{t+1} \odot \frac{\partial L}{\partial h_{t+1}} + r_{t+1} \odot "
     r"W^T \operatorname{diag}(1-a_{t+1}^2)\frac{\partial L}{\partial a_{t+1}} + W_r^T "
     r"\operatorname{diag}(r_{t+1}\odot(1-r_{t+1}))\frac{\partial L}{\partial r_{t+1}} + W_u^T "
     r"\operatorname{diag}(u_{t+1}\odot(1-u_{t+1}))\frac{\partial L}{\partial u_{t+1}}",
     True, None),
    ("gru", "dL/dh",
     r"V^T(\hat y_t - y_t) + u_{t+1} \odot \frac{\partial L}{\partial h_{t+1}} + r_{t+1} \odot "
     r"W^T \operatorname{diag}(1-a_{t+1}^2)\frac{\partial L}{\partial a_{t+1}} + W_r^T "
     r"\operatorname{diag}(r_{t+1}\odot(1-r_{t+1}))\frac{\partial L}{\partial r_{t+1}}",
     False, "missing term"),
    # -- nonsense that reads: wrong, nothing named -------------------------------------------
    ("elman", "W", r"W^\top", False, None),
    ("elman", "W", r"\sum_t x_t", False, None),
    ("elman", "W", r"0", False, None),
    ("lstm", "dL/ds", r"\frac{\partial L}{\partial s^{(t)}}", False, None),
]

UNREADABLE = [
    ("elman", "W", r"\sum_{t=1}^{T} \delta^{(t)} } h^{(t-1)\top}"),
    ("elman", "W", r"\sum_t q_t h_{t-1}^T"),
    ("elman", "W", r"\frac{\partial L}{\partial W} = = 0"),
    ("elman", "W", r"\operatorname{diag}("),
    ("gru", "W", r"hello world"),
]


@pytest.fixture(scope="module")
def graders():
    return {}


def _grader(graders, cell):
    if cell not in graders:
        graders[cell] = Grader(cell)
    return graders[cell]


def test_the_suite_covers_the_catalogue():
    named = {row[4] for row in ROWS}
    assert {m.key for m in CATALOGUE} - named == set()
    assert set(MODIFIERS) - named == set()
    assert len(ROWS) >= 40


@pytest.mark.parametrize("cell, key, answer, right, mistake", ROWS,
                         ids=[f"{r[0]}-{r[1]}-{i}" for i, r in enumerate(ROWS)])
def test_verdict_and_named_mistake(graders, cell, key, answer, right, mistake):
    r = _grader(graders, cell).grade(answer, key)
    assert r.correct is right, r.feedback
    if right:
        assert r.score == 1.0 and not r.mistakes and r.feedback.startswith("Correct")
        return
    assert 0 <= r.score < 1
    assert r.feedback.startswith("Not correct")
    keys = [m.key for m in r.mistakes]
    if mistake is None:
        assert keys == [], r.feedback
    else:
        assert mistake in keys, r.feedback
        named = next(m for m in r.mistakes if m.key == mistake)
        assert named.sentence[:20].lower() in r.feedback.lower()


@pytest.mark.parametrize("cell, key, answer", UNREADABLE)
def test_unreadable_answers_point_at_the_token(graders, cell, key, answer):
    with pytest.raises(AnswerSyntaxError) as info:
        _grader(graders, cell).grade(answer, key)
    e = info.value
    assert e.column is not None and 0 <= e.column <= len(answer)
    lines = str(e).splitlines()
    assert lines[0].startswith(f"answer, column {e.column + 1}: ")
    assert lines[2].index("^") - lines[1].index(answer[:3]) >= 0


def test_partial_credit_counts_the_right_parts(graders):
    g = _grader(graders, "elman")
    right_sum_wrong_row = g.grade(r"\sum_{t=1}^{T} \delta^{(t)} h^{(t)\top}", "W")
    assert right_sum_wrong_row.score == pytest.approx(0.6)
    assert [p.right for p in right_sum_wrong_row.parts] == [True, True, False]
    no_sum = g.grade(r"\delta^{(t)} h^{(t-1)\top}", "W")
    assert no_sum.score == pytest.approx(0.8)      # the per-step term right, the sum missing
    recurrence = g.grade(r"V^\top (\hat y^{(t)} - y^{(t)})", "dL/dh")
    assert recurrence.score == pytest.approx(0.5)  # the step's own term right
    nothing = g.grade(r"W^\top", "W")
    assert nothing.score == 0


def test_exact_proof_and_numbers_agree(graders):
    g = _grader(graders, "elman")
    proved = g.grade(r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}", "W")
    assert proved.correct and proved.exact and "every T" in proved.feedback


CATALOGUE_ROWS = [r for r in ROWS if r[4] in {m.key for m in CATALOGUE}]


@pytest.mark.parametrize("entry", sorted({r[4] for r in CATALOGUE_ROWS}))
def test_each_catalogue_entry_is_what_names_its_rows(monkeypatch, entry):
    """Mutation: with one entry's transformation emptied, its rows name it no more."""
    index = next(i for i, m in enumerate(CATALOGUE) if m.key == entry)
    broken = list(CATALOGUE)
    broken[index] = mistakes_module.Mistake(entry, "x", "x", lambda forms: [])
    monkeypatch.setattr(mistakes_module, "CATALOGUE", tuple(broken))
    graders = {}
    for cell, key, answer, right, mistake in CATALOGUE_ROWS:
        if mistake != entry:
            continue
        r = _grader(graders, cell).grade(answer, key)
        assert entry not in [m.key for m in r.mistakes], (entry, answer)


def test_grade_takes_a_cell_a_preset_name_or_cell_text():
    import symrnn
    from symrnn.grading import grade
    answer = r"\sum_{t=1}^{T} \delta^{(t)} x^{(t)\top}"
    assert grade(answer, "elman", "U").correct
    assert grade(answer, symrnn.ElmanRNN(), "U").correct
    text = """params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
z = W @ prev(h) + U @ x
h = tanh(z)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)
"""
    assert grade(answer, text, "U").correct
    assert grade(r"\sum_t (o_t - y_t) h_t^T", text, "V").correct
    for bad, match in ((42, "cell: expected"), ("rnn", "cell: unknown cell")):
        with pytest.raises(ValueError, match=match):
            grade(answer, bad, "U")


def test_a_problem_is_said_in_the_feedback(graders):
    g = _grader(graders, "elman")
    r = g.grade(r"\sum_t x_t", "W")
    assert r.feedback == "Not correct. The answer has the shape Nx1; dL/dW is DxD. Score: 0."
    r = g.grade(r"W^\top", "W")
    assert "Wrong: the sum over t = 1..T; the column of the per-step term; the row" in r.feedback
