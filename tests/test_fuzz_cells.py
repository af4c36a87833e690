"""Random cells from the grammar, each written twice by the same generator: as
text for ``symrnn.parse_cell`` and as a NumPy forward pass built here from
closures (no symrnn code). Operations of the registry, gates, several states of
different sizes, several inputs and targets, parameters added, subtracted,
transposed and multiplied before ``@``, named intermediate values, a state
that does not read its previous value.

Each cell is refused with a ValueError, or it derives, ``verify(2)`` passes,
and its generated NumPy loss matches the NumPy forward pass and its gradients
match central finite differences of it (along random directions) to 1e-6.
``CODEGEN_LIMITS`` below says which cells the generated-code part skips on
this branch, and why; ``python tests/test_fuzz_cells.py`` prints the tally."""
import collections
import itertools
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import symrnn

SIZES = {"D": 3, "E": 2, "N": 2, "K": 3, "M": 2, "J": 3}
STATES = [("h", "D"), ("s", "E")]
INPUTS = [("x", "N"), ("c", "K")]
TARGETS = [("y", "M"), ("m", "J")]


NUMBA_EXAMPLES = int(os.environ.get("SYMRNN_NUMBA_FUZZ", "3"))


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _log_softmax(v):
    return v - v.max() - np.log(np.exp(v - v.max()).sum())


# the text of an operation, and its meaning in NumPy (written here, not taken from symrnn)
UNARY = {
    "tanh": ("tanh({})", np.tanh),
    "sigmoid": ("sigmoid({})", _sigmoid),
    "relu": ("relu({})", lambda v: np.maximum(v, 0)),
    "softplus": ("softplus({})", lambda v: np.logaddexp(v, 0)),
    "exp": ("exp(tanh({}))", lambda v: np.exp(np.tanh(v))),
    "log": ("log(1 + {0} * {0})", lambda v: np.log(1 + v * v)),
    "sqrt": ("sqrt(1 + {0} * {0})", lambda v: np.sqrt(1 + v * v)),
    "abs": ("abs({})", np.abs),
    "division": ("{0} / (1 + {0} * {0})", lambda v: v / (1 + v * v)),
    "square": ("{} ** 2", np.square),
    "half": ("{} / 2", lambda v: v / 2),
    "scaled": ("0.5 * {}", lambda v: 0.5 * v),
    "negated": ("-{}", np.negative),
    "one minus": ("1 - {}", lambda v: 1 - v),
}


class Builder:
    """The cell being drawn: its declarations, its equations as text, and the
    same equations as NumPy closures over an environment of values."""

    def __init__(self, draw):
        self.draw = draw
        self.params = {}       # name -> (rows, cols) size names; cols None for a column
        self.lines = []        # equations, as text
        self.steps = []        # (name, closure(env) -> value), in the same order
        self.vectors = {}      # name -> size of the values an expression may read
        self.features = set()  # what the cell uses, for the tally

    def param(self, rows, cols=None, prefix="P"):
        name = f"{prefix}{len(self.params)}"
        self.params[name] = (rows, cols)
        return name

    # -- expressions: (text, closure) --------------------------------------------
    def matrix(self, rows, cols, depth):
        kind = self.draw(st.sampled_from(["plain"] * 3 + ["sum", "difference", "product",
                                                          "antisymmetric", "transposed"]))
        if kind == "antisymmetric" and rows != cols or kind == "product" and depth <= 0:
            kind = "plain"
        if kind == "plain":
            p = self.param(rows, cols)
            return p, lambda env: env[p]
        self.features.add(f"matrix {kind}")
        if kind in ("sum", "difference"):
            p, q = self.param(rows, cols), self.param(rows, cols)
            sign = 1 if kind == "sum" else -1
            return (f"({p} {'+' if sign > 0 else '-'} {q})",
                    lambda env: env[p] + sign * env[q])
        if kind == "antisymmetric":
            p = self.param(rows, cols)
            return f"({p} - {p}.T)", lambda env: env[p] - env[p].T
        if kind == "transposed":
            p = self.param(cols, rows)
            return f"{p}.T", lambda env: env[p].T
        inner = self.draw(st.sampled_from(sorted(SIZES)))
        (a, fa), (b, fb) = self.matrix(rows, inner, depth - 1), self.matrix(inner, cols, depth - 1)
        return f"({a} @ {b})", lambda env: fa(env) @ fb(env)

    def vector(self, size, depth):
        leaves = [n for n, s in self.vectors.items() if s == size]
        choices = ["leaf"] * 2 + ["bias"] if leaves else ["bias"]
        if depth > 0:
            choices += ["matmul"] * 3 + ["unary"] * 3 + ["add", "subtract", "hadamard", "scaled by 1x1"]
        kind = self.draw(st.sampled_from(choices))
        if kind == "leaf":
            name = self.draw(st.sampled_from(leaves))
            text = f"prev({name[5:]})" if name.startswith("prev ") else name
            return text, lambda env: env[name]
        if kind == "bias":
            b = self.param(size, prefix="b")
            return b, lambda env: env[b]
        if kind == "matmul":
            inner = self.draw(st.sampled_from(sorted({s for s in self.vectors.values()})))
            (m, fm), (v, fv) = self.matrix(size, inner, 1), self.vector(inner, depth - 1)
            return f"({m} @ {v})", lambda env: fm(env) @ fv(env)
        if kind == "unary":
            op = self.draw(st.sampled_from(sorted(UNARY)))
            self.features.add(op)
            pattern, f = UNARY[op]
            v, fv = self.vector(size, depth - 1)
            return "(" + pattern.format(v) + ")", lambda env: f(fv(env))
        if kind == "scaled by 1x1":   # a row parameter times a vector: a 1x1 value
            self.features.add("1x1 scale")
            inner = self.draw(st.sampled_from(sorted({s for s in self.vectors.values()})))
            w = self.param(1, inner, prefix="w")
            (u, fu), (v, fv) = self.vector(inner, depth - 1), self.vector(size, depth - 1)
            return f"(({w} @ {u}) * {v})", lambda env: (env[w] @ fu(env)) * fv(env)
        (a, fa), (b, fb) = self.vector(size, depth - 1), self.vector(size, depth - 1)
        if kind == "add":
            return f"({a} + {b})", lambda env: fa(env) + fb(env)
        if kind == "subtract":
            self.features.add("subtraction")
            return f"({a} - {b})", lambda env: fa(env) - fb(env)
        self.features.add("hadamard")
        return f"({a} * {b})", lambda env: fa(env) * fb(env)

    def equation(self, name, text, closure, size):
        self.lines.append(f"{name} = {text}")
        self.steps.append((name, closure))
        self.vectors[name] = size


def pre(b, size, depth, named):
    """A state's pre-activation; it reads the named value drawn before, if any."""
    text, f = b.vector(size, depth)
    if not named:
        return text, f
    return f"({text} + {named})", lambda env: f(env) + env[named]


@st.composite
def cells(draw):
    b = Builder(draw)
    states = STATES[:draw(st.sampled_from([1, 1, 2]))]
    inputs = INPUTS[:draw(st.sampled_from([1, 1, 1, 2]))]
    targets = TARGETS[:draw(st.sampled_from([1, 1, 1, 2]))]
    for name, size in inputs:
        b.vectors[name] = size
    for name, size in states:
        b.vectors[f"prev {name}"] = size
    depth = draw(st.sampled_from([1, 1, 2]))
    for i, (name, size) in enumerate(states):
        named = draw(st.booleans())
        if named:   # a named value first, which the state's equation reads
            text, f = b.vector(size, depth)
            b.equation(f"a{i}", text, f, size)
            b.features.add("named value")
        kind = draw(st.sampled_from(["tanh", "sigmoid", "gated", "gated", "without prev"]))
        b.features.add(f"state {kind}")
        if kind == "gated":   # s = g * prev(s) + (1 - g) * tanh(candidate)
            text, f = pre(b, size, depth, named and f"a{i}")
            b.equation(f"g{i}", f"sigmoid({text})", lambda env, f=f: _sigmoid(f(env)), size)
            text, f = b.vector(size, depth)
            b.equation(name, f"g{i} * prev({name}) + (1 - g{i}) * tanh({text})",
                       lambda env, f=f, g=f"g{i}", n=name:
                       env[g] * env[f"prev {n}"] + (1 - env[g]) * np.tanh(f(env)), size)
            continue
        if kind == "without prev":   # the state reads no earlier step
            saved = {k: v for k, v in b.vectors.items() if k.startswith("prev ")}
            for k in saved:
                del b.vectors[k]
            text, f = pre(b, size, depth, named and f"a{i}")
            b.vectors.update(saved)
            b.equation(name, f"tanh({text})", lambda env, f=f: np.tanh(f(env)), size)
            continue
        text, f = pre(b, size, depth, named and f"a{i}")
        act = np.tanh if kind == "tanh" else _sigmoid
        b.equation(name, f"{kind}({text})", lambda env, f=f, act=act: act(f(env)), size)
    losses, loss_fns = [], []
    for name, size in targets:
        source = draw(st.sampled_from([n for n, _ in states]))
        head = draw(st.sampled_from(["mse", "cross-entropy", "upstream"]))
        b.features.add(f"loss {head}")
        V = b.param(size, dict(states)[source], prefix="V")
        o = f"o{len(losses)}"
        b.equation(o, f"{V} @ {source}", lambda env, V=V, s=source: env[V] @ env[s], size)
        if head == "mse":
            losses.append(f"0.5 * ({o} - {name}).T @ ({o} - {name})")
            loss_fns.append(lambda env, o=o, y=name: 0.5 * (env[o] - env[y]) @ (env[o] - env[y]))
        elif head == "cross-entropy":
            losses.append(f"-{name}.T @ log_softmax({o})")
            loss_fns.append(lambda env, o=o, y=name: -env[y] @ _log_softmax(env[o]))
        else:
            losses.append(f"{name}.T @ {o}")
            loss_fns.append(lambda env, o=o, y=name: env[y] @ env[o])
    if len(inputs) > 1 or len(targets) > 1:
        b.features.add("several inputs or targets")
    if len(states) > 1:
        b.features.add("several states")
    declarations = [
        "params: " + " ".join(f"{p}[{r}{', ' + c if c else ''}]" for p, (r, c) in b.params.items()),
        "input: " + " ".join(f"{n}[{s}]" for n, s in inputs),
        "target: " + " ".join(f"{n}[{s}]" for n, s in targets),
        "state: " + " ".join(f"{n}[{s}]" for n, s in states),
    ]
    lines = b.lines + ["loss = " + " + ".join(losses)]
    mistake = draw(st.sampled_from([None] * 24 + sorted(MISTAKES)))   # one cell in four
    if mistake:   # one line made wrong: the cell must be refused
        i = draw(st.integers(0, len(lines) - 2))
        name, rhs = lines[i].split(" = ", 1)
        lines[i] = f"{name} = " + MISTAKES[mistake].format(rhs=rhs, name=name)
    text = "\n".join(declarations + lines)
    cell = FuzzCell(text, b, states, inputs, targets, loss_fns)
    cell.mistake = mistake
    return cell


MISTAKES = {  # how a line is made wrong
    "shapes that do not fit": "({rhs}) + x.T",
    "an undeclared name": "({rhs}) + q",
    "an exponent too large": "({rhs}) ** 17",
    "a power beyond a float": "9**9**9 * ({rhs})",
    "a function that is not one": "cos({rhs})",
    "a name before its equation": "({rhs}) * {name}",
    "a non-ASCII name": "({rhs}) + \u210c",
    "division by zero": "({rhs}) / 0",
}


class FuzzCell:
    def __init__(self, text, builder, states, inputs, targets, loss_fns):
        self.text, self.params, self.steps = text, builder.params, builder.steps
        self.features = builder.features
        self.mistake = None
        self.states, self.inputs, self.targets, self.loss_fns = states, inputs, targets, loss_fns

    def __repr__(self):   # what hypothesis shows of a falsifying example
        return f"FuzzCell(features={sorted(self.features)}, text=\n{self.text})"

    def problem(self, rng, T):
        params = {}
        for p, (r, c) in self.params.items():
            shape = (SIZES[r],) if c is None else (SIZES.get(r, r), SIZES[c])
            params[p] = rng.normal(size=shape) * (0.6 if c is None else 0.6 / math.sqrt(SIZES[c]))
        seqs = {n: rng.normal(size=(T, SIZES[s])) for n, s in self.inputs}
        for n, s in self.targets:
            seqs[n] = rng.uniform(0.1, 1.0, size=(T, SIZES[s]))
        starts = {f"{n}0": rng.normal(size=SIZES[s]) * 0.5 for n, s in self.states}
        return params, seqs, starts

    def forward(self, params, seqs, starts, values=None):
        """The loss summed over the steps, by the closures (row parameters as rows);
        ``values`` collects every value as a column, by (name, step)."""
        T = len(next(iter(seqs.values())))
        env = {p: v[0] if self.params[p][0] == 1 else v for p, v in params.items()}
        for n, _ in self.states:
            env[f"prev {n}"] = starts[f"{n}0"]
        total = 0.0
        for t in range(T):
            env.update({n: seqs[n][t] for n in seqs})
            for name, f in self.steps:
                env[name] = f(env)
            if values is not None:
                for name in list(seqs) + [n for n, _ in self.steps]:
                    values[(name, t + 1)] = np.reshape(env[name], (-1, 1))
                for n, _ in self.states:
                    values[(n, 0)] = np.reshape(starts[f"{n}0"], (-1, 1))
            total += sum(float(f(env)) for f in self.loss_fns)
            for n, _ in self.states:
                env[f"prev {n}"] = env[n]
        return total


# -- the derivation's closed forms, evaluated here ----------------------------------
# A small evaluator of the matrix expressions of ``derive(cell)`` over the values of
# the NumPy forward pass: the derivation is checked against finite differences
# without the code generator and without verify().

OPERATIONS = {  # NumPy meanings written here, by the registry's class names
    "Tanh": np.tanh, "Sigmoid": _sigmoid, "ReLU": lambda v: np.maximum(v, 0),
    "Step": lambda v: (v > 0).astype(float), "Exp": np.exp, "Log": np.log,
    "Softplus": lambda v: np.logaddexp(v, 0), "Absolute": np.abs, "Sign": np.sign,
    "SquareRoot": np.sqrt, "Reciprocal": lambda v: 1 / v,
    "Softmax": lambda v: np.exp(_log_softmax(v[:, 0]))[:, None],
    "LogSoftmax": lambda v: _log_softmax(v[:, 0])[:, None],
}


def _dim(d):
    return SIZES[str(d)] if d.is_Symbol else int(d)


class ClosedForms:
    def __init__(self, derivation, cell, params, values, T):
        from symrnn.graph.unroll import t as t_symbol, T as T_symbol
        self.t, self.T_symbol, self.T = t_symbol, T_symbol, T
        self.params = {p: (v.reshape(1, -1) if cell.params[p][0] == 1 else
                           v.reshape(-1, 1) if v.ndim == 1 else v) for p, v in params.items()}
        self.values = values            # (name, step) -> column
        self.adjoints = {}              # (name, step) -> column
        self.d = derivation

    def at(self, time, k):
        off = time - self.t
        return k + int(off) if not off.has(self.t) else int(time)

    def __call__(self, e, k):
        from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, MatrixSymbol, Transpose
        from symrnn.model.nodes import Adjoint, StepVar, SumOverTime
        name = type(e).__name__
        if isinstance(e, MatrixSymbol):
            return self.params[e.name]
        if isinstance(e, StepVar):
            return self.values.get((e.name, self.at(e.time, k)), np.zeros((_dim(e.shape[0]), 1)))
        if isinstance(e, Adjoint):
            var = e.var
            return self.adjoints.get((var.name, self.at(var.time, k)),
                                     np.zeros((_dim(var.shape[0]), 1)))
        if name in OPERATIONS:
            return OPERATIONS[name](self(e.args[0], k))
        if isinstance(e, MatMul):
            coeff, factors = e.as_coeff_matrices()
            out = self(factors[0], k)
            for f in factors[1:]:
                out = out @ self(f, k)
            return float(coeff) * out
        if isinstance(e, MatAdd):
            return sum(self(a, k) for a in e.args)
        if isinstance(e, HadamardProduct):
            out = self(e.args[0], k)
            for a in e.args[1:]:
                out = out * self(a, k)
            return out
        if isinstance(e, HadamardPower):
            return self(e.base, k) ** int(e.exp)
        if isinstance(e, Transpose):
            return self(e.arg, k).T
        if name in ("OneMatrix", "ZeroMatrix", "Identity"):
            shape = tuple(_dim(d) for d in e.shape)
            return {"OneMatrix": np.ones, "ZeroMatrix": np.zeros}.get(
                name, lambda s: np.eye(s[0]))(shape)
        if isinstance(e, SumOverTime):
            return sum(self(e.term, j) for j in range(1, self.T + 1))
        raise TypeError(f"no evaluation for {name}")

    def gradients(self):
        from sympy import ZeroMatrix
        from symrnn.model.nodes import Adjoint
        # at t = T nothing comes from step T+1: those terms are dropped, not
        # evaluated (their forward values at T+1 do not exist; 1/0 * 0 is nan)
        last = {a: e.replace(lambda n: isinstance(n, Adjoint) and (n.var.time - self.t) == 1,
                             lambda n: ZeroMatrix(*n.shape)).doit()
                for a, e in self.d.adjoints.items()}
        for k in range(self.T, 0, -1):
            for a, e in self.d.adjoints.items():
                self.adjoints[(a.var.name, k)] = self(last[a] if k == self.T else e, k)
        return {name: self(g.subs(self.T_symbol, self.T), 0)
                for name, g in self.d.gradients.items()}


def directional_check(grads, cell, params, seqs, starts, rng, what):
    """Central differences of the forward pass along two random directions."""
    arrays = dict(params, **starts)
    for _ in range(2):
        v = {k: rng.normal(size=a.shape) for k, a in arrays.items()}
        eps = 1e-6

        def at(sign):
            moved = {k: a + sign * eps * v[k] for k, a in arrays.items()}
            return cell.forward({p: moved[p] for p in params}, seqs,
                                {s: moved[s] for s in starts})

        fd = (at(1) - at(-1)) / (2 * eps)
        exact = sum(float(np.sum(np.asarray(grads[k]).reshape(a.shape) * v[k]))
                    for k, a in arrays.items())
        assert abs(exact - fd) <= 1e-6 * max(1.0, abs(fd)), (what, exact, fd)


# The generated code is checked only for cells without these features: what the
# code generator cannot run yet (it would raise, or give wrong numbers silently).
# Found by this test with the list empty; the derivation of these cells is
# checked all the same. Empty: every accepted cell's generated code is checked.
CODEGEN_MISSING = {}
TALLY = collections.Counter()


def derived_features(cell, parsed, derivation):
    from sympy import MatMul, MatrixSymbol, ZeroMatrix, preorder_traversal
    from symrnn.model.nodes import Prev
    features = set(cell.features)
    if len(cell.inputs) > 1 or len(cell.targets) > 1:
        features.add("several inputs or targets")
    if any(isinstance(g, ZeroMatrix) for g in derivation.gradients.values()):
        features.add("a parameter or start state the loss does not use")
    params = set(parsed.params)
    for _, rhs in parsed.equations:
        if rhs in params:
            features.add("a value equal to a parameter")
        for node in preorder_traversal(rhs):
            if isinstance(node, MatMul) and sum(
                    1 for f in node.args if getattr(f, "is_Matrix", False)
                    and f.shape[1] != 1 and f.atoms(MatrixSymbol) <= params) > 1:
                features.add("matrix product")   # P @ (Q @ v) is P Q v
            if (getattr(node, "is_Matrix", False) and not isinstance(node, MatrixSymbol)
                    and node.shape[1] == 1 and not node.atoms(Prev)
                    and node.atoms(MatrixSymbol) and node.atoms(MatrixSymbol) <= params):
                features.add("an operation on parameters alone")
    read = {p.state.name for _, rhs in parsed.equations for p in rhs.atoms(Prev)}
    if any(s.name not in read for s in parsed.states):
        features.add("a state no step reads")
    return features


def check(cell, verify=True, T=3, backend="numpy"):
    """Refused, or derived (gradients right), verified and run with right numbers.
    Returns the outcome, for the tally."""
    try:
        parsed = symrnn.parse_cell(cell.text)
    except ValueError as e:
        assert cell.mistake, f"a valid cell refused: {e}"
        return f"refused ({cell.mistake})"
    assert not cell.mistake, f"accepted with {cell.mistake}"
    d = symrnn.derive(parsed)
    rng = np.random.default_rng(0)
    params, seqs, starts = cell.problem(rng, T)
    values = {}
    want = cell.forward(params, seqs, starts, values)
    grads = ClosedForms(d, cell, params, values, T).gradients()
    directional_check(grads, cell, params, seqs, starts, rng, "derivation")
    outcome = ["derivation right"]
    if verify:
        d.verify(2)
        outcome.append("verified")
    missing = sorted(derived_features(cell, parsed, d) & set(CODEGEN_MISSING))
    if missing:
        return ", ".join(outcome + ["generated code not checked: " + missing[0]])
    f = d.lambdify(backend)
    # one input (target): its array; several: a dict by name
    x, y = ({n: seqs[n] for n, _ in group} if len(group) > 1 else seqs[group[0][0]]
            for group in (cell.inputs, cell.targets))
    loss, grads = f(params, x, y, **starts)
    assert abs(loss - want) <= 1e-10 * max(1.0, abs(want)), ("generated loss", loss, want)
    directional_check(grads, cell, params, seqs, starts, rng, "generated code")
    return ", ".join(outcome + ["generated code right"])


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cells(), st.integers(0, 4))
def test_random_cells(cell, lot):
    # verify() costs about as much as all the rest: run it on a share of the cells
    TALLY[check(cell, verify=lot == 4)] += 1


NUMBA_CELLS = itertools.count()


@settings(max_examples=NUMBA_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cells())
def test_random_cells_numba(cell):
    # the Numba backend prints the same statements; it compiles for seconds per cell,
    # so a few cells here (SYMRNN_NUMBA_FUZZ=N for more). Every other cell has its
    # kernel compiled as its step loops (outline.py), whatever its size
    pytest.importorskip("numba")
    from symrnn.codegen import lambdify
    whole = lambdify.WHOLE_KERNELS_UP_TO
    lambdify.WHOLE_KERNELS_UP_TO = 0 if next(NUMBA_CELLS) % 2 else whole
    try:
        check(cell, verify=False, backend="numba")
    finally:
        lambdify.WHOLE_KERNELS_UP_TO = whole


def test_a_wrong_rule_is_caught(monkeypatch):
    # the check above can fail: tanh's rule without the 1 - h^2
    from symrnn import ops
    from symrnn.derivation import vjps
    monkeypatch.setitem(vjps.VJPS, ops.Tanh, lambda ans, args, i: lambda g: g)
    text = ("params: P0[D, D] b1[D] V2[M, D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
            "h = tanh(P0 @ prev(h) + b1)\no0 = V2 @ h\nloss = 0.5 * (o0 - y).T @ (o0 - y)")
    b = Builder(None)
    b.params = {"P0": ("D", "D"), "b1": ("D", None), "V2": ("M", "D")}
    b.steps = [("h", lambda env: np.tanh(env["P0"] @ env["prev h"] + env["b1"])),
               ("o0", lambda env: env["V2"] @ env["h"])]
    cell = FuzzCell(text, b, [("h", "D")], [("x", "N")], [("y", "M")],
                    [lambda env: 0.5 * (env["o0"] - env["y"]) @ (env["o0"] - env["y"])])
    with pytest.raises(AssertionError):
        check(cell)


def tally():
    return "\n".join([f"{n:5d}  {outcome}" for outcome, n in TALLY.most_common()]
                     + [f"{sum(TALLY.values()):5d}  cells"])


if __name__ == "__main__":   # the tally of one run: python tests/test_fuzz_cells.py
    test_random_cells()
    print(tally())
