"""Bad input gets one ValueError whose message starts with the argument's name,
from the lambdified function, from its ``loss``, and from the standalone module."""
import functools
import sys

import numpy as np
import pytest

import symrnn
from conftest import derivation, gradient_function
from symrnn.check import check
from symrnn.codegen.lambdify import module_source

D, N, M, T = 3, 2, 4, 5


def good(bias=False, B=None):
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(D, D)), "U": rng.normal(size=(D, N)),
              "V": rng.normal(size=(M, D))}
    if bias:
        params.update(b=rng.normal(size=D), c=rng.normal(size=M))
    extra = () if B is None else (B,)
    return params, rng.normal(size=(T, N) + extra), rng.normal(size=(T, M) + extra)


@functools.lru_cache(maxsize=None)
def standalone(**model):
    """The module ``symrnn codegen`` writes, run with symrnn and sympy unimportable."""
    namespace = {"__name__": "standalone"}
    blocked = {name: sys.modules.get(name) for name in ("symrnn", "sympy")}
    try:
        sys.modules.update(dict.fromkeys(blocked))  # None: "import symrnn" fails
        exec(compile(module_source(derivation(**model)), "<standalone>", "exec"), namespace)
    finally:
        sys.modules.update(blocked)
    return namespace


def functions(model):
    f = gradient_function(**model)
    module = standalone(**model)
    return [f, f.loss, module["loss_and_gradients"], module["loss"]]


def raises(model, prefix, params, x, y, **initial):
    """Every function of ``model`` rejects the arguments with a message ``prefix: ...``."""
    messages = []
    for fn in functions(model):
        with pytest.raises(ValueError) as info:
            fn(params, x, y, **initial)
        message = str(info.value)
        assert message.startswith(prefix + ": "), message
        assert "\n" not in message
        messages.append(message)
    assert len(set(messages)) == 1  # the same message from the module as from symrnn
    return messages[0]


def test_w_not_square():
    params, x, y = good()
    params["W"] = np.zeros((D, D + 1))
    message = raises(dict(output="mse"), "params['W']", params, x, y)
    assert "(3, 4)" in message and "D" in message


@pytest.mark.parametrize("name, shape, bias, blamed, mentions", [
    ("U", (D, N + 1), False, "x", "params['U']"),        # N from U does not fit x
    ("V", (M + 1, D), False, "y", "params['V']"),        # M from V does not fit y
    ("V", (M + 1, D), True, "params['c']", "params['V']"),
    ("U", (D + 1, N), True, "params['U']", "params['W']"),
    ("b", (D + 1,), True, "params['b']", "params['W']"),
    ("c", (M, 2), True, "params['c']", "dimension"),   # (M, 1) is the column too
    ("V", (M, D, 1), True, "params['V']", "dimension"),
])
def test_parameter_shapes_that_do_not_fit(name, shape, bias, blamed, mentions):
    params, x, y = good(bias=bias)
    params[name] = np.zeros(shape)
    message = raises(dict(output="mse", bias=bias), blamed, params, x, y)
    assert mentions in message


@pytest.mark.parametrize("case", ["y steps", "y batch", "y unbatched", "x 1-D", "x 4-D",
                                  "h0 size", "h0 batch", "h0 3-D", "y 1-D floats"])
def test_sequence_shapes_that_do_not_fit(case):
    params, x, y = good(B=2)
    h0 = None
    prefix = case.split()[0]
    if case == "y steps":
        y = y[:-1]
    elif case == "y batch":
        y = y[:, :, :1]
    elif case == "y unbatched":
        y = y[:, :, 0]
    elif case == "x 1-D":
        x = x[:, 0, 0]
    elif case == "x 4-D":
        x = x[..., None]
    elif case == "h0 size":
        h0 = np.zeros(D + 1)
    elif case == "h0 batch":
        h0 = np.zeros((D, 3))
    elif case == "h0 3-D":
        h0 = np.zeros((D, 2, 1))
    else:
        x, y = x[:, :, 0], y[:, 0, 0]
    model = dict(output="softmax_ce" if case == "y 1-D floats" else "mse")
    message = raises(model, prefix, params, x, y, **({} if h0 is None else {"h0": h0}))
    if case == "y 1-D floats":
        assert "integers" in message  # labels must be integers


def test_zero_time_steps():
    params, x, y = good()
    for model in (dict(), dict(output="mse")):
        message = raises(model, "x", params, x[:0], y[:0])
        assert "T = 0" in message
    message = raises(dict(), "x", params, x[:0], np.zeros(0, dtype=int))
    assert "T = 0" in message
    with pytest.raises(ValueError, match=r"^T: "):
        derivation().verify(0)
    with pytest.raises(ValueError, match=r"^T: "):
        check(symrnn.ElmanRNN(), T=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["W", "U", "V", "b", "c", "x", "y", "h0"])
def test_nan_or_inf_in_any_array(where, bad):
    params, x, y = good(bias=True)
    h0 = np.zeros(D)
    target = {"x": x, "y": y, "h0": h0}.get(where, params.get(where))
    target.flat[-1] = bad
    prefix = where if where in ("x", "y", "h0") else f"params[{where!r}]"
    message = raises(dict(output="upstream", bias=True), prefix, params, x, y, h0=h0)
    assert ("NaN" if bad != bad else "Inf") in message
    assert str(tuple(int(i) for i in np.unravel_index(target.size - 1, target.shape))) in message


def test_huge_finite_values_are_not_mistaken_for_inf():
    # the quick finiteness test overflows at 1e154; the exact test then passes them
    # (tanh saturates at +-1, so everything stays finite here)
    f = gradient_function(output="upstream")
    params, x, y = good()
    x[0, 0] = 1e200
    loss, grads = f(params, x, y)
    assert np.isfinite(loss)
    assert all(np.isfinite(g).all() for g in grads.values())
    assert f.loss(params, x, y) == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("case", ["missing", "extra", "not a dict", "None"])
def test_params_that_are_not_the_parameters(case):
    params, x, y = good(bias=True)
    if case == "missing":
        del params["c"]
    elif case == "extra":
        params["h0"] = np.zeros(D)
    elif case == "not a dict":
        params = list(params.values())
    else:
        params = None
    message = raises(dict(bias=True), "params", params, x, y[:, 0].astype(int) % M)
    assert {"missing": "'c'", "extra": "'h0'", "not a dict": "list",
            "None": "NoneType"}[case] in message
    assert "'W', 'U', 'V', 'b', 'c'" in message


@pytest.mark.parametrize("value, words", [
    (None, "None"), ("abc", "text"), ([[1, 2], [3]], "list"), (np.ones((T, N)) * 1j, "complex"),
])
def test_values_that_are_not_real_numbers(value, words):
    params, x, y = good()
    message = raises(dict(output="mse"), "x", params, value, y)
    assert words in message
    message = raises(dict(output="mse"), "params['U']", dict(params, U=value), x, y)
    assert words in message


def test_labels_out_of_range():
    params, x, _ = good()
    for labels, shown in ((np.array([0, 1, M, 2, 3]), f"label {M}"),
                          (np.array([0, -1, 2, 2, 3]), "label -1")):
        message = raises(dict(), "y", params, x, labels)
        assert shown in message and f"0..{M - 1}" in message


@pytest.mark.parametrize("argument, kwargs", [
    ("activation", dict(activation="swish")), ("output", dict(output="hinge")),
    ("bias", dict(bias="yes"))])
def test_unknown_model_options(argument, kwargs):
    with pytest.raises(ValueError) as info:
        symrnn.ElmanRNN(**kwargs)
    message = str(info.value)
    assert message.startswith(argument + ": ")
    assert repr(next(iter(kwargs.values()))) in message


def test_a_failed_call_does_not_disturb_the_next():
    # the runtime remembers the shapes of the last call that fit: a call whose
    # shapes differ is checked again, and the range of labels is checked every time
    f = gradient_function()
    params, x, _ = good()
    labels = np.arange(T) % M
    loss, _ = f(params, x, labels)
    with pytest.raises(ValueError, match=r"^x: "):
        f(dict(params, U=np.zeros((D, N + 1))), x, labels)
    with pytest.raises(ValueError, match=r"^y: label"):
        f(params, x, labels + 1)
    with pytest.raises(ValueError, match=r"^params\['W'\]: contains NaN"):
        f(dict(params, W=np.full((D, D), np.nan)), x, labels)
    assert f(params, x, labels)[0] == loss
    with pytest.raises(ValueError, match=r"^x: "):
        f(params, np.zeros((T, N + 1)), labels)
    assert f(params, x, labels)[0] == loss


# -- issue 21: masked arrays, and the two shapes of a column parameter -----------------

@pytest.mark.parametrize("where", ["x", "y", "params['W']", "params['b']", "h0"])
def test_a_masked_array_is_refused_not_read_under_its_mask(where):
    params, x, y = good(bias=True)
    initial = {"h0": np.zeros(D)}
    masked = lambda a: np.ma.masked_array(a, mask=np.zeros(np.shape(a), bool) | (a > 1))
    if where == "x":
        x = masked(x)
    elif where == "y":
        y = masked(y)
    elif where == "h0":
        initial["h0"] = masked(np.full(D, 2.0))
    else:
        key = where[8:-2]
        params[key] = masked(params[key])
    message = raises(dict(output="mse", bias=True), where, params, x, y, **initial)
    assert "a masked array; its mask would be ignored" in message


def test_integer_labels_in_a_masked_array_are_refused():
    params, x, _ = good()
    labels = np.ma.masked_array(np.zeros(T, dtype=int), mask=[1] + [0] * (T - 1))
    assert "masked array" in raises({}, "y", params, x, labels)


def test_a_column_parameter_is_accepted_as_d_or_d_by_1():
    # b[D] and c[M] (also [D, 1]): "an array of that shape", either way
    params, x, y = good(bias=True)
    for fn in functions(dict(output="mse", bias=True))[::2]:
        loss, grads = fn(params, x, y)
        columns = dict(params, b=params["b"][:, None], c=params["c"].reshape(M, 1).tolist())
        for _ in range(2):   # the second call takes the plan of the first
            loss2, grads2 = fn(columns, x, y)
            assert loss2 == loss and grads2["b"].shape == (D, 1) and grads2["c"].shape == (M, 1)
            assert np.array_equal(grads2["b"][:, 0], grads["b"])
            assert np.array_equal(grads2["c"][:, 0], grads["c"]) and grads["c"].shape == (M,)
        assert fn.__name__ and (fn(params, x, y)[1]["b"].shape == (D,))
