"""The Numba backend's own exp, tanh and sigmoid (symrnn/ops.py: a range
reduction, a Taylor polynomial and 2^k built from its bits, written so that
LLVM can vectorise them) against mpmath at 50 digits, in ulps of the correctly
rounded result: over the whole range where the result is finite and nonzero,
where it is subnormal, at 0 and +-inf, and NaN. Both as plain Python and
compiled the way the generated module compiles them."""
import math

import mpmath
import numpy as np
import pytest

from symrnn import ops
from test_ops import compiled_scalar_kernels

pytestmark = pytest.mark.numba

# exp is rounded once (0.88 ulp at worst here); tanh = e / (e + 2) with e = expm1(2v)
# and sigmoid = 1 / (1 + e) add roundings (libm's expm1 in the same formula: 2.42)
ULPS = {"Exp": 1.0, "Tanh": 2.5, "Sigmoid": 2.5}
TINY = 2.2250738585072014e-308        # the smallest normal float64


def ulp(value):
    return math.ulp(abs(value)) if abs(value) >= TINY else 5e-324


def exact_exp(v):
    return mpmath.exp(mpmath.mpf(v))


def exact_tanh(v):
    return mpmath.tanh(mpmath.mpf(v))


def exact_sigmoid(v):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(v)))


EXACT = {"Exp": exact_exp, "Tanh": exact_tanh, "Sigmoid": exact_sigmoid}


def grid():
    rng = np.random.default_rng(13)
    return np.concatenate([
        np.linspace(-760.0, 720.0, 4001),                 # through both ends of exp
        rng.standard_normal(3000) * 4,                     # where the cells live
        rng.uniform(-745.2, -708.0, 500),                  # exp's subnormal results
        np.ldexp(1.0, np.arange(-1074, 10, 7)),            # tiny to large, both signs
        -np.ldexp(1.0, np.arange(-1074, 10, 7)),
        [0.0, -0.0, 5e-324, 1e-300, 1e-17, 0.34657359, 0.34657360, -0.34657360,
         709.782712893384, 709.7827128933841, -708.3964185322641, -745.1332191019411,
         -745.1332191019412, 700.0, -700.0, 19.06, -19.06, 20.0, 20.5, -20.5],
    ])


def worst_ulps(f, exact, xs):
    worst = 0.0
    with mpmath.workdps(50):
        for v in xs:
            got, want = f(float(v)), exact(float(v))
            rounded = float(want)
            if rounded == 0.0 or math.isinf(rounded):
                assert got == rounded, (v, got, rounded)
                continue
            worst = max(worst, float(abs(mpmath.mpf(got) - want) / ulp(rounded)))
    return worst


@pytest.mark.parametrize("name", sorted(EXACT))
def test_python_kernels_within_two_ulps(name):
    f = {op.__name__: op for op in ops.OPERATIONS.values()}[name].kernels["numba"]
    with np.errstate(over="ignore"):
        assert worst_ulps(f, EXACT[name], grid()) <= ULPS[name]


@pytest.fixture(scope="module")
def compiled():
    return compiled_scalar_kernels(pytest.importorskip("numba"))


@pytest.mark.parametrize("name", sorted(EXACT))
def test_compiled_kernels_within_two_ulps(name, compiled):
    assert worst_ulps(compiled[name], EXACT[name], grid()) <= ULPS[name]


@pytest.mark.parametrize("name", sorted(EXACT))
def test_infinities_and_nan(name, compiled):
    f = compiled[name]
    want = {"Exp": (math.inf, 0.0), "Tanh": (1.0, -1.0), "Sigmoid": (1.0, 0.0)}[name]
    assert (f(math.inf), f(-math.inf)) == want
    assert math.isnan(f(math.nan))


def test_signed_zero_and_tiny_arguments_of_tanh(compiled):
    # tanh(v) = v to the last bit for |v| < 2^-26 (no cancellation through expm1)
    for v in (1e-300, -1e-300, 1e-10, -3e-9, 5e-324):
        assert compiled["Tanh"](v) == v
