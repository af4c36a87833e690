"""Problem 3: the outputs o^(t) of the RNN feed a second network. That network
back-propagates its loss to g^(t) = dL/do^(t); passed as ``y`` to the RNN with
output="upstream", the RNN's gradients are those of the composed model."""
import numpy as np
import pytest

from conftest import gradient_function
from reference import finite_differences, rel_err

D, N, M, K, T = 3, 2, 4, 2, 5
ACT = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
       "relu": lambda z: np.maximum(z, 0), "identity": lambda z: z}


def rnn_outputs(params, x, h0, activation):
    """o^(t) of the Elman RNN for one sequence x (T, N): (T, M), written by hand."""
    h, out = h0, []
    for x_t in x:
        h = ACT[activation](params["W"] @ h + params["U"] @ x_t + params.get("b", 0))
        out.append(params["V"] @ h + params.get("c", 0))
    return np.array(out)


def head(o, net):
    """The second network on o^(t): q = tanh(A o + a), L2 = sum_t 1/2 |C q - r|^2.
    Returns L2 and dL2/do^(t) for every t, back-propagated by hand."""
    A, a, C, r = net["A"], net["a"], net["C"], net["r"]
    loss, g = 0.0, np.zeros_like(o)
    for t, o_t in enumerate(o):
        q = np.tanh(A @ o_t + a)
        e = C @ q - r[t]
        loss += 0.5 * e @ e
        g[t] = A.T @ ((1 - q * q) * (C.T @ e))
    return loss, g


def setup(seed, bias, B):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(D, D)) / 2, "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D)) / 2}
    if bias:
        params.update(b=rng.normal(size=D), c=rng.normal(size=M))
    net = {"A": rng.normal(size=(K, M)), "a": rng.normal(size=K), "C": rng.normal(size=(3, K)),
           "r": rng.normal(size=(T, 3))}
    extra = () if B is None else (B,)
    return params, net, rng.normal(size=(T, N) + extra), rng.normal(size=(D,) + extra)


def composed_loss(params, h0, x, net, activation):
    """The loss of the second network on the RNN's outputs, summed over the batch."""
    if x.ndim == 2:
        return head(rnn_outputs(params, x, h0, activation), net)[0]
    return sum(head(rnn_outputs(params, x[:, :, i], h0[:, i], activation), net)[0]
               for i in range(x.shape[2]))


def upstream_gradient(params, h0, x, net, activation):
    """g^(t) = dL2/do^(t): (T, M) or (T, M, B), and o^(t) in the same layout."""
    if x.ndim == 2:
        o = rnn_outputs(params, x, h0, activation)
        return head(o, net)[1], o
    pairs = [upstream_gradient(params, h0[:, i], x[:, :, i], net, activation)
             for i in range(x.shape[2])]
    return np.stack([g for g, _ in pairs], axis=2), np.stack([o for _, o in pairs], axis=2)


@pytest.mark.parametrize("batch", [None, 3], ids=["single", "batch"])
@pytest.mark.parametrize("bias", [False, True], ids=["", "bias"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_upstream_gradients_are_the_end_to_end_gradients(activation, bias, batch):
    params, net, x, h0 = setup(len(activation) + 2 * bias + (batch or 0), bias, batch)
    g, o = upstream_gradient(params, h0, x, net, activation)

    # the second network's g^(t) is right: finite differences of its loss in o^(t)
    if batch is None:
        numeric = finite_differences(lambda a: head(a["o"], net)[0], {"o": o})["o"]
        assert rel_err(g, numeric) < 1e-6

    f = gradient_function(activation=activation, output="upstream", bias=bias)
    loss, grads = f(params, x, g, h0=h0)
    assert loss == pytest.approx(float((g * o).sum()), rel=1e-12)  # sum_t g^(t) . o^(t)

    end_to_end = finite_differences(
        lambda a: composed_loss({k: a[k] for k in params}, a["h0"], x, net, activation),
        dict(params, h0=h0))
    assert set(grads) == set(end_to_end)
    for k in end_to_end:
        assert grads[k].shape == end_to_end[k].shape, k
        assert rel_err(grads[k], end_to_end[k]) < 1e-6, k


def test_upstream_with_the_squared_error_is_the_mse_output():
    # when the "second network" is 1/2 |o - y|^2, g = o - y: the same gradients as
    # output="mse", derived separately by the engine
    params, _, x, h0 = setup(11, True, None)
    y = np.random.default_rng(12).normal(size=(T, M))
    o = rnn_outputs(params, x, h0, "tanh")
    up_loss, up = gradient_function(output="upstream", bias=True)(params, x, o - y, h0=h0)
    mse_loss, mse = gradient_function(output="mse", bias=True)(params, x, y, h0=h0)
    assert up_loss == pytest.approx(float(((o - y) * o).sum()), rel=1e-12)
    assert mse_loss == pytest.approx(0.5 * float(((o - y) ** 2).sum()), rel=1e-12)
    for k in mse:
        assert rel_err(up[k], mse[k]) < 1e-12, k


def test_upstream_is_linear_in_g():
    # the back-propagated gradients are linear in the gradient passed back
    f = gradient_function(output="upstream")
    params, _, x, h0 = setup(13, False, None)
    rng = np.random.default_rng(14)
    g1, g2 = rng.normal(size=(T, M)), rng.normal(size=(T, M))
    _, a = f(params, x, g1, h0=h0)
    _, b = f(params, x, g2, h0=h0)
    _, both = f(params, x, 2 * g1 - g2, h0=h0)
    for k in both:
        assert rel_err(both[k], 2 * a[k] - b[k]) < 1e-12, k
    _, zero = f(params, x, np.zeros((T, M)), h0=h0)
    assert all(not zero[k].any() for k in zero)
