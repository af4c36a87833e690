"""Notebooks: ``_repr_latex_`` of every derivation and cell rendered by KaTeX (VS Code,
GitHub) and MathJax 3 (Jupyter) under Node.js (tests/js/render.js, with the packages of
tests/js/package.json that ``scripts/install.sh --test`` installs); short lines; and
``sympy.latex``, ``str`` and ``pprint`` of every object symrnn returns."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy

import symrnn
from symrnn.graph import t
from symrnn.model.nodes import Adjoint, Prev, StepVar, SumOverTime
from symrnn.ops import functions
from symrnn.render.narrative import NOTEBOOK_WIDTH
from symrnn.render.notebook import set_notation
from symrnn.render.width import tex_width

from documents import CORPUS, HOSTILE, corpus_cell

pytestmark = pytest.mark.slow

JS = Path(__file__).resolve().parent / "js"


def render(items):
    """[{"katex": error or None, "mathjax": error or None}, ...] for display LaTeX."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    if not (JS / "node_modules" / "katex").is_dir() or \
            not (JS / "node_modules" / "mathjax-full").is_dir():
        pytest.fail("KaTeX and MathJax are not installed: run 'bash scripts/install.sh --test' "
                    "(npm ci --prefix tests/js)")
    run = subprocess.run(["node", str(JS / "render.js")], input=json.dumps(items),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _cells():
    cells = [symrnn.ElmanRNN(), symrnn.ElmanRNN("relu", "mse", True), symrnn.LSTM(),
             symrnn.GRU()]
    cells += [corpus_cell(p) for p in CORPUS]
    cells += [symrnn.parse_cell(text, name=name) for name, text in HOSTILE.items()]
    return cells


def _inner(display):
    assert display.startswith("$$") and display.endswith("$$")
    return display[2:-2]


@pytest.fixture(scope="module")
def displays():
    """{label: LaTeX} of the derivations and cells, in two notations."""
    out = {}
    for notation in (None, "d2l"):
        previous = set_notation(notation)
        try:
            for cell in _cells():
                label = f"{cell.name} [{notation or 'default'}]"
                out[f"derivation {label}"] = _inner(symrnn.derive(cell)._repr_latex_())
                out[f"cell {label}"] = _inner(cell._repr_latex_())
        finally:
            set_notation(previous)
    return out


def test_katex_and_mathjax_render_every_display(displays):
    labels = list(displays)
    results = render([displays[k] for k in labels])
    failed = {k: r for k, r in zip(labels, results) if r["katex"] or r["mathjax"]}
    assert not failed, failed


def test_the_displays_have_no_macros_of_their_own_and_short_lines(displays):
    for label, latex in displays.items():
        assert r"\newcommand" not in latex and r"\bm{" not in latex, label
        for line in latex.replace(r"\begin{aligned}", "").replace(r"\end{aligned}", "") \
                .split(r" \\ "):
            text = line.replace("&", "")
            assert tex_width(text) < 1.05 * NOTEBOOK_WIDTH + 40, (label, line)
    assert len(displays["derivation LSTM [default]"]) < 8000


def test_the_renderer_reports_what_it_refuses():
    """The check can fail: the display of symrnn before issue 20 (a \\newcommand for \\bm)
    is refused by KaTeX, and an undefined command by both."""
    results = render([r"\newcommand{\bm}[1]{\boldsymbol{#1}} \bm{h}^{(t)}",
                      r"\undefinedcommand{x}", r"\boldsymbol{h}^{(t)} \odot \mathbf{1}"])
    assert results[0]["katex"] and results[1]["katex"] and results[1]["mathjax"]
    assert results[2] == {"katex": None, "mathjax": None}


def test_sympy_latex_str_and_pprint_of_what_symrnn_returns(capsys):
    d = symrnn.derive(symrnn.LSTM())
    h = StepVar("h", t, *symrnn.LSTM().states[0].shape)
    objects = [d.gradients["W_f"], d.gradients["h0"], h, Prev(symrnn.LSTM().states[0]),
               Adjoint(h), SumOverTime(Adjoint(h), t, 1, 3), d.cell, d,
               *d.adjoints.keys(), *d.adjoints.values()]
    objects += [op(h) for op in functions().values()]
    for obj in objects:
        latex = sympy.latex(obj)
        text = str(obj)
        sympy.pprint(obj, use_unicode=True)
        sympy.pprint(obj, use_unicode=False)
        assert latex and text and "StepVar(" not in text and "Adjoint(" not in text, text
    capsys.readouterr()
    assert str(d.gradients["W_f"]).startswith("sum_{t=1}^{T} ")
    assert "dL/df^(t)" in str(d.gradients["W_f"]) and "h^(t-1)^T" in str(d.gradients["W_f"])
    assert sympy.latex(Adjoint(h)) == r"\frac{\partial L}{\partial \boldsymbol{h}^{(t)}}"
    assert sympy.latex(d.gradients["V"]).startswith(r"\sum_{t=1}^{T}")
    assert str(functions()["tanh"](h)) == "tanh(h^(t))"
    assert repr(h) == "h^(t)"
    sympy.pprint(d.gradients["W"])
    pretty = capsys.readouterr().out
    assert "∑" in pretty and "⁽ᵗ⁻¹⁾" in pretty and "∂L/∂a⁽ᵗ⁾" in pretty
    assert str(d).startswith("LSTM\n\nForward") and "Gradients:" in str(d)
    assert "at every step t" in str(d.cell)
    assert sympy.latex(d.cell).startswith(r"\begin{aligned}")


def test_the_notation_of_the_displays_is_a_setting():
    d = symrnn.derive(symrnn.ElmanRNN())
    previous = set_notation("d2l")
    try:
        latex = d._repr_latex_()
    finally:
        set_notation(previous)
    assert r"\mathbf{W}_{hh}" in latex and r"\mathbf{h}_{t - 1}" in latex
    assert r"\boldsymbol{W}" in d._repr_latex_()  # back to the default
    from symrnn.render import derivation_latex
    assert r"W_{hy}" in derivation_latex(d, notation="cs231n")
