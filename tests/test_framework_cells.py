"""Cells that d.torch() and d.jax() once got wrong (NaN gradients, wrong numbers,
crashes), each checked against torch autograd and jax.grad of a forward pass
written here by hand: a Python loop over the steps in row layout (one row per
sequence), with no symrnn code. JAX runs in its default float32 mode and with
jax_enable_x64."""
import functools
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import symrnn  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.jax]

F64 = torch.float64

TORCH = types.SimpleNamespace(
    tanh=torch.tanh, sigmoid=torch.sigmoid, relu=torch.relu, sqrt=torch.sqrt,
    abs=torch.abs, softplus=torch.nn.functional.softplus,
    log_softmax=lambda v: torch.log_softmax(v, -1))
JAX = types.SimpleNamespace(
    tanh=jnp.tanh, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu, sqrt=jnp.sqrt, abs=jnp.abs,
    softplus=jax.nn.softplus, log_softmax=lambda v: jax.nn.log_softmax(v, -1))


def _ce(L, o, y):
    return -(y * L.log_softmax(o)).sum()


class Case:
    """A cell as text, and by hand: ``step(L, p, prev, x) -> states`` and
    ``loss(L, p, prev, now, x, y) -> summed loss of one step``, where prev and
    now are dicts of state rows (B, r), x and y dicts of input and target rows,
    p the parameters (a column as (r,), which broadcasts against rows)."""

    def __init__(self, text, step, loss, sizes=None, labels=True, needs=None):
        self.text, self.step, self.loss = text, step, loss
        self.sizes = dict(sizes or {"D": 3, "N": 2, "M": 3})
        self.labels = labels
        self.needs = needs  # what the derivation must support (skipped until it does)


ELMAN = "params: W[D,D] U[D,N] V[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"


def _pre(p, s, x):
    return s["h"] @ p["W"].T + x["x"] @ p["U"].T


CASES = {
    # NaN gradients with a finite loss, where NumPy was right
    "sqrt softplus": Case(
        ELMAN + "h = sqrt(1 + softplus(W @ prev(h) + U @ x))\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.sqrt(1 + L.softplus(_pre(p, s, x)))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])),
    "sqrt relu": Case(
        ELMAN + "h = sqrt(1 + relu(W @ prev(h) + U @ x))\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.sqrt(1 + L.relu(_pre(p, s, x)))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])),
    "sqrt of a square inline": Case(
        ELMAN + "h = sqrt(1 + (W @ prev(h) + U @ x) * (W @ prev(h) + U @ x))\n"
        "loss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.sqrt(1 + _pre(p, s, x) * _pre(p, s, x))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])),
    # a loss that reads the previous state: nothing at step T+1 reads h^(T)
    "loss of prev(h)": Case(
        ELMAN + "h = tanh(W @ prev(h) + U @ x)\nloss = -y.T @ log_softmax(V @ prev(h))",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x))},
        lambda L, p, s, h, x, y: _ce(L, s["h"] @ p["V"].T, y["y"])),
    "quadratic loss of prev(h)": Case(
        ELMAN + "h = tanh(W @ prev(h) + U @ x)\nloss = prev(h).T @ prev(h) + y.T @ (V @ h)",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x))},
        lambda L, p, s, h, x, y: (s["h"] * s["h"]).sum() + (y["y"] * (h["h"] @ p["V"].T)).sum(),
        labels=False),
    # crashes
    "abs": Case(
        ELMAN + "h = tanh(W @ abs(prev(h)) + U @ x)\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.tanh(L.abs(s["h"]) @ p["W"].T + x["x"] @ p["U"].T)},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])),
    "a state that never reads prev": Case(
        "params: U[D,N] V[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
        "h = tanh(U @ x)\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.tanh(x["x"] @ p["U"].T)},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])),
    "1x1 parameters": Case(
        "params: a[1,1] w[1,D] U[D,N] V[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
        "h = tanh(a * prev(h) + (w @ prev(h)) * (U @ x))\nloss = -y.T @ log_softmax(V @ h) + a",
        lambda L, p, s, x: {"h": L.tanh(p["a"] * s["h"]
                                        + (s["h"] @ p["w"].T) * (x["x"] @ p["U"].T))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"]) + p["a"].sum() * len(y["y"])),
    # a state computed in the forward (backward) scan that a value outside the
    # scan reads at the same step: computed after the scan, not before it
    "a state that only the next step reads": Case(
        "params: W[D,D] U[E,N] A[D,E] V[M,D] Q[M,E]\ninput: x[N]\ntarget: y[M]\nstate: h[D] s[E]\n"
        "s = tanh(U @ x)\ng = sigmoid(Q @ s)\nh = tanh(W @ prev(h) + A @ prev(s))\n"
        "loss = -y.T @ log_softmax(V @ h + g)",
        lambda L, p, s, x: {"s": L.tanh(x["x"] @ p["U"].T),
                            "h": L.tanh(s["h"] @ p["W"].T + s["s"] @ p["A"].T)},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T + L.sigmoid(h["s"] @ p["Q"].T), y["y"]),
        sizes={"D": 3, "E": 2, "N": 2, "M": 3}),
    "an adjoint carried back that its own step reads": Case(
        "params: b[D] P[D,E] V[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D] s[E]\n"
        "a = softplus(abs(b))\nh = tanh(P @ (prev(s) + prev(s)) + a)\ns = tanh(prev(s))\n"
        "loss = y.T @ (V @ h)",
        lambda L, p, s, x: {"h": L.tanh(2 * s["s"] @ p["P"].T + L.softplus(L.abs(p["b"]))),
                            "s": L.tanh(s["s"])},
        lambda L, p, s, h, x, y: (y["y"] * (h["h"] @ p["V"].T)).sum(),
        sizes={"D": 3, "E": 2, "N": 2, "M": 3}, labels=False),
    "a matrix power": Case(
        ELMAN + "h = tanh(W @ W @ W @ prev(h) + U @ x)\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.tanh(s["h"] @ (p["W"] @ p["W"] @ p["W"]).T + x["x"] @ p["U"].T)},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"]), needs="MatPow"),
    "a loss with terms of parameters alone": Case(
        "params: W[D,D] U[D,N] V[M,D] a[1,1] r[D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
        "h = tanh(W @ prev(h) + U @ x)\n"
        "loss = -y.T @ log_softmax(V @ h) + 0.5 * r.T @ r + tanh(a) + a",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"])
        + len(y["y"]) * (0.5 * (p["r"] ** 2).sum() + L.tanh(p["a"]).sum() + p["a"].sum())),
    # names the backends used for themselves
    "parameters named zero, count, sizes, xp": Case(
        "params: zero[D,D] count[D,N] xp[D] sizes[M,D]\ninput: x[N]\ntarget: y[M]\nstate: h[D]\n"
        "h = tanh(zero @ prev(h) + count @ x + xp)\nloss = -y.T @ log_softmax(sizes @ h)",
        lambda L, p, s, x: {"h": L.tanh(s["h"] @ p["zero"].T + x["x"] @ p["count"].T + p["xp"])},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["sizes"].T, y["y"])),
    "a size named B": Case(
        "params: W[B,B] U[B,N] V[M,B]\ninput: x[N]\ntarget: y[M]\nstate: h[B]\n"
        "h = tanh(W @ prev(h) + U @ x)\nloss = -y.T @ log_softmax(V @ h)",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x))},
        lambda L, p, s, h, x, y: _ce(L, h["h"] @ p["V"].T, y["y"]), sizes={"B": 4, "N": 2, "M": 3}),
    # several inputs and targets, by name
    "two inputs, two label targets": Case(
        "params: W[D,D] U[D,N] A[D,K] V[M,D] Q[J,D]\ninput: x[N] c[K]\ntarget: y[M] m[J]\n"
        "state: h[D]\nh = tanh(W @ prev(h) + U @ x + A @ c)\n"
        "loss = -y.T @ log_softmax(V @ h) - m.T @ log_softmax(Q @ h)",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x) + x["c"] @ p["A"].T)},
        lambda L, p, s, h, x, y: (_ce(L, h["h"] @ p["V"].T, y["y"])
                                  + _ce(L, h["h"] @ p["Q"].T, y["m"])),
        sizes={"D": 3, "N": 2, "K": 4, "M": 3, "J": 2}),
    "two inputs, two float targets, two states": Case(
        "params: W[D,D] U[D,N] A[E,K] B[E,D] V[M,D] Q[J,E]\ninput: x[N] c[K]\ntarget: y[M] m[J]\n"
        "state: h[D] s[E]\nh = tanh(W @ prev(h) + U @ x)\n"
        "s = sigmoid(A @ c + B @ prev(h)) * prev(s)\n"
        "loss = 0.5 * (V @ h - y).T @ (V @ h - y) + m.T @ (Q @ s)",
        lambda L, p, s, x: {"h": L.tanh(_pre(p, s, x)),
                            "s": L.sigmoid(x["c"] @ p["A"].T + s["h"] @ p["B"].T) * s["s"]},
        lambda L, p, s, h, x, y: 0.5 * ((h["h"] @ p["V"].T - y["y"]) ** 2).sum()
        + (y["m"] * (h["s"] @ p["Q"].T)).sum(),
        sizes={"D": 3, "E": 2, "N": 2, "K": 4, "M": 3, "J": 2}, labels=False),
}


@functools.lru_cache(maxsize=None)
def _derive(name):
    try:
        return symrnn.derive(symrnn.parse_cell(CASES[name].text))
    except NotImplementedError as e:
        if CASES[name].needs and CASES[name].needs in str(e):
            return e
        raise


def derivation(name):
    d = _derive(name)
    if isinstance(d, Exception):
        pytest.skip(f"the derivation does not support {CASES[name].needs} here: {d}")
    return d


def problem(name, T, B, seed=0):
    """Parameters (columns 1-D), per-step rows (T, B, r) by name, labels (T, B)
    or float targets, initial states (B, r): NumPy arrays."""
    case, cell = CASES[name], derivation(name).cell
    rng = np.random.default_rng(seed)

    def size(d):
        return int(d) if d.is_Integer else case.sizes[str(d)]
    params = {p.name: rng.normal(size=(size(p.shape[0]),) if p.shape[1] == 1
                                 else (size(p.shape[0]), size(p.shape[1]))) * 0.6
              for p in cell.params}
    xs = {v.name: rng.normal(size=(T, B, size(v.shape[0]))) for v in cell.inputs}
    if case.labels:
        ys = {v.name: rng.integers(0, size(v.shape[0]), size=(T, B)) for v in cell.targets}
    else:
        ys = {v.name: rng.normal(size=(T, B, size(v.shape[0]))) for v in cell.targets}
    starts = {s.name: rng.normal(size=(B, size(s.shape[0]))) * 0.5 for s in cell.states}
    return params, xs, ys, starts


def by_hand(L, case, p, xs, ys, starts):
    """The summed loss of the hand-written forward pass; ys as rows (one-hot labels)."""
    prev, total = dict(starts), 0.0
    for t in range(len(next(iter(xs.values())))):
        x = {k: v[t] for k, v in xs.items()}
        y = {k: v[t] for k, v in ys.items()}
        now = case.step(L, p, prev, x)
        total = total + case.loss(L, p, prev, now, x, y)
        prev = now
    return total


def _one_or_dict(values):
    return next(iter(values.values())) if len(values) == 1 else values


# -- PyTorch -------------------------------------------------------------------------
def torch_module(name):
    case = CASES[name]
    sizes = {k: v for k, v in case.sizes.items()
             if k in {str(s) for p in derivation(name).cell.params for s in p.shape}}
    return derivation(name).torch(sizes, dtype=F64)


@pytest.mark.parametrize("T", [1, 4])
@pytest.mark.parametrize("name", list(CASES))
def test_torch_agrees_with_autograd_of_a_forward_by_hand(name, T):
    case, B = CASES[name], 2
    params, xs, ys, starts = problem(name, T, B)
    m = torch_module(name)
    with torch.no_grad():
        for k, p in m.named_parameters():
            p.copy_(torch.as_tensor(params[k]))
    x = {k: torch.tensor(v, requires_grad=True) for k, v in xs.items()}
    y = {k: torch.tensor(v) for k, v in ys.items()}
    h0 = {f"{k}0": torch.tensor(v, requires_grad=True) for k, v in starts.items()}
    loss = m(_one_or_dict(x), _one_or_dict(y), **h0)
    loss.backward()

    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x_ref = {k: v.detach().clone().requires_grad_() for k, v in x.items()}
    s_ref = {k: torch.tensor(v, requires_grad=True) for k, v in starts.items()}
    rows = {k: torch.nn.functional.one_hot(v, m.get_parameter(_head(name, k)).shape[0]).to(F64)
            if case.labels else v for k, v in y.items()}
    want = by_hand(TORCH, case, p, x_ref, rows, s_ref)
    want.backward()
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(want.item(), rel=1e-12, abs=1e-12)
    for mine, theirs, k in ([(q, p[k], k) for k, q in m.named_parameters()]
                            + [(h0[f"{k}0"], s_ref[k], k + "0") for k in starts]
                            + [(x[k], x_ref[k], k) for k in xs]):
        assert torch.allclose(_grad(mine), _grad(theirs), rtol=1e-10, atol=1e-12), k


def _grad(v):
    """A tensor's gradient; zeros where nothing reached it (W when T = 1 and the
    loss reads only h^(0))."""
    return torch.zeros_like(v) if v.grad is None else v.grad


def _head(name, target):
    """The parameter whose rows are the classes of ``target`` (its output layer)."""
    return {"y": "sizes" if "sizes" in CASES[name].text else "V", "m": "Q"}[target]


def test_torch_takes_several_inputs_batch_first_and_one_sequence():
    name = "two inputs, two label targets"
    params, xs, ys, starts = problem(name, 3, 2, seed=1)
    m = torch_module(name)
    first = derivation(name).torch(D=3, N=2, K=4, M=3, J=2, dtype=F64, batch_first=True)
    first.load_state_dict(m.state_dict())
    x = {k: torch.tensor(v) for k, v in xs.items()}
    y = {k: torch.tensor(v) for k, v in ys.items()}
    base = m(x, y).item()
    assert first({k: v.transpose(0, 1) for k, v in x.items()},
                 {k: v.transpose(0, 1) for k, v in y.items()}).item() == pytest.approx(base)
    one = m({k: v[:, 0] for k, v in x.items()}, {k: v[:, 0] for k, v in y.items()}).item()
    assert one == pytest.approx(m({k: v[:, :1] for k, v in x.items()},
                                  {k: v[:, :1] for k, v in y.items()}).item())


@pytest.mark.parametrize("x, y, message", [
    (lambda x: {"x": x["x"]}, lambda y: y,
     r"^x: missing 'c'; expected a dict with the keys 'x', 'c'$"),
    (lambda x: x["x"], lambda y: y, r"^x: expected a dict with the keys 'x', 'c', got a Tensor$"),
    (lambda x: dict(x, z=x["x"]), lambda y: y, r"^x: unexpected key 'z'"),
    (lambda x: dict(x, c=x["c"][..., :3]), lambda y: y,
     r"^x\['c'\]: shape \(3, 2, 3\) does not fit \(T, B, K\): K = 3 here but K = 4"),
    (lambda x: dict(x, c=x["c"][:, 0]), lambda y: y, r"^x\['c'\]: expected 3 dimension\(s\)"),
    (lambda x: x, lambda y: dict(y, m=y["m"] + 2), r"^y\['m'\]: label 2 at index \(0, 0\) is "
                                                  r"not a class in 0..1 \(J = 2\)$"),
])
def test_torch_names_the_input_or_target_that_is_wrong(x, y, message):
    name = "two inputs, two label targets"
    params, xs, ys, _ = problem(name, 3, 2)
    m = torch_module(name)
    xt = {k: torch.tensor(v) for k, v in xs.items()}
    yt = {k: torch.zeros_like(torch.tensor(v)) for k, v in ys.items()}
    with pytest.raises(ValueError, match=message):
        m(x(xt), y(yt))


def test_a_size_named_B_leaves_the_name_B_prime_to_the_batch_axis():
    name = "a size named B"
    params, xs, ys, _ = problem(name, 3, 2)
    with pytest.raises(ValueError, match=r"^y: shape \(3, 5\) does not fit \(T, B'\): "
                                         r"B' = 5 here but B' = 2 from x$"):
        torch_module(name)(torch.tensor(xs["x"]), torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^x: shape \(3, 3, 2\) does not fit \(T, N, B'\): "
                                         r"N = 3 here but N = 2 from params\['U'\]$"):
        jax_function(name)(params, np.zeros((3, 3, 2)), ys["y"])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "uint16", "uint32", "uint64"])
def test_torch_checks_labels_of_any_integer_type_before_converting_them(dtype):
    if not hasattr(torch, dtype):
        pytest.skip("this torch has no such dtype")
    name = "loss of prev(h)"
    params, xs, ys, _ = problem(name, 3, 2)
    m = torch_module(name)
    x = torch.tensor(xs["x"])
    want = m(x, torch.tensor(ys["y"])).item()
    labels = ys["y"].astype(dtype)
    assert m(x, torch.from_numpy(labels)).item() == pytest.approx(want, rel=1e-14)
    # the largest value of the type: for the unsigned ones, a negative number
    # when read as the signed type of the same width (2**63 - 1 + 1 for uint64)
    top = np.iinfo(dtype).max
    labels[1, 1] = top
    with pytest.raises(ValueError, match=rf"^y: label {top} at index \(1, 1\) is not a class "
                                         r"in 0..2 \(M = 3\)$"):
        m(x, torch.from_numpy(labels))


# -- JAX -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def jax_function(name):
    return derivation(name).jax()


def _columns(a):
    """(T, B, r) rows as the API's (T, r, B) columns."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


# every cell with float64 (jax_enable_x64); in JAX's default float32 and at T = 1
# (no step but the last) those where it once mattered: each costs a compilation
JAX_RUNS = ([(name, 4, True) for name in CASES]
            + [(name, 4, False) for name in ("sqrt softplus", "loss of prev(h)",
                                             "a state that never reads prev",
                                             "two inputs, two label targets")]
            + [(name, 1, True) for name in ("sqrt relu", "quadratic loss of prev(h)")])


@pytest.fixture
def x64(request):
    """JAX in float64 (True) or its default float32 (False) for one test."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param)
    yield request.param
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("name, T, x64", [
    pytest.param(*run, id=f"{run[0]}-T{run[1]}-{'x64' if run[2] else 'float32'}")
    for run in JAX_RUNS], indirect=["x64"])
def test_jax_agrees_with_jax_grad_of_a_forward_by_hand(name, T, x64):
    case, B = CASES[name], 2
    params, xs, ys, starts = problem(name, T, B)
    f = jax_function(name)
    dtype = jnp.float64 if x64 else jnp.float32
    x = _one_or_dict({k: _columns(v) for k, v in xs.items()})
    y = _one_or_dict({k: v if case.labels else _columns(v) for k, v in ys.items()})
    h0 = {f"{k}0": v.T for k, v in starts.items()}
    loss, (g, gx, gs) = jax.jit(jax.value_and_grad(
        lambda p, x, h0: f(p, x, y, **h0), argnums=(0, 1, 2)))(params, x, h0)

    def ref(p, x, s):
        rows = {k: jax.nn.one_hot(v, params[_head(name, k)].shape[0], dtype=dtype)
                if case.labels else jnp.asarray(v, dtype) for k, v in ys.items()}
        return by_hand(JAX, case, p, x, rows, s)
    cast = functools.partial(jax.tree_util.tree_map, lambda a: jnp.asarray(a, dtype))
    want, (w, wx, ws) = jax.jit(jax.value_and_grad(ref, argnums=(0, 1, 2)))(
        cast(params), cast(xs), cast(starts))
    tol = dict(rtol=1e-10, atol=1e-12) if x64 else dict(rtol=2e-4, atol=2e-5)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), float(want), **tol)
    assert set(g) == set(params)
    for k in params:
        assert g[k].dtype == dtype
        np.testing.assert_allclose(g[k], w[k], err_msg=k, **tol)
    for k, v in (gx.items() if isinstance(gx, dict) else [(next(iter(xs)), gx)]):
        np.testing.assert_allclose(v, _columns(np.asarray(wx[k])), err_msg=k, **tol)
    for k in h0:
        np.testing.assert_allclose(gs[k], np.asarray(ws[k[:-1]]).T, err_msg=k, **tol)


@pytest.mark.parametrize("x64", [False, True], indirect=True, ids=["float32", "x64"])
@pytest.mark.parametrize("dtype, bad", [
    ("int64", 2 ** 32),                 # float32 JAX converts to int32: would be class 0
    ("int64", -2 ** 32 * 3 + 1),        # would be class 1
    ("uint64", 2 ** 63),
    ("uint32", 2 ** 31),
    ("list", 2 ** 40),
])
def test_jax_checks_labels_before_converting_them(dtype, bad, x64):
    # a label that 32-bit JAX (its default) would wrap to a class is refused, as
    # by the NumPy function, in both modes
    name = "loss of prev(h)"
    params, xs, ys, _ = problem(name, 3, 2)
    f = jax_function(name)
    y = ys["y"].astype(object if dtype == "list" else dtype)
    y[1, 0] = bad
    with pytest.raises(ValueError, match=rf"^y: label {bad} at index \(1, 0\) is not a class "
                                         r"in 0..2 \(M = 3\)$"):
        f(params, _columns(xs["x"]), y.tolist() if dtype == "list" else y)


@pytest.mark.parametrize("x64", [False, True], indirect=True, ids=["float32", "x64"])
def test_jax_takes_labels_of_an_unsigned_type(x64):
    name = "loss of prev(h)"
    params, xs, ys, _ = problem(name, 3, 2)
    f = jax.jit(jax_function(name))
    x = _columns(xs["x"])
    assert float(f(params, x, ys["y"].astype(np.uint64))) == pytest.approx(
        float(f(params, x, ys["y"])), rel=1e-6)


def test_jax_refuses_a_masked_array_and_names_inputs_by_key():
    name = "two inputs, two float targets, two states"
    params, xs, ys, _ = problem(name, 3, 2)
    f = jax_function(name)
    x = {k: _columns(v) for k, v in xs.items()}
    y = {k: _columns(v) for k, v in ys.items()}
    masked = dict(x, c=np.ma.masked_less(x["c"], 0))
    with pytest.raises(ValueError, match=r"^x\['c'\]: a masked array; its mask would be ignored"):
        f(params, masked, y)
    with pytest.raises(ValueError,
                       match=r"^y: missing 'm'; expected a dict with the keys 'y', 'm'$"):
        f(params, x, {"y": y["y"]})
    with pytest.raises(ValueError, match=r"^y\['m'\]: shape \(3, 3, 2\) does not fit \(T, J, B\)"):
        f(params, x, dict(y, m=y["y"]))
    with pytest.raises(ValueError,
                       match=r"^x: expected a dict with the keys 'x', 'c', got a ndarray"):
        f(params, x["x"], y)


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_powers_of_matrices(library):
    # W^3 and (W^T)^2 of a parameter, and the square of a per-step 1 x 1 value,
    # as the compiler evaluates them, against NumPy's matrix_power
    from sympy import MatMul, MatPow, MatrixSymbol, Symbol
    from symrnn.backends.expressions import Compiler
    from symrnn.backends.namespaces import JaxNamespace, TorchNamespace
    from symrnn.model.nodes import StepVar
    D = Symbol("D")
    W, w, h = MatrixSymbol("W", D, D), MatrixSymbol("w", 1, D), StepVar("h", Symbol("t"), D, 1)
    rng = np.random.default_rng(0)
    values = {"W": rng.normal(size=(3, 3)), "w": rng.normal(size=(1, 3)),
              "h": rng.normal(size=(4, 3))}
    if library == "torch":
        xp, array = TorchNamespace(torch, F64, "cpu"), torch.tensor
    else:
        xp, array = JaxNamespace(jnp, jax.lax, jnp.float32), jnp.asarray
    compiler = Compiler(lambda leaf: lambda env: env["h"])
    env = {"_xp": xp, "_sizes": {"D": 3}, **{k: array(v) for k, v in values.items()}}
    cube, square = compiler.compile(MatPow(W, 3)), compiler.compile(MatPow(W.T, 2))
    scalar = compiler.compile(MatPow(MatMul(w, h), 2))
    for name, fn in compiler.constants.values():  # in order: W W^T before W^T W^T
        env[name] = fn(env)
    tol = dict(rtol=1e-12) if library == "torch" else dict(rtol=1e-5)
    np.testing.assert_allclose(np.asarray(cube(env)), np.linalg.matrix_power(values["W"], 3), **tol)
    np.testing.assert_allclose(np.asarray(square(env)),
                               np.linalg.matrix_power(values["W"].T, 2), **tol)
    np.testing.assert_allclose(np.asarray(scalar(env)), (values["h"] @ values["w"].T) ** 2, **tol)


def _scans(jaxpr):
    """The scan equations of a jaxpr, those of its sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            yield eqn
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (list, tuple)) else [v]):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _scans(getattr(inner, "jaxpr", inner))


def test_jax_unroll_unrolls_the_scans():
    name = "loss of prev(h)"
    params, xs, ys, _ = problem(name, 4, 2)
    x = _columns(xs["x"])
    for unroll, steps in ((False, {1}), (True, {3, 4})):  # backward: T-1 steps, forward: T
        f = derivation(name).jax(unroll=unroll)
        graph = jax.make_jaxpr(jax.grad(f))(params, x, ys["y"])
        assert {e.params["unroll"] for e in _scans(graph.jaxpr)} == steps
