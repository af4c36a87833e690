"""The sheet's LaTeX printer and the rewrites it shows (diag form, 1^T y = 1)."""
import functools
import inspect
import shutil
import subprocess

import numpy
import pytest
from sympy import (HadamardPower, HadamardProduct, Identity, ImmutableMatrix, MatMul,
                   MatrixSymbol, OneMatrix, Rational, StrictLessThan, symbols)
from sympy.matrices.expressions.diagonal import DiagMatrix

import symrnn
from symrnn.ops import OPERATIONS
from symrnn.graph import T, t
from symrnn.model import nodes
from symrnn.model.nodes import Adjoint, Prev, StepVar, SumOverTime, Tanh
from symrnn.render.latex_printer import BPTTLatexPrinter, Partial, latex, printer_for
from symrnn.render.rewrite import as_diag, unit_sum_facts, unit_sum_targets

D, N, M = symbols("D N M", integer=True, positive=True)
W, U, V = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("V", M, D)
CELL = symrnn.ElmanRNN()


def sv(name, time, rows, cols=1):
    return StepVar(name, time, rows, cols)


h, h1, hprev = sv("h", t, D), sv("h", t + 1, D), sv("h", t - 1, D)
x, y, yhat, o = sv("x", t, N), sv("y", t, M), sv("yhat", t, M), sv("o", t, M)


def tex(expr, **settings):
    return latex(expr, CELL, **settings)


@functools.lru_cache(maxsize=None)
def derivation(**model):
    return symrnn.derive(symrnn.ElmanRNN(**model))


# ---- one method per node type -------------------------------------------------
def test_every_node_type_has_its_own_print_method():
    own = vars(BPTTLatexPrinter)
    node_types = [c for c in vars(nodes).values()
                  if inspect.isclass(c) and issubclass(c, nodes.MatrixExpr)
                  and c.__module__ == nodes.__name__]
    assert {c.__name__ for c in node_types} >= {"StepVar", "Prev", "Adjoint", "SumOverTime"}
    for c in node_types:
        assert f"_print_{c.__name__}" in own, c.__name__
    # the operations of symrnn/ops.py print through one method, from their registered LaTeX
    assert "_print_Elementwise" in own
    for op in OPERATIONS.values():
        if f"_print_{op.__name__}" in own:  # a form of its own: 1 (/) b, not recip(b)
            continue
        assert op.latex and tex(op(o)).startswith(op.latex)
    for sympy_node in ("MatMul", "MatAdd", "HadamardProduct", "HadamardPower", "Transpose",
                       "OneMatrix", "Identity", "DiagMatrix", "MatrixSymbol"):
        assert f"_print_{sympy_node}" in own, sympy_node


# ---- notation -------------------------------------------------------------------
def test_bold_vectors_and_matrices_with_time_superscripts():
    assert tex(h) == r"\bm{h}^{(t)}"
    assert tex(hprev) == r"\bm{h}^{(t - 1)}"
    assert tex(sv("W", t, D, D)) == r"\bm{W}^{(t)}"           # a copy
    assert tex(W) == r"\bm{W}"                                 # the shared parameter
    assert tex(yhat) == r"\bm{\hat{y}}^{(t)}"                  # cell.notation
    assert tex(sv("L", t, 1, 1)) == r"L^{(t)}"                 # a scalar is not bold
    assert tex(Prev(MatrixSymbol("h", D, 1))) == r"\bm{h}^{(t - 1)}"


def test_transpose_joins_the_time_superscript():
    assert tex(hprev.T) == r"\bm{h}^{(t - 1)\top}"
    assert tex(W.T) == r"\bm{W}^{\top}"
    assert tex(sv("W", t + 1, D, D).T) == r"\bm{W}^{(t + 1)\top}"
    assert tex((o - y).T) == r"(\bm{o}^{(t)} - \bm{y}^{(t)})^{\top}"
    assert tex(Adjoint(h).T) == r"\left(\frac{\partial L}{\partial \bm{h}^{(t)}}\right)^{\top}"


def test_adjoints_as_fractions_or_named():
    assert tex(Adjoint(h)) == r"\frac{\partial L}{\partial \bm{h}^{(t)}}"
    assert tex(Adjoint(h), fraction="inline") == r"\partial L / \partial \bm{h}^{(t)}"
    assert tex(Adjoint(W)) == r"\frac{\partial L}{\partial \bm{W}}"
    z1 = sv("z", t + 1, D)
    assert tex(Adjoint(z1), adjoint_names={"z": r"\delta"}) == r"\bm{\delta}^{(t + 1)}"
    assert tex(Adjoint(z1).T, adjoint_names={"z": r"\delta"}) == r"\bm{\delta}^{(t + 1)\top}"
    assert tex(Partial(o, h), fraction="inline") == \
        r"\partial \bm{o}^{(t)} / \partial \bm{h}^{(t)}"


def test_constants():
    assert tex(OneMatrix(D, 1)) == r"\mathbf{1}"
    assert tex(OneMatrix(1, M)) == r"\mathbf{1}^{\top}"
    assert tex(Identity(1)) == "1"
    assert tex(Identity(D)) == r"\mathbf{I}"


def test_functions_diag_and_sums():
    assert tex(Tanh(sv("z", t, D))) == r"\tanh(\bm{z}^{(t)})"
    assert tex(nodes.Sigmoid(sv("z", t, D))) == r"\sigma(\bm{z}^{(t)})"
    assert tex(nodes.Step(sv("z", t, D))) == r"\operatorname{relu}'(\bm{z}^{(t)})"
    assert tex(nodes.LogSoftmax(o)) == r"\log\operatorname{softmax}(\bm{o}^{(t)})"
    assert tex(DiagMatrix(h)) == r"\operatorname{diag}(\bm{h}^{(t)})"
    assert tex(SumOverTime(Adjoint(sv("W", t, D, D)), t, 1, T)) == \
        r"\sum_{t=1}^{T} \frac{\partial L}{\partial \bm{W}^{(t)}}"
    assert tex(StrictLessThan(t, T)) == "t < T"


def test_hadamard_products_and_powers():
    # h (.) h, not h^2; the constant first and the minus sign last
    assert tex(OneMatrix(D, 1) - HadamardProduct(h, h)) == \
        r"\mathbf{1} - \bm{h}^{(t)} \odot \bm{h}^{(t)}"
    assert tex(HadamardPower(h, 3)) == r"(\bm{h}^{(t)})^{\circ 3}"
    # jacobian factors first, plain values before sums, the adjoint last
    sigmoid = HadamardProduct(OneMatrix(D, 1) - h, Adjoint(h), h)
    assert tex(sigmoid) == (r"\bm{h}^{(t)} \odot (\mathbf{1} - \bm{h}^{(t)}) \odot "
                            r"\frac{\partial L}{\partial \bm{h}^{(t)}}")
    nested = HadamardProduct(HadamardProduct(h, OneMatrix(D, 1) - h), Adjoint(h))
    assert tex(nested) == tex(sigmoid)


def test_terms_in_the_order_a_person_writes_them():
    z = derivation().step[0][1]
    assert tex(z) == r"\bm{W}^{(t)} \bm{h}^{(t - 1)} + \bm{U}^{(t)} \bm{x}^{(t)}"
    zb = symrnn.derive(symrnn.ElmanRNN(bias=True)).step[0][1]
    assert latex(zb, symrnn.ElmanRNN(bias=True)).endswith(r"+ \bm{b}^{(t)}")
    dh = derivation().adjoints[Adjoint(h)]
    assert tex(dh).startswith(r"\bm{W}^{\top}")
    assert tex(yhat - y) == r"\bm{\hat{y}}^{(t)} - \bm{y}^{(t)}"
    assert tex(-y + yhat) == r"\bm{\hat{y}}^{(t)} - \bm{y}^{(t)}"


def test_a_scalar_inside_a_product_is_grouped():
    expr = MatMul(yhat, OneMatrix(1, M), y) - y
    assert tex(expr) == (r"\bm{\hat{y}}^{(t)} (\mathbf{1}^{\top} \bm{y}^{(t)}) - \bm{y}^{(t)}")


def test_products_parenthesize_sums_and_entrywise_products():
    expr = W.T * HadamardProduct(OneMatrix(D, 1) - HadamardProduct(h1, h1), Adjoint(h1))
    assert tex(expr) == (r"\bm{W}^{\top} \left((\mathbf{1} - \bm{h}^{(t + 1)} \odot "
                         r"\bm{h}^{(t + 1)}) \odot \frac{\partial L}{\partial \bm{h}^{(t + 1)}}"
                         r"\right)")
    assert tex(V.T * (yhat - y)) == r"\bm{V}^{\top} (\bm{\hat{y}}^{(t)} - \bm{y}^{(t)})"


def test_half_squared_error_is_written_with_one_transpose():
    loss = symrnn.derive(symrnn.ElmanRNN(output="mse")).step[-1][1]
    assert tex(loss) == \
        r"\frac{1}{2} (\bm{o}^{(t)} - \bm{y}^{(t)})^{\top} (\bm{o}^{(t)} - \bm{y}^{(t)})"


def test_no_string_post_processing_in_the_printer():
    source = inspect.getsource(BPTTLatexPrinter)
    assert ".replace(" not in source and "re.sub" not in source


# ---- the rewrites -----------------------------------------------------------------
def _value(expr, values):
    """Evaluate a matrix expression with explicit matrices for its leaves."""
    leaves = {a: values[(type(a).__name__, str(a))] for a in expr.atoms(StepVar, Adjoint)}
    return ImmutableMatrix(expr.xreplace(leaves).doit())


def test_as_diag_is_the_slide_form_and_the_same_vector():
    d = derivation()
    delta = d.adjoints[Adjoint(sv("z", t, D))]
    diag = as_diag(delta)
    assert diag == MatMul(DiagMatrix(OneMatrix(D, 1) - HadamardProduct(h, h)), Adjoint(h))
    rng = numpy.random.default_rng(1)
    k = 3
    concrete = {D: k}
    delta_k, diag_k = delta.subs(concrete), diag.subs(concrete)
    values = {(type(a).__name__, str(a)): ImmutableMatrix(rng.integers(-4, 5, size=(k, 1)))
              for a in delta_k.atoms(StepVar, Adjoint)}
    assert _value(delta_k, values) == _value(diag_k, values)


def test_as_diag_inside_a_recurrence_keeps_the_consistent_order():
    rec = as_diag(derivation().recurrence(CELL.states[0]))
    # W^T diag(1 - h (.) h) dL/dh^(t+1): the diagonal matrix left of the column vector
    wanted = MatMul(W.T, DiagMatrix(OneMatrix(D, 1) - HadamardProduct(h1, h1)), Adjoint(h1))
    assert wanted in rec.args
    assert tex(wanted) == (r"\bm{W}^{\top} \operatorname{diag}(\mathbf{1} - \bm{h}^{(t + 1)} "
                           r"\odot \bm{h}^{(t + 1)}) \frac{\partial L}{\partial \bm{h}^{(t + 1)}}")


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_as_diag_for_other_activations(activation):
    d = derivation(activation=activation)
    diag = as_diag(d.adjoints[Adjoint(sv("z", t, D))])
    assert isinstance(diag, MatMul) and isinstance(diag.args[0], DiagMatrix)
    assert diag.args[-1] == Adjoint(h)
    assert r"\tanh" not in tex(diag)


def test_unit_sum_of_distribution_targets():
    head = derivation().adjoints[Adjoint(o)]
    assert head == MatMul(yhat, OneMatrix(1, M), y) - y
    assert unit_sum_targets(head, CELL) == yhat - y
    assert unit_sum_facts(head, CELL) == [(MatMul(OneMatrix(1, M), y), Identity(1))]
    mse = symrnn.ElmanRNN(output="mse")
    assert unit_sum_targets(head, mse) == head  # only for targets that are distributions


# ---- every printed expression compiles --------------------------------------------
PREAMBLE = r"""\documentclass{article}
\usepackage{amsmath,amssymb,mathtools,bm}
\begin{document}
"""


def _compile_each(expressions, tmp_path):
    """One display per expression, one expression per line: the error names the line."""
    body = "".join(f"\\[ {e} \\]\n" for e in expressions)
    path = tmp_path / "expressions.tex"
    path.write_text(PREAMBLE + body + "\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "-file-line-error", path.name], cwd=tmp_path,
                          capture_output=True, text=True, errors="replace", timeout=120)
    if proc.returncode != 0:
        from symrnn.render.tex import first_error
        error = first_error(proc.stdout, path.read_text().splitlines())
        pytest.fail(f"an expression does not compile: {error}")


needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")


@needs_tex
@pytest.mark.parametrize("model", [{}, {"activation": "sigmoid"}, {"activation": "relu"},
                                   {"activation": "identity", "output": "mse", "bias": True}])
@pytest.mark.tex
def test_every_expression_of_the_sheet_compiles_on_its_own(model, tmp_path):
    from symrnn.documents import printed_expressions
    expressions = printed_expressions(symrnn.ElmanRNN(**model))
    assert len(expressions) > 50
    _compile_each(expressions, tmp_path)


@pytest.mark.tex
@needs_tex
def test_every_node_prints_latex_that_compiles(tmp_path):
    z = sv("z", t, D)
    samples = [h, hprev.T, Prev(MatrixSymbol("h", D, 1)), Adjoint(h), Adjoint(W).T,
               Tanh(z), nodes.Sigmoid(z), nodes.ReLU(z), nodes.Step(z), nodes.Softmax(o),
               nodes.LogSoftmax(o), SumOverTime(Adjoint(z) * hprev.T, t, 1, T),
               HadamardPower(h, 2), HadamardPower(h, 3), DiagMatrix(OneMatrix(D, 1) - h),
               Partial(o, h), MatMul(Rational(1, 2), (o - y).T, o - y), Identity(D),
               OneMatrix(1, M) * y]
    printers = [printer_for(CELL), printer_for(CELL, fraction="inline"),
                printer_for(CELL, adjoint_names={"z": r"\delta"})]
    _compile_each([p.doprint(e) for p in printers for e in samples], tmp_path)
