r"""The answer parsers: the forms students type, the text syntax, the notations, and
what is refused (each refusal an AnswerSyntaxError with the column and a caret, fast).

Equivalent forms are checked against a reference form by the normal form of
``canonical.py`` and by the numbers of ``numeric.py`` (independent routes).
"""
import contextlib
import signal

import pytest
from sympy import MatrixSymbol

import symrnn
from symrnn.grading import AnswerSyntaxError, Grader, Notation, ShapeMismatch
from symrnn.grading.canonical import equal
from symrnn.grading.numeric import close, values
from symrnn.model.nodes import Adjoint, StepVar, SumOverTime


@contextlib.contextmanager
def no_hang(seconds=20):
    def stop(*_):
        raise TimeoutError("the parser did not answer")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def elman():
    return Grader("elman")


def same(grader, a, b):
    ea, eb = grader.parse(a), grader.parse(b)
    numeric = close(values(grader.points, ea), values(grader.points, eb))
    return numeric and equal(ea, eb, grader.derivation)


REFERENCE_W = r"\sum_{t=1}^{T} \frac{\partial L}{\partial z^{(t)}} h^{(t-1)\top}"
FORMS_W = [
    r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \delta_t h_{t-1}^\top",
    r"\sum_{t=1}^{T} \delta^{t} h^{t-1\top}",
    r"\sum_{t=1}^{T} \delta^{<t>} h^{<t-1>T}",
    r"\sum_{t=1}^{T} \delta^{\langle t\rangle} (h^{\langle t-1 \rangle})^{\mathsf{T}}",
    r"\sum_{t=1}^T \delta^(t) {h^(t-1)}'",
    r"\sum\limits_{t=1}^{T} \boldsymbol{\delta}^{(t)} \mathbf{h}^{(t-1)\intercal}",
    r"\sum_{t=1}^{T} \bm{\delta}^{(t)} \cdot \bm{h}^{(t-1)\top}",
    r"\sum_{t} \delta_{t} \, h_{t - 1}^{T}",
    r"\sum_{\tau=1}^{T} \delta_\tau h_{\tau-1}^\top",
    r"\displaystyle\sum_{t=1}^{T}\left(\delta^{(t)}\right)\left(h^{(t-1)}\right)^{\top}",
    r"$\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}$",
    r"\frac{\partial L}{\partial \mathbf{W}} = \sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \frac{\partial \mathcal{L}}{\partial \mathbf{z}_t} \mathbf{h}_{t-1}^\top",
    r"\sum_{t=1}^{T} \partial L / \partial z^{(t)} \, h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \nabla_{z^{(t)}} L \, h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \frac{dL}{dz_t} h_{t-1}^T",
    r"\sum_{t=1}^{T} \frac{\mathrm{d} L}{\mathrm{d} z^{(t)}} h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \operatorname{diag}(1 - h^{(t)} \odot h^{(t)}) \frac{\partial L}{\partial "
    r"h^{(t)}} h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \mathrm{diag}\left(1 - (h^{(t)})^2\right) \frac{\partial L}{\partial "
    r"h^{(t)}} h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \text{diag}[1 - h_t^{\circ 2}] \frac{\partial L}{\partial h_t} h_{t-1}^T",
    r"\sum_{t=1}^{T} diag(1 - h_t * h_t) \frac{\partial L}{\partial h_t} h_{t-1}^T",
    r"\sum_{t=1}^{T} \left((\mathbf{1} - \bm{h}^{(t)} \circ \bm{h}^{(t)}) \odot \frac{\partial "
    r"L}{\partial \bm{h}^{(t)}}\right) \bm{h}^{(t-1)\top}",
    r"\sum_{t=1}^{T} \left(\tanh'(z^{(t)}) \odot \frac{\partial L}{\partial h^{(t)}}\right) "
    r"h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \left((1 - \tanh^2(z_t)) \odot \frac{\partial L}{\partial h_t}\right) "
    r"h_{t-1}^T",
    r"\sum_{t=1}^{T} \left((1 - \tanh(W h_{t-1} + U x_t)^2) \odot \frac{\partial L}{\partial "
    r"h_t}\right) h_{t-1}^T",
    r"\sum_{t=1}^{T} \left(\frac{\partial L}{\partial h^{(t)}} - h^{(t)} \odot h^{(t)} \odot "
    r"\frac{\partial L}{\partial h^{(t)}}\right) h^{(t-1)\top}",
    r"\sum_{t=1}^{T} \delta^{(t)} h^{(t-1)\top} + \sum_{t=1}^{T} 0 \cdot \delta^{(t)} "
    r"h^{(t-1)\top}",
    "∑_t δ_t h_{t-1}ᵀ",
    "∑_{t=1}^{T} diag(1 − h_t ⊙ h_t) ∂L/∂h_t · h_{t−1}ᵀ",
    # the text syntax
    "sum(t=1..T, dL_dz(t) @ h(t-1).T)",
    "sum(t, dL/dz(t) @ prev(h).T)",
    "sum(dL_dz(t) @ h(t-1)')",
    "sum_{t=1}^{T} dL/dz^(t) h^(t-1)^T",
    "sum_t ((1 - h^(t).^2) .* dL/dh^(t)) h^(t-1)^T",
    "sum(t=1..T, ((1 - h(t)**2) * dL_dh(t)) @ h(t-1).T)",
    "sum(t=1..T, diag(1 - h(t) * h(t)) @ dL_dh(t) @ h(t-1).T)",
    "sum(t=1..T, (tanh'(z(t)) * dL_dh(t)) @ h(t-1).T)",
]


@pytest.mark.parametrize("form", FORMS_W)
def test_equivalent_forms_of_dL_dW(elman, form):
    assert same(elman, form, REFERENCE_W), form


def test_more_notation_in_other_gradients(elman):
    assert same(elman, r"\sum_t (\hat{\bm y}_t - \bm y_t) \bm h_t^\top",
                r"\sum_{t=1}^{T} \frac{\partial L}{\partial o^{(t)}} h^{(t)\top}")
    assert same(elman, r"\sum_t (\operatorname{softmax}(o_t) - y_t) h_t^\top",
                r"\sum_{t=1}^{T} \frac{\partial L}{\partial o^{(t)}} h^{(t)\top}")
    assert same(elman, r"\hat{y}^{(t)} (\mathbf{1}^\top y^{(t)}) - y^{(t)}", r"\hat y_t - y_t")
    assert same(elman, r"\mathbf{I} W^\top \delta^{(1)}", r"W^T \delta_1")
    assert same(elman, r"W^T \delta_{1} + \mathbf{0}", r"W^T \delta_1")
    assert same(elman, r"\frac{1}{2} W^T \delta_{1} + 0.5 W^T \delta_1", r"W^T \delta_1")


def test_the_normal_form_tells_forms_apart(elman):
    """Equal normal forms prove equality; a changed time, transpose or factor changes it."""
    d = elman.derivation
    base = elman.parse(REFERENCE_W)
    for other in (r"\sum_{t=1}^{T} \delta^{(t)} h^{(t)\top}",
                  r"\sum_{t=1}^{T} \frac{\partial L}{\partial h^{(t)}} h^{(t-1)\top}",
                  r"\sum_{t=1}^{T} 2 \delta^{(t)} h^{(t-1)\top}",
                  r"\sum_{t=2}^{T} \delta^{(t)} h^{(t-1)\top}",
                  r"\sum_{t=1}^{T} \operatorname{diag}(1 - h^{(t)}) "
                  r"\frac{\partial L}{\partial h^{(t)}} h^{(t-1)\top}"):
        assert not equal(elman.parse(other), base, d), other
    assert equal(base, d.gradients["W"], d)
    assert equal(elman.parse(r"W^T \operatorname{diag}(h_1) \delta_1"),
                 elman.parse(r"W^T (\delta_1 \odot h_1)"), d)
    assert equal(elman.parse(r"z_1 \delta_1^T \operatorname{diag}(h_1) z_1"),
                 elman.parse(r"z_1 ((z_1 \odot h_1)^T \delta_1)"), d)


def test_the_parsed_nodes_are_the_derivations(elman):
    e = elman.parse(r"\sum_{k=1}^{T} \frac{\partial L}{\partial h^{(k)}} h_{k-1}^\top")
    assert isinstance(e, SumOverTime) and e.index == symrnn.graph.unroll.t
    D = elman.cell.sizes[0]
    assert Adjoint(StepVar("h", symrnn.graph.unroll.t, D, 1)) in e.atoms(Adjoint)
    assert StepVar("h", symrnn.graph.unroll.t - 1, D, 1) in e.atoms(StepVar)
    assert elman.parse("W^T") == MatrixSymbol("W", D, D).T


def test_juxtaposition_binds_tighter_than_the_written_products(elman):
    a = elman.parse(r"h^{(t)} \odot W h^{(t-1)}")
    b = elman.parse(r"h^{(t)} \odot (W h^{(t-1)})")
    assert a == b
    with pytest.raises(ShapeMismatch):              # text: Python's order, left to right
        elman.parse("h(t) * W @ h(t-1)")                    # (h * W) @ h: shapes differ


# -- refusals ---------------------------------------------------------------------------

BROKEN = [
    (r"\sum_{t=1}^{T} \delta^{(t)} } h", "unexpected '}'", 28),
    (r"\frac{\partial L}{\partial h^{(t)}", "never closed", 17),
    (r"\operatorname{diag}(1 - h_t", "expected ')'", 27),
    (r"W^\top \foo h", "\\foo", 7),
    (r"W^{-1} h_t", "inverse", 2),
    (r"h^{(t)(t)}", "", 2),
    (r"q_t", "unknown symbol 'q_t'", 0),
    (r"W^\top h_t §", "'§'", 11),
    (r"\sum_{1=t}^{T} h_t", "index", 6),
    (r"h_{t-1} + h_k", "time index k", 10),
    (r"\frac{\partial L}{\partial (W h)} ", "one quantity", 17),
    (r"h^{(t)} = W", "left side", 0),
]


@pytest.mark.parametrize("answer, words, column", BROKEN)
def test_refusals_point_at_the_token(elman, answer, words, column):
    with no_hang(), pytest.raises(AnswerSyntaxError) as info:
        elman.grade(answer, "W")
    e = info.value
    assert words in str(e)
    assert e.column == column, (e.column, str(e))
    first, shown, caret = str(e).splitlines()
    assert first.startswith(f"answer, column {column + 1}: ")
    assert caret.index("^") == shown.index(answer[:min(8, len(answer))]) + column


def test_empty_and_non_string_answers(elman):
    with pytest.raises(AnswerSyntaxError, match="empty"):
        elman.grade("   ", "W")
    with pytest.raises(ValueError, match="answer: expected a string"):
        elman.grade(None, "W")
    with pytest.raises(ValueError, match="syntax"):
        elman.grade("W", "W", syntax="python")
    with pytest.raises(ValueError, match="key: 'Q' is not a gradient"):
        elman.grade("W", "Q")


HOSTILE = [
    (r"9^{9^{9}}", "superscript"),
    (r"2^{100000}", "exponent"),
    (r"99999999999999999999^{16} W", "beyond the range of a float"),
    ("9" * 40, "digits"),
    ("(" * 500 + "h_t" + ")" * 500, "nested"),
    (r"\frac{" * 300 + "1" + "}{2}" * 300, "nested"),
    (r"\sqrt{" * 300 + "h_t" + "}" * 300, "nested"),
    ("h_t + " * 3000 + "h_t", "at most"),
    ("h " * 2100, "symbols"),
    ("h_t" * 1600, "unknown symbol 'h_th_th_th_th_th_th_th_th_th_t ... h_th_t'"),
    ("-" * 400 + "h_t", "nested"),
    ("sum(" * 300 + "h(t)" + ")" * 300, "nested"),
    ("h(t)" + "**2" * 100, "at most 16"),
    (r"((((h_{t}^2)^2)^2)^2)^2", "at most 16"),
    ("h(t)" + ".T" * 2400, "symbols"),
    ("1e308 * W", ""),
    (r"\left(" * 200 + "h" + r"\right)" * 200, "nested"),
    ("h_t+" * 480 + "h_t", "graded"),          # long but flat: read, and graded
    ("h(t)-" * 390 + "h(t)", "graded"),
]


@pytest.mark.parametrize("answer, words", HOSTILE,
                         ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_answers_are_refused_fast(elman, answer, words):
    with no_hang(20):
        with pytest.raises(ValueError) as info:
            r = elman.grade(answer, "dL/dh")
            raise ValueError(f"graded: {r.feedback}")     # a readable one is graded, not hung
    assert words in str(info.value)


def test_a_shape_error_is_a_wrong_answer_with_the_reason(elman):
    r = elman.grade(r"\sum_t \delta_t \odot h_{t-1}", "W")
    assert not r.correct and r.score == 0 and "shape" in r.feedback
    r = elman.grade(r"\sum_t h_{t-1} \odot W", "W")
    assert not r.correct and "shapes do not fit" in r.feedback


# -- notation ----------------------------------------------------------------------------

def test_renamed_symbols_and_named_adjoints():
    names = {"W": "W_{hh}", "U": "W_{hx}", "V": "W_{qh}"}
    g = Grader("elman", Notation(names=names, adjoints={"z": r"\delta"}))
    r = g.grade(r"\sum_t \delta_t h_{t-1}^\top", "W")
    assert r.correct
    r = g.grade(r"W_{qh}^\top (\hat y_t - y_t) + W_{hh}^\top \delta_{t+1}", "dL/dh")
    assert r.correct
    r = g.grade(r"W_{qh}^\top (\hat y_t - y_t) + W_{hh} \delta_{t+1}", "dL/dh")
    assert not r.correct and r.mistakes[0].key == "transpose"
    plain = Grader("elman", Notation())     # no delta: an unknown symbol
    with pytest.raises(AnswerSyntaxError, match="unknown symbol"):
        plain.grade(r"\sum_t \delta_t h_{t-1}^\top", "W")
    with pytest.raises(ValueError, match="notation"):
        Notation(layout="diagonal")
    with pytest.raises(ValueError, match="not a name of the cell"):
        Grader("elman", Notation(names={"Q": "Q"}))


def test_row_layout():
    g = Grader("elman", Notation(layout="row", adjoints={"z": r"\delta"}))
    assert g.grade(r"\sum_t h_{t-1}^\top \delta_t", "W").correct
    assert g.grade(r"(\hat y_t - y_t) V^\top + \delta_{t+1} W^\top", "dL/dh").correct
    wrong = g.grade(r"(\hat y_t - y_t) V^\top + \delta_{t+1} W", "dL/dh")
    assert not wrong.correct and wrong.mistakes[0].key == "transpose"
    column = g.grade(r"\sum_t \delta_t h_{t-1}^\top", "W")
    assert not column.correct


CS231N = """params: Wxh[H, N] Whh[H, H] Why[M, H] bh[H]
input: x[N]
target: y[M]
state: h[H]
h = tanh(Wxh @ x + Whh @ prev(h) + bh)
o = Why @ h
loss = -y.T @ log_softmax(o)
"""


def test_multi_letter_and_subscripted_names():
    g = Grader(CS231N)
    form = (r"\sum_t \operatorname{diag}(1 - h_t \odot h_t) "
            r"\frac{\partial L}{\partial h_t} h_{t-1}^T")
    assert g.grade(form, "Whh").correct
    rest = r"\operatorname{diag}(1 - h_{t+1}^2) \frac{\partial L}{\partial h_{t+1}}"
    for why, whh in ((r"\mathrm{Why}", r"\mathrm{Whh}"), ("W_{hy}", "W_{hh}"),
                     (r"\mathbf{Why}", r"\text{Whh}")):
        answer = rf"{why}^T (\operatorname{{softmax}}(o_t) - y_t) + {whh}^T {rest}"
        assert g.grade(answer, "dL/dh").correct, answer
    text = g.grade("Why.T @ dL_do(t) + Whh.T @ ((1 - h(t+1)**2) * dL_dh(t+1))", "dL/dh")
    assert text.correct
    with pytest.raises(AnswerSyntaxError, match="unknown symbol"):
        g.grade(r"Why^T \frac{\partial L}{\partial o_t}", "dL/dh")      # W y h: LaTeX letters


def test_keys_in_several_forms(elman):
    for key in ("W", "dL/dW"):
        assert elman.grade(r"\sum_t \delta_t h_{t-1}^T", key).key == "dL/dW"
    for key in ("h0", "dL/dh^(0)", r"\frac{\partial L}{\partial h^{(0)}}"):
        assert elman.grade(r"W^T \delta_1", key).correct
    for key in ("dL/dh", "dL/dh^(t)", "dL_dh", "h", r"\frac{\partial L}{\partial h^{(t)}}"):
        assert elman.grade(r"V^T (\hat y_t - y_t) + W^T \delta_{t+1}", key).correct


def test_circular_answers_are_wrong_with_the_reason(elman):
    r = elman.grade(r"\frac{\partial L}{\partial W}", "W")
    assert not r.correct and "gradient of a parameter" in r.feedback
    r = elman.grade(r"\frac{\partial L}{\partial h^{(t)}}", "dL/dh")
    assert not r.correct and "depends on the adjoint asked for" in r.feedback
    r = elman.grade(r"W^T \delta_{t}", "dL/dh")
    assert not r.correct and "depends on the adjoint asked for" in r.feedback
    r = elman.grade(r"\frac{\partial L}{\partial W} = \sum_t \delta_t x_t^T", "U")
    assert not r.correct and "left side" in r.feedback


def test_the_power_of_a_square_matrix_is_its_matrix_power(elman):
    """W^2 (LaTeX and text) is W W, as the derivation prints a matrix power; an entry-wise
    power of a matrix is refused, and a vector's square stays entry by entry."""
    for power, product in [(r"W^{2} h^{(t-1)}", r"W W h^{(t-1)}"),
                           (r"(W^\top)^{3} h^{(t)}", r"W^\top W^\top W^\top h^{(t)}"),
                           ("W^2 h(t-1)", "W @ W @ h(t-1)")]:
        assert same(elman, power, product), power
    assert not same(elman, r"W^{2} h^{(t-1)}", r"(W \odot W) h^{(t-1)}")
    for entrywise in (r"W^{\circ 2} h^{(t-1)}", "W**2 @ h(t-1)", "W.^2 @ h(t-1)"):
        with pytest.raises(AnswerSyntaxError, match="entry-wise power of a DxD matrix"):
            elman.parse(entrywise)
    assert same(elman, r"(h^{(t)})^{2}", r"h^{(t)} \odot h^{(t)}")


def test_a_constant_of_unknown_size_plus_a_number(elman):
    """(-1/4 1).^2 + 1 as derive prints it: a constant column whose size the product
    around it tells (it was refused as 'cannot be told')."""
    assert same(elman, r"((-1/4 1).^2 + 1) .* h(t)", r"(17/16) h(t)")
    assert same(elman, r"(3 - (2 1)) .* h(t)", r"h(t)")
    assert same(elman, r"\tanh\left(\mathbf{1} + 1\right) \odot h^{(t)}",
                r"\tanh(2 \mathbf{1}) \odot h^{(t)}")
