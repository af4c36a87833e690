"""What keeps a generated call lean: arrays released after their last use (the peak
memory of a call), and the quick path of the checks with large arrays."""
import tracemalloc

import numpy as np
import pytest

import symrnn
from conftest import gradient_function
from ir_queries import generated, kernel, value
from symrnn.codegen import ir
from symrnn.codegen.emit import NumbaPrinter, NumPyPrinter


def _released_before_backward(f):
    """What ``f`` releases before its second step loop (the backward pass)."""
    loops, out = 0, set()
    for stmt in f.body:
        loops += isinstance(stmt, ir.For)
        if loops == 2:
            return out
        if isinstance(stmt, ir.Release):
            out |= set(stmt.names)
    return out


def test_the_log_softmax_is_released_before_the_backward_pass():
    f = kernel(generated(symrnn.ElmanRNN()))
    assert {ir.Temp("logsoftmax", value("yhat")), ir.Name("o")} <= _released_before_backward(f)


def test_release_prints_del_for_numpy_and_nothing_for_numba():
    body = (ir.assign(ir.Name("a"), ir.Name("x")), ir.Release((ir.Name("a"),)),
            ir.Return((ir.Name("x"),)))
    f = ir.Function(ir.Name("f"), (ir.Name("x"),), body)
    assert NumPyPrinter().doprint(f).splitlines()[2] == "    del a"
    assert NumbaPrinter().doprint(f).splitlines() == ["def f(x):", "    a = x", "    return x"]


def test_peak_memory_of_a_batched_call():
    """Elman with the batch as (T, B, n): at the peak, the states, dL/dz, 1 - h^2 and
    dL/do live (four arrays of T*B*16 numbers); the outputs' log-softmax is gone."""
    T, B, D = 400, 16, 16
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(D, D)) / 4, "U": rng.normal(size=(D, D)),
              "V": rng.normal(size=(D, D))}
    x, y = rng.normal(size=(T, B, D)), np.eye(D)[rng.integers(0, D, (T, B))]
    f = gradient_function()
    f(params, x, y, layout="TBN")
    tracemalloc.start()
    f(params, x, y, layout="TBN")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    one = T * B * D * 8
    assert peak < 4.5 * one, peak / one


def test_quick_path_with_a_large_array():
    """Arrays above the size of the joint finiteness test are tested one by one."""
    f = symrnn.derive(symrnn.ElmanRNN()).lambdify()
    rng = np.random.default_rng(1)
    params = {"W": rng.normal(size=(3, 3)) / 2, "U": rng.normal(size=(3, 2)),
              "V": rng.normal(size=(4, 3))}
    x, y = rng.normal(size=(3000, 2)), np.eye(4)[rng.integers(0, 4, 3000)]
    f(params, x, y)
    x[2999, 1] = np.nan
    with pytest.raises(ValueError, match=r"^x: contains NaN at index \(2999, 1\)"):
        f(params, x, y)
    x[2999, 1] = 0.0
    params["V"][3, 0] = np.inf
    with pytest.raises(ValueError, match=r"^params\['V'\]: contains Inf at index \(3, 0\)"):
        f(params, x, y)
