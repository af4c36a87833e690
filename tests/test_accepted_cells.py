"""Cells the parser accepts whose generated code crashed or was silently wrong
(issue 21): each against a plain NumPy forward written here (one column vector
per step, nothing from symrnn) and central differences of that forward, on the
NumPy backend (three of them on the Numba backend too; the fuzz test runs more),
and ``verify`` on each derivation."""
import numpy as np
import pytest

import symrnn
from reference import finite_differences, rel_err

D, N, M, T = 3, 2, 4, 4
HEAD = ("params: W[D,D] U[D,N] V[M,D] w[1,D] b[D]\ninput: x[N]\ntarget: y[M]\n"
        "state: h[D]\n")
SHAPES = {"W": (D, D), "U": (D, N), "V": (M, D), "w": (1, D), "b": (D,)}


def _log_softmax(o):
    s = o - o.max()
    return s - np.log(np.exp(s).sum())


def _tanh_cell(p, h, x):
    return np.tanh(p["W"] @ h + p["U"] @ x)


# name: (equations after HEAD, one step (p, h(t-1), x, y) -> (h(t), loss of the step))
CELLS = {
    "loss reads prev(h) through log_softmax": (
        "h = tanh(W @ prev(h) + U @ x)\nloss = -y.T @ log_softmax(V @ prev(h))",
        lambda p, h, x, y: (_tanh_cell(p, h, x), -y @ _log_softmax(p["V"] @ h))),
    "loss reads prev(h) squared": (
        "h = tanh(W @ prev(h) + U @ x)\nloss = prev(h).T @ prev(h) + y.T @ (V @ h)",
        lambda p, h, x, y: ((g := _tanh_cell(p, h, x)), h @ h + y @ p["V"] @ g)),
    "constant offsets 0.5, 2, -0.5": (
        "a = W @ prev(h) + U @ x + 0.5\nh = tanh(a - 0.5) + 2 - tanh(0.5 - a)\n"
        "loss = -y.T @ log_softmax(V @ h - 2)",
        lambda p, h, x, y: ((g := np.tanh(p["W"] @ h + p["U"] @ x) + 2
                             - np.tanh(-p["W"] @ h - p["U"] @ x)),
                            -y @ _log_softmax(p["V"] @ g - 2))),
    "a number times a column of ones": (
        "r = tanh(W @ prev(h) + U @ x)\nh = r * (1 + 0 * r) + r * (2 + 0 * r)\n"
        "loss = y.T @ (V @ h)",
        lambda p, h, x, y: ((g := 3 * _tanh_cell(p, h, x)), y @ p["V"] @ g)),
    "a constant loss": (
        "h = tanh(W @ prev(h) + U @ x)\nloss = 0 * (y.T @ y)",
        lambda p, h, x, y: (_tanh_cell(p, h, x), 0.0)),
    "a linear loss plus a number": (
        "h = tanh(W @ prev(h) + U @ x)\nloss = y.T @ (V @ h) + 3",
        lambda p, h, x, y: ((g := _tanh_cell(p, h, x)), y @ p["V"] @ g + 3)),
    "constant functions: exp(0 * x), log(1 + 0 * y)": (
        "h = tanh(W @ prev(h) + U @ x + exp(0 * (U @ x)))\n"
        "loss = y.T @ (V @ h) + log(1 + 0 * y).T @ y + sum(exp(0 * h))",
        lambda p, h, x, y: ((g := np.tanh(p["W"] @ h + p["U"] @ x + 1)), y @ p["V"] @ g + D)),
    "matrix powers": (
        "h = tanh(W @ W @ prev(h) + W.T @ W.T @ W.T @ prev(h) + U @ x)\nloss = y.T @ (V @ h)",
        lambda p, h, x, y: ((g := np.tanh(p["W"] @ p["W"] @ h + p["W"].T @ p["W"].T @ p["W"].T @ h
                                          + p["U"] @ x)), y @ p["V"] @ g)),
    "loss terms of the parameters alone": (
        "h = tanh(W @ prev(h) + U @ x)\nloss = w @ b + (w @ W) @ b + b.T @ b + y.T @ (V @ h)",
        lambda p, h, x, y: ((g := _tanh_cell(p, h, x)), (p["w"] @ p["b"])[0] + p["b"] @ p["b"]
                            + (p["w"] @ p["W"] @ p["b"])[0] + y @ p["V"] @ g)),
    "a row parameter transposed into a column": (
        "h = tanh(W @ prev(h) + U @ x + w.T)\nloss = (w + 1) @ h + y.T @ (V @ h)",
        lambda p, h, x, y: ((g := np.tanh(p["W"] @ h + p["U"] @ x + p["w"][0])),
                            (p["w"][0] + 1) @ g + y @ p["V"] @ g)),
    "sum and ones": (
        "h = tanh(W @ prev(h) + ones(D) * sum(x)) / sum(exp(prev(h)))\n"
        "loss = sum(V @ h - y) + sum(W @ W) * sum(h) + sum(w) * sum(V)",
        lambda p, h, x, y: ((g := np.tanh(p["W"] @ h + x.sum()) / np.exp(h).sum()),
                            (p["V"] @ g - y).sum() + (p["W"] @ p["W"]).sum() * g.sum()
                            + p["w"].sum() * p["V"].sum())),
}
# constants and named matrices: the Lipschitz RNN's A_beta, a step dt (their own heads)
CONSTANTS = (
    "params: A[D,D] U[D,N] V[M,D] w[1,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
    "const: beta = 0.65, dt = 0.1 gamma = 1/3\nconst: two = 2 * gamma + dt\n"
    "Ab = (1 - beta) * (A + A.T) + beta * (A - A.T) - 0.05 * eye(D)\nAc = Ab @ Ab.T\n"
    "r = w @ Ac\n"
    "h = prev(h) + dt * tanh(Ab @ prev(h) + Ac @ prev(h) + U @ x + r.T - gamma * prev(h))"
    " - dt ** 2 * prev(h) / two\n"
    "loss = 0.5 * (V @ h - y).T @ (V @ h - y) * gamma + sum(Ac) + sum(r @ Ab) * sum(h)")
CONSTANT_SHAPES = {"A": (D, D), "U": (D, N), "V": (M, D), "w": (1, D)}


def _constants_step(p, h, x, y):
    beta, dt, gamma = 0.65, 0.1, 1 / 3
    two = 2 * gamma + dt
    Ab = (1 - beta) * (p["A"] + p["A"].T) + beta * (p["A"] - p["A"].T) - 0.05 * np.eye(D)
    Ac = Ab @ Ab.T
    r = p["w"] @ Ac
    g = h + dt * np.tanh(Ab @ h + Ac @ h + p["U"] @ x + r[0] - gamma * h) - dt ** 2 * h / two
    o = p["V"] @ g - y
    return g, 0.5 * o @ o * gamma + Ac.sum() + (r @ Ab).sum() * g.sum()


ALL = {**{name: (HEAD + text, step, SHAPES) for name, (text, step) in CELLS.items()},
       "constants and named matrices": (CONSTANTS, _constants_step, CONSTANT_SHAPES)}


def plain_loss(step, arrays, x, y):
    h, loss = arrays["h0"], 0.0
    for t in range(len(x)):
        h, value = step(arrays, h, x[t], y[t])
        loss += value
    return float(loss)


def problem(shapes, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) / 2 for k, s in shapes.items()}
    x, y = rng.normal(size=(T, N)), rng.dirichlet(np.ones(M), T)
    return params, x, y, {"h0": rng.normal(size=D) / 2}


def check(name, f):
    _, step, shapes = ALL[name]
    params, x, y, starts = problem(shapes)
    loss, grads = f(params, x, y, **starts)
    arrays = dict(params, **starts)
    expected = plain_loss(step, arrays, x, y)
    assert abs(loss - expected) <= 1e-12 * max(1.0, abs(expected)), (loss, expected)
    numeric = finite_differences(lambda a: plain_loss(step, a, x, y), arrays)
    for k in numeric:
        assert grads[k].shape == numeric[k].shape, k
        assert rel_err(grads[k], numeric[k]) < 1e-6, (k, grads[k], numeric[k])


def derivation(name):
    return symrnn.derive(symrnn.parse_cell(ALL[name][0], name=name.replace(",", "")))


@pytest.mark.parametrize("name", list(ALL))
def test_generated_code_against_a_plain_forward(name):
    d = derivation(name)
    assert d.verify(2)
    check(name, d.lambdify())


@pytest.mark.numba
def test_the_same_cells_on_the_numba_backend():
    pytest.importorskip("numba")
    for name in ["loss reads prev(h) squared", "sum and ones", "constants and named matrices",
                 "constant functions: exp(0 * x), log(1 + 0 * y)"]:
        f = derivation(name).lambdify("numba")
        f.__globals__["COMPILED_BELOW"] = 10**9  # the compiled kernel, not NumPy's
        check(name, f)


def test_constants_stay_symbols_in_the_derivation_and_print_by_name():
    import sympy
    from symrnn.model.nodes import Constant
    cell = symrnn.parse_cell(CONSTANTS)
    assert [(c.name, str(c.value)) for c in cell.constants] == [
        ("beta", "13/20"), ("dt", "1/10"), ("gamma", "1/3"), ("two", "23/30")]
    d = symrnn.derive(cell)
    state = d.adjoints[next(a for a in d.adjoints if a.var.name == "h")]
    assert {c.name for c in state.atoms(Constant)} >= {"dt", "gamma"}   # exact in them
    text = sympy.latex(cell.equations[0][1])
    assert r"\Delta t" in text and r"\gamma" in text and "0.1" not in text  # as the sheet
    assert "0.1 *" in d.lambdify().source   # a number in the generated code
