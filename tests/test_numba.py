"""The Numba backend: the same generated statements, compiled. Checked against the
hand-written BPTTs of tests/reference*.py, against central differences of their
forward passes, and against the NumPy backend. Each cell compiles once per test
session (seconds each), so the cases are few but cover every kind of statement:
softmax with labels and batches (Elman), gates, shifted reads and shared
subexpressions (LSTM), a 1x1 value, a row parameter and MSE (two-timescale)."""
import functools
import importlib
import subprocess
import sys

import numpy as np
import pytest

import symrnn
from conftest import unchanged
from ir_queries import generated, step_loops
from symrnn.codegen import ir
from symrnn.codegen.emit import NumbaPrinter
from reference import elman_bptt, elman_bptt_batched, finite_differences, rel_err
from reference_gated import lstm_bptt, lstm_forward, over_batch, two_timescale_bptt
from test_custom_cell import TEXT as TWO_TIMESCALE, random_params as two_timescale_params

pytestmark = pytest.mark.numba

# Numba is an optional extra of symrnn, but `scripts/install.sh --test` installs it:
# these tests fail rather than skip without it


@functools.lru_cache(maxsize=None)
def compiled(name):
    cell = {"elman": symrnn.ElmanRNN, "lstm": symrnn.LSTM,
            "two-timescale": lambda: symrnn.parse_cell(TWO_TIMESCALE)}[name]()
    return symrnn.derive(cell).lambdify("numba")


def test_elman_single_batched_and_labels():
    f, numpy_f = compiled("elman"), symrnn.derive(symrnn.ElmanRNN()).lambdify()
    rng = np.random.default_rng(0)
    D, N, M, T = 4, 3, 5, 7
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    x, labels, h0 = rng.normal(size=(T, N)), rng.integers(0, M, T), rng.normal(size=D)
    loss, grads = unchanged(lambda: f(params, x, labels, h0=h0), *params.values(), x, labels, h0)
    ref_loss, ref = elman_bptt(params, x, np.eye(M)[labels], h0)
    assert isinstance(loss, float) and abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10
    numeric = finite_differences(lambda a: f.loss({k: a[k] for k in params}, x, labels, h0=a["h0"]),
                                 dict(params, h0=h0))
    assert max(rel_err(grads[k], numeric[k]) for k in numeric) < 1e-6
    same = numpy_f(params, x, labels, h0=h0)
    assert max(rel_err(grads[k], same[1][k]) for k in grads) < 1e-12

    B = 3
    xb = rng.normal(size=(T, N, B))
    yb = np.moveaxis(rng.dirichlet(np.ones(M), size=(T, B)), -1, 1)
    h0b = rng.normal(size=(D, B))
    loss, grads = unchanged(lambda: f(params, xb, yb, h0=h0b), xb, yb, h0b)
    ref_loss, ref = elman_bptt_batched(params, xb, yb, h0b)
    assert abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert grads["h0"].shape == (D, B) and max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10


def test_elman_kernels_are_compiled():
    f = compiled("elman")
    rng = np.random.default_rng(1)
    f({"W": np.eye(2), "U": np.ones((2, 2)), "V": np.ones((3, 2))}, rng.normal(size=(4, 2)),
      [0, 1, 2, 0])
    kernel = f.__globals__["gradients"]
    # a small kernel is compiled whole: Numba's dispatchers, with compiled signatures
    assert [k.py_func.__name__ for k in kernel.loops] == ["forward", "gradients"]
    assert kernel.compiled is kernel.loops[1] and kernel.compiled.signatures
    module = generated(symrnn.ElmanRNN(), "numba", until=None)
    assert all(g.compiled for g in module.functions)
    # the module carries no kernel it does not call: no NumPy kernel, no lists of rows
    names = {n.id for n in ir.walk(module.body) if isinstance(n, ir.Name)}
    assert "_list" not in "".join(NumbaPrinter().doprint(g) for g in module.functions)
    assert {"forward", "gradients", "_compile"} <= names


def test_a_larger_kernel_runs_its_compiled_step_loops():
    # beyond WHOLE_KERNELS_UP_TO statements, the kernel is Python calling its
    # step loops, each compiled on its own (outline.py)
    f = compiled("lstm")
    kernel = f.__globals__["gradients"]
    assert [k.py_func.__name__ for k in kernel.loops][:1] == ["_nb_loop0"]
    module = generated(symrnn.LSTM(), "numba", until="outline")
    python = module.function("gradients")
    assert not python.compiled and step_loops(python) == []
    loops = {g.name for g in module.functions if g.compiled}
    assert loops and {c.func for c in ir.walk(python) if isinstance(c, ir.Call)} & loops
    assert not hasattr(kernel.compiled, "signatures")  # plain Python


def test_a_batch_on_the_compiled_kernel():
    # the Numba module has its compiled kernels only (no NumPy kernel to fall back on)
    f = compiled("elman")
    rng = np.random.default_rng(5)
    D, N, M, T, B = 3, 2, 4, 5, 6
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    x, y = rng.normal(size=(T, N, B)), np.moveaxis(rng.dirichlet(np.ones(M), (T, B)), -1, 1)
    h0 = rng.normal(size=(D, B))
    loss, grads = f(params, x, y, h0=h0)
    ref_loss, ref = elman_bptt_batched(params, x, y, h0)
    assert abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10
    assert f.loss(params, x, y, h0=h0) == pytest.approx(ref_loss, rel=1e-12)


def test_lstm_against_its_reference_and_finite_differences():
    f = compiled("lstm")
    rng = np.random.default_rng(2)
    D, N, M, T = 3, 2, 4, 5
    shapes = {"W": (D, D), "U": (D, N), "b": (D,), "V": (M, D)}
    keys = ["W_f", "U_f", "b_f", "W_g", "U_g", "b_g", "W_q", "U_q", "b_q", "W", "U", "b", "V"]
    params = {k: rng.normal(size=shapes[k[0]]) / 2 for k in keys}
    x, y = rng.normal(size=(T, N)), rng.dirichlet(np.ones(M), T)
    starts = {"h0": rng.normal(size=D), "s0": rng.normal(size=D)}
    loss, grads = unchanged(lambda: f(params, x, y, **starts), *params.values(), x, y,
                            *starts.values())
    ref_loss, ref = lstm_bptt(params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10
    numeric = finite_differences(
        lambda a: lstm_forward({k: a[k] for k in keys}, x, y, a["h0"], a["s0"])[0],
        dict(params, **starts))
    assert max(rel_err(grads[k], numeric[k]) for k in numeric) < 1e-6

    xb, yb = rng.normal(size=(T, N, 2)), np.moveaxis(rng.dirichlet(np.ones(M), (T, 2)), -1, 1)
    loss, grads = f(params, xb, yb, h0=starts["h0"])
    ref_loss, ref = over_batch(lstm_bptt, params, xb, yb, h0=starts["h0"], s0=None)
    assert abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10


def test_cell_no_textbook_covers():
    f = compiled("two-timescale")
    rng = np.random.default_rng(3)
    D, N, M, T = 3, 2, 2, 6
    params = two_timescale_params(D, N, M, rng)
    x, y = rng.normal(size=(T, N)), rng.normal(size=(T, M))
    starts = {"h0": rng.normal(size=D), "m0": rng.normal(size=D)}
    loss, grads = unchanged(lambda: f(params, x, y, **starts), *params.values(), x, y,
                            *starts.values())
    ref_loss, ref = two_timescale_bptt(params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 * max(1, abs(ref_loss))
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10


def test_backend_argument():
    d = symrnn.derive(symrnn.ElmanRNN())
    with pytest.raises(ValueError, match=r"^backend: expected one of 'numpy', 'numba', "
                                         r"'readable', got 'jax'"):
        d.lambdify("jax")


def test_missing_numba_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # as if not installed
    with pytest.raises(ImportError, match=r"symrnn\[numba\]"):
        symrnn.derive(symrnn.ElmanRNN()).lambdify("numba")
    from symrnn import cli
    assert cli.main(["codegen", "--backend", "numba", "-o", "-"]) == 1


def test_missing_scipy_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # Numba's np.dot would fail to compile
    with pytest.raises(ImportError, match=r"needs SciPy .*symrnn\[numba\]"):
        symrnn.derive(symrnn.ElmanRNN()).lambdify("numba")


def test_standalone_module_with_the_numba_backend(tmp_path):
    out = tmp_path / "elman_numba.py"
    run = subprocess.run([sys.executable, "-m", "symrnn", "codegen", "--backend", "numba",
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("elman_numba")
    finally:
        sys.path.remove(str(tmp_path))
    source = out.read_text()
    assert "import symrnn" not in source and "import sympy" not in source
    assert source == compiled("elman").source  # what lambdify("numba") runs
    assert callable(module.loss_and_gradients) and callable(module.loss)


# what the code generator once got wrong or could not run (silently wrong
# numbers, or errors), all in one cell so that it compiles once: a value of the
# parameters alone (g0, a0, P @ b), a negated stored value (-z * z), a shared
# value (abs(e)) read after a product, a square root of the previous state
# (read at t+1 in the backward pass), (P - P.T) and (P + Q) products, a row
# parameter times a vector, v ** 2, and a state no step reads (s)
FORMER_DEFECTS = """
params: W[D,D] U[D,N] V[M,D] b[D] P[D,D] Q[D,D] w[1,D]
input: x[N]
target: y[M]
state: h[D] s[D]
a0 = b
g0 = sigmoid(b)
r = sqrt(1 + prev(h) * prev(h))
z = W @ prev(h) + U @ x + P @ b
e = (P - P.T) @ r + (P + Q) @ a0
h = g0 * tanh(exp(-z * z)) + (1 - g0) * tanh(abs(e) * exp(-abs(e)))
s = tanh((w @ h) * h + h ** 2)
o = V @ (h + s)
loss = 0.5 * (o - y).T @ (o - y)
"""


def former_defects_forward(p, x, y, h0, s0):
    """The cell above, written here in NumPy."""
    h, loss = h0, 0.0
    g0 = 1 / (1 + np.exp(-p["b"]))
    for t in range(len(x)):
        r = np.sqrt(1 + h * h)
        z = p["W"] @ h + p["U"] @ x[t] + p["P"] @ p["b"]
        e = (p["P"] - p["P"].T) @ r + (p["P"] + p["Q"]) @ p["b"]
        h = g0 * np.tanh(np.exp(-z * z)) + (1 - g0) * np.tanh(np.abs(e) * np.exp(-np.abs(e)))
        s = np.tanh((p["w"] @ h) * h + h ** 2)
        o = p["V"] @ (h + s)
        loss += 0.5 * (o - y[t]) @ (o - y[t])
    return loss


def test_former_code_generator_defects_numba_and_numpy():
    d = symrnn.derive(symrnn.parse_cell(FORMER_DEFECTS))
    rng = np.random.default_rng(5)
    D, N, M, T = 3, 2, 4, 5
    shapes = {"W": (D, D), "U": (D, N), "V": (M, D), "b": (D,), "P": (D, D), "Q": (D, D),
              "w": (1, D)}
    params = {k: rng.normal(size=s) / 2 for k, s in shapes.items()}
    x, y = rng.normal(size=(T, N)), rng.normal(size=(T, M))
    starts = {"h0": rng.normal(size=D), "s0": rng.normal(size=D)}
    want = former_defects_forward(params, x, y, **starts)
    numeric = finite_differences(
        lambda a: former_defects_forward({k: a[k] for k in params}, x, y, a["h0"], a["s0"]),
        dict(params, **starts))
    for backend in ("numpy", "numba"):
        loss, grads = d.lambdify(backend)(params, x, y, **starts)
        assert abs(loss - want) < 1e-12 * max(1, abs(want)), backend
        assert max(rel_err(grads[k], numeric[k]) for k in numeric) < 1e-6, backend


def test_wide_batched_steps_run_the_compiled_loops(monkeypatch):
    # 2 x 40 state entries for each of 32 sequences: beyond the 1024 at which the
    # NumPy kernel used to take over; the compiled step loops run and agree with the
    # NumPy backend, the reference BPTT and a central difference along a direction
    f, numpy_f = compiled("lstm"), symrnn.derive(symrnn.LSTM()).lambdify()
    calls = []
    for name in f.__globals__["LOOPS"]:
        loop = f.__globals__[name]
        monkeypatch.setitem(f.__globals__, name,
                            lambda *a, _loop=loop: calls.append(1) or _loop(*a))
    rng = np.random.default_rng(13)
    D, N, M, T, B = 40, 3, 5, 4, 32
    shapes = {"W": (D, D), "U": (D, N), "b": (D,), "V": (M, D)}
    keys = ["W_f", "U_f", "b_f", "W_g", "U_g", "b_g", "W_q", "U_q", "b_q", "W", "U", "b", "V"]
    params = {k: rng.normal(size=shapes[k[0]]) / np.sqrt(shapes[k[0]][-1]) for k in keys}
    x, y = rng.normal(size=(T, N, B)), np.moveaxis(rng.dirichlet(np.ones(M), (T, B)), -1, 1)
    h0 = rng.normal(size=(D, B))
    loss, grads = f(params, x, y, h0=h0)
    assert calls
    same_loss, same = numpy_f(params, x, y, h0=h0)
    assert abs(loss - same_loss) < 1e-12 * abs(same_loss)
    assert max(rel_err(grads[k], same[k]) for k in same) < 1e-10
    ref_loss, ref = over_batch(lstm_bptt, params, x, y, h0=h0, s0=None)
    assert abs(loss - ref_loss) < 1e-12 * abs(ref_loss)
    assert max(rel_err(grads[k], ref[k]) for k in ref) < 1e-10
    direction = {k: rng.normal(size=v.shape) for k, v in params.items()}
    eps = 1e-5
    moved = [f.loss({k: params[k] + s * eps * direction[k] for k in keys}, x, y, h0=h0)
             for s in (1, -1)]
    numeric = (moved[0] - moved[1]) / (2 * eps)
    assert numeric == pytest.approx(sum(np.vdot(grads[k], direction[k]) for k in keys), rel=1e-7)
