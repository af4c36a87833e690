"""d.torch()'s two calls against torch autograd of forward passes written here by hand
(a Python loop over the steps, rows (B, n), no symrnn code): ``out, states = m(x)``
and a loss of the test's own through them (the derived BPTT with upstream
gradients), a loss on the final state only, truncated BPTT over two chunks,
``m(x, y)`` with both reductions, a pickled module, torch.func, torch.compile, the
first-order refusal; the Elman RNN, LSTM, GRU, a cell with abs, a cell with two
inputs and two targets. The Numba kernels (the CPU's default) on a few, the torch
kernels on all; a GPU where there is one."""
import copy
import functools
import io
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.func import functional_call, grad, vmap  # noqa: E402

import symrnn  # noqa: E402

pytestmark = pytest.mark.torch

F64 = torch.float64
T, B = 5, 3
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

ABS = """params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ abs(prev(h)) + U @ x)
o = V @ h
loss = -y.T @ log_softmax(o)"""

TWO = """params: W[D,D] U[D,N] A[D,K] V[M,D] Q[J,D]
input: x[N] c[K]
target: y[M] m[J]
state: h[D]
h = tanh(W @ prev(h) + U @ x + A @ c)
o = V @ h
q = Q @ h
loss = -y.T @ log_softmax(o) + 0.5 * (q - m).T @ (q - m)"""

SIZES = {"D": 4, "N": 3, "M": 3, "K": 2, "J": 2}


# -- the cells by hand: one step on rows, (values of the step, states) -------------------
def _gate(p, k, h, x, act):
    return act(h @ p["W" + k].T + x["x"] @ p["U" + k].T + p["b" + k])


def elman(p, x, s):
    z = s["h"] @ p["W"].T + x["x"] @ p["U"].T
    h = torch.tanh(z)
    o = h @ p["V"].T
    return {"z": z, "o": o, "yhat": torch.softmax(o, -1)}, {"h": h}


def lstm(p, x, s):
    f, g, q = (_gate(p, k, s["h"], x, torch.sigmoid) for k in ("_f", "_g", "_q"))
    a = _gate(p, "", s["h"], x, torch.tanh)
    c = a * g + f * s["s"]
    h = torch.tanh(c) * q
    o = h @ p["V"].T
    return {"f": f, "g": g, "q": q, "a": a, "o": o, "yhat": torch.softmax(o, -1)}, {"h": h, "s": c}


def gru(p, x, s):
    u, r = (_gate(p, k, s["h"], x, torch.sigmoid) for k in ("_u", "_r"))
    a = torch.tanh((r * s["h"]) @ p["W"].T + x["x"] @ p["U"].T + p["b"])
    h = (1 - u) * a + u * s["h"]
    o = h @ p["V"].T
    return {"u": u, "r": r, "a": a, "o": o, "yhat": torch.softmax(o, -1)}, {"h": h}


def with_abs(p, x, s):
    h = torch.tanh(s["h"].abs() @ p["W"].T + x["x"] @ p["U"].T)
    return {"o": h @ p["V"].T}, {"h": h}


def two(p, x, s):
    h = torch.tanh(s["h"] @ p["W"].T + x["x"] @ p["U"].T + x["c"] @ p["A"].T)
    return {"o": h @ p["V"].T, "q": h @ p["Q"].T}, {"h": h}


CELLS = {"elman": (symrnn.ElmanRNN, elman), "lstm": (symrnn.LSTM, lstm),
         "gru": (symrnn.GRU, gru), "abs": (lambda: symrnn.parse_cell(ABS), with_abs),
         "two": (lambda: symrnn.parse_cell(TWO), two)}


@functools.lru_cache(maxsize=None)
def derivation(name):
    return symrnn.derive(CELLS[name][0]())


def module(name, kernels="torch", device="cpu", **options):
    torch.manual_seed(0)
    cell = derivation(name).cell
    sizes = {k: v for k, v in SIZES.items() if k in {str(s) for p in cell.params
                                                     for s in p.shape}}
    return derivation(name).torch(sizes, dtype=F64, device=device, kernels=kernels, **options)


def data(m, seed=1, steps=T, device="cpu"):
    """Inputs (T, B, n) by name, labels or float targets by name, initial states (B, n)."""
    gen = torch.Generator().manual_seed(seed)
    cell = m._cell

    def width(v):
        return SIZES[str(v.shape[0])]
    xs = {v.name: torch.randn(steps, B, width(v), generator=gen, dtype=F64).to(device)
          for v in cell.inputs}
    labels = cell.targets_are_distributions   # then y holds labels (m in TWO is float)
    ys = {v.name: (torch.randint(0, width(v), (steps, B), generator=gen)
                   if labels and v.name == "y"
                   else torch.randn(steps, B, width(v), generator=gen, dtype=F64)).to(device)
          for v in cell.targets}
    starts = {s.name: (0.5 * torch.randn(B, width(s), generator=gen, dtype=F64)).to(device)
              for s in cell.states}
    return xs, ys, starts


def one(values):  # one input (target): its tensor; several: the dict
    return next(iter(values.values())) if len(values) == 1 else values


def by_hand(name, p, xs, starts):
    """The hand-written forward pass: values (T, B, n) by name, final states by name."""
    step = CELLS[name][1]
    state, values = dict(starts), {}
    for t in range(len(next(iter(xs.values())))):
        now, state = step(p, {k: v[t] for k, v in xs.items()}, state)
        for k, v in now.items():
            values.setdefault(k, []).append(v)
    return {k: torch.stack(v) for k, v in values.items()}, state


def leaves(m, xs, starts):
    """Copies of the parameters, inputs and initial states that require gradients."""
    p = {k: v.detach().clone().requires_grad_() for k, v in m.named_parameters()}
    x = {k: v.clone().requires_grad_() for k, v in xs.items()}
    s = {k: v.clone().requires_grad_() for k, v in starts.items()}
    return p, x, s


def user_loss(values, finals, weights):
    """A loss of the test's own from the values and the final states."""
    total = sum((weights[k] * v).sum() + 0.3 * (v ** 2).sum() for k, v in values.items())
    return total + sum((f ** 3).sum() for f in finals.values())


def weights_like(values, seed=7):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen, dtype=F64).to(v.device)
            for k, v in values.items()}


def assert_same_gradients(mine, theirs, tol=1e-10):
    assert set(mine) == set(theirs)
    for k in theirs:
        assert mine[k] is not None, k
        torch.testing.assert_close(mine[k], theirs[k], rtol=0, atol=tol, msg=k)


def gradients_of(loss_fn, p, x, s):
    loss = loss_fn(p, x, s)
    keys = list(p) + list(x) + [k + "0" for k in s]
    tensors = list(p.values()) + list(x.values()) + list(s.values())
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return loss, {k: torch.zeros_like(v) if g is None else g   # (unused: zero)
                  for k, v, g in zip(keys, tensors, grads)}


# -- m(x): outputs and final states ----------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CELLS))
def test_outputs_and_final_states(name, device):
    m = module(name, device=device)
    xs, _, starts = data(m, device=device)
    out, states = m(one(xs), **{k + "0": v for k, v in starts.items()})
    p = dict(m.named_parameters())
    want, finals = by_hand(name, p, xs, starts)
    assert set(out) == set(want) and set(states) == set(finals)
    for k in want:
        torch.testing.assert_close(out[k], want[k], rtol=0, atol=1e-12, msg=k)
    for k in finals:
        torch.testing.assert_close(states[k], finals[k], rtol=0, atol=1e-12, msg=k)


@pytest.mark.parametrize("name", list(CELLS))
def test_a_loss_of_ones_own_through_the_outputs(name):
    m = module(name)
    xs, _, starts = data(m)
    p, x, s = leaves(m, xs, starts)
    weights = weights_like(by_hand(name, p, xs, starts)[0])

    def mine(p, x, s):
        out, states = functional_call(m, p, (one(x),), {k + "0": v for k, v in s.items()})
        return user_loss(out, states, weights)

    def theirs(p, x, s):
        return user_loss(*by_hand(name, p, x, s), weights)
    loss, got = gradients_of(mine, p, x, s)
    want_loss, want = gradients_of(theirs, p, x, s)
    assert loss.item() == pytest.approx(want_loss.item(), rel=1e-12)
    assert_same_gradients(got, want)


@pytest.mark.parametrize("name", ["elman", "lstm"])
def test_a_loss_on_the_final_state_only(name):
    m = module(name)
    xs, _, starts = data(m)
    p, x, s = leaves(m, xs, starts)

    def mine(p, x, s):
        _, states = functional_call(m, p, (one(x),), {k + "0": v for k, v in s.items()})
        return (states["h"] ** 2).sum()
    loss, got = gradients_of(mine, p, x, s)
    want_loss, want = gradients_of(lambda p, x, s: (by_hand(name, p, x, s)[1]["h"] ** 2).sum(),
                                   p, x, s)
    assert loss.item() == pytest.approx(want_loss.item(), rel=1e-12)
    assert_same_gradients(got, want)


@pytest.mark.parametrize("detach", [True, False], ids=["truncated", "through the chunks"])
def test_bptt_over_two_chunks(detach):
    # the final states of chunk 1 start chunk 2: detached, truncated BPTT; not detached,
    # the gradients of the whole sequence
    m = module("lstm")
    xs, _, starts = data(m, steps=2 * T)
    p, x, s = leaves(m, xs, starts)
    weights = weights_like(by_hand("lstm", p, xs, starts)[0])

    def cut(v):
        return v.detach() if detach else v

    def halves(w, i):
        return {k: v[i * T:(i + 1) * T] for k, v in w.items()}

    def mine(p, x, s):
        out1, st1 = functional_call(m, p, (x["x"][:T],), {k + "0": v for k, v in s.items()})
        out2, st2 = functional_call(m, p, (x["x"][T:],),
                                    {k + "0": cut(v) for k, v in st1.items()})
        return user_loss(out1, {}, halves(weights, 0)) + user_loss(out2, st2, halves(weights, 1))

    def theirs(p, x, s):
        out1, st1 = by_hand("lstm", p, halves(x, 0), s)
        out2, st2 = by_hand("lstm", p, halves(x, 1), {k: cut(v) for k, v in st1.items()})
        return user_loss(out1, {}, halves(weights, 0)) + user_loss(out2, st2, halves(weights, 1))
    _, got = gradients_of(mine, p, x, s)
    _, want = gradients_of(theirs, p, x, s)
    assert_same_gradients(got, want)


# -- m(x, y): the cell's loss, summed or averaged ------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", ["elman", "gru", "two"])
def test_the_loss_and_its_reductions(name, reduction, device):
    m = module(name, device=device, reduction=reduction)
    xs, ys, starts = data(m, device=device)
    p, x, s = leaves(m, xs, starts)
    M = SIZES["M"]

    def mine(p, x, s):
        return functional_call(m, p, (one(x), one(ys)), {k + "0": v for k, v in s.items()})

    def theirs(p, x, s):
        out, _ = by_hand(name, p, x, s)
        if name == "two":  # a label loss and 0.5 (q - m)^T (q - m), each summed, then reduced
            onehot = torch.nn.functional.one_hot(ys["y"], M).to(F64)
            total = (-(onehot * torch.log_softmax(out["o"], -1)).sum()
                     + 0.5 * ((out["q"] - ys["m"]) ** 2).sum())
            return total / (T * B) if reduction == "mean" else total
        return torch.nn.functional.cross_entropy(out["o"].reshape(-1, M), ys["y"].reshape(-1),
                                                 reduction=reduction)
    loss, got = gradients_of(mine, p, x, s)
    want_loss, want = gradients_of(theirs, p, x, s)
    assert loss.item() == pytest.approx(want_loss.item(), rel=1e-12)
    assert_same_gradients(got, want)


def test_the_mean_of_a_squared_error_is_the_sum_over_steps_and_sequences():
    d = symrnn.derive(symrnn.ElmanRNN("tanh", "mse"))
    m = d.torch(D=3, N=2, M=4, dtype=F64, kernels="torch", reduction="mean")
    x, y = torch.randn(T, B, 2, dtype=F64), torch.randn(T, B, 4, dtype=F64)
    out, _ = m(x)
    mse = torch.nn.functional.mse_loss(out["o"], y)  # the mean over T B M entries
    assert m(x, y).item() == pytest.approx(0.5 * 4 * mse.item(), rel=1e-12)


# -- the Numba kernels (the CPU's default) ---------------------------------------------------
@pytest.mark.numba
@pytest.mark.slow
def test_the_numba_kernels_on_both_calls():
    pytest.importorskip("numba")
    m = module("elman", kernels="auto")
    xs, ys, starts = data(m)
    p, x, s = leaves(m, xs, starts)
    weights = weights_like(by_hand("elman", p, xs, starts)[0])

    def mine(p, x, s):
        out, states = functional_call(m, p, (x["x"],), {"h0": s["h"]})
        return user_loss(out, states, weights) + functional_call(m, p, (x["x"], ys["y"]),
                                                                 {"h0": s["h"]})

    def theirs(p, x, s):
        out, finals = by_hand("elman", p, x, s)
        ce = torch.nn.functional.cross_entropy(out["o"].reshape(-1, SIZES["M"]),
                                               ys["y"].reshape(-1), reduction="sum")
        return user_loss(out, finals, weights) + ce
    _, got = gradients_of(mine, p, x, s)
    _, want = gradients_of(theirs, p, x, s)
    assert_same_gradients(got, want, tol=1e-9)
    # float32 runs on them too (computed in float64, returned in float32)
    m32 = derivation("elman").torch(D=4, N=3, M=3, kernels="auto")
    with torch.no_grad():
        for k, v in m32.named_parameters():
            v.copy_(getattr(m, k))
    loss32 = m32(xs["x"].float(), ys["y"])
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(m(xs["x"], ys["y"]).item(), rel=1e-6)


# -- pickling, torch.func, torch.compile, first order ------------------------------------
def test_a_pickled_module_gives_the_same_numbers():
    m = module("gru", outputs=("o", "h"))
    xs, ys, _ = data(m)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    for other in (loaded, copy.deepcopy(m)):
        assert other.outputs == ("o", "h")
        for model in (m, other):
            model.zero_grad()
            model(xs["x"], ys["y"]).backward()
        for k, v in m.named_parameters():
            torch.testing.assert_close(getattr(other, k).grad, v.grad, rtol=0, atol=0)
        torch.testing.assert_close(other(xs["x"])[0]["o"], m(xs["x"])[0]["o"], rtol=0, atol=0)


@pytest.mark.slow
def test_a_module_saved_in_one_process_runs_in_another(tmp_path):
    m = module("elman")
    xs, ys, _ = data(m)
    path = tmp_path / "m.pt"
    torch.save({"model": m, "x": xs["x"], "y": ys["y"]}, path)
    code = ("import sys, torch\n"
            "saved = torch.load(sys.argv[1], weights_only=False)\n"
            "m = saved['model']\n"
            "loss = m(saved['x'], saved['y'])\n"
            "loss.backward()\n"
            "print(repr(loss.item()), repr(m.W.grad.sum().item()))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    loss = m(xs["x"], ys["y"])
    loss.backward()
    assert done.stdout.split() == [repr(loss.item()), repr(m.W.grad.sum().item())]


def test_torch_func_grad_vmap_and_functional_call():
    m = module("elman")
    xs, ys, starts = data(m)
    params = {k: v.detach() for k, v in m.named_parameters()}

    def by_hand_loss(p, x):
        out, _ = by_hand("elman", p, {"x": x}, {"h": starts["h"]})
        return torch.nn.functional.cross_entropy(out["o"].reshape(-1, SIZES["M"]),
                                                 ys["y"].reshape(-1), reduction="sum")

    def loss(p, x):
        return functional_call(m, p, (x, ys["y"]), {"h0": starts["h"]})
    got, want = grad(loss)(params, xs["x"]), grad(by_hand_loss)(params, xs["x"])
    assert_same_gradients(got, want)
    # per-sample gradients: vmap over a stack of inputs, of grad
    stack = torch.randn(3, T, B, SIZES["N"], dtype=F64)
    got = vmap(grad(loss), in_dims=(None, 0))(params, stack)
    want = vmap(grad(by_hand_loss), in_dims=(None, 0))(params, stack)
    assert_same_gradients(got, want)
    # the outputs form under vmap
    out = vmap(lambda x: functional_call(m, params, (x,))[0]["o"])(stack)
    torch.testing.assert_close(out, torch.stack([by_hand("elman", params, {"x": v},
                                                         {"h": torch.zeros(B, 4, dtype=F64)}
                                                         )[0]["o"] for v in stack]),
                               rtol=0, atol=1e-12)


@pytest.mark.slow
def test_torch_compile_fullgraph():
    m = module("lstm")
    xs, ys, starts = data(m)
    compiled = torch.compile(m, fullgraph=True)
    weights = None
    for form in ("loss", "outputs"):
        for model in (m, compiled):
            model.zero_grad()
            if form == "loss":
                loss = model(xs["x"], ys["y"], **{k + "0": v for k, v in starts.items()})
            else:
                out, states = model(xs["x"], **{k + "0": v for k, v in starts.items()})
                weights = weights or weights_like(out)
                loss = user_loss(out, states, weights)
            loss.backward()
            grads = [p.grad.clone() for p in model.parameters()]
            if model is m:
                want, want_loss = grads, loss.item()
        assert loss.item() == pytest.approx(want_loss, rel=1e-12)
        for a, b in zip(grads, want):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ["loss", "outputs"])
def test_a_double_backward_says_the_derivation_is_first_order(form):
    m = module("elman")
    xs, ys, _ = data(m)
    loss = m(xs["x"], ys["y"]) if form == "loss" else (m(xs["x"])[0]["o"] ** 2).sum()
    (g,) = torch.autograd.grad(loss, m.W, create_graph=True)
    with pytest.raises(RuntimeError, match="^symrnn: the derived BPTT is first-order"):
        g.sum().backward()


# -- arguments ------------------------------------------------------------------------------
def test_several_inputs_batch_first_and_one_sequence():
    m = module("two", outputs=("q", "h"))
    xs, _, starts = data(m)
    out, states = m(xs)
    first = module("two", outputs=("q", "h"), batch_first=True)
    out_bf, states_bf = first({k: v.transpose(0, 1) for k, v in xs.items()})
    torch.testing.assert_close(out_bf["q"].transpose(0, 1), out["q"], rtol=0, atol=1e-12)
    torch.testing.assert_close(out["h"][-1], states["h"], rtol=0, atol=0)
    single, st = m({k: v[:, 0] for k, v in xs.items()})
    assert single["q"].shape == (T, SIZES["J"]) and st["h"].shape == (SIZES["D"],)
    torch.testing.assert_close(single["q"], out["q"][:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("options, message", [
    ({"outputs": ("L",)}, r"^outputs: 'L' is not a value of the cell"),
    ({"outputs": ("nothing",)}, r"^outputs: 'nothing' is not a value of the cell"),
    ({"outputs": "o"}, r"^outputs: expected a sequence of names"),
    ({"reduction": "none"}, r"^reduction: expected 'sum' or 'mean'"),
    ({"kernels": "cuda"}, r"^kernels: expected one of"),
])
def test_bad_options_raise_one_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        derivation("elman").torch(D=3, N=2, M=3, **options)


def test_a_state_that_reads_a_target_needs_the_targets():
    d = symrnn.derive(symrnn.parse_cell(
        "params: W[D,D] U[D,M] V[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
        "h = tanh(W @ prev(h) + U @ y)\nloss = -y.T @ log_softmax(V @ h)"))
    m = d.torch(D=3, M=3, dtype=F64, kernels="torch")
    with pytest.raises(ValueError, match="^y: needed: the state 'h' reads a target"):
        m(torch.zeros(T, B, 2, dtype=F64))
    with pytest.raises(ValueError, match="^outputs: 'h' reads a target"):
        d.torch(D=3, M=3, outputs=("h",))


def test_dropping_the_upstream_gradients_is_caught(monkeypatch):
    # mutation: the outputs' upstream gradients do not enter the derived recurrences
    from symrnn.backends import torch_function
    real = torch_function.Runner._with_targets

    def without(self, tensors, upstream):
        args = real(self, tensors, upstream)
        if upstream is not None:
            n = len(self.program.outputs)
            first = self.sequences.stop
            args[first:first + n] = [torch.zeros_like(g) for g in args[first:first + n]]
        return args
    monkeypatch.setattr(torch_function.Runner, "_with_targets", without)
    with pytest.raises(AssertionError):
        test_a_loss_of_ones_own_through_the_outputs("elman")
