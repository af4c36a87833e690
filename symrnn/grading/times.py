"""Times as students write them in scripts and limits: t, t-1, t + 1, T, 0, k, \\tau.

A time is a linear expression in the step t, the length T and the index of a sum,
with small integer coefficients; it is built as a SymPy expression in the engine's
own symbols ``t`` and ``T`` (``symrnn.graph.unroll``), so that h^{(t-1)} in an
answer is the same ``StepVar`` as in the derivation.
"""
from sympy import Integer, Symbol

from ..graph.unroll import T, t

INDEX_LETTERS = frozenset({"t", "k", "i", "j", "tau"})
MAX_OFFSET = 1_000   # h^{(t-100000)} is no time anyone means


def index_symbol(name):
    """The SymPy symbol of a time index written ``name`` (t is the engine's t)."""
    if name == "t":
        return t
    if name == "T":
        return T
    return Symbol(name, integer=True)


def time_from_items(items):
    """A time from ``[(kind, value), ...]`` with kinds ``num`` (an int), ``sym`` (a
    name), ``+`` and ``-``; None when the items are not a time."""
    if not items:
        return None
    total, sign, expect_term, i = Integer(0), 1, True, 0
    while i < len(items):
        kind, value = items[i]
        if expect_term:
            if kind in "+-":
                sign = sign * (-1 if kind == "-" else 1)
                i += 1
                continue
            coefficient = 1
            if kind == "num":
                if i + 1 < len(items) and items[i + 1][0] == "sym":  # 2t
                    coefficient, (kind, value) = value, items[i + 1]
                    i += 1
                else:
                    if value > MAX_OFFSET:
                        return None
                    total += sign * value
                    i, sign, expect_term = i + 1, 1, False
                    continue
            if kind != "sym" or (value not in INDEX_LETTERS and value != "T"):
                return None
            if coefficient > 4:
                return None
            total += sign * coefficient * index_symbol(value)
            i, sign, expect_term = i + 1, 1, False
        else:
            if kind not in "+-":
                return None
            sign, expect_term = (-1 if kind == "-" else 1), True
            i += 1
    return None if expect_term else total
