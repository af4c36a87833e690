"""Cells whose generated code needs transposes, products and sums of parameters
built from the expression tree: each against a plain NumPy forward written by
hand (the loss, to 1e-12) and central differences of that forward (the
gradients, to 1e-6), on the NumPy backend, and once on the Numba backend."""
import numpy as np
import pytest

import symrnn
from reference import finite_differences, rel_err
from symrnn.codegen import emit

HEAD = "input: x[N]\ntarget: y[M]\nstate: h[D]\n"
LOSS = "loss = -y.T @ log_softmax(o)\n"
D, N, M, K, T = 3, 2, 4, 2, 4  # M != D, and K != D for the non-square Q


def _log_softmax(o):
    s = o - o.max()
    return s - np.log(np.exp(s).sum())


def _tanh_step(A):
    return lambda p, h, x: np.tanh(A(p) @ h + p["U"] @ x)


# name: (cell text, parameter shapes, one step h(t-1) -> h(t), the output o(h))
CELLS = {
    "sum before @": (
        "params: W[D,D] Q[D,D] U[D,N] V[M,D]\n" + HEAD
        + "h = tanh((W + Q) @ prev(h) + U @ x)\no = V @ h\n" + LOSS,
        {"W": (D, D), "Q": (D, D), "U": (D, N), "V": (M, D)},
        _tanh_step(lambda p: p["W"] + p["Q"]), lambda p, h: p["V"] @ h),
    "antisymmetric": (
        "params: W[D,D] U[D,N] V[M,D]\n" + HEAD
        + "h = tanh((W - W.T) @ prev(h) + U @ x)\no = V @ h\n" + LOSS,
        {"W": (D, D), "U": (D, N), "V": (M, D)},
        _tanh_step(lambda p: p["W"] - p["W"].T), lambda p, h: p["V"] @ h),
    "non-square sum": (
        "params: W[D,D] U[D,N] V[M,D] V2[M,D]\n" + HEAD
        + "h = tanh(W @ prev(h) + U @ x)\no = (V + V2) @ h\n" + LOSS,
        {"W": (D, D), "U": (D, N), "V": (M, D), "V2": (M, D)},
        _tanh_step(lambda p: p["W"]), lambda p, h: (p["V"] + p["V2"]) @ h),
    "product of parameters": (
        "params: W[D,K] Q[K,D] U[D,N] V[M,D]\n" + HEAD
        + "h = tanh(W @ Q @ prev(h) + U @ x)\no = V @ h\n" + LOSS,
        {"W": (D, K), "Q": (K, D), "U": (D, N), "V": (M, D)},
        _tanh_step(lambda p: p["W"] @ p["Q"]), lambda p, h: p["V"] @ h),
    "vector gate": (
        "params: w[D] U[D,N] V[M,D]\n" + HEAD
        + "h = relu(w * prev(h) + U @ x)\no = V @ h\n" + LOSS,
        {"w": (D,), "U": (D, N), "V": (M, D)},
        lambda p, h, x: np.maximum(p["w"] * h + p["U"] @ x, 0.0), lambda p, h: p["V"] @ h),
}


# all five patterns in one cell of two states, so that Numba compiles once
COMBINED = (
    "params: W[D,D] Q[D,D] A[D,K] P[K,D] w[D] U[D,N] V[M,D] V2[M,D]\n"
    "input: x[N]\ntarget: y[M]\nstate: h[D] g[D]\n"
    "h = tanh((W + Q) @ prev(h) + U @ x)\n"
    "g = relu(w * prev(g) + (W - W.T) @ prev(g) + A @ P @ prev(h))\n"
    "o = (V + V2) @ h + V @ g\n" + LOSS,
    {"W": (D, D), "Q": (D, D), "A": (D, K), "P": (K, D), "w": (D,), "U": (D, N), "V": (M, D),
     "V2": (M, D)})


def combined_step(p, s, x):
    h, g = s
    return (np.tanh((p["W"] + p["Q"]) @ h + p["U"] @ x),
            np.maximum(p["w"] * g + (p["W"] - p["W"].T) @ g + p["A"] @ p["P"] @ h, 0.0))


def combined_output(p, s):
    h, g = s
    return (p["V"] + p["V2"]) @ h + p["V"] @ g


def plain_loss(name, arrays, x, y):
    """The loss by hand: one column vector per step, nothing from symrnn."""
    if name == "combined":
        step, output, s = combined_step, combined_output, [arrays[k] for k in ("h0", "g0")]
    else:
        _, _, step, output = CELLS[name]
        s = arrays["h0"]
    loss = 0.0
    for t in range(len(x)):
        s = step(arrays, s, x[t])
        loss -= y[t] @ _log_softmax(output(arrays, s))
    return loss


def problem(name, seed=0):
    rng = np.random.default_rng(seed)
    shapes = COMBINED[1] if name == "combined" else CELLS[name][1]
    params = {k: rng.normal(size=s) / 2 for k, s in shapes.items()}
    x, y = rng.normal(size=(T, N)), rng.dirichlet(np.ones(M), T)
    states = ("h0", "g0") if name == "combined" else ("h0",)
    return params, x, y, {s: rng.normal(size=D) for s in states}


def check(name, f):
    params, x, y, starts = problem(name)
    loss, grads = f(params, x, y, **starts)
    arrays = dict(params, **starts)
    expected = plain_loss(name, arrays, x, y)
    assert abs(loss - expected) <= 1e-12 * max(1.0, abs(expected)), (loss, expected)
    numeric = finite_differences(lambda a: plain_loss(name, a, x, y), arrays)
    assert set(grads) == set(numeric)
    for k in numeric:
        assert grads[k].shape == numeric[k].shape, k
        assert rel_err(grads[k], numeric[k]) < 1e-6, k


def lambdified(name, backend="numpy"):
    text = COMBINED[0] if name == "combined" else CELLS[name][0]
    return symrnn.derive(symrnn.parse_cell(text)).lambdify(backend)


@pytest.mark.parametrize("name", list(CELLS) + ["combined"])
def test_cell_against_a_plain_forward(name):
    check(name, lambdified(name))


@pytest.mark.numba
def test_cells_on_the_numba_backend():
    f = lambdified("combined", "numba")
    f.__globals__["COMPILED_BELOW"] = 10**9  # the compiled kernel, not the NumPy one
    check("combined", f)


@pytest.mark.parametrize("name", ["sum before @", "antisymmetric", "non-square sum"])
def test_a_printer_that_drops_the_parentheses_of_a_transpose_is_caught(monkeypatch, name):
    # mutation: (W + Q).T printed as W + Q.T, as string surgery on code would do
    def careless(self, node):
        return f"{self._print(node.value)}.T"

    monkeypatch.setattr(emit.NumPyPrinter, "_print_Transpose", careless)
    f = lambdified(name)
    with pytest.raises((AssertionError, ValueError)):
        check(name, f)
