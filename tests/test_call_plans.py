"""The plans of the public call (runtime.py: a call like an earlier one that passed
the full checks skips the shape checks): every call still tests every entry, and a
planned call gives the numbers of the full path, bit for bit."""
import numpy as np
import pytest

import symrnn
from symrnn.codegen.lambdify import module_source


def fresh(cell):
    """The generated module's public function and its kernel, with no plans yet."""
    ns = {}
    exec(compile(module_source(symrnn.derive(cell)), "<test>", "exec"), ns)
    return ns["loss_and_gradients"], ns


def problem(cell, D=3, N=2, M=4, T=5, B=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    params = {}
    for p in cell.params:
        shape = tuple({"D": D, "N": N, "M": M}[str(s)] for s in p.shape if str(s) != "1")
        params[p.name] = rng.normal(size=shape) / 2
    x = rng.normal(size=(T,) + lead + (N,))
    y = np.eye(M)[rng.integers(0, M, size=(T,) + lead)]
    starts = {s.name + "0": rng.normal(size=lead + (D,)) for s in cell.states}
    return params, x, y, starts


def same(a, b):
    """Both results exactly equal: (loss, {name: gradient})."""
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        assert a[1][k].shape == b[1][k].shape and np.array_equal(a[1][k], b[1][k]), k


CASES = {  # cell, batch, layout, labels
    "elman": (symrnn.ElmanRNN(), None, "TNB", False),
    "elman labels": (symrnn.ElmanRNN(), None, "TNB", True),
    "lstm TBN": (symrnn.LSTM(), 3, "TBN", False),
    "lstm TNB labels": (symrnn.LSTM(), 3, "TNB", True),
    "gru TNB": (symrnn.GRU(), 2, "TNB", False),
}


def arguments(case, seed=0):
    cell, B, layout, labels = CASES[case]
    params, x, y, starts = problem(cell, B=B, seed=seed)
    if labels:
        y = y.argmax(-1)
    if layout == "TNB" and B is not None:
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
        if not labels:
            y = np.ascontiguousarray(y.transpose(0, 2, 1))
        starts = {k: np.ascontiguousarray(v.T) for k, v in starts.items()}
    return params, x, y, starts, layout


@pytest.mark.parametrize("case", list(CASES))
def test_a_planned_call_gives_the_numbers_of_the_full_path(case):
    f, _ = fresh(CASES[case][0])
    params, x, y, starts, layout = arguments(case)
    first = f(params, x, y, layout=layout, **starts)   # full checks; makes the plan
    same(f(params, x, y, layout=layout, **starts), first)   # the plan
    # other arrays of the same shapes: the plan, with their numbers
    params2, x2, y2, starts2, _ = arguments(case, seed=1)
    g, _ = fresh(CASES[case][0])
    same(f(params2, x2, y2, layout=layout, **starts2), g(params2, x2, y2, layout=layout, **starts2))


@pytest.mark.parametrize("case", list(CASES))
def test_nan_written_in_place_after_a_planned_call_is_caught(case):
    f, _ = fresh(CASES[case][0])
    params, x, y, starts, layout = arguments(case)
    named = [(f"params[{k!r}]", v) for k, v in params.items()] + [("x", x)]
    named += [] if y.dtype.kind == "i" else [("y", y)]
    named += list(starts.items())
    for bad in (np.nan, np.inf, -np.inf):
        for label, a in named:
            f(params, x, y, layout=layout, **starts)
            f(params, x, y, layout=layout, **starts)   # planned
            where = tuple(s - 1 for s in a.shape)
            keep, a[where] = a[where], bad
            what = "NaN" if bad != bad else "Inf" if bad > 0 else "-Inf"
            with pytest.raises(ValueError, match=rf"^{label}: contains {what} at index "
                                                 rf"\({', '.join(map(str, where))},?\)".replace(
                                                     "[", r"\[").replace("]", r"\]")):
                f(params, x, y, layout=layout, **starts)
            a[where] = keep


def test_a_label_out_of_range_after_a_planned_call_is_caught():
    f, _ = fresh(symrnn.ElmanRNN())
    params, x, y, starts = problem(symrnn.ElmanRNN())
    for dtype in (np.int64, np.int32, np.uint8, np.int8):
        labels = y.argmax(-1).astype(dtype)
        reference = f(params, x, y, **starts)
        same(f(params, x, labels, **starts), reference)
        same(f(params, x, labels, **starts), reference)   # planned
        for bad in (4, 250) + ((-1, -128) if np.dtype(dtype).kind == "i" else ()):
            if bad > np.iinfo(dtype).max:
                continue
            k = labels.copy()
            f(params, x, k, **starts)
            k[3] = bad
            with pytest.raises(ValueError, match=rf"^y: label {bad} at index \(3,\) is not a "
                                                 r"class in 0\.\.3 \(M = 4\)$"):
                f(params, x, k, **starts)


def test_other_shapes_after_a_planned_call():
    """Another T and back again: each with its own numbers; a shape that does not
    fit gets its message."""
    f, _ = fresh(symrnn.ElmanRNN())
    results = {}
    for T in (5, 7, 5, 7):
        params, x, y, starts = problem(symrnn.ElmanRNN(), T=T)
        out = f(params, x, y, **starts)
        if T in results:
            same(out, results[T])
        results[T] = out
        g, _ = fresh(symrnn.ElmanRNN())
        same(out, g(params, x, y, **starts))
    params, x, y, starts = problem(symrnn.ElmanRNN(), T=5)
    with pytest.raises(ValueError, match=r"^y: shape \(4, 4\) does not fit \(T, M\): "
                                         r"T = 4 here but T = 5 from x$"):
        f(params, x, y[:4], **starts)
    with pytest.raises(ValueError, match=r"^h0: shape \(4,\) does not fit \(D\): "
                                         r"D = 4 here but D = 3 from params\['W'\]$"):
        f(params, x, y, h0=np.zeros(4))
    with pytest.raises(ValueError, match=r"^params: missing 'V'"):
        f({k: v for k, v in params.items() if k != "V"}, x, y, **starts)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'h1'"):
        f(params, x, y, h1=starts["h0"])


def test_views_subclasses_and_none_after_a_planned_call():
    """Arrays that are not C-contiguous, an ndarray subclass, float32 values and
    h0=None given explicitly: each call is right, NaN still caught."""
    cell = symrnn.ElmanRNN()
    f, _ = fresh(cell)
    params, x, y, starts = problem(cell)
    reference = f(params, x, y, **starts)
    same(f(params, x, y, **starts), reference)
    fortran = {k: np.asfortranarray(v) for k, v in params.items()}  # same key, no buffer
    in_fortran = fresh(cell)[0](fortran, x, y, **starts)  # BLAS may round otherwise
    same(f(fortran, x, y, **starts), in_fortran)
    same(f(fortran, x, y, **starts), in_fortran)
    fortran["W"][0, 1] = np.nan
    with pytest.raises(ValueError, match=r"^params\['W'\]: contains NaN at index \(0, 1\)"):
        f(fortran, x, y, **starts)

    class Sub(np.ndarray):
        pass
    same(f(params, x.view(Sub), y, **starts), reference)
    as32 = f(params, x.astype(np.float32), y, **starts)
    same(f(params, x.astype(np.float32), y, **starts), as32)
    without = f(params, x, y)
    same(f(params, x, y, h0=None), without)
    same(f(params, x, y, h0=None), without)
    same(f(params, x, y), without)
    x[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"^x: contains Inf at index \(0, 0\)"):
        f(params, x, y, h0=None)


def test_positional_initial_states_and_forward():
    cell = symrnn.LSTM()
    f, ns = fresh(cell)
    params, x, y, starts = problem(cell)
    reference = f(params, x, y, **starts)
    same(f(params, x, y, starts["h0"], starts["s0"]), reference)
    same(f(params, x, y, starts["h0"], s0=starts["s0"]), reference)
    loss = ns["loss"]
    assert loss(params, x, y, **starts) == loss(params, x, y, **starts)
    assert loss(params, x, y, **starts) == pytest.approx(reference[0], rel=1e-13)
    x[-1, -1] = np.nan
    with pytest.raises(ValueError, match=r"^x: contains NaN at index \(4, 1\)"):
        loss(params, x, y, **starts)


def test_more_shapes_than_plans_kept():
    """More keys than the plans kept (32): the plans are dropped and made again; every
    call still gives its own numbers."""
    f, _ = fresh(symrnn.ElmanRNN())
    g, _ = fresh(symrnn.ElmanRNN())
    problems = [problem(symrnn.ElmanRNN(), T=T, seed=T) for T in range(1, 41)]
    expected = [g(params, x, y, **starts) for params, x, y, starts in problems]
    for _ in range(2):
        for (params, x, y, starts), out in zip(problems, expected):
            same(f(params, x, y, **starts), out)
