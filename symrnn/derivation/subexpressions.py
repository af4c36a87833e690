"""Sub-expressions that a group of expressions shares, for the consumers that
compute a shared value once (the NumPy code, the PyTorch and JAX programs)."""
from collections import Counter


def _matrix_args(e):
    return [a for a in e.args if getattr(a, "is_Matrix", False)]


def repeated(exprs, is_candidate):
    """The largest sub-expressions that occur more than once in ``exprs`` and
    satisfy ``is_candidate``, in the order they are first met."""
    counts = Counter()

    def count(e):
        counts[e] += 1
        if counts[e] == 1:
            for a in _matrix_args(e):
                count(a)

    for e in exprs:
        count(e)
    found = []

    def pick(e):
        if counts[e] > 1 and is_candidate(e):
            if e not in found:
                found.append(e)
            return
        for a in _matrix_args(e):
            pick(a)

    for e in exprs:
        pick(e)
    return found
