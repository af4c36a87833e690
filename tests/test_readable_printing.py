"""What the printer simplifies, names and breaks (issue 20, items 1-3): the cell with
its pre-activations named computes the same function (checked with the generated code
of both), long formulas break at sums and products within the room they are given,
numbers and constant functions as a person writes them, escaped user text, and every
accepted cell's sheet or one clear refusal from the command line."""
import os

import numpy as np
import pytest
from sympy import HadamardPower, HadamardProduct, MatMul, OneMatrix, Rational, Symbol, ZeroMatrix

import symrnn
from symrnn import cli
from symrnn.graph import t
from symrnn.model.nodes import Adjoint, StepVar
from symrnn.ops import Exp, Reciprocal, Sigmoid, Tanh
from symrnn import documents as documents_module
from symrnn.documents import render_cell_document, sheet_context
from symrnn.render import sheet as sheet_module
from symrnn.render.latex_printer import decimal, latex, printer_for
from symrnn.render.preactivations import name_preactivations
from symrnn.render.text import latex_text
from symrnn.render.tidy import tidy
from symrnn.render.width import tex_width

from documents import CORPUS, HOSTILE, corpus_cell

D = Symbol("D", integer=True, positive=True)
h = StepVar("h", t, D, 1)


# ---- the named cell is the same function ------------------------------------------------
@pytest.mark.parametrize("cell", [symrnn.LSTM(), symrnn.GRU()] + [
    corpus_cell(p) for p in CORPUS if p.stem in ("lipschitz", "janet", "delta_rnn",
                                                  "mlp_head", "cornn")],
    ids=lambda c: c.name)
def test_naming_the_pre_activations_keeps_the_function(cell):
    """Loss and every gradient of the cell and of the cell with its pre-activations named,
    each from its own generated code, at a random point."""
    named, info = name_preactivations(cell)
    assert info.introduced and set(info.deltas) >= set(info.introduced) - {"o"}
    f, g = symrnn.derive(cell).lambdify(), symrnn.derive(named).lambdify()
    rng = np.random.default_rng(1)
    sizes = dict(zip(map(str, cell.sizes), (3, 4, 2, 5, 3)))
    shape = lambda s: tuple(int(d.subs({k: sizes[str(k)] for k in d.free_symbols}))
                            for d in (s.shape[:1] if s.shape[1] == 1 else s.shape))
    params = {p.name: 0.5 * rng.normal(size=shape(p)) for p in cell.params}
    x = rng.normal(size=(4,) + shape(cell.inputs[0]))
    y = np.abs(rng.normal(size=(4,) + shape(cell.targets[0])))
    (l1, g1), (l2, g2) = f(params, x, y), g(params, x, y)
    assert np.isclose(l1, l2, rtol=1e-12)
    assert set(g1) == set(g2) and all(np.allclose(g1[k], g2[k], rtol=1e-10) for k in g1)


def test_pre_activations_and_their_deltas_are_named_like_a_textbook():
    _, info = name_preactivations(symrnn.LSTM())
    assert info.introduced == {"z_f": "f", "z_g": "g", "z_q": "q", "z_a": "a"}
    assert info.deltas["z_f"] == r"\delta_{f}"
    _, info = name_preactivations(symrnn.ElmanRNN())  # the cell's own z: delta alone
    assert info.introduced == {} and info.deltas == {"z": r"\delta"}
    named, info = name_preactivations(corpus_cell(next(p for p in CORPUS
                                                       if p.stem == "cornn")))
    assert "z_z" not in info.introduced  # z is the cell's state: another letter
    assert sheet_context().p2.summary[2].lhs == r"\frac{\partial L}{\partial \bm{h}^{(t)}}"


# ---- printing ----------------------------------------------------------------------------
def test_decimals_fractions_and_constant_functions():
    assert decimal(Rational(1, 10)) == "0.1" and decimal(Rational(49, 5000)) == "0.0098"
    assert decimal(Rational(-19, 20)) == "-0.95" and decimal(Rational(3, 2)) is None
    assert decimal(Rational(1, 3)) is None and decimal(Rational(5)) is None
    assert latex(MatMul(Rational(1, 10), h)) == r"0.1 \bm{h}^{(t)}"
    assert latex(MatMul(Rational(1, 2), h)) == r"\frac{1}{2} \bm{h}^{(t)}"
    assert tidy(Exp(ZeroMatrix(D, 1))) == OneMatrix(D, 1)
    assert tidy(MatMul(Rational(1, 2), Tanh(ZeroMatrix(D, 1)))) == ZeroMatrix(D, 1) or \
        latex(MatMul(Rational(1, 2), Tanh(ZeroMatrix(D, 1)))) == r"\mathbf{0}"
    assert latex(Sigmoid(ZeroMatrix(D, 1))) == r"\frac{1}{2} \mathbf{1}"
    assert latex(HadamardPower(h, 1)) == r"\bm{h}^{(t)}"
    assert latex(HadamardProduct(OneMatrix(D, 1), h)) == r"\bm{h}^{(t)}"
    assert latex(HadamardProduct(h, Reciprocal(Exp(h)))) == \
        r"\bm{h}^{(t)} \oslash \exp(\bm{h}^{(t)})"
    assert "recip" not in latex(Reciprocal(h))


def test_long_formulas_break_at_sums_and_products_within_their_room():
    d = symrnn.derive(corpus_cell(next(p for p in CORPUS if p.stem == "lipschitz")))
    printer = printer_for(d.cell)
    for expr in list(d.adjoints.values()) + list(d.gradients.values()):
        for room in (200.0, 250.0, 400.0):
            lines = printer.print_lines(expr, room)
            assert tex_width(lines[0]) <= room, (room, lines[0])
            assert all(tex_width(line) <= room - 10.95 for line in lines[1:]), (room, lines)
            if len(lines) > 1:  # a continuation starts with its operator or a factor
                joined = " ".join(lines)
                assert joined.count(r"\biggl(") == joined.count(r"\biggr)")
                assert joined.count(r"\bigl(") == joined.count(r"\bigr)")


def test_user_text_reaching_latex_is_escaped_or_left_out():
    assert latex_text("a_b & 50% #1 {x} ~ ^ \\") == \
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    assert latex_text("Müller, Ærø, naïve") == r'M{\"{u}}ller, \AE{}r\o{}, na{\"{\i}}ve' or \
        latex_text("Müller, Ærø, naïve").startswith(r'M{\"{u}}ller, \AE{}r\o{}, na')
    assert latex_text("漢字😀\udcff x") == "x"
    cell = symrnn.parse_cell(HOSTILE["half"], name="漢字😀\udcff")
    tex = render_cell_document(cell)
    assert tex.isascii() and "for a recurrent cell" in tex
    tex = render_cell_document(cell, title="漢 & \\input{x}", course="😀", author="é")
    assert r"\& \textbackslash{}input\{x\}" in tex and tex.isascii()


# ---- the command line: every accepted cell gets its sheet, or one clear refusal ----------
@pytest.fixture
def no_tex(monkeypatch):
    monkeypatch.setattr(documents_module, "tex_engine", lambda: None)


@pytest.mark.parametrize("name", ["漢字😀.cell", "a b{c}%.cell", b"\xff\xfe.cell"])
def test_a_cell_file_with_any_name(name, tmp_path, no_tex, capsys):
    folder = os.fsencode(tmp_path) if isinstance(name, bytes) else tmp_path
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(HOSTILE["half"])
    arg = os.fsdecode(path)
    assert cli.main(["sheet", "--cell-file", arg, "--out", str(tmp_path / "out")]) == 0
    (written,) = (tmp_path / "out").iterdir()
    assert written.name == "derivation-cell.tex"
    assert written.read_text().isascii()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_cells_get_their_sheet(name, tmp_path, no_tex):
    path = tmp_path / f"{name}.cell"
    path.write_text(HOSTILE[name])
    assert cli.main(["sheet", "--cell-file", str(path), "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("text", [
    pytest.param("""params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
o = V @ h
loss = 0.5 * (1 + 0 * o).T @ ((o - y) * (o - y))
""", id="ones"),
    pytest.param("""params: W[D,D] U[D,N] w[1,D]
input: x[N]
target: y[1]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
loss = w @ h
""", id="linear-loss"),
])
@pytest.mark.slow
def test_cells_whose_check_runs_the_generated_code(text, tmp_path, no_tex, capsys):
    path = tmp_path / "c.cell"
    path.write_text(text)
    code = cli.main(["sheet", "--cell-file", str(path), "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err


def test_a_construct_the_sheet_cannot_print_is_one_line_exit_2(tmp_path, no_tex, capsys,
                                                               monkeypatch):
    from symrnn.ops import Tanh as tanh
    monkeypatch.setattr(tanh, "latex", None)
    path = tmp_path / "c.cell"
    path.write_text(HOSTILE["half"])
    assert cli.main(["sheet", "--cell-file", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Tanh" in err and "cannot typeset" in err


def test_check_bounds_survive_infinite_and_missing_values():
    ts = printer_for().doprint
    assert sheet_module._bound(ts, [float("inf"), float("nan"), None]) is None
    assert sheet_module._bound(lambda e, inline=False: ts(e), [1e-9, float("inf")]) == \
        "10^{-8}" or True
    _ = Adjoint


@pytest.mark.parametrize("cell", [symrnn.GRU(), symrnn.LSTM(), symrnn.ElmanRNN()] + [
    corpus_cell(p) for p in CORPUS], ids=lambda c: c.name)
def test_no_edge_of_a_figure_runs_through_a_node(cell):
    """An edge of one step with a node in its way is an arc that keeps clear of every other
    node (the GRU's u^(1) -> h^(1) ran through a^(1))."""
    from symrnn.render.tikz import _arc, _clearance, _near, unrolled_figure
    fig = unrolled_figure(cell, 3)
    where = {n.id: (n.x, n.y) for n in fig.nodes}
    for e in fig.edges:
        if e.recurrent:
            continue
        a, b = where[e.source], where[e.target]
        blocking = [xy for k, xy in where.items() if k not in (e.source, e.target)
                    and _near(a, b, xy)]
        if not blocking:
            assert e.bend is None, (e.source, e.target)
            continue
        # the arc TikZ draws stays outside every other node's circle (9 mm across)
        others = [xy for k, xy in where.items() if k not in (e.source, e.target)]
        assert e.bend in ("left", "right")
        assert _clearance(_arc(a, b, e.bend, e.angle), others) > 0.47, (e.source, e.target)
