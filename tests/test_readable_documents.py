"""Issue 20: every document as a person sees it. The corpus of published cells
(examples/cells/), the LSTM and GRU and the solution sheet in the notation profiles, and
cells with hostile constructs are compiled once per session (tests/documents.py): no
overfull box anywhere, the gated sheets within five pages, no source text, software
talk, exp(0), recip or powers 1; numbers as the cell wrote them; each result of the
LSTM stated once. The overfull check is shown to fail when the width model lies."""
import re

import pytest

import symrnn
from symrnn.checking.gradient_table import check_sizes
from symrnn.documents import render_cell_document
from symrnn.render import breaking
from symrnn.render.width import tex_width

from documents import (CORPUS, HOSTILE, compile_all, corpus_cell, document_names, needs_tex,
                       overfull, pages, pdf_text)

pytestmark = pytest.mark.tex


def test_the_corpus_has_at_least_twelve_published_cells():
    cited = [p for p in CORPUS if re.search(r"(19|20)\d\d", p.read_text().split("params:")[0])]
    assert len(cited) >= 12, [p.name for p in cited]


@needs_tex
@pytest.mark.parametrize("name", document_names())
def test_no_overfull_box(compiled, name):
    doc = compiled[name]
    assert doc.pdf is not None, f"{name}: TeX failed, see {doc.log[-2000:]}"
    wide, tall = overfull(doc.log)
    assert not wide and not tall, f"{name}: overfull hboxes {wide} pt, {tall} overfull vboxes"


@needs_tex
@pytest.mark.parametrize("name", ["lstm", "lstm-d2l", "lstm-cs231n", "gru", "gru-d2l",
                                  "gru-cs231n"])
def test_the_gated_sheets_have_at_most_five_pages(compiled, name):
    assert pages(compiled[name].log) <= 5


@needs_tex
def test_the_solution_sheet_keeps_its_length(compiled):
    for name in ("sheet08", "sheet08-d2l", "sheet08-cs231n"):
        assert pages(compiled[name].log) <= 6, name


@pytest.mark.parametrize("name", document_names())
def test_what_is_printed_is_mathematics(compiled, name):
    tex = compiled[name].tex
    body = tex.split(r"\begin{document}", 1)[1]
    # the cell's source text is not printed: its equations are, as mathematics
    assert not re.search(r"@(?!\{)", body), name  # (@{...} of a table's columns is LaTeX)
    for source in ("prev(", "log_softmax", r"\texttt"):
        assert source not in body, (name, source)
    # no forms a person would not write, no software talk
    for form in (r"\operatorname{recip}", r"\exp(\mathbf{0})", r"\exp(0", r"\circ 1}",
                 r"\mathrm{W", r"\mathrm{U", "Colophon", "yardstick", "hand-written",
                 "NumPy", "symrnn", "engine"):
        assert form not in body, (name, form)


@needs_tex
def test_the_pdf_text_has_no_software_talk(compiled):
    for name in ("sheet08", "lstm", "cornn"):
        text = pdf_text(compiled[name].pdf)
        for word in ("symrnn", "NumPy", "yardstick", "hand-written", "Colophon", "typeset"):
            assert word not in text, (name, word)


def test_numbers_are_printed_as_the_cell_wrote_them(compiled):
    lipschitz = compiled["lipschitz"].tex
    assert "0.1 " in lipschitz and r"\frac{1}{10}" not in lipschitz
    expzero = compiled["hostile-expzero"].tex  # 0.1 * 0.1 * 0.98 = 0.0098, not 49/5000
    assert "0.0098" in expzero and r"\frac{49}{5000}" not in expzero
    cornn = compiled["cornn"].tex  # 0.1 * (... - 0.5 z), multiplied out: 0.95 z
    assert "0.95" in cornn and r"\frac{19}{20}" not in cornn
    # a fraction of halves stays a fraction: the MSE of the presets
    mse = symrnn.documents.render_sheet(symrnn.ElmanRNN(output="mse"))
    assert r"\frac{1}{2}" in mse


def test_names_of_several_letters_are_a_letter_and_a_subscript(compiled):
    tex = compiled["hostile-expzero"].tex
    assert r"\bm{W}_{z}" in tex and r"\bm{U}_{z}" in tex
    tex = compiled["ran"].tex
    assert r"\bm{W}_{cx}" in tex and r"\bm{W}_{ih}" in tex


def test_exp_of_zero_and_division_are_written_as_a_person_would(compiled):
    tex = compiled["hostile-expzero"].tex
    assert r"\oslash \exp(" in tex and r"\exp(0" not in tex
    assert "The entry-wise quotient is" in tex  # the symbol is explained


def test_the_scalar_multiple_rule_is_among_the_rules(compiled):
    tex = compiled["hostile-half"].tex
    rules = tex[tex.index("these are the rules we need"):tex.index(r"\section*{3")]
    assert "(scalar multiple)" in rules
    assert "(scalar multiple)" not in compiled["sheet08"].tex  # -y^T: a matrix product


def test_one_hot_is_said_where_the_target_is_introduced(compiled):
    tex = compiled["sheet08"].tex
    target = tex.index(r"\in \mathbb{R}^{M}$\ (one-hot")
    assert target < tex.index("Since the target is one-hot")


def test_the_lstm_states_each_result_once_with_helper_quantities(compiled):
    tex = compiled["lstm"].tex
    result = tex[tex.index(r"\section*{4 Result}"):tex.index(r"\section*{5")]
    for gate in "fgqa":
        # delta_f = dL/dz_f = diag(f (.) (1 - f)) dL/df, defined once ...
        definition = r"\bm{\delta}_{%s}^{(t)} &= \frac{\partial L}{\partial \bm{z}_{%s}^{(t)}}" \
            % (gate, gate)
        assert tex.count(definition) == 1, gate
        # ... and used: the gradients of the gate's parameters are sums of delta_f times a
        # vector
        assert r"\sum_{t=1}^{T} \bm{\delta}_{%s}^{(t)}" % gate in result
    for p in (r"\bm{W}_{f}", r"\bm{U}_{g}", r"\bm{b}_{q}", r"\bm{V}"):
        lhs = r"\frac{\partial L}{\partial %s} &=" % p
        assert tex.count(lhs) == 1, p  # stated once, in the result
    # the recurrence uses the named vectors: W_f^T delta_f^(t+1), not the whole Jacobian
    assert r"\bm{W}_{f}^{\top} \bm{\delta}_{f}^{(t + 1)}" in result


def test_the_lstm_figure_stays_in_its_section(compiled):
    tex = compiled["lstm"].tex
    assert r"\begin{figure}[H]" in tex
    assert tex.index(r"\begin{figure}") < tex.index(r"\section*{2 The rules")


def test_a_cell_with_four_sizes_and_a_loss_undefined_at_random_points(compiled):
    fourth = compiled["hostile-fourth"].tex
    assert "$F = 2$" in fourth and "$K = 3$" in fourth
    nonfinite = compiled["hostile-nonfinite"].tex
    assert "the loss is not a finite number" in nonfinite
    assert r"\begin{tabular}" not in nonfinite


# ---- the check can fail ---------------------------------------------------------------
@needs_tex
def test_the_overfull_check_fails_when_the_width_model_is_wrong(monkeypatch, tmp_path):
    """Mutation: a width model that sees every formula at 40 % of its width lets long
    lines through; TeX's log then reports overfull boxes and the check above fails."""
    real = tex_width
    monkeypatch.setattr(breaking, "tex_width", lambda tex, display=True: 0.4 * real(tex, display))
    import symrnn.render.narrative as narrative
    monkeypatch.setattr(narrative, "tex_width", lambda tex, display=True: 0.4 * real(tex, display))
    text = render_cell_document(corpus_cell(next(p for p in CORPUS if p.stem == "lipschitz")))
    doc = compile_all({"mutant": text}, tmp_path)["mutant"]
    wide, _ = overfull(doc.log)
    assert wide and max(wide) > 50


@needs_tex
def test_the_width_model_is_close_to_tex(tmp_path):
    """The model of widths against TeX's own measure of the formulas of the LSTM sheet."""
    from symrnn.documents import cell_context
    formulas = [f for f in cell_context(symrnn.LSTM()).printed if len(f) > 20][:150]
    body = "\n".join(r"\sbox0{$\displaystyle %s$}\typeout{W:\the\wd0}" % f for f in formulas)
    doc = tmp_path / "widths.tex"
    doc.write_text("\\documentclass[11pt]{article}\n\\usepackage{amsmath,amssymb,bm}\n"
                   "\\begin{document}\n" + body + "\n\\end{document}\n")
    import subprocess
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path,
                         capture_output=True, text=True)
    measured = [float(w) for w in re.findall(r"W:([\d.]+)pt", run.stdout)]
    assert len(measured) == len(formulas)
    ratios = [tex_width(f) / w for f, w in zip(formulas, measured) if w > 20]
    assert min(ratios) > 0.9 and max(ratios) < 1.15, (min(ratios), max(ratios))


def test_hostile_cells_are_there():
    assert set(HOSTILE) >= {"half", "expzero", "fourth", "nonfinite"}
    assert check_sizes(symrnn.parse_cell(HOSTILE["fourth"])) == (3, 4, 2, 5, 3)


def test_a_loss_that_reads_the_previous_state_has_a_gradient_of_one(compiled):
    tex = compiled["hostile-prevloss"].tex
    assert r"Nothing depends on $L^{(t)}$" not in tex  # it was said, with dL/dL^(t) = 1
    assert r"$L^{(t)}$ is a term of the loss of the sequence" in tex
    assert r"\frac{\partial L}{\partial L^{(t)}} &= 1" in tex
    # the loss of the next step passes back its term times its gradient, in every line
    step = tex[tex.index(r"\paragraph{The gradient of $\bm{h}^{(t)}$.}"):]
    first = step[:step.index(r"\\ &=")]
    assert r"2 \bm{h}^{(t)} \frac{\partial L}{\partial L^{(t + 1)}}" in first
    assert r"\bm{h}^{(t)} 1" not in tex  # times dL/dL^(t+1) = 1: no factor 1 printed


def test_named_matrices_are_defined_drawn_and_derived(compiled):
    tex = compiled["hostile-named"].tex
    assert r"\bm{A}_{b} &= \beta (\bm{A} - \bm{A}^{\top}) + (1 - \beta) (\bm{A} + \bm{A}^{\top})" \
           r" - 0.05 \mathbf{I}" in tex
    assert r"\bm{A}_{c} &= \bm{A}_{b} \bm{A}_{b}^{\top}" in tex
    assert r"\node[shared] (sharedAb)" in tex                        # in the figure
    assert r"\paragraph{The named matrices.}" in tex
    named = tex[tex.index(r"\paragraph{The named matrices.}"):]
    # A_c first: A_b's gradient reads it
    assert named.index(r"\frac{\partial L}{\partial \bm{A}_{c}} &= \sum_{t=1}^{T}") \
        < named.index(r"\frac{\partial L}{\partial \bm{A}_{b}} &= \sum_{t=1}^{T}")
    assert r"\frac{\partial L}{\partial \bm{A}} &= (1 - 2 \beta)" in named
    assert "A^{(t)}" not in tex  # A is read by the named matrices only: no copies


def test_a_term_of_parameters_alone_is_drawn_clear_of_the_other_nodes(compiled):
    tex = compiled["hostile-named"].tex
    at = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"\\node\[\w+\] \((\w+)\) at \(([-\d.]+), ([-\d.]+)\)", tex)}
    for name in ("Acw1", "Acw2", "Acw3"):   # the copies w^(t) A_c^(t) of L^(t)'s first term
        x, y = at[name]
        assert min(((x - a) ** 2 + (y - b) ** 2) ** 0.5
                   for key, (a, b) in at.items() if key != name) >= 1.0
