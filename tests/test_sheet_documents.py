"""Every document `symrnn sheet` can write, compiled once per session: its LaTeX log
(no overfull boxes), its length, its text; the gradient-norm plot recomputed by hand;
the derivation sheet of any cell; the notebook view of a derivation."""
import numpy
import pytest

import symrnn
from symrnn import cli
from symrnn import documents as documents_module
from symrnn.checking.gradient_norms import NORMS, problem
from symrnn.documents import render_cell_document, render_sheet, sheet_context

from documents import compile_all, needs_tex, overfull, pages, pdf_text

pytestmark = pytest.mark.tex

# two cells from the text syntax that no textbook has
LEAKY = """\
# a leaky gated cell: one gate mixes the old state with a candidate
params: Wf[D,D] Uf[D,N] W[D,D] U[D,N] V[M,D]
input:  x[N]
target: y[M]
state:  h[D]

f = sigmoid(Wf @ prev(h) + Uf @ x)
a = tanh(W @ (f * prev(h)) + U @ x)
h = (1 - f) * prev(h) + f * a
o = V @ h
loss = (o - y).T @ (o - y) / 2
"""
TWO_STATES = """\
# two states: a rectified memory m driven by the hidden state h
params: A[D,D] B[D,N] C[D,D] V[M,D]
input:  x[N]
target: y[M]
state:  h[D], m[D]
h = tanh(A @ prev(h) + B @ x + prev(m))
m = relu((C - eye(D)) @ h) * prev(m)
loss = -y.T @ log_softmax(V @ h)
"""


def _texts():
    return {
        "sheet08": render_sheet(),
        "lstm": render_cell_document(symrnn.LSTM()),
        "gru": render_cell_document(symrnn.GRU()),
        "leaky": render_cell_document(symrnn.parse_cell(LEAKY, name="leaky")),
        "two-states": render_cell_document(symrnn.parse_cell(TWO_STATES, name="two-states")),
    }


@pytest.fixture(scope="session")
def documents(compiled, tmp_path_factory):
    """{name: (tex text, log text, pdf path)}: the shared documents and two more cells."""
    more = compile_all({k: v for k, v in _texts().items() if k in ("leaky", "two-states")},
                       tmp_path_factory.mktemp("two-more"))
    both = {**compiled, **more}
    return {name: (both[name].tex, both[name].log, both[name].pdf) for name in _texts()}


@needs_tex
@pytest.mark.parametrize("name", ["sheet08", "lstm", "gru", "leaky", "two-states"])
def test_no_overfull_boxes(documents, name):
    _, log, _ = documents[name]
    wide, tall = overfull(log)
    assert not wide and not tall, f"{name}: overfull hboxes {wide} pt, {tall} overfull vboxes"


@needs_tex
def test_the_solution_sheet_is_short_and_talks_to_the_student(documents):
    _, log, pdf = documents["sheet08"]
    assert pages(log) <= 8
    text = pdf_text(pdf)
    assert "engine" not in text.lower() and "symrnn" not in text
    assert "LSTM" in text and "Derivation" not in text


def test_a_plotted_norm_is_what_a_hand_written_bptt_gives():
    """One point of the figure, recomputed with NumPy: the forward pass of the tanh RNN and
    the chain rule backwards from L = g^T V h^(k), written out here."""
    s = sheet_context()
    curve = s.norms.curves[-1]  # the exploding one
    k, plotted = curve.points[9]
    cell = symrnn.ElmanRNN(output="upstream")
    params, x, g = problem(cell, curve.rho, NORMS["steps"], NORMS["sizes"],
                           NORMS["input_scale"], NORMS["seed"])
    W, U, V = params["W"], params["U"], params["V"]
    states = [numpy.zeros(W.shape[0])]
    for step in range(k):
        states.append(numpy.tanh(W @ states[-1] + U @ x[step]))
    dh = V.T @ g
    for step in range(k, 0, -1):
        dh = W.T @ ((1 - states[step] ** 2) * dh)
    assert k == 10 and numpy.isclose(plotted, numpy.linalg.norm(dh), rtol=1e-10)
    assert plotted > 10 * s.norms.curves[0].points[9][1]  # exploding vs vanishing
    assert "(%d, %.6g)" % (k, plotted) in render_sheet()


def test_the_derivation_sheet_of_a_text_cell_prints_its_equations_and_no_elman_names():
    text = render_cell_document(symrnn.parse_cell(TWO_STATES, name="two-states"), TWO_STATES)
    # the equations as mathematics, not the source text (@, prev, # and the comment)
    assert "prev(" not in text and "@" not in text and "rectified memory" not in text
    assert r"\bm{z}_{m}^{(t)} &= (\bm{C}^{(t)} - \mathbf{I}) \bm{h}^{(t)}" in text
    assert r"\bm{m}^{(t)} &= \operatorname{relu}(\bm{z}_{m}^{(t)}) \odot \bm{m}^{(t - 1)}" in text
    assert r"\bm{m}^{(0)}" in text and r"\bm{A}^{(t)}" in text
    # the gradients of the pre-activations named once (delta_h, delta_m), no exercise
    assert r"\bm{\delta}_{h}^{(t)}" in text and r"\bm{\delta}_{m}^{(t)}" in text
    assert "Problem" not in text
    assert r"\bibitem" not in text  # a cell of its own: nothing to cite


def test_gated_documents_cite_their_sources():
    lstm = render_cell_document(symrnn.LSTM())
    gru = render_cell_document(symrnn.GRU())
    assert r"\bibitem{hochreiter1997}" in lstm and r"\bibitem{gers2000}" in lstm
    assert r"\bibitem{cho2014}" in gru
    # simplified: one diagonal matrix, the transpose outside the entry-wise product
    assert r"\operatorname{diag}(\bm{h}^{(t - 1)} - \bm{a}^{(t)})" in gru
    assert r"(\bm{h}^{(t - 1)} \odot \bm{r}^{(t)})^{\top}" in gru
    assert r"\bm{h}^{(t - 1)\top} \odot" not in gru


def test_a_cell_that_cannot_be_typeset_is_an_error(monkeypatch):
    from symrnn.ops import Tanh
    monkeypatch.setattr(Tanh, "latex", None)
    with pytest.raises(ValueError, match="cannot typeset"):
        render_cell_document(symrnn.GRU())


def test_cli_writes_the_derivation_sheet_of_a_cell_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(documents_module, "tex_engine", lambda: None)  # the .tex only
    source = tmp_path / "leaky.txt"
    source.write_text(LEAKY)
    assert cli.main(["sheet", "--cell-file", str(source), "--out", str(tmp_path)]) == 0
    written = tmp_path / "derivation-leaky.tex"
    assert capsys.readouterr().out.split() == [str(written)]
    text = written.read_text()
    assert "a = tanh(W @ (f * prev(h)) + U @ x)" not in text  # no source text, mathematics:
    assert r"\bm{W}^{(t)} (\bm{f}^{(t)} \odot \bm{h}^{(t - 1)})" in text
    assert cli.main(["sheet", "--cell", "gru", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "derivation-gru.tex").exists()
    assert not (tmp_path / "sheet08.tex").exists()


@pytest.mark.parametrize("argv, words", [
    (["--cell-file", "missing.txt"], "cannot read"),
    (["--cell-file", "{bad}", "--cell", "lstm"], "not allowed with"),
    (["--cell-file", "{bad}"], "line"),
])
def test_cli_cell_file_errors(argv, words, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("params: W[D,D]\nh = W @ \n")
    argv = [a.replace("{bad}", str(bad)) for a in argv]
    assert cli.main(["sheet", "--out", str(tmp_path / "out")] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_derivation_shows_itself_in_a_notebook():
    latex = symrnn.derive(symrnn.ElmanRNN())._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert r"\newcommand" not in latex and r"\bm{" not in latex  # KaTeX and MathJax
    assert r"\boldsymbol{h}^{(t)} &= \tanh(\boldsymbol{z}^{(t)})" in latex
    assert r"\frac{\partial L}{\partial \boldsymbol{W}} &= \sum_{t=1}^{T}" in latex
    assert r"\frac{\partial L}{\partial \boldsymbol{h}^{(t)}} &= " in latex
