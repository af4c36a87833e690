"""Central finite differences, entry by entry: the route that needs no derivative.

At a kink of the loss (relu or abs at exactly 0, which a zero initial state gives
on purpose) a central difference measures no derivative: it averages the slopes on
the two sides, and when one step crosses several kinks at once (every z_j = W_j h0
is 0 at h0 = 0) neither slope is what a derivative rule such as relu'(0) = 0
returns. ``finite_differences(..., kinks={})`` names those entries, so that a check
can leave them out: their one-sided differences disagree, and still disagree as much
at half the step (for a smooth loss the gap is eps * L'' and halves with the step).
"""
import numpy as np

__all__ = ["finite_differences"]

# one-sided slopes further apart than this (relative to max(1, |central|)) are looked
# at again with half the step; the gap of a smooth loss is eps * |L''| ~ 1e-6 * |L''|,
# and a smaller gap moves the central difference by less than the checks' tolerance
KINK_GAP = 1e-5
# at half the step, a kink keeps the whole gap, a smooth loss half of it
KINK_KEPT = 0.75


def finite_differences(loss, arrays, eps=1e-6, entries=None, kinks=None):
    """(loss(a + eps e_i) - loss(a - eps e_i)) / (2 eps) for the entries of every array.

    ``loss(arrays)`` takes a dict like ``arrays`` (float64 arrays). ``entries`` maps a
    name to the list of indices to differentiate (default: all); the others stay 0.
    ``kinks``, a dict, receives ``{name: [index, ...]}``: the entries at which the
    loss has a kink (no derivative to compare with).
    """
    base = None if kinks is None else float(loss(arrays))
    out = {}
    for name, array in arrays.items():
        array = np.array(array, dtype=np.float64)
        grad = np.zeros_like(array)
        moved = dict(arrays)
        moved[name] = array
        indices = entries[name] if entries and name in entries else np.ndindex(array.shape)
        for i in indices:
            original = array[i]

            def slopes(step):
                array[i] = original + step
                plus = loss(moved)
                array[i] = original - step
                minus = loss(moved)
                array[i] = original
                return plus, minus

            plus, minus = slopes(eps)
            grad[i] = (plus - minus) / (2 * eps)
            if base is None or not np.isfinite(grad[i]):
                continue
            gap = abs((plus - base) - (base - minus)) / eps
            if gap > KINK_GAP * max(1.0, abs(grad[i])):
                plus, minus = slopes(eps / 2)
                if abs((plus - base) - (base - minus)) / (eps / 2) > KINK_KEPT * gap:
                    kinks.setdefault(name, []).append(i)
        out[name] = grad
    return out
