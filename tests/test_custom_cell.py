"""A cell that no textbook covers, defined by a user twice: as text for
``symrnn.parse_cell`` and as SymPy expressions for ``symrnn.Cell``. Both are
derived, verified and lambdified, and checked against the hand-written BPTT and
forward pass of tests/reference_gated.py. Then the text syntax itself: what
each construct builds, and the errors, which name the line and the token."""
import functools
import types

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from sympy import (HadamardPower, HadamardProduct, MatrixSymbol, OneMatrix, Rational, Symbol,
                   symbols)

import symrnn
from symrnn.model.nodes import Prev, Sigmoid, Tanh
from conftest import unchanged
from reference import finite_differences, rel_err
from reference_gated import (leaky_forward, over_batch, two_timescale_bptt,
                             two_timescale_forward)

# A fast state h and a slow memory m, coupled both ways: the memory gates the
# fast state element-wise and sets, through one scalar rate k, how fast it
# follows it; the mse head reads their difference.
TEXT = """
# two-timescale cell
params: W[D,D] U[D,N] A[D,D] b[D]    # the fast state
params: w[1,D]                        # a row: k is 1x1
params: V[M,D], c[M]
input:  x[N]
target: y[M]
state:  h[D] m[D]

k = sigmoid(w @ prev(m))                    # one scalar rate for the memory
z = W @ prev(h) + U @ x + A @ prev(m) + b
h = tanh(z) * sigmoid(prev(m))              # the memory gates the fast state
m = prev(m) + k * (h - prev(m))             # and follows it at rate k
o = V @ (h - m) + c
loss = (o - y).T @ (o - y) / 2
"""
KEYS = ["W", "U", "A", "b", "w", "V", "c"]


def sympy_cell():
    D, N, M = symbols("D N M", integer=True, positive=True)
    W, A, U, b = (MatrixSymbol("W", D, D), MatrixSymbol("A", D, D), MatrixSymbol("U", D, N),
                  MatrixSymbol("b", D, 1))
    w, V, c = MatrixSymbol("w", 1, D), MatrixSymbol("V", M, D), MatrixSymbol("c", M, 1)
    x, y = MatrixSymbol("x", N, 1), MatrixSymbol("y", M, 1)
    h, m, z = (MatrixSymbol(n, D, 1) for n in "hmz")
    k, o = MatrixSymbol("k", 1, 1), MatrixSymbol("o", M, 1)
    m_prev = symrnn.prev(m)
    return symrnn.Cell(
        "two-timescale", params=[W, U, A, b, w, V, c], inputs=[x], targets=[y], states=[h, m],
        equations=[(k, symrnn.sigmoid(w * m_prev)),
                   (z, W * symrnn.prev(h) + U * x + A * m_prev + b),
                   (h, HadamardProduct(symrnn.tanh(z), symrnn.sigmoid(m_prev))),
                   (m, m_prev + (h - m_prev) * k),
                   (o, V * (h - m) + c)],
        loss=(o - y).T * (o - y) / 2)


MAKE = {"text": lambda: symrnn.parse_cell(TEXT, name="two-timescale"), "sympy": sympy_cell}


@functools.lru_cache(maxsize=None)
def derivation(form):
    return symrnn.derive(MAKE[form]())


@functools.lru_cache(maxsize=None)
def gradient_function(form):
    return derivation(form).lambdify()


def random_params(D, N, M, rng):
    shapes = {"W": (D, D), "U": (D, N), "A": (D, D), "b": (D,), "w": (1, D), "V": (M, D),
              "c": (M,)}
    return {k: rng.normal(size=s) / (np.sqrt(D) if k in "WA" else 1) for k, s in shapes.items()}


# -- the cell ------------------------------------------------------------------------------
def test_text_and_sympy_give_the_same_cell():
    typed, built = MAKE["text"](), MAKE["sympy"]()
    assert typed.equations == built.equations
    assert typed.params == built.params and [p.name for p in typed.params] == KEYS
    assert (typed.inputs, typed.targets, typed.states) == (built.inputs, built.targets, built.states)
    assert typed.sizes == built.sizes
    assert not typed.targets_are_distributions and not built.targets_are_distributions
    assert repr(typed) == repr(built)
    eqs = dict((lhs.name, rhs) for lhs, rhs in typed.equations)
    assert eqs["k"].shape == (1, 1) and isinstance(eqs["k"], Sigmoid)
    assert eqs["h"] == HadamardProduct(Tanh(typed.variables[1]), Sigmoid(Prev(typed.states[1])))


def test_same_derivation_and_same_generated_code():
    a, b = derivation("text"), derivation("sympy")
    assert a.gradients == b.gradients and a.adjoints == b.adjoints and a.terminal == b.terminal
    assert gradient_function("text").source == gradient_function("sympy").source
    assert set(a.gradients) == set(KEYS) | {"h0", "m0"}


@pytest.mark.parametrize("form", ["text", "sympy"])
@pytest.mark.parametrize("T_", [1, 2, 3, 4])
def test_verify(form, T_):
    report = derivation(form).verify(T_)
    assert report.gradients == KEYS + ["h0", "m0"]


def check(form, D, N, M, T_, seed, give_states=True):
    rng = np.random.default_rng(seed)
    params = random_params(D, N, M, rng)
    x, y = rng.normal(size=(T_, N)), rng.normal(size=(T_, M))
    initial = {"h0": rng.normal(size=D), "m0": rng.normal(size=D)} if give_states else {}
    loss, grads = unchanged(lambda: gradient_function(form)(params, x, y, **initial),
                            *params.values(), x, y, *initial.values())
    ref_loss, ref = two_timescale_bptt(params, x, y, **initial)
    assert set(grads) == set(ref) == set(KEYS) | {"h0", "m0"}
    assert abs(loss - ref_loss) <= 1e-10 * max(1.0, abs(ref_loss))
    err_ref = 0.0
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        err_ref = max(err_ref, rel_err(grads[k], ref[k]))
    assert err_ref < 1e-10
    start = {"h0": initial.get("h0", np.zeros(D)), "m0": initial.get("m0", np.zeros(D))}
    fd = finite_differences(
        lambda a: two_timescale_forward({k: a[k] for k in KEYS}, x, y, a["h0"], a["m0"])[0],
        dict(params, **start))
    err_fd = max(rel_err(grads[k], fd[k]) for k in fd)
    assert err_fd < 1e-6
    return err_ref, err_fd


@pytest.mark.parametrize("form", ["text", "sympy"])
@settings(max_examples=5, deadline=None)
@given(D=st.integers(1, 4), N=st.integers(1, 4), M=st.integers(1, 4), T_=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1), give_states=st.booleans())
@example(D=1, N=1, M=1, T_=1, seed=0, give_states=True)
@example(D=3, N=1, M=2, T_=5, seed=1, give_states=False)
@example(D=2, N=4, M=3, T_=6, seed=2, give_states=True)
def test_against_references(form, D, N, M, T_, seed, give_states):
    check(form, D, N, M, T_, seed, give_states)


@pytest.mark.parametrize("form", ["text", "sympy"])
@pytest.mark.parametrize("initial", ["omitted", "shared", "per sequence", "mixed"])
def test_batches(form, initial):
    D, N, M, T_, B = 3, 2, 2, 4, 3
    rng = np.random.default_rng(11)
    params = random_params(D, N, M, rng)
    x, y = rng.normal(size=(T_, N, B)), rng.normal(size=(T_, M, B))
    given_states = {"omitted": {}, "shared": {"h0": rng.normal(size=D), "m0": rng.normal(size=D)},
                    "per sequence": {"h0": rng.normal(size=(D, B)), "m0": rng.normal(size=(D, B))},
                    "mixed": {"h0": None, "m0": rng.normal(size=D)}}[initial]
    loss, grads = gradient_function(form)(params, x, y, **given_states)
    ref_loss, ref = over_batch(two_timescale_bptt, params, x, y, **given_states)
    assert abs(loss - ref_loss) <= 1e-10 * max(1.0, ref_loss)
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        assert rel_err(grads[k], ref[k]) < 1e-10, k


def test_scalar_parameter():
    # a learned scalar leak alpha[1]: a 1x1 parameter scaling a column and a row
    cell = symrnn.parse_cell("""
        params: W[D,D] U[D,N] alpha[1] V[M,D]
        input: x[N]
        target: y[M]
        state: h[D]
        a = tanh(W @ prev(h) + U @ x)
        h = alpha * prev(h) + a
        o = V @ h
        loss = 0.5 * (o - y).T @ (o - y) + (alpha * h.T) @ a
        """, name="leaky")
    d = symrnn.derive(cell)
    for T_ in (1, 2, 3, 4):
        assert d.verify(T_).gradients == ["W", "U", "alpha", "V", "h0"]
    f = d.lambdify()
    rng = np.random.default_rng(5)
    params = {"W": rng.normal(size=(3, 3)) / 2, "U": rng.normal(size=(3, 2)),
              "alpha": np.array([0.7]), "V": rng.normal(size=(2, 3))}
    x, y, h0 = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), rng.normal(size=3)
    loss, grads = f(params, x, y, h0=h0)
    assert loss == pytest.approx(leaky_forward(params, x, y, h0), rel=1e-12)
    fd = finite_differences(lambda a: leaky_forward({k: a[k] for k in params}, x, y, a["h0"]),
                            dict(params, h0=h0))
    assert grads["alpha"].shape == (1,)
    for k in fd:
        assert rel_err(grads[k], fd[k]) < 1e-6, k


def test_verify_with_an_unnamed_function_of_the_parameters():
    # tanh(W h^(t-1) + U x) is a value of its own in verify(): the unrolled
    # side's tanh(W^(k) ...) must be the closed form's tanh(W ...)
    cell = symrnn.parse_cell("""
        params: W[D,D] U[D,N] alpha[1] V[M,D]
        input: x[N]
        target: y[M]
        state: h[D]
        h = alpha * prev(h) + tanh(W @ prev(h) + U @ x)
        loss = 0.5 * (V @ h - y).T @ (V @ h - y)
        """)
    d = symrnn.derive(cell)
    for T_ in (1, 2, 3):
        assert d.verify(T_).gradients == ["W", "U", "alpha", "V", "h0"]


# -- the syntax --------------------------------------------------------------------------
HEAD = """params: W[D,D] U[D,N] V[M,D] w[1,D]
input: x[N]
target: y[M]
state: h[D]
"""
TAIL = """
h = tanh(z)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)"""
D, N, M = symbols("D N M", integer=True, positive=True)
W, U = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N)
x, h_prev = MatrixSymbol("x", N, 1), Prev(MatrixSymbol("h", D, 1))
u = MatrixSymbol("u", D, 1)


def parsed(*lines):
    """The right-hand sides of ``lines`` (the last one defines z)."""
    cell = symrnn.parse_cell(HEAD + "\n".join(lines) + TAIL)
    return [rhs for _, rhs in cell.equations[:len(lines)]]


@pytest.mark.parametrize("expression, expected", [
    ("W @ prev(h) + U @ x", W * h_prev + U * x),
    ("1 - u", OneMatrix(D, 1) - u),
    ("u - 1", u - OneMatrix(D, 1)),
    ("3 + u", 3 * OneMatrix(D, 1) + u),
    ("2 * u / 4", u / 2),
    ("0.25 * u", Rational(1, 4) * u),
    ("-u", -u),
    ("u * u * prev(h)", HadamardProduct(u, u, h_prev)),
    ("u ** 2", HadamardPower(u, 2)),
    ("u ** 1", u),
    ("(u.T @ u) * u", u * (u.T * u)),
    ("u * (w @ u)", u * (MatrixSymbol("w", 1, D) * u)),
    ("W.T @ (u * u)", W.T * HadamardProduct(u, u)),
    ("sigmoid(u) + relu(u) - tanh(u) + softmax(u) + log_softmax(u)",
     symrnn.sigmoid(u) + symrnn.relu(u) - symrnn.tanh(u) + symrnn.softmax(u)
     + symrnn.log_softmax(u)),
])
def test_what_each_construct_builds(expression, expected):
    _, z = parsed("u = tanh(U @ x)", "z = " + expression)
    assert z == expected


def test_layout_comments_commas_and_repeated_sections():
    text = """
        # indented, with comments and blank lines

        params: W[ D , D ],U[D,N]   # commas or spaces
        params: V[M,D]
        input: x[N]
        target: y[M]
        state: h[D]
        h = tanh(W @ prev(h) + U @ x)   # no intermediate z

        o = V @ h
        yhat = softmax(o)
        loss = -y.T @ log_softmax(o)
    """
    cell = symrnn.parse_cell(text)
    assert [p.name for p in cell.params] == ["W", "U", "V"]
    assert cell.targets_are_distributions            # the loss has log_softmax
    assert cell.notation == {"yhat": r"\hat{y}"}
    assert not symrnn.parse_cell(text, targets_are_distributions=False).targets_are_distributions
    assert symrnn.parse_cell(text, notation={"h": r"\eta"}).notation == {
        "yhat": r"\hat{y}", "h": r"\eta"}


@pytest.mark.parametrize("model, text", [
    (dict(), "z = W @ prev(h) + U @ x\nh = tanh(z)\no = V @ h\nyhat = softmax(o)\n"
             "loss = -y.T @ log_softmax(o)"),
    (dict(activation="relu", output="mse", bias=True),
     "z = W @ prev(h) + U @ x + b\nh = relu(z)\no = V @ h + c\nloss = 0.5 * (o - y).T @ (o - y)"),
])
def test_elman_presets_are_their_text(model, text):
    head = "params: W[D,D] U[D,N] V[M,D]" + (" b[D] c[M]" if model.get("bias") else "")
    typed = symrnn.parse_cell(head + "\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n" + text)
    preset = symrnn.ElmanRNN(**model)
    assert typed.equations == preset.equations and typed.params == preset.params
    assert typed.targets_are_distributions == preset.targets_are_distributions


def test_sizes_argument():
    text = HEAD + "z = W @ prev(h) + U @ x" + TAIL
    H = Symbol("H", integer=True, positive=True)
    cell = symrnn.parse_cell(text, sizes={"D": H, "N": 3})
    assert cell.param("U").shape == (H, 3) and cell.inputs[0].shape == (3, 1)
    assert cell.sizes == (H, Symbol("M", integer=True, positive=True))
    for bad in ({"N": 0}, {"N": "3"}, {"N": 2.5}, {"N": True}, ["N"]):
        with pytest.raises(ValueError, match="sizes"):
            symrnn.parse_cell(text, sizes=bad)


BASE = HEAD + "z = W @ prev(h) + U @ x" + TAIL   # line 5 is z, 6 h, 7 o, 8 the loss


@pytest.mark.parametrize("old, new, message", [
    ("U @ x", "U @ q", r"line 5: unknown name 'q'"),
    ("U @ x", "x", r"line 5: 'W @ prev\(h\) \+ x': shapes \(D, 1\) and \(N, 1\) cannot be added"),
    ("W @ prev(h)", "W @ h", r"line 5: state 'h' is used before its equation; write prev\(h\)"),
    ("W @ prev(h)", "W * prev(h)", r"line 5: 'W \* prev\(h\)': shapes \(D, D\) \* \(D, 1\) differ"),
    ("W @ prev(h)", "U @ prev(h)", r"line 5: 'U @ prev\(h\)': shapes \(D, N\) @ \(D, 1\) do not fit"),
    ("prev(h)", "prev(x)", r"line 5: 'prev\(x\)': prev takes a state, one of h"),
    ("U @ x", "U @ x +", r"line 5: invalid syntax"),
    ("U @ x", "cos(U @ x)", r"line 5: 'cos' is not a function"),
    ("U @ x", "tanh(U @ x, x)", r"line 5: 'tanh\(U @ x, x\)': tanh takes exactly one argument"),
    ("U @ x", "(U @ x if 1 else x)", r"line 5: 'U @ x if 1 else x' is not allowed"),
    ("U @ x", "U @ 'x'", r"line 5: \"'x'\" is not allowed"),
    ("U @ x", "U @ x / x", r"line 5: 'U @ x / x': shapes \(D, 1\) / \(N, 1\) differ"),
    ("U @ x", "(U @ x) ** 0.5", r"line 5: '\(U @ x\) \*\* 0.5': the exponent must be a positive"),
    ("U @ x", "x.real", r"line 5: 'x.real': the only attribute is .T"),
    ("U @ x", "U @ x + [x]", r"line 5: '\[x\]' is not allowed"),
    ("U @ x", "U @ x + True", r"line 5: 'True' is not allowed"),
    ("U @ x", "U @ x + 1/0", r"line 5: '1/0': division by zero"),
    ("U @ x", "2 @ x", r"line 5: '2 @ x': @ multiplies two matrices"),
    ("W @ prev(h) + U @ x", "U @ x @ x.T",
     r"line 5: 'z' is a matrix of shape \(D, N\) that reads x; a named matrix is computed once"),
    ("W @ prev(h) + U @ x", "W + prev(h) @ prev(h).T", r"line 5: 'z' is a matrix of shape "
                                                       r"\(D, D\) that reads prev\(h\)"),
    ("W @ prev(h) + U @ x", "W", r"line 6: 'tanh\(z\)': the argument of tanh must be a column"),
    ("W @ prev(h) + U @ x", "3", r"line 5: the right-hand side of z is a number"),
    ("W @ prev(h) + U @ x", "tanh(W)", r"line 5: 'tanh\(W\)': the argument of tanh must be a column"),
    ("z = W", "W = W", r"line 5: cannot assign to the parameter 'W' \(declared on line 1\)"),
    ("z = W", "z[0] = W", r"line 5: the left-hand side 'z\[0\]' must be a single name"),
    ("z = W", "import os\nz = W", r"line 5: expected an equation 'name = expression'"),
    ("z = W", "z = y = W", r"line 5: expected an equation"),
    ("z = W @ prev(h) + U @ x", "z = W @ prev(h) + U @ x\nz = tanh(z)",
     r"line 6: 'z' is computed twice \(first on line 5\)"),
    ("h = tanh(z)", "h = tanh(z)\nh = tanh(z)", r"line 7: state 'h' is computed twice"),
    ("h = tanh(z)", "h = tanh(o)", r"line 6: unknown name 'o'"),
    ("h = tanh(z)", "h = tanh(U @ x)\nh0 = tanh(z)", r"the name 'h0' is taken by the "
                                                      r"generated code for 'h'"),
    ("h = tanh(z)", "h = tanh(z)\nD = tanh(z)", r"'D' is both a size and a variable"),
    ("h = tanh(z)", "h = tanh(z)\nL = tanh(z)", r"line 7: 'L' is reserved"),
    ("loss = 0.5 * (o - y).T @ (o - y)", "loss = o", r"line 8: the loss must be 1x1"),
    ("loss = 0.5 * (o - y).T @ (o - y)", "", r"no loss: add a line 'loss = \.\.\.'"),
    ("loss = 0.5 * (o - y).T @ (o - y)", "loss = 0.5 * (o - y).T @ (o - y) + loss",
     r"line 8: 'loss' is the loss of the step"),
    ("V[M,D]", "V", r"line 1: parameter 'V' needs a shape"),
    ("V[M,D]", "V[M,D,3]", r"line 1: V\[M,D,3\]: a shape is \[rows\] or \[rows, cols\]"),
    ("V[M,D]", "V[M,D] $", r"line 1: unexpected '\$' in the params declaration"),
    ("V[M,D]", "V[M,0]", r"line 1: size '0' must be at least 1"),
    ("V[M,D]", "V[M,T]", r"line 1: size 'T'"),
    ("V[M,D]", "V[M,D] W[D,D]", r"line 1: 'W' is declared twice"),
    ("input: x[N]", "input: x[N, 2]", r"line 2: input 'x' must be a column vector"),
    ("input: x[N]", "output: x[N]", r"line 2: unknown section 'output'"),
    ("input: x[N]", "", r"no input declared"),
    ("state: h[D]", "", r"no state declared"),
    ("h = tanh(z)", "h = tanh(U.T @ z)",
     r"line 6: state 'h' is declared \(D, 1\) on line 4 but its right-hand side has shape \(N, 1\)"),
])
def test_errors_name_the_line_and_the_token(old, new, message):
    assert old in BASE
    with pytest.raises(ValueError, match=message):
        symrnn.parse_cell(BASE.replace(old, new, 1))


def test_every_state_needs_an_equation():
    text = BASE.replace("h = tanh(z)", "g = tanh(z)").replace("V @ h", "V @ g")
    with pytest.raises(ValueError, match=r"state 'h' \(line 4\) has no equation: add 'h = \.\.\.'"):
        symrnn.parse_cell(text)


@pytest.mark.parametrize("payload", [
    "__import__('os').system('touch {path}')",
    "open('{path}', 'w')",
    "(lambda: __import__('os').system('touch {path}'))()",
    "x.__class__.__bases__[0].__subclasses__()",
    "[__import__('os').system('touch {path}') for _ in x]",
])
def test_text_is_never_evaluated(tmp_path, payload):
    path = tmp_path / "evaluated"
    with pytest.raises(ValueError, match="line 5"):
        symrnn.parse_cell(BASE.replace("U @ x", payload.format(path=path), 1))
    assert not path.exists()


def test_parse_cell_rejects_a_non_string():
    with pytest.raises(ValueError, match="text"):
        symrnn.parse_cell(["params: W[D,D]"])


def test_documented_example_runs():
    # the page "Define your own cell" (docs/cells.md; tests/test_docs.py runs every
    # snippet of every page, this checks what the page's example shows)
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parent.parent
    section = (root / "docs" / "cells.md").read_text()
    assert section.startswith("# Define your own cell")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S)
              if not b.startswith(">>>")]
    namespace = {}
    for block in blocks:
        exec(compile(block.replace("print(f.source)", "f.source"), "docs", "exec"), namespace)
    assert namespace["cell2"].equations == namespace["cell"].equations
    assert set(namespace["grads"]) == {"W_f", "U_f", "b_f", "W", "U", "b", "V", "h0"}
    lstm = re.findall(r"```\n(params: W_f.*?)```", section, re.S)
    assert symrnn.parse_cell(lstm[0]).equations == symrnn.LSTM().equations


def test_arguments_are_never_overwritten():
    # after the loop nothing reads x again, so `o = x - V h` could start from
    # x's array; the generated code must start from an array of its own instead
    f = symrnn.derive(symrnn.parse_cell("""
        params: W[D,D] V[D,D]
        input:  x[D]
        target: y[D]
        state:  h[D]
        h = tanh(W @ prev(h) + x)
        o = x - V @ h
        loss = (o - y).T @ (o - y) / 2
        """)).lambdify()
    rng = np.random.default_rng(5)
    params = {"W": rng.normal(size=(3, 3)), "V": rng.normal(size=(3, 3))}
    for x, y, h0 in [(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=3)),
                     (rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2)), None)]:
        loss, grads = unchanged(lambda: f(params, x, y, h0=h0), *params.values(), x, y, h0)
        assert np.isfinite(loss) and loss == f(params, x, y, h0=h0)[0]


@pytest.mark.parametrize("name", ["h0", "D"])
def test_cell_built_in_sympy_rejects_names_the_generated_code_uses(name):
    # the text syntax refuses them with a line number; a Cell built in SymPy must too,
    # or the generated code would silently overwrite its own variable
    D, N = symbols("D N", integer=True, positive=True)
    W, U = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N)
    x, y, h, z = (MatrixSymbol("x", N, 1), MatrixSymbol("y", D, 1), MatrixSymbol("h", D, 1),
                  MatrixSymbol("z", D, 1))
    taken = MatrixSymbol(name, D, 1)
    with pytest.raises(ValueError, match=rf"^equations: the name '{name}' is taken"):
        symrnn.Cell("c", params=[W, U], inputs=[x], targets=[y], states=[h],
                    equations=[(z, W * symrnn.prev(h) + U * x), (taken, symrnn.tanh(z)),
                               (h, taken)],
                    loss=(h - y).T * (h - y))


# -- patterns people ask for (README: "Patterns") ----------------------------------------
# A per-step weight m^(t) is one more input: m^(t) = 1 at the last step and 0 before
# is a loss at the last step only (many-to-one); 0/1 per step is a mask of padding.
MANY_TO_ONE = """
params: W[D,D] U[D,N] V[M,D]
input:  x[N] m[1]
target: y[M]
state:  h[D]
h = tanh(W @ prev(h) + U @ x)
o = V @ h
loss = m * (-y.T @ log_softmax(o))
"""


def many_to_one_forward(p, x, m, y, h0):
    h, loss = h0, 0.0
    for t_ in range(len(x)):
        h = np.tanh(p["W"] @ h + p["U"] @ x[t_])
        o = p["V"] @ h
        loss += m[t_, 0] * -(y[t_] @ (o - o.max() - np.log(np.exp(o - o.max()).sum())))
    return loss


def test_a_loss_at_the_last_step_only():
    from test_fuzz_cells import ClosedForms
    cell = symrnn.parse_cell(MANY_TO_ONE)
    d = symrnn.derive(cell)
    d.verify(3)
    rng = np.random.default_rng(2)
    p = {"W": rng.normal(size=(3, 3)) / 2, "U": rng.normal(size=(3, 2)),
         "V": rng.normal(size=(2, 3))}
    T_ = 4
    x, y, h0 = rng.normal(size=(T_, 2)), np.eye(2)[[0, 1, 1, 0]], rng.normal(size=3)
    m = np.zeros((T_, 1))
    m[-1] = 1.0
    # the closed forms, evaluated entry by entry (tests/test_fuzz_cells.py), against
    # central differences; the generated code needs two inputs (see below)
    values = {("h", 0): h0.reshape(-1, 1)}
    h = h0
    for k in range(1, T_ + 1):
        h = np.tanh(p["W"] @ h + p["U"] @ x[k - 1])
        o = p["V"] @ h
        for name, v in (("x", x[k - 1]), ("m", m[k - 1]), ("y", y[k - 1]), ("h", h), ("o", o)):
            values[(name, k)] = np.reshape(v, (-1, 1))
    shapes = types_of(cell)
    grads = ClosedForms(d, shapes, p, values, T_).gradients()
    fd = finite_differences(lambda a: many_to_one_forward(a, x, m, y, a["h0"]), dict(p, h0=h0))
    for k in fd:
        assert rel_err(np.reshape(grads[k], fd[k].shape), fd[k]) < 1e-6, k
    # only the last step's loss counts: dL/dV = (softmax(o^(T)) - y^(T)) h^(T)T
    o_T, h_T = values[("o", T_)][:, 0], values[("h", T_)][:, 0]
    assert np.allclose(grads["V"], np.outer(np.exp(o_T) / np.exp(o_T).sum() - y[-1], h_T))


def types_of(cell):
    """What ClosedForms needs to know of a cell: the rows of its parameters."""
    return types.SimpleNamespace(params={p.name: (str(p.shape[0]), None) for p in cell.params})


def test_a_loss_at_the_last_step_only_runs():
    f = symrnn.derive(symrnn.parse_cell(MANY_TO_ONE)).lambdify()
    rng = np.random.default_rng(4)
    p = {"W": rng.normal(size=(3, 3)) / 2, "U": rng.normal(size=(3, 2)),
         "V": rng.normal(size=(2, 3))}
    x, y, h0 = rng.normal(size=(5, 2)), np.eye(2)[[0, 1, 1, 0, 1]], rng.normal(size=3)
    m = np.zeros((5, 1))
    m[-1] = 1.0
    loss, grads = f(p, {"x": x, "m": m}, y, h0=h0)
    assert loss == pytest.approx(many_to_one_forward(p, x, m, y, h0), rel=1e-12)
    fd = finite_differences(lambda a: many_to_one_forward(a, x, m, y, a["h0"]), dict(p, h0=h0))
    for k in fd:
        assert rel_err(grads[k], fd[k]) < 1e-6, k
