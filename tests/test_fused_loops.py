"""Random gated cells for the loop transformations of the NumPy code: one loop
per strongly connected component (stacked layers) and the fusion of same-form
gates into one row (codegen/fuse.py).

Each cell has layers of gates of one form, ``g_i = act(R_i + U_i @ in + b_i)``
with a recurrent term R_i of a drawn kind, some gates with another form, and
now and then a gate that reads another gate of its step (which must then not
run with it). Its generated loss and gradients are checked by the fuzz test's
``check`` (a NumPy forward pass written by the generator, central finite
differences), and a batch against the sum of its sequences one by one, with
B equal to the number of gates of a group (a wrong broadcast of a (B, n) row
against the (B, k, n) rows would go unnoticed with B = 1)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import symrnn
from symrnn.codegen import ir

from ir_queries import (DOT, calls, generated, group, kernel, outside_loops, statements,
                        step_loops, temps)
from test_fuzz_cells import SIZES, Builder, FuzzCell, _sigmoid, check

ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": np.tanh}


def _recurrent(b, kind, state, size):
    """The recurrent term of a gate: (text, closure)."""
    if kind == "diagonal":
        w = b.param(size, prefix="w")
        return f"{w} * prev({state})", lambda env: env[w] * env[f"prev {state}"]
    if kind == "matrix":
        W = b.param(size, size, prefix="W")
        return f"{W} @ prev({state})", lambda env: env[W] @ env[f"prev {state}"]
    w, W = b.param(size, prefix="w"), b.param(size, size, prefix="W")
    return (f"({W} @ prev({state}) + {w} * prev({state}))",
            lambda env: env[W] @ env[f"prev {state}"] + env[w] * env[f"prev {state}"])


@st.composite
def gated_cells(draw):
    b = Builder(draw)
    layers = draw(st.sampled_from([1, 2, 2]))
    size = "D"
    source, source_size = "x", "N"
    b.vectors["x"] = "N"
    states = []
    for k in range(1, layers + 1):
        h = f"h{k}"
        states.append((h, size))
        act = draw(st.sampled_from(sorted(ACTIVATIONS)))
        kind = draw(st.sampled_from(["diagonal", "matrix", "both"]))
        n_gates = draw(st.integers(2, 4))
        gates = []
        for i in range(n_gates):
            name = f"g{k}{i}"
            own = draw(st.sampled_from(["same"] * 4 + ["other activation", "other recurrence",
                                                        "reads a gate"]))
            a, r = act, kind
            if own == "other activation":
                a = "tanh" if act == "sigmoid" else "sigmoid"
            if own == "other recurrence":
                r = "diagonal" if kind != "diagonal" else "matrix"
            rtext, rf = _recurrent(b, r, h, size)
            U, bias = b.param(size, source_size, prefix="U"), b.param(size, prefix="b")
            text = f"{rtext} + {U} @ {source} + {bias}"
            extra = None
            if own == "reads a gate" and gates:
                extra = gates[draw(st.integers(0, len(gates) - 1))]
                text += f" + {extra}"
            f = (lambda env, rf=rf, U=U, bias=bias, src=source, extra=extra:
                 rf(env) + env[U] @ env[src] + env[bias] + (env[extra] if extra else 0))
            b.equation(name, f"{a}({text})", lambda env, f=f, a=a: ACTIVATIONS[a](f(env)), size)
            gates.append(name)
        # the state: the gates multiplied and added, with its previous value
        first, rest = gates[0], gates[1:]
        text = f"tanh({first} * prev({h}) + " + " + ".join(rest) + ")"
        b.equation(h, text, lambda env, first=first, rest=tuple(rest), h=h: np.tanh(
            env[first] * env[f"prev {h}"] + sum(env[g] for g in rest)), size)
        source, source_size = h, size
    V = b.param("M", size, prefix="V")
    b.equation("o", f"{V} @ {source}", lambda env, V=V, s=source: env[V] @ env[s], "M")
    declarations = [
        "params: " + " ".join(f"{p}[{r}{', ' + c if c else ''}]" for p, (r, c) in b.params.items()),
        "input: x[N]", "target: y[M]", "state: " + " ".join(n for n, _ in states)]
    declarations[-1] = "state: " + " ".join(f"{n}[{s}]" for n, s in states)
    text = "\n".join(declarations + b.lines + ["loss = 0.5 * (o - y).T @ (o - y)"])
    loss = [lambda env: 0.5 * (env["o"] - env["y"]) @ (env["o"] - env["y"])]
    return FuzzCell(text, b, states, [("x", "N")], [("y", "M")], loss)


def _batch_matches_sequences(cell, B):
    f = symrnn.derive(symrnn.parse_cell(cell.text)).lambdify()
    rng = np.random.default_rng(B)
    params, _, _ = cell.problem(rng, 4)
    T = 4
    x = rng.normal(size=(T, B, SIZES["N"]))
    y = rng.uniform(0.1, 1.0, size=(T, B, SIZES["M"]))
    starts = {f"{n}0": rng.normal(size=(B, SIZES[s])) for n, s in cell.states}
    loss, grads = f(params, x, y, layout="TBN", **starts)
    total, summed = 0.0, {k: 0.0 for k in grads}
    for i in range(B):
        l, g = f(params, x[:, i], y[:, i], **{k: v[i] for k, v in starts.items()})
        total += l
        for k in g:
            summed[k] = summed[k] + g[k] if k in params else g[k]
            if k not in params:
                assert np.allclose(grads[k][i], g[k], atol=1e-12), (k, i)
    assert abs(loss - total) <= 1e-10 * max(1.0, abs(total))
    for k in params:
        assert np.allclose(grads[k], summed[k], atol=1e-12, rtol=1e-10), k
    return f


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@pytest.mark.slow
@given(gated_cells())
def test_gated_cells(cell):
    assert check(cell, verify=False).endswith("numpy right")
    for B in (2, 3):
        _batch_matches_sequences(cell, B)


FUSED = {  # a cell: (text, how many groups of gates its NumPy code has)
    "diagonal": ("params: w1[D] w2[D] U1[D,N] U2[D,N] V[M,D]\ninput: x[N]\ntarget: y[M]\n"
                 "state: h[D]\ng1 = sigmoid(w1 * prev(h) + U1 @ x)\n"
                 "g2 = sigmoid(w2 * prev(h) + U2 @ x)\nh = tanh(g1 * prev(h) + g2)\n"
                 "o = V @ h\nloss = 0.5 * (o - y).T @ (o - y)\n", 1),
    "reads the other": ("params: w1[D] w2[D] U1[D,N] U2[D,N] V[M,D]\ninput: x[N]\n"
                        "target: y[M]\nstate: h[D]\ng1 = sigmoid(w1 * prev(h) + U1 @ x)\n"
                        "g2 = sigmoid(w2 * prev(h) + U2 @ x + g1)\nh = tanh(g1 * prev(h) + g2)\n"
                        "o = V @ h\nloss = 0.5 * (o - y).T @ (o - y)\n", 0),
}


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fusion_happens_where_it_may(name):
    text, groups = FUSED[name]
    f = kernel(generated(symrnn.parse_cell(text)))
    # the arrays of the groups of gates in the forward pass of the gradients (in the
    # loss alone, the gates live in one step, not in arrays)
    arrays = {s.target for s in statements(f) if isinstance(s, ir.Alloc)
              and group(s.target) is not None and not s.target.of.adjoint}
    assert len(arrays) == groups


def test_lstm_gates_fuse_and_stacked_layers_split():
    f = kernel(generated(symrnn.LSTM()))
    assert any(group(t) is not None and group(t).role == "gates" for t in temps(f, "rows"))
    text = ("params: w1[D] U1[D,N] w2[D] U2[D,D] V[M,D]\ninput: x[N]\ntarget: y[M]\n"
            "state: h1[D] h2[D]\nh1 = tanh(w1 * prev(h1) + U1 @ x)\n"
            "h2 = tanh(w2 * prev(h2) + U2 @ h1)\no = V @ h2\nloss = 0.5 * (o - y).T @ (o - y)\n")
    f = kernel(generated(symrnn.parse_cell(text)))
    assert len(step_loops(f)) == 4  # two layers, forward and backward
    # the second layer's input: all steps at once
    assert any(c.args == (ir.Name("h1"), ir.Transpose(ir.Name("U2")))
               for c in calls(outside_loops(f), DOT))
