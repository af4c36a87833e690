"""The solution sheet: content, the committed files, compiling, errors, the check table."""
import re
from pathlib import Path

import numpy
import pytest
from sympy import HadamardProduct, MatrixSymbol, Rational, symbols

import symrnn
from symrnn import Cell, prev, sigmoid, tanh
from symrnn.render import sheet as sheet_module
from symrnn.check import elman_reference as elman_bptt, finite_differences
from symrnn.render.numeric_check import check_gradients
from symrnn.render.sheet import (SheetError, first_error, render_derivation, render_sheet,
                                 sheet_context, write_sheet)

ROOT = Path(__file__).resolve().parents[1]
needs_tex = pytest.mark.skipif(sheet_module.tex_engine() is None, reason="no TeX engine")


@pytest.fixture(scope="module")
def tex():
    return render_sheet()


# ---- the committed output is the output of the code ----------------------------------
# (not byte for byte: the table of the check prints rounding errors, which differ between
# NumPy builds; every equation of the derivation must be there)
def test_committed_tex_has_every_equation_the_code_derives():
    committed = ROOT / "output" / "sheet08.tex"
    assert committed.exists(), "run `symrnn sheet` and commit output/sheet08.tex"
    text = committed.read_text()
    s = sheet_context()
    stale = [e.rhs for e in s.p2.summary + s.problem3.changed if e.rhs not in text]
    assert not stale, "output/sheet08.tex is stale: run `symrnn sheet` and commit"


def test_committed_pdf_is_there():
    pdf = ROOT / "output" / "sheet08.pdf"
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"


# ---- what the sheet says ----------------------------------------------------------------
def test_every_problem_is_answered(tex):
    for heading in ("Problem 1", "Problem 2", "Problem 3", "Numerical check"):
        assert tex.count(heading) >= 1
    # problem 1: the example, sense tagging, multi-sense and contextual embeddings
    for word in ("bank", "river", "conflation", "word-sense disambiguation", "Multi-sense",
                 "ELMo", "BERT", "Transformer", r"\bibitem{peters2018}", r"\bibitem{devlin2019}",
                 r"\bibitem{hochreiter1997}", r"\bibitem{gers2000}", r"\bibitem{cho2014}"):
        assert word in tex, word
    assert "NeurIPS" not in tex and "Section 10.2.2." not in tex
    # problem 2: copies, the figure (shared parameters, L), the rules, the result
    assert r"\bm{W}^{(t)}" in tex and r"\bm{U}^{(t)}" in tex and r"\bm{V}^{(t)}" in tex
    assert r"\node[shared] (sharedW)" in tex and r"\node[loss] (total)" in tex
    assert r"(yhat1) -- (L1)" in tex
    assert r"\operatorname{diag}" in tex and r"\odot" in tex
    assert r"\sum_{t=1}^{T}" in tex and r"\bm{\delta}^{(t)}" in tex
    assert (r"\bm{W}^{\top} \operatorname{diag}(\mathbf{1} - \bm{h}^{(t + 1)} \odot "
            r"\bm{h}^{(t + 1)}) \frac{\partial L}{\partial \bm{h}^{(t + 1)}} + \bm{V}^{\top} "
            r"(\bm{\hat{y}}^{(t)} - \bm{y}^{(t)})") in tex
    assert r"\frac{\partial L}{\partial \bm{W}} &= \sum_{t=1}^{T} \bm{\delta}^{(t)} " \
           r"\bm{h}^{(t - 1)\top}" in tex
    # the step to yhat - y is shown: dL/dlog softmax(o) = -y, then the softmax rule
    assert r"\frac{\partial L}{\partial \log\operatorname{softmax}(\bm{o}^{(t)})} = " \
           r"- \bm{y}^{(t)}" in tex
    # the summary: dL/dh^(T), dL/do, delta^(T+1) = 0, the textbook's numbers
    assert r"\frac{\partial L}{\partial \bm{h}^{(T)}} &= \bm{V}^{\top} (\bm{\hat{y}}^{(T)} - " \
           r"\bm{y}^{(T)})" in tex
    assert r"\bm{\delta}^{(T + 1)} = \mathbf{0}" in tex
    for number in ("(10.18)", "(10.19)", "(10.21)", "(10.24)", "(10.26)", "(10.28)"):
        assert tex.count(number) >= 1, number
    # problem 3: a linear surrogate with g held fixed, g^(t) in place of yhat - y
    assert "held fixed" in tex and "surrogate" in tex
    assert r"\bm{V}^{\top} \bm{g}^{(T)}" in tex
    # the vanishing/exploding picture
    assert r"\begin{semilogyaxis}" in tex and tex.count(r"\addplot") == 2
    # no LSTM/GRU appendix; the tool is named once, in the colophon
    assert r"\appendix" not in tex and "LSTM}" not in tex
    assert tex.count("symrnn") == 2  # the comment line at the top, the colophon


def test_the_backward_pass_comes_in_the_order_of_the_exercise(tex):
    marks = [r"The gradient of $\bm{o}^{(t)}$", r"The gradient of $\bm{h}^{(t)}$",
             r"The gradient of $\bm{z}^{(t)}$", r"The recurrence for",
             r"The copies of the parameters", r"The initial state"]
    positions = [tex.index(m) for m in marks]
    assert positions == sorted(positions)


def test_problem_3_shows_only_the_lines_that_change():
    s = sheet_context()
    changed = [e.lhs for e in s.problem3.changed]
    assert changed == [r"\frac{\partial L}{\partial \bm{o}^{(t)}}",
                       r"\frac{\partial L}{\partial \bm{h}^{(T)}}",
                       r"\frac{\partial L}{\partial \bm{h}^{(t)}}",
                       r"\frac{\partial L}{\partial \bm{V}}"]
    results = " ".join(e.rhs for e in s.problem3.changed)
    assert r"\bm{g}^{(t)}" in results and r"\hat{y}" not in results


@pytest.mark.parametrize("activation, present, absent", [
    ("sigmoid", r"\sigma(", r"\tanh"),
    ("relu", r"\operatorname{relu}'(", r"\tanh"),
    ("tanh", r"\tanh(", r"\sigma("),
])
def test_the_sheet_follows_the_model(activation, present, absent):
    text = render_sheet(symrnn.ElmanRNN(activation=activation))
    assert present in text and absent not in text


def test_the_sheet_refuses_other_cells_instead_of_swapping_them():
    for cell in (symrnn.LSTM(), symrnn.GRU(), two_state_cell()):
        with pytest.raises(ValueError, match="cell"):
            render_sheet(cell)


def test_no_equation_is_typed_into_the_templates():
    for path in (ROOT / "templates").glob("*.j2"):
        text = path.read_text()
        for pattern in (r"\\frac", r"\\partial", r"\\sum", r"\\odot", r"\\operatorname",
                        r"\\bm\b", r"\\top\b", r"\\tanh", r"\\sigma", r"\\delta", r"\^\{\(",
                        r"\\mathbf", r"\\rho"):
            assert not re.search(pattern, text), f"{path.name} types {pattern}"


def test_operation_words_come_from_the_registry():
    from symrnn.ops import functions
    rules = sheet_context().p2.rules
    words = {r.name: r.words for r in rules}
    assert words["Tanh"] == functions()["tanh"].words
    assert words["LogSoftmax"] == functions()["log_softmax"].words
    for path in (ROOT / "templates").glob("*.j2"):
        assert "hyperbolic" not in path.read_text()


# ---- the gradient check ------------------------------------------------------------------
@pytest.mark.parametrize("model", [{}, {"activation": "sigmoid"}, {"activation": "relu"},
                                   {"activation": "identity", "output": "mse", "bias": True},
                                   {"output": "upstream", "bias": True}])
def test_check_gradients(model):
    rows = check_gradients(symrnn.ElmanRNN(**model))
    names = [r.name for r in rows]
    assert names == ["W", "U", "V"] + (["b", "c"] if model.get("bias") else []) + ["h0"]
    for name, fd, independent in rows:
        assert fd < 1e-6, (name, fd)
        assert independent < 1e-12, (name, independent)


def test_hand_written_bptt_against_finite_differences():
    rng = numpy.random.default_rng(3)
    params = {"W": rng.normal(size=(3, 3)) * 0.5, "U": rng.normal(size=(3, 2)),
              "V": rng.normal(size=(2, 3)), "b": rng.normal(size=3), "c": rng.normal(size=2)}
    x, y, h0 = rng.normal(size=(4, 2)), numpy.eye(2)[[0, 1, 1, 0]], rng.normal(size=3)
    _, grads = elman_bptt(params, x, y, h0, activation="sigmoid")
    numeric = finite_differences(
        lambda a: elman_bptt({k: a[k] for k in params}, x, y, a["h0"], activation="sigmoid")[0],
        {**{k: v.copy() for k, v in params.items()}, "h0": h0.copy()})
    for k in numeric:
        assert numpy.allclose(grads[k], numeric[k], atol=1e-7), k


def two_state_cell():
    """Not an Elman network: two states, a gate, a bias (like a small LSTM)."""
    D, N, M = symbols("D N M", integer=True, positive=True)
    W, U, A, V = (MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("A", D, D),
                  MatrixSymbol("V", M, D))
    b, x, y = MatrixSymbol("b", D, 1), MatrixSymbol("x", N, 1), MatrixSymbol("y", M, 1)
    f, h, c, o = (MatrixSymbol("f", D, 1), MatrixSymbol("h", D, 1), MatrixSymbol("c", D, 1),
                  MatrixSymbol("o", M, 1))
    return Cell("two-state", params=[W, U, A, b, V], inputs=[x], targets=[y], states=[h, c],
                equations=[(f, sigmoid(A * prev(h) + b)),
                           (c, HadamardProduct(f, prev(c)) + U * x),
                           (h, tanh(W * prev(h) + c)), (o, V * h)],
                loss=Rational(1, 2) * (o - y).T * (o - y))


def test_check_gradients_of_another_cell_has_no_independent_column():
    rows = check_gradients(two_state_cell(), T=4)
    assert [r.name for r in rows] == ["W", "U", "A", "b", "V", "h0", "c0"]
    assert all(r.rel_err_fd < 1e-6 and r.rel_err_independent is None for r in rows)


# ---- writing and compiling -----------------------------------------------------------------
def test_tex_only(tmp_path):
    written = write_sheet(tmp_path / "out", pdf=False)
    assert written == [tmp_path / "out" / "sheet08.tex"]
    assert written[0].read_text() == render_sheet()
    assert not (tmp_path / "out" / "sheet08.pdf").exists()


def test_without_tex(tmp_path, monkeypatch):
    monkeypatch.setattr(sheet_module, "tex_engine", lambda: None)
    notes = []
    written = write_sheet(tmp_path, notify=notes.append)
    assert written == [tmp_path / "sheet08.tex"]
    assert len(notes) == 1 and "\n" not in notes[0] and "latexmk" in notes[0]
    with pytest.raises(RuntimeError) as error:
        write_sheet(tmp_path / "required", pdf=True)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "required").exists()


BROKEN = "\\documentclass{article}\n\\begin{document}\nfine\n\\undefinedmacro\n\\end{document}\n"


@needs_tex
def test_a_failed_compile_names_the_line_and_leaves_no_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sheet08.tex").write_text("old tex")
    (out / "sheet08.pdf").write_bytes(b"old pdf")
    monkeypatch.setattr(sheet_module, "render_sheet", lambda cell=None: BROKEN)
    with pytest.raises(SheetError) as error:
        write_sheet(out, pdf=True)
    message = str(error.value)
    assert "line 4" in message and "Undefined control sequence" in message
    assert "\n" not in message
    assert sorted(p.name for p in out.iterdir()) == ["sheet08.pdf", "sheet08.tex"]
    assert (out / "sheet08.tex").read_text() == "old tex"
    assert (out / "sheet08.pdf").read_bytes() == b"old pdf"


def test_first_error_of_a_log():
    log = ("This is pdfTeX\n./sheet08.tex:12: Undefined control sequence.\n"
           "l.12 \\foo\n")
    assert first_error(log) == "line 12: Undefined control sequence."
    plain = "! Missing $ inserted.\n<inserted text>\nl.7 x^2\n"
    assert first_error(plain, ["a"] * 6 + ["x^2"]) == "line 7: Missing $ inserted.  [x^2]"
    assert first_error("no errors here") is None


@needs_tex
def test_the_derivation_macros_render_any_cell(tmp_path):
    body = render_derivation(symrnn.derive(two_state_cell()), figure_T=2)
    assert r"\bm{c}^{(0)}" in body and r"\bm{A}^{(t)}" in body
    doc = tmp_path / "appendix.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[margin=2.2cm]{geometry}\n"
                   "\\usepackage{amsmath,amssymb,mathtools,bm,graphicx,xcolor,tikz}\n"
                   "\\usetikzlibrary{arrows.meta,backgrounds}\n\\allowdisplaybreaks\n"
                   "\\begin{document}\n" + body + "\\end{document}\n")
    pdf = sheet_module.compile_tex(doc)
    assert pdf.exists()


def test_an_installed_symrnn_carries_the_templates(tmp_path):
    # templates/ sits at the top of the repository; a wheel (a non-editable
    # install) must hold it as symrnn/templates, where template_dirs() looks.
    # The wheel is built from a copy, so that the build leaves the checkout alone.
    import shutil
    import subprocess
    import sys
    import zipfile

    repo, source = Path(__file__).resolve().parents[1], tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("symrnn", "templates"):
        shutil.copytree(repo / name, source / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path), str(source)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("symrnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (repo / "templates").glob("*.j2"):
        assert f"symrnn/templates/{template.name}" in names
    assert "symrnn/codegen/runtime_numba.py" in names
