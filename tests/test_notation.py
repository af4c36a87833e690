"""Notation profiles (symrnn/render/notation.py): built-in and user files, every bad key
refused by name, the symbols' LaTeX grammar, time as superscript or subscript, bold or
plain, and row vectors: every formula transposed, which is checked with numbers."""
import numpy as np
import pytest
import sympy
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol,
                   Number, OneMatrix, Transpose, ZeroMatrix)
from sympy.matrices.expressions.diagonal import DiagMatrix

import symrnn
from symrnn import cli
from symrnn.graph import T, t
from symrnn.model.nodes import Adjoint, Elementwise, StepVar
from symrnn import documents as documents_module
from symrnn.render.latex_printer import latex, printer_for
from symrnn.render.notation import (Notation, NotationError, builtin_notations,
                                    load_notation)
from symrnn.render.orientation import Row, as_rows
from symrnn.documents import render_cell_document, render_sheet
from symrnn.render.symbols import default_symbol, parse_symbol

CELL = symrnn.ElmanRNN()


def test_the_built_in_profiles():
    assert set(builtin_notations()) >= {"goodfellow", "d2l", "cs231n", "d2l-bptt"}
    for name in builtin_notations():
        profile = load_notation(name)
        assert profile.name == name and profile.description
    assert load_notation(None) == load_notation("goodfellow")


@pytest.mark.parametrize("data, key", [
    ({"colour": "red"}, "colour"),
    ({"time": "sideways"}, "time"),
    ({"vectors": "italic"}, "vectors"),
    ({"layout": "diagonal"}, "layout"),
    ({"title": 3}, "title"),
    ({"author": "a\nb"}, "author"),
    ({"symbols": {"W": r"\input{/etc/passwd}"}}, "symbols.W"),
    ({"symbols": {"W": "W_{hh"}}, "symbols.W"),
    ({"symbols": {"W": 7}}, "symbols.W"),
    ({"symbols": {"W": "$W$"}}, "symbols.W"),
    ({"cells": {"lstm": {"V": r"\def\x{}"}}}, "cells.lstm.V"),
    ({"cells": "lstm"}, "cells"),
])
def test_a_bad_profile_is_refused_naming_the_key(data, key):
    with pytest.raises(ValueError) as error:
        load_notation(data)
    assert str(error.value).startswith(key) and "\n" not in str(error.value)


def test_a_profile_from_a_toml_file(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text('time = "subscript"\nvectors = "plain"\ntitle = "Sheet 3: BPTT & co"\n'
                    'course = "Deep Learning"\nauthor = "A. Müller"\n'
                    '[cells.elman]\nW = "W_{hh}"\nU = "W_{xh}"\n')
    profile = load_notation(str(path))
    assert profile.name == "course" and profile.time == "subscript"
    tex = render_sheet(notation=path)
    assert r"W_{hh}" in tex and r"\bm{" not in tex.split(r"\begin{document}")[1]
    assert r"Sheet 3: BPTT \& co" in tex and "Deep Learning" in tex and r'M{\"{u}}ller' in tex
    bad = tmp_path / "bad.toml"
    bad.write_text("time = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_notation(str(bad))
    with pytest.raises(ValueError, match="neither a built-in profile"):
        load_notation(str(tmp_path / "missing.toml"))


def test_two_names_printed_alike_are_refused():
    with pytest.raises(ValueError, match="'W' and 'U'"):
        render_sheet(notation={"cells": {"elman": {"W": "A", "U": "A"}}})


def test_symbols_of_several_letters():
    cases = {"W": "W", "Wz": "W_{z}", "W_hx": "W_{hx}", "Whx": "W_{hx}", "Why": "W_{hy}",
             "bh": "b_{h}", "V1": "V_{1}", "beta1": r"\beta_{1}", "alpha": r"\alpha",
             "yhat": r"\hat{y}", "dt": r"\Delta t", "pi": "p_{i}", "gate": r"\mathrm{gate}",
             "h_prev": r"h_{\mathrm{prev}}", "z_f": "z_{f}", "MA": "M_{A}"}
    for name, expected in cases.items():
        assert default_symbol(name).latex() == expected, name
    assert parse_symbol(r"\tilde{c}_{t}").core == r"\tilde{c}"
    assert parse_symbol("W_{hh}").sub == "hh"


def test_time_bold_and_layout_settings():
    h = StepVar("h", t - 1, *CELL.states[0].shape)
    assert latex(h, CELL) == r"\bm{h}^{(t - 1)}"
    assert latex(h, CELL, time="subscript") == r"\bm{h}_{t - 1}"
    assert latex(h, CELL, vectors="plain", time="subscript") == r"h_{t - 1}"
    assert latex(h, CELL, vectors="upright") == r"\mathbf{h}^{(t - 1)}"
    W = StepVar("W", t, *CELL.param("W").shape)
    assert latex(W, CELL, notation="d2l") == r"\mathbf{W}_{hh,t}"
    z = symrnn.derive(CELL).step[0][1]  # z^(t) = W^(t) h^(t-1) + U^(t) x^(t)
    assert latex(z, CELL, notation="d2l") == r"\mathbf{h}_{t - 1} \mathbf{W}_{hh,t} + " \
                                              r"\mathbf{x}_{t} \mathbf{W}_{xh,t}"
    assert latex(z, CELL, notation="d2l-bptt") == r"\mathbf{W}_{hh,t} \mathbf{h}_{t - 1} + " \
                                                   r"\mathbf{W}_{hx,t} \mathbf{x}_{t}"
    assert latex(z, CELL, notation="cs231n") == r"W_{hh,t} h_{t - 1} + W_{xh,t} x_{t}"
    # the space of a matrix is that of its row form: W_xh in R^{N x D}
    printer = printer_for(CELL, notation="d2l")
    assert printer.space(CELL.param("U")) == r"\mathbb{R}^{N \times D}"


@pytest.mark.tex
def test_the_sheet_in_each_profile():
    for name in ("d2l", "cs231n", "d2l-bptt"):
        tex = render_sheet(notation=name)
        assert r"W}_{hh}" in tex or r"W_{hh}" in tex, name
        assert r"h}_{t - 1}" in tex or r"h_{t - 1}" in tex, name
    lstm = render_cell_document(symrnn.LSTM(), notation="d2l")
    assert r"\mathbf{W}_{xf}" in lstm and r"\tilde{c}" in lstm
    assert r"\mathbf{h}_{t - 1} \mathbf{W}_{hf,t}" in lstm  # row vectors
    cs = render_cell_document(symrnn.GRU(), notation="cs231n")
    assert "W_{hz}" in cs and r"\bm{" not in cs.split(r"\begin{document}")[1]


# ---- row vectors: the transposed trees are the transposes, in numbers --------------------
SIZES = {"D": 3, "N": 4, "M": 2}


def _value(expr, leaves, rng):
    """The value of a matrix expression with random values for its leaves (a Row leaf is
    the transpose of its leaf's value)."""
    if isinstance(expr, Number) or not getattr(expr, "is_Matrix", True):
        return float(expr)
    if isinstance(expr, Row):
        return _value(expr.leaf, leaves, rng).T
    shape = tuple(int(sympy.sympify(d).subs({s: SIZES[s.name] for s in
                                             sympy.sympify(d).free_symbols}))
                  for d in expr.shape)
    if isinstance(expr, (StepVar, MatrixSymbol, Adjoint)) or type(expr).__name__ == "Prev":
        key = str(expr)
        if key not in leaves:
            leaves[key] = rng.normal(size=shape)
        return leaves[key]
    if isinstance(expr, OneMatrix):
        return np.ones(shape)
    if isinstance(expr, ZeroMatrix):
        return np.zeros(shape)
    if isinstance(expr, Identity):
        return np.eye(shape[0])
    args = [_value(a, leaves, rng) for a in expr.args
            if not isinstance(a, sympy.core.symbol.Str)]
    if isinstance(expr, MatMul):
        out = np.ones((1, 1))
        scale = 1.0
        for a in args:
            if np.ndim(a) == 0:
                scale *= a
            else:
                out = a if out.shape == (1, 1) and out[0, 0] == 1 and a.shape != (1, 1) \
                    else out @ a
        return scale * out
    if isinstance(expr, MatAdd):
        return sum(args)
    if isinstance(expr, HadamardProduct):
        return np.prod(np.broadcast_arrays(*args), axis=0)
    if isinstance(expr, HadamardPower):
        return args[0] ** args[1]
    if isinstance(expr, Transpose):
        return args[0].T
    if isinstance(expr, DiagMatrix):
        return np.diag(args[0].ravel())
    if isinstance(expr, Elementwise):
        x = args[0]
        name = type(expr).__name__
        if name == "Softmax":
            e = np.exp(x - x.max())
            return e / e.sum()
        if name == "LogSoftmax":
            return x - np.log(np.exp(x).sum())
        f = {"Tanh": np.tanh, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Exp": np.exp,
             "ReLU": lambda v: np.maximum(v, 0), "Step": lambda v: (v > 0) * 1.0}[name]
        return f(x)
    raise NotImplementedError(type(expr).__name__)


@pytest.mark.parametrize("cell", [symrnn.ElmanRNN(), symrnn.LSTM(), symrnn.GRU()],
                         ids=["elman", "lstm", "gru"])
def test_the_row_form_of_every_expression_is_its_transpose(cell):
    """as_rows pushes a transpose down the tree; with Row(x) = x^T in numbers, its value
    is the transpose of the column form's value (leaves drawn at random)."""
    d = symrnn.derive(cell)
    expressions = [rhs for _, rhs in d.step] + list(d.adjoints.values()) \
        + list(d.terminal.values()) + [g for g in d.copy_gradients.values() if g is not None]
    rng = np.random.default_rng(0)
    for expr in expressions:
        leaves = {}
        column = _value(expr, leaves, rng)
        row = _value(as_rows(expr), leaves, rng)
        assert np.allclose(row, np.asarray(column).T), expr


def test_the_row_form_prints_every_leaf_once_without_transposes_of_vectors():
    d = symrnn.derive(symrnn.ElmanRNN())
    z = StepVar("z", t, *CELL.states[0].shape)
    tex = latex(d.copy_gradients["W"], CELL, notation="d2l")  # dL/dz h^T -> h^T dL/dz
    assert tex == r"\mathbf{h}_{t - 1}^{\top} \frac{\partial L}{\partial \mathbf{z}_{t}}"
    # (dL/dz)^T W, a row, is in row vectors W' (dL/dz)^T with W' the row form of W
    assert latex(Adjoint(z).T * CELL.param("W"), CELL, layout="row") == \
        r"\bm{W} \left(\frac{\partial L}{\partial \bm{z}^{(t)}}\right)^{\top}"


# ---- the command line -----------------------------------------------------------------------
def test_cli_notation_and_texts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(documents_module, "tex_engine", lambda: None)
    assert cli.main(["sheet", "--notation", "d2l", "--title", "Blatt 8: RNN", "--course",
                     "ML für Graphen", "--author", "Ana & Bo", "--out", str(tmp_path)]) == 0
    written = tmp_path / "sheet08-d2l.tex"
    tex = written.read_text()
    assert r"Blatt 8: RNN" in tex and r'f{\"{u}}r' in tex and r"Ana \& Bo" in tex
    assert cli.main(["sheet", "--cell", "lstm", "--notation", "cs231n", "--out",
                     str(tmp_path)]) == 0
    assert (tmp_path / "derivation-lstm-cs231n.tex").exists()
    capsys.readouterr()
    for argv, words in [(["--notation", "nope"], "argument --notation"),
                        (["--notation", str(tmp_path)], "argument --notation")]:
        assert cli.main(["sheet", "--out", str(tmp_path / "x")] + argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[symbols]\nW = "\\\\write18{ls}"\n')
    assert cli.main(["sheet", "--notation", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "symbols.W" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_cli_derive_follows_the_profile(capsys):
    assert cli.main(["derive", "--notation", "d2l"]) == 0
    out = capsys.readouterr().out
    assert "z_t = h_{t-1} W_hh + x_t W_xh" in out and "Row vectors" in out
    assert cli.main(["derive", "--cell", "lstm", "--notation", "cs231n", "--format",
                     "latex"]) == 0
    out = capsys.readouterr().out
    assert r"W_{hf} h_{t - 1}" in out and r"\bm" not in out.split("\n", 1)[1]


def test_unknown_notation_object_is_refused():
    with pytest.raises(NotationError):
        load_notation(3)
    assert isinstance(load_notation(Notation()), Notation)
    _ = T
