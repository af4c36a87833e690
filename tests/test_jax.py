"""d.jax(): the loss with the derived BPTT as its jax.custom_vjp. Checked by
jax.test_util.check_grads (finite differences of the function itself) and
against jax.grad of plain hand-written lax.scan forward passes (JAX's own
autodiff), under jax.jit. float64 throughout (jax_enable_x64)."""
import functools
import pathlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import symrnn  # noqa: E402

pytestmark = pytest.mark.jax

TEXT = (pathlib.Path(__file__).parents[1] / "examples" / "rate.cell").read_text()

D, N, M, T, B = 3, 2, 3, 4, 2


@pytest.fixture(autouse=True, scope="module")
def float64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


# -- hand-written forward passes, one column per sequence: (D, B) ------------------
def _ce(V, h, y):
    return -(y * jax.nn.log_softmax(V @ h, axis=0)).sum()


def elman_loss(p, x, y, h0):
    def step(h, xy):
        x_t, y_t = xy
        h = jnp.tanh(p["W"] @ h + p["U"] @ x_t)
        return h, _ce(p["V"], h, y_t)
    return lax.scan(step, h0, (x, y))[1].sum()


def lstm_loss(p, x, y, h0, s0):
    def gate(k, h, x_t, act):
        return act(p["W" + k] @ h + p["U" + k] @ x_t + p["b" + k][:, None])

    def step(carry, xy):
        (h, s), (x_t, y_t) = carry, xy
        f, g, q = (gate(k, h, x_t, jax.nn.sigmoid) for k in ("_f", "_g", "_q"))
        s = f * s + g * gate("", h, x_t, jnp.tanh)
        h = jnp.tanh(s) * q
        return (h, s), _ce(p["V"], h, y_t)
    return lax.scan(step, (h0, s0), (x, y))[1].sum()


def text_loss(p, x, y, h0):
    def step(h, xy):
        x_t, y_t = xy
        k = jax.nn.sigmoid(p["w"] @ h)
        a = jnp.tanh(p["W"] @ h + p["U"] @ x_t + p["b"][:, None])
        h = h + k * (a - h)
        return h, _ce(p["V"], h, y_t)
    return lax.scan(step, h0, (x, y))[1].sum()


CELLS = {"elman": (symrnn.ElmanRNN, elman_loss), "lstm": (symrnn.LSTM, lstm_loss),
         "text": (lambda: symrnn.parse_cell(TEXT, name="rate cell"), text_loss)}


@functools.lru_cache(maxsize=None)
def derivation(name):
    return symrnn.derive(CELLS[name][0]())


@functools.lru_cache(maxsize=None)
def function(name):
    return derivation(name).jax()


def problem(name, seed=0):
    cell = CELLS[name][0]()
    rng = np.random.default_rng(seed)
    sizes = {"D": D, "N": N, "M": M}
    params = {}
    for p in cell.params:
        shape = tuple(sizes.get(str(s), 1) for s in p.shape)
        params[p.name] = jnp.asarray(rng.normal(size=shape[:1] if shape[1] == 1 and shape[0] != 1
                                                else shape)) * 0.5
    x = jnp.asarray(rng.normal(size=(T, N, B)))
    labels = jnp.asarray(rng.integers(0, M, size=(T, B)))
    starts = [jnp.asarray(rng.normal(size=(D, B))) for _ in cell.states]
    return params, x, labels, starts


@pytest.mark.parametrize("name", list(CELLS))
def test_check_grads(name):
    params, x, labels, starts = problem(name)
    f = function(name)
    check_grads(jax.jit(lambda p, x, *s: f(p, x, labels, *s)), (params, x, *starts), order=1,
                modes=["rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(CELLS))
def test_agrees_with_jax_grad_of_a_plain_scan(name):
    params, x, labels, starts = problem(name, seed=1)
    onehot = jax.nn.one_hot(labels, M, axis=1)            # (T, M, B), one column per sequence
    f, ref = function(name), CELLS[name][1]
    loss, (g, g0) = jax.jit(jax.value_and_grad(f, argnums=(0, 3)))(params, x, labels, *starts)
    want, (gw, gw0) = jax.value_and_grad(ref, argnums=(0, 3))(params, x, onehot, *starts)
    assert float(loss) == pytest.approx(float(want), rel=1e-12)
    assert set(g) == set(params)
    for k in params:
        np.testing.assert_allclose(g[k], gw[k], rtol=0, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(g0, gw0, rtol=0, atol=1e-10)


def test_layouts_and_the_numpy_function():
    # one sequence (T, N), shared h0 (D,), one-hot float targets: the same
    # numbers as the generated NumPy function
    params, x, labels, _ = problem("text", seed=2)
    f = function("text")
    fn = derivation("text").lambdify()
    grad = jax.jit(jax.value_and_grad(f, argnums=(0, 3)))
    h0 = np.random.default_rng(3).normal(size=D)
    np_params = {k: np.asarray(v) for k, v in params.items()}
    for xs, ys in ((x[:, :, 0], labels[:, 0]), (x, jax.nn.one_hot(labels, M, axis=1))):
        want, grads = fn(np_params, np.asarray(xs), np.asarray(ys), h0=h0)
        loss, (g, g0) = grad(params, xs, ys, h0)
        assert float(loss) == pytest.approx(want, rel=1e-12)
        for k in params:
            np.testing.assert_allclose(g[k], grads[k], rtol=0, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(g0, grads["h0"], rtol=0, atol=1e-12)


def test_bad_arguments_raise_one_value_error():
    params, x, labels, _ = problem("elman")
    f = function("elman")
    with pytest.raises(ValueError, match=r"^x: shape \(4, 3, 2\) does not fit \(T, N, B\)"):
        f(params, jnp.zeros((T, 3, B)), labels)
    with pytest.raises(ValueError, match=r"^params: missing 'V'"):
        f({"W": params["W"], "U": params["U"]}, x, labels)
    with pytest.raises(ValueError, match=r"^y: label 3 at index \(0, 0\) is not a class in 0..2"):
        f(params, x, labels * 0 + 3)
    with pytest.raises(ValueError, match=r"^h0: expected shape \(D,\) or \(D, B\)"):
        f(params, x, labels, h0=jnp.zeros((1, D, B)))
