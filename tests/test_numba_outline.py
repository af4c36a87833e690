"""outline.py: a large Numba kernel is Python calling its step loops, each compiled on
its own, and loops of the same form (the layers of a stacked cell) are one compiled
function. Checked against the NumPy backend (a separate printer and no outlining)
and, for the numbers, against central finite differences of the NumPy loss."""

import numpy as np
import pytest

pytest.importorskip("numba")

import symrnn  # noqa: E402
from symrnn.codegen import ir  # noqa: E402
from symrnn.codegen.passes import loopnests  # noqa: E402
from ir_queries import generated  # noqa: E402

pytestmark = pytest.mark.numba


def stacked(layers):
    """A stacked cell with diagonal recurrent weights and layers of different widths
    (so that equal forms must not assume equal sizes)."""
    widths = [f"D{k}" for k in range(1, layers + 1)]
    lines = ["input: x[N]", "target: y[M]",
             "state: " + " ".join(f"h{k}[{w}] s{k}[{w}]" for k, w in enumerate(widths, 1)),
             f"params: V[M,{widths[-1]}]"]
    for k, w in enumerate(widths, 1):
        below = "N" if k == 1 else widths[k - 2]
        lines.append("params: " + " ".join(f"w_{g}{k}[{w}] U_{g}{k}[{w},{below}]" for g in "fa"))
        source = "x" if k == 1 else f"h{k - 1}"
        lines += [f"f{k} = sigmoid(w_f{k} * prev(h{k}) + U_f{k} @ {source})",
                  f"a{k} = tanh(w_a{k} * prev(h{k}) + U_a{k} @ {source})",
                  f"s{k} = f{k} * prev(s{k}) + (1 - f{k}) * a{k}",
                  f"h{k} = tanh(s{k})"]
    lines += [f"o = V @ h{layers}", "loss = -y.T @ log_softmax(o)"]
    return symrnn.parse_cell("\n".join(lines) + "\n")


def problem(cell, sizes, T, B, seed=0):
    rng = np.random.default_rng(seed)
    params = {p.name: rng.normal(size=tuple(sizes[str(d)] for d in
                                            (p.shape[:1] if p.shape[1] == 1 else p.shape))) / 2
              for p in cell.params}
    x = rng.normal(size=(T, sizes["N"]) if B == 1 else (T, sizes["N"], B))
    y = rng.integers(0, sizes["M"], size=(T,) if B == 1 else (T, B))
    return params, x, y


@pytest.fixture(scope="module")
def modules():
    d = symrnn.derive(stacked(3))
    return d, d.lambdify("numba"), d.lambdify()


def test_same_form_loops_are_one_compiled_function():
    module = generated(stacked(3), "numba", until="outline")
    loops = {g.name for g in module.functions if g.compiled}
    calls = [c.func for c in ir.walk(module.function("gradients")) if isinstance(c, ir.Call)
             and c.func in loops]
    assert len(calls) == 6  # one loop per layer, forward and backward
    assert len(set(calls)) < len(calls)  # layers of the same form share a function


@pytest.mark.parametrize("B", [1, 3])
def test_outlined_kernel_matches_numpy_and_finite_differences(modules, B):
    d, f, numpy_f = modules
    sizes = {"N": 3, "M": 4, "D1": 2, "D2": 3, "D3": 2}
    params, x, y = problem(d.cell, sizes, 5, B)
    loss, grads = f(params, x, y)
    ref_loss, ref = numpy_f(params, x, y)
    assert abs(loss - ref_loss) < 1e-12 * max(1.0, abs(ref_loss))
    for k in ref:
        assert np.allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12), k
    for name in ("w_f2", "U_a3", "V"):  # a few entries by central differences
        p = params[name]
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            old, step = p[idx], 1e-6
            p[idx] = old + step
            up = numpy_f.loss(params, x, y)
            p[idx] = old - step
            down = numpy_f.loss(params, x, y)
            p[idx] = old
            assert abs((up - down) / (2 * step) - grads[name][idx]) < 1e-6


def test_a_small_kernel_is_compiled_whole():
    f = symrnn.derive(symrnn.ElmanRNN()).lambdify("numba")
    assert f.__globals__["LOOPS"] == ["forward", "gradients"]
    assert loopnests.WHOLE_KERNELS_UP_TO >= 109  # the Elman network's statements


# cells the Numba fuzz test found: a step loop left with nothing to do once its
# unused views were removed (outlined, and whole); rows read by a loop bound before
# a constant of it
FOUND = ["""
params: b0[D] P1[E, D] w2[1, D] b3[D] b4[E] V5[M, D]
input: x[N]
target: y[M]
state: h[D] s[E]
a0 = (prev(h) * prev(h))
h = tanh((b0 + a0))
a1 = ((prev(s) - prev(s)) * (P1 @ h))
s = sigmoid((((w2 @ (b3 * prev(h))) * (b4 - prev(s))) + a1))
o0 = V5 @ h
loss = y.T @ o0
""", """
params: b0[D] b1[D] w2[1, D] b3[D] V4[M, D]
input: x[N]
target: y[M]
state: h[D] s[E]
a0 = (prev(h) * (0.5 * b0))
h = tanh((((b1 * prev(h)) + ((w2 @ b3) * prev(h))) + a0))
s = sigmoid(prev(s))
o0 = V4 @ h
loss = 0.5 * (o0 - y).T @ (o0 - y)
""", """
params: V0[M, D]
input: x[N]
target: y[M]
state: h[D]
g0 = sigmoid((prev(h) - prev(h)))
h = g0 * prev(h) + (1 - g0) * tanh(g0)
o0 = V0 @ h
loss = -y.T @ log_softmax(o0)
"""]


@pytest.mark.parametrize("text, whole_up_to", [(t, 0) for t in FOUND + ["lstm", "gru"]]
                         + [(t, 10**6) for t in FOUND])  # (the LSTM compiled whole: 10 s)
def test_kernels_outlined_or_whole_match_numpy(monkeypatch, text, whole_up_to):
    monkeypatch.setattr(loopnests, "WHOLE_KERNELS_UP_TO", whole_up_to)
    cell = {"lstm": symrnn.LSTM, "gru": symrnn.GRU}.get(text, lambda: symrnn.parse_cell(text))()
    d = symrnn.derive(cell)
    f, numpy_f = d.lambdify("numba"), d.lambdify()
    assert (f.__globals__["LOOPS"] == ["forward", "gradients"]) == (whole_up_to != 0)
    rng = np.random.default_rng(4)
    sizes = {"D": 3, "E": 2, "N": 2, "M": 3}
    params = {p.name: rng.normal(size=tuple(sizes.get(str(s), 1) for s in
                                            (p.shape[:1] if p.shape[1] == 1 else p.shape))) / 2
              for p in cell.params}
    x = rng.normal(size=(4, sizes["N"], 2))
    labels = cell.targets_are_distributions
    y = rng.integers(0, sizes["M"], size=(4, 2)) if labels else rng.normal(size=(4, sizes["M"], 2))
    starts = {s.name + "0": rng.normal(size=(sizes[str(s.shape[0])], 2)) for s in cell.states}
    loss, grads = f(params, x, y, **starts)
    ref_loss, ref = numpy_f(params, x, y, **starts)
    assert abs(loss - ref_loss) < 1e-12 * max(1.0, abs(ref_loss))
    for k in ref:
        assert np.allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12), k
