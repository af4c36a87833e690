"""The IR step that writes the Numba kernels' element-wise statements as fused
loop nests (codegen/loops.py).

The loops are plain Python, so most checks need no compiling: the generated
module run with NUMBA_DISABLE_JIT=1 (every compiled function runs as Python)
must give the numbers of the NumPy backend, and small hand-made functions run
as Python before and after the step must agree, above all where two
statements read and write overlapping views of one array (where fusing them
would change the result). One test compiles a small cell to see, in Numba's
own typed IR, that no array expression is left.
"""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sympy import Symbol

import symrnn
from symrnn.codegen import ir
from symrnn.codegen.emit import NumbaPrinter
from symrnn.codegen.loops import Loops
from symrnn.codegen.passes.name import named

from ir_queries import generated

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STACKED = """
params: V[M,D] c[M] w_f1[D] U_f1[D,N] w_a1[D] U_a1[D,N] w_f2[D] U_f2[D,D] w_a2[D] U_a2[D,D]
input: x[N]
target: y[M]
state: h1[D] s1[D] h2[D] s2[D]
f1 = sigmoid(w_f1 * prev(h1) + U_f1 @ x)
a1 = tanh(w_a1 * prev(h1) + U_a1 @ x)
s1 = f1 * prev(s1) + (1 - f1) * a1
h1 = tanh(s1) * f1
f2 = sigmoid(w_f2 * prev(h2) + U_f2 @ h1)
a2 = tanh(w_a2 * prev(h2) + U_a2 @ h1)
s2 = f2 * prev(s2) + (1 - f2) * a2
h2 = tanh(s2) * f2
o = V @ h2 + c
loss = -y.T @ log_softmax(o)
"""

# a scalar per step (1x1, stored (R, 1)), a row parameter, MSE, relu and exp
MIXED = """
params: W[D,D] U[D,N] w[1,D] V[M,D] b[D]
input: x[N]
target: y[M]
state: h[D]
z = w @ prev(h)
h = relu(W @ prev(h) + U @ x + b) * exp(-z * z)
o = V @ h
loss = (o - y).T @ (o - y)
"""

# Run as a script in a fresh process with NUMBA_DISABLE_JIT=1: NumPy backend
# against the Numba module's kernels running as Python.
SCRIPT = r"""
import json, sys
import numpy as np
import symrnn
cells = {"elman": symrnn.ElmanRNN, "lstm": symrnn.LSTM, "gru": symrnn.GRU,
         "stacked": lambda: symrnn.parse_cell(TEXTS["stacked"]),
         "mixed": lambda: symrnn.parse_cell(TEXTS["mixed"])}
worst = {}
for name, make in cells.items():
    cell = make()
    d = symrnn.derive(cell)
    plain, loops = d.lambdify(), d.lambdify("numba")
    rng = np.random.default_rng(3)
    sizes = {"D": 3, "N": 2, "M": 4}
    params = {p.name: rng.normal(size=tuple(sizes.get(str(s), 1) for s in
                                            (p.shape[:1] if p.shape[1] == 1 else p.shape))) / 2
              for p in cell.params}
    T = 4
    errors = []
    for B, start in ((1, "one"), (3, "each"), (3, "shared")):
        x = rng.normal(size=(T, 2) if B == 1 else (T, 2, B))
        y = rng.normal(size=(T, 4) if B == 1 else (T, 4, B))
        if cell.targets_are_distributions:
            y = np.abs(y) / np.abs(y).sum(axis=1, keepdims=True)
        shape = {"one": (3,), "each": (3, B), "shared": (3,)}[start]
        starts = {s.name + "0": rng.normal(size=shape) for s in cell.states}
        loss, grads = plain(params, x, y, **starts)
        loss2, grads2 = loops(params, x, y, **starts)
        errors.append(abs(loss2 - loss) / max(1, abs(loss)))
        errors += [float(np.max(np.abs(grads2[k] - grads[k]))) for k in grads]
    worst[name] = max(errors)
print(json.dumps(worst))
"""


@pytest.mark.numba
def test_loop_kernels_give_the_numbers_of_the_numpy_backend():
    texts = {"stacked": STACKED, "mixed": MIXED}
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", SYMRNN_CACHE_DIR="",
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", f"TEXTS = {texts!r}\n" + SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    worst = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(worst) == {"elman", "lstm", "gru", "stacked", "mixed"}
    assert all(e < 1e-12 for e in worst.values()), worst


# -- hand-made functions: overlapping views ------------------------------------------

T_, B_, D_ = Symbol("_T", integer=True), Symbol("_B", integer=True), Symbol("D")
a, p, q, r, s, t = (ir.Name(n) for n in ("a", "p", "q", "r", "s", "_t"))
TN = ir.Name("_T")


def _flat(lo):  # the rows of steps lo .. lo + T - 1 of a (T + 2, B, D) array, stacked
    return ir.helper("flat", ir.Index(a, ir.Slice(ir.Const(lo), ir.BinOp("+", TN, ir.Const(lo)))))


def _run(body, fuse=True):
    """The function ``k(a)`` of ``body`` (after the loop step or as it is), run as
    Python on a copy of a fixed (T + 2, B, D) array; returns the array and the source."""
    head = (ir.assign(TN, ir.BinOp("-", ir.Index(ir.Attr(a, "shape"), ir.Const(0)), ir.Const(2))),)
    f = ir.Function(ir.Name("k"), (a,), head + tuple(body) + (ir.Return((a,)),))
    if fuse is not None:
        loops = Loops({a: (T_ + 2, B_, D_)}, {})
        loops.fuse = fuse
        f = loops.function(f)
    source = NumbaPrinter().doprint(named(f))
    namespace = {"_np": np, "_range": range, "_nb_flat": lambda x: x.reshape(-1, x.shape[-1])}
    exec(source, namespace)
    start = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3) / 7 + 1
    return namespace["k"](start.copy()), source


def _same_as_numpy(body):
    expected, _ = _run(body, fuse=None)
    got, source = _run(body)
    assert np.array_equal(got, expected), source
    return source


def test_shifted_views_of_one_array_are_not_fused():
    # p and q overlap at other entries: p += 1 must finish before q *= 2
    body = [ir.assign(p, _flat(1)), ir.assign(q, _flat(2)),
            ir.Update(p, "+", ir.Const(1.0)), ir.Update(q, "*", ir.Const(2.0))]
    source = _same_as_numpy(body)
    assert source.count("for _i") == 2


def test_a_statement_over_an_overlapping_view_reads_the_old_entries():
    # q += p with p one step behind q: NumPy adds the entries of p before any change
    body = [ir.assign(p, _flat(1)), ir.assign(q, _flat(2)), ir.Update(q, "+", p)]
    _same_as_numpy(body)
    body = [ir.assign(p, _flat(1)), ir.assign(q, _flat(2)), ir.Update(p, "+", q)]
    _same_as_numpy(body)


def test_rows_of_different_steps_are_fused_and_stay_right():
    # in a step loop: a[t] and a[t + 1] are different entries, so one nest serves both
    row = ir.Index(a, t)
    body = [ir.For(t, TN, ir.Const(0), -1, (
        ir.assign(r, row),
        ir.Update(r, "*", ir.Const(0.5)),
        ir.Update(row, "+", ir.mul(ir.Index(a, ir.BinOp("+", t, ir.Const(1))), r)),
        ir.Do(ir.numpy_call("tanh", row, out=row)),
    ))]
    source = _same_as_numpy(body)
    assert source.count("for _i") == 1


def test_a_broadcast_read_of_the_written_array_is_not_fused():
    # s is the first column of p, read for every entry while p changes: apart, as NumPy
    body = [ir.assign(p, _flat(1)),
            ir.assign(s, ir.Index(p, (ir.Slice(), ir.Slice(ir.Const(0), ir.Const(1))))),
            ir.Update(p, "*", ir.Const(3.0)),
            ir.Update(p, "+", s)]
    _same_as_numpy(body)


@pytest.mark.numba
def test_no_array_expression_is_left_in_the_compiled_kernel():
    """Numba's typed IR marks each array expression it compiles as ``arrayexpr``."""
    cell = symrnn.parse_cell(MIXED)
    f = symrnn.derive(cell).lambdify("numba")
    rng = np.random.default_rng(0)
    params = {p.name: rng.normal(size=tuple(3 if str(s) != "1" else 1 for s in
                                            (p.shape[:1] if p.shape[1] == 1 else p.shape))) / 2
              for p in cell.params}
    f(params, rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))
    namespace = f.__globals__  # the generated module's, which holds the dispatchers
    text = io.StringIO()
    for loop in namespace["gradients"].loops:
        loop.inspect_types(file=text)
    typed = text.getvalue()
    assert "_nb_loop" in typed
    compiled = [g for g in generated(cell, "numba", until=None).functions if g.compiled]
    assert any(isinstance(n, ir.For) and n.var.id == "_i" for n in ir.walk(tuple(compiled)))
    assert "arrayexpr" not in typed
