"""The numerical variant: a small network with concrete numbers, and the gradient entries
a student computes by hand.

The numbers are drawn from short lists (integers and one decimal: 0.5, -1, ...) with a
seed, and drawn again until the problem is well-conditioned: every argument of an
activation at least ``MIN_PRE`` away from 0 (the rectifier's kink) and at most
``MAX_PRE`` (no saturation), and every asked entry at least ``MIN_ENTRY`` in size. The
entries are computed by the engine's generated code (``derivation.lambdify()``) and
cross-checked by central differences of the loss written by hand (``reference.py``);
a disagreement beyond ``AGREE`` is an error, never a question.
"""
from dataclasses import dataclass

import numpy as np

from ..checking.finite_differences import finite_differences
from ..checking.metric import relative_error
from ..derivation import derive
from .reference import forward

__all__ = ["NumericProblem", "numeric_problem", "SIZES", "STEPS"]

SIZES = {"D": 2, "N": 2, "M": 2}
STEPS = 2
WEIGHTS = (-1.0, -0.5, 0.5, 1.0)
INPUTS = (-1.0, 0.5, 1.0, 2.0)
VALUES = (-1.0, -0.5, 0.5, 1.0)          # targets of the squared error
MIN_PRE, MAX_PRE = 0.1, 3.0
MIN_ENTRY, MAX_ENTRY = 0.05, 50.0
AGREE = 1e-6
ATTEMPTS = 500
RELATIVE_TOLERANCE = 0.01               # of an answer, for the quiz
MIN_TOLERANCE = 5e-4


@dataclass
class NumericProblem:
    """A network with numbers: ``params`` (the cell's column forms), ``xs`` (T, N),
    ``ys`` (T, M), ``h0``; ``entries``: [(parameter, (row, column), value,
    finite-difference value, tolerance)], indices from 0 in the cell's layout."""
    params: dict
    xs: np.ndarray
    ys: np.ndarray
    h0: np.ndarray
    entries: list
    loss: float


def _shape(symbol):
    """The array shape of a parameter: (rows, columns), a column vector (rows,)."""
    shape = tuple(int(d.subs({s: SIZES[str(s)] for s in d.free_symbols})) for d in symbol.shape)
    return shape[:1] if shape[1] == 1 else shape


def _draw(choice, cell, rng):
    params = {p.name: rng.choice(WEIGHTS, size=_shape(p)) for p in cell.params}
    N, M = SIZES["N"], SIZES["M"]
    xs = rng.choice(INPUTS, size=(STEPS, N))
    if choice.loss == "cross-entropy" and choice.head == "softmax":
        ys = np.eye(M)[rng.integers(0, M, size=STEPS)]          # one-hot classes
    elif choice.loss == "cross-entropy":
        ys = rng.integers(0, 2, size=(STEPS, M)).astype(float)  # binary labels
    else:
        ys = rng.choice(VALUES, size=(STEPS, M))
    return params, xs, ys, np.zeros(SIZES["D"])


def _conditioned(pre):
    return all(np.all(np.abs(z) >= MIN_PRE) and np.all(np.abs(z) <= MAX_PRE) for z in pre)


def _asked(cell, gradients, rng):
    """One entry of each matrix parameter (the recurrent, the input and the output
    matrices, and a gate's), chosen among those large enough."""
    out = []
    for p in cell.params:
        if p.shape[1] == 1:
            continue                    # a bias: its gradient is a sum of deltas
        g = gradients[p.name]
        good = [i for i in np.ndindex(g.shape) if MIN_ENTRY <= abs(g[i]) <= MAX_ENTRY]
        if not good:
            return None
        out.append((p.name, good[rng.integers(len(good))]))
    return out


def numeric_problem(choice, seed):
    """The ``NumericProblem`` of ``choice`` drawn with ``seed`` (a sequence of ints)."""
    cell = choice.cell()
    engine = derive(cell).lambdify()
    rng = np.random.default_rng(seed)
    for _ in range(ATTEMPTS):
        params, xs, ys, h0 = _draw(choice, cell, rng)
        loss, pre = forward(choice, params, xs, ys, h0)
        if not (np.isfinite(loss) and _conditioned(pre)):
            continue
        engine_loss, gradients = engine(params, xs, ys, h0=h0)
        asked = _asked(cell, gradients, rng)
        if asked is None:
            continue
        fd = finite_differences(lambda a: forward(choice, a, xs, ys, h0)[0], params)
        entries = []
        for name, index in asked:
            value, check = float(gradients[name][index]), float(fd[name][index])
            if relative_error(np.array(value), np.array(check)) > AGREE:
                raise RuntimeError(f"the generated gradient d L/d {name}{list(index)} = "
                                   f"{value!r} disagrees with finite differences ({check!r})")
            tolerance = max(RELATIVE_TOLERANCE * abs(value), MIN_TOLERANCE)
            entries.append((name, index, value, check, float(f"{tolerance:.2g}")))
        if relative_error(np.array(engine_loss), np.array(loss)) > AGREE:
            raise RuntimeError(f"the generated loss {engine_loss!r} disagrees with the loss "
                               f"written by hand ({loss!r})")
        return NumericProblem(params, xs, ys, h0, entries, float(loss))
    raise RuntimeError(f"no well-conditioned numbers in {ATTEMPTS} draws for {cell.name}")
