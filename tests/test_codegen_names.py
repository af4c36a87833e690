"""What reaches the generated code from the user: names, sizes, several inputs.

Every name the generated code makes for itself starts with ``_`` (a cell's names
never do), sizes are read from the arguments' shapes, and the cell's name is data
in a string literal; so no name or size can collide with the code or run in it."""
import importlib.util

import numpy as np
import pytest
from sympy import Symbol

import symrnn
from reference import elman_bptt, finite_differences, rel_err
from symrnn.codegen.lambdify import module_source

ELMAN = """params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
z = W @ prev(h) + U @ x
h = tanh(z)
o = V @ h
loss = -y.T @ log_softmax(o)
"""


def elman_text(D="D", N="N", M="M", z="z", o="o"):
    return (ELMAN.replace("[D,D]", f"[{D},{D}]").replace("[D,N]", f"[{D},{N}]")
            .replace("[M,D]", f"[{M},{D}]").replace("x[N]", f"x[{N}]").replace("y[M]", f"y[{M}]")
            .replace("h[D]", f"h[{D}]").replace("z =", f"{z} =").replace("tanh(z)", f"tanh({z})")
            .replace("o =", f"{o} =").replace("log_softmax(o)", f"log_softmax({o})"))


def elman_problem(seed=0, D=3, N=2, M=4, T=5):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    return params, rng.normal(size=(T, N)), np.eye(M)[rng.integers(0, M, T)], rng.normal(size=D)


def assert_elman(f, seed=0):
    params, x, y, h0 = elman_problem(seed)
    loss, grads = f(params, x, y, h0=h0)
    ref_loss, ref = elman_bptt(params, x, y, h0)
    assert abs(loss - ref_loss) <= 1e-12 * max(1.0, abs(ref_loss))
    assert all(rel_err(grads[k], ref[k]) < 1e-10 for k in ref)


@pytest.mark.parametrize("name", [
    'x"""\nimport os; os.system("touch F")\n"""',
    "x'''\nopen('F', 'w')\n'''",
    "x\\\nopen('F', 'w')  # \u2028open('F', 'w')\r\nopen('F', 'w')",
])
def test_a_cell_name_never_runs(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    d = symrnn.derive(symrnn.parse_cell(ELMAN, name=name))
    assert_elman(d.lambdify())
    path = tmp_path / "generated_elman.py"  # as `symrnn codegen` writes it, then imported
    path.write_text(module_source(d))
    spec = importlib.util.spec_from_file_location("generated_elman", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert repr(name) in module.__doc__
    assert_elman(module.loss_and_gradients)
    assert not (tmp_path / "F").exists()


def test_a_size_named_like_code_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = Symbol("numpy.__dict__[__import__('os').system('touch G')]", integer=True,
                  positive=True)
    try:
        d = symrnn.derive(symrnn.parse_cell(ELMAN, sizes={"D": evil}))
        f = d.lambdify()
    except ValueError:
        pass  # refused is fine; running is not
    else:
        assert_elman(f)
        with pytest.raises(ValueError, match=r"^params\['W'\]: shape \(3, 4\)"):
            f({"W": np.zeros((3, 4)), "U": np.zeros((3, 2)), "V": np.zeros((4, 3))},
              np.zeros((5, 2)), [0] * 5)
    assert not (tmp_path / "G").exists()


@pytest.mark.parametrize("z, o, sizes", [
    # o is stored under its own name, so that it would shadow a name the code calls
    ("numpy", "range", ("h0", "B", "list")),       # the sizes of issue 11: h0, and B the batch
    ("T_", "numpy", ("range", "math", "B_")),
    ("d_z", "list", ("B_", "math", "N")),
    ("grad_W", "h_all", ("D", "N", "M")),
])
def test_names_and_sizes_that_the_generated_code_once_used(z, o, sizes):
    f = symrnn.derive(symrnn.parse_cell(elman_text(*sizes, z=z, o=o))).lambdify()
    assert_elman(f)
    # batched, with a size named B beside the batch
    params, _, _, _ = elman_problem()
    rng = np.random.default_rng(1)
    x, labels, h0 = rng.normal(size=(5, 2, 3)), rng.integers(0, 4, (5, 3)), rng.normal(size=(3, 3))
    loss, grads = f(params, x, labels, h0=h0)
    total = 0.0
    for i in range(3):
        ref_loss, ref = elman_bptt(params, x[:, :, i], np.eye(4)[labels[:, i]], h0[:, i])
        total += ref_loss
        assert rel_err(grads["h0"][:, i], ref["h0"]) < 1e-10
    assert loss == pytest.approx(total, rel=1e-12)


def test_a_name_starting_with_underscore_is_refused():
    with pytest.raises(ValueError, match="_dot"):
        symrnn.parse_cell(elman_text(z="_dot"))


def test_unused_parameters_get_zero_arrays_and_a_state_without_prev_runs():
    text = ELMAN.replace("z = W @ prev(h) + U @ x", "z = U @ x")
    f = symrnn.derive(symrnn.parse_cell(text)).lambdify()
    params, x, y, h0 = elman_problem()
    loss, grads = f(params, x, y, h0=h0)
    ref_loss, ref = elman_bptt(dict(params, W=np.zeros((3, 3))), x, y, np.zeros(3))
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert isinstance(grads["W"], np.ndarray) and grads["W"].shape == (3, 3)
    assert not grads["W"].any() and not grads["h0"].any() and grads["h0"].shape == (3,)
    assert rel_err(grads["U"], ref["U"]) < 1e-10 and rel_err(grads["V"], ref["V"]) < 1e-10


def test_a_loss_that_no_parameter_changes():
    text = ELMAN.replace("loss = -y.T @ log_softmax(o)", "loss = 0.5 * y.T @ y")
    f = symrnn.derive(symrnn.parse_cell(text)).lambdify()
    params, x, y, h0 = elman_problem()
    loss, grads = f(params, x, y, h0=h0)
    assert loss == pytest.approx(0.5 * (y * y).sum(), rel=1e-12)
    assert all(isinstance(g, np.ndarray) and not g.any() for g in grads.values())
    assert all(grads[k].shape == params[k].shape for k in params) and grads["h0"].shape == (3,)


TWO_INPUTS = """params: W[D,D] U[D,N] C[D,K] V[M,D]
input: x[N] c[K]
target: y[M] r[D]
state: h[D]
h = tanh(W @ prev(h) + U @ x + C @ c)
o = V @ h
loss = -y.T @ log_softmax(o) + 0.5 * (h - r).T @ (h - r)
"""


def two_inputs_loss(a, x, c, y, r):
    h, loss = a["h0"], 0.0
    for t in range(len(x)):
        h = np.tanh(a["W"] @ h + a["U"] @ x[t] + a["C"] @ c[t])
        o = a["V"] @ h
        s = o - o.max()
        loss += -y[t] @ (s - np.log(np.exp(s).sum())) + 0.5 * (h - r[t]) @ (h - r[t])
    return loss


def test_several_inputs_and_targets():
    f = symrnn.derive(symrnn.parse_cell(TWO_INPUTS)).lambdify()
    rng = np.random.default_rng(4)
    D, N, K, M, T = 3, 2, 2, 4, 5
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "C": rng.normal(size=(D, K)), "V": rng.normal(size=(M, D))}
    x, c = rng.normal(size=(T, N)), rng.normal(size=(T, K))
    labels, r, h0 = rng.integers(0, M, T), rng.normal(size=(T, D)), rng.normal(size=D)
    loss, grads = f(params, {"x": x, "c": c}, {"y": labels, "r": r}, h0=h0)
    arrays = dict(params, h0=h0)
    expected = two_inputs_loss(arrays, x, c, np.eye(M)[labels], r)
    assert abs(loss - expected) <= 1e-12 * abs(expected)
    numeric = finite_differences(lambda a: two_inputs_loss(a, x, c, np.eye(M)[labels], r), arrays)
    assert all(rel_err(grads[k], numeric[k]) < 1e-6 for k in numeric)

    # a batch: the sum of its sequences
    xb, cb, rb = rng.normal(size=(T, N, 2)), rng.normal(size=(T, K, 2)), rng.normal(size=(T, D, 2))
    yb = rng.integers(0, M, (T, 2))
    loss, grads = f(params, {"x": xb, "c": cb}, {"y": yb, "r": rb}, h0=h0)
    parts = [f(params, {"x": xb[..., i], "c": cb[..., i]}, {"y": yb[:, i], "r": rb[..., i]},
               h0=h0) for i in range(2)]
    assert loss == pytest.approx(parts[0][0] + parts[1][0], rel=1e-12)
    assert rel_err(grads["C"], parts[0][1]["C"] + parts[1][1]["C"]) < 1e-12

    with pytest.raises(ValueError, match=r"^x: missing 'c'; expected a dict with the keys "
                                         r"'x', 'c'"):
        f(params, {"x": x}, {"y": labels, "r": r})
    with pytest.raises(ValueError, match=r"^x\['c'\]: shape \(5, 3\) does not fit \(T, K\)"):
        f(params, {"x": x, "c": np.zeros((T, 3))}, {"y": labels, "r": r})
    with pytest.raises(ValueError, match=r"^y\['r'\]: shape \(4, 3\) does not fit \(T, D\)"):
        f(params, {"x": x, "c": c}, {"y": labels, "r": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"^y: expected a dict"):
        f(params, {"x": x, "c": c}, labels)


def test_labels_beyond_int64_are_refused():
    f = symrnn.derive(symrnn.parse_cell(ELMAN)).lambdify()
    params, x, _, h0 = elman_problem()
    labels = np.array([0, 1, 2, 3, 2**63 + 3], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"^y: label 9223372036854775811 at index \(4,\)"):
        f(params, x, labels, h0=h0)


def test_names_that_python_reads_as_one_identifier_are_refused():
    from sympy import MatrixSymbol, symbols
    D, N = symbols("D N", integer=True, positive=True)
    W, U, h, x, y = (MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("H", D, 1),
                     MatrixSymbol("x", N, 1), MatrixSymbol("y", D, 1))
    fraktur = MatrixSymbol("\u210c", D, 1)  # ℌ, which Python reads as H
    try:
        cell = symrnn.Cell("c", params=[W, U], inputs=[x], targets=[y], states=[h],
                           equations=[(fraktur, W * symrnn.prev(h) + U * x),
                                      (h, symrnn.tanh(fraktur))],
                           loss=(h - y).T * (h - y))
    except ValueError:
        return  # refused by Cell: as good
    with pytest.raises(ValueError, match="same identifier"):
        symrnn.derive(cell).lambdify()
