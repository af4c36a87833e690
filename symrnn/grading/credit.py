"""Partial credit: the parts of a formula, and which parts of an answer are right.

A gradient of a parameter is a sum over t of a per-step term, and the per-step term
is (for a matrix parameter) an outer product of a column (the error signal of the
step) and a row (what the parameter multiplies at that step):

    sum over t = 1..T    weight 0.2
    per-step term        weight 0.8, or its column 0.4 and its row 0.4 when both
                         the derived term and the answer's are outer products

An adjoint (a recurrence) or an initial state's gradient is a sum of groups of
terms, one group per set of adjoints of later steps it goes through (the term of
step t itself, the terms through dL/dh^(t+1), ...); each group has an equal weight.
A part is right when its values equal the derived part's at every random point.
"""
from dataclasses import dataclass

from sympy import HadamardProduct, Integer, MatAdd, MatMul, ZeroMatrix
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..graph.unroll import T, t
from ..mistakes import show
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .canonical import _product, normaliser
from .forms import free_symbols, hadamard_factors
from .numeric import Undefined, close, values

SUM_WEIGHT = 0.2


@dataclass
class Part:
    name: str
    weight: float
    right: bool


def split_sum(expr):
    """(coefficient, [(lower, upper, term)], rest): the sums over t in ``expr``."""
    coeff, body = Integer(1), expr
    if isinstance(body, MatMul):
        c, mats = body.as_coeff_matrices()
        if len(mats) == 1:
            coeff, body = c, mats[0]
    sums, rest = [], []
    for term in (body.args if isinstance(body, MatAdd) else (body,)):
        c, inner = Integer(1), term
        if isinstance(term, MatMul):
            c2, mats = term.as_coeff_matrices()
            if len(mats) == 1 and isinstance(mats[0], SumOverTime):
                c, inner = c2, mats[0]
        if isinstance(inner, SumOverTime) and inner.index == t:
            sums.append((inner.limits, c * inner.term if c != 1 else inner.term))
        else:
            rest.append(term)
    return coeff, sums, rest


def outer(expr):
    """(column, row) of a product that is a column times a row, else None."""
    if not isinstance(expr, MatMul):
        return None
    coeff, factors = expr.as_coeff_matrices()
    for i in range(1, len(factors)):
        left, right = factors[:i], factors[i:]
        if left[-1].shape[1] == 1 and right[0].shape[0] == 1:
            column = _product(left) if coeff == 1 else coeff * _product(left)
            return column, _product(right)
    return None


def _same(pts, a, b):
    try:
        return close(values(pts, a), values(pts, b))
    except (Undefined, NotImplementedError, ValueError):
        return False


def sum_parts(pts, answer, target, shape_ok=True):
    """The parts of a gradient that is a sum over t (see the module docstring)."""
    term = target.term
    coeff, sums, rest = split_sum(answer)
    limits = {lim for lim, _ in sums}
    sum_right = bool(sums) and not rest and coeff == 1 and limits == {(Integer(1), T)}
    if sums and not rest:
        body = sums[0][1] if len(sums) == 1 else MatAdd(*[b for _, b in sums])
    elif not sums and t in free_symbols(answer):
        body = answer
    else:
        body = None
    parts = [Part("the sum over t = 1..T", SUM_WEIGHT, sum_right)]
    derived_split = outer(term)
    if body is None or body.shape != term.shape:
        names = (["the column of the per-step term", "the row of the per-step term"]
                 if derived_split else ["the per-step term"])
        weight = (1 - SUM_WEIGHT) / len(names)
        return parts + [Part(n, weight, False) for n in names]
    if _same(pts, body, term):
        return parts + [Part("the per-step term", 1 - SUM_WEIGHT, True)]
    answer_split = outer(body)
    if derived_split and answer_split:
        half = (1 - SUM_WEIGHT) / 2
        return parts + [
            Part("the column of the per-step term", half,
                 _same(pts, answer_split[0], derived_split[0])),
            Part("the row of the per-step term", half,
                 _same(pts, answer_split[1], derived_split[1]))]
    return parts + [Part("the per-step term", 1 - SUM_WEIGHT, False)]


def _groups(expr, derivation, time):
    """{frozenset of adjoints of later steps: sum of those monomials} of ``expr``."""
    n = normaliser(derivation)
    monomials = n.combine(n.expand(n.named(derivation.inline(expr))))
    groups = {}
    for m, c in monomials.items():
        later = frozenset(a.var.name for a in m.atoms(Adjoint) if isinstance(a.var, StepVar)
                          and (a.var.time - time).is_Integer and a.var.time - time > 0)
        groups.setdefault(later, []).append(c * m if c != 1 else m)
    return {k: (v[0] if len(v) == 1 else MatAdd(*v)) for k, v in groups.items()}


def _group_name(group, time):
    if not group:
        return "the terms of the step itself"
    step = str(time + 1).replace(" ", "")
    names = ", ".join(f"dL/d{n}^({step})" for n in sorted(group))
    return f"the terms through {names}"


def group_parts(pts, answer, target, derivation, time):
    """The parts of an adjoint or an initial state's gradient: its groups of terms."""
    try:
        derived = _groups(target, derivation, time)
        given = _groups(answer, derivation, time)
    except Exception:   # no normal form (too large, or an unknown node)
        return [Part("the formula", 1.0, False)]
    if not derived:
        derived = {frozenset(): ZeroMatrix(*target.shape)}
    if len(derived) == 1 and len(given) == 1:
        factors = factor_parts(pts, answer, target)
        if factors is not None:
            return factors
    order = lambda k: (len(k), sorted(k))       # the step's own terms first
    keys = sorted(derived, key=order) + sorted((k for k in given if k not in derived), key=order)
    weight = 1.0 / len(keys)
    parts = []
    for k in keys:
        mine = given.get(k, ZeroMatrix(*target.shape))
        theirs = derived.get(k, ZeroMatrix(*target.shape))
        parts.append(Part(_group_name(k, time), weight, _same(pts, mine, theirs)))
    return parts


def _as_hadamard(e):
    """diag(v) x -> v (.) x for a column x; otherwise ``e``."""
    if isinstance(e, MatMul):
        coeff, factors = e.as_coeff_matrices()
        if coeff == 1 and len(factors) == 2 and isinstance(factors[0], DiagMatrix) \
                and factors[1].shape[1] == 1:
            return HadamardProduct(factors[0].args[0], factors[1])
    return e


def factor_parts(pts, answer, target):
    """The factors of an entry-wise product as parts, named by the answer's factors
    (right: equal to a factor of the derived product); None when either side is not
    an entry-wise product."""
    mine = hadamard_factors(_as_hadamard(answer))
    theirs = hadamard_factors(_as_hadamard(target))
    if len(mine) < 2 or len(theirs) < 2:
        return None
    weight = 1.0 / max(len(mine), len(theirs))
    unused = list(theirs)
    parts = []
    for f in mine:
        match = next((g for g in unused if g.shape == f.shape and _same(pts, f, g)), None)
        if match is not None:
            unused.remove(match)
        parts.append(Part(f"the factor {show(f)}", weight, match is not None))
    for _ in range(len(theirs) - len(mine)):
        parts.append(Part("a factor that is missing", weight, False))
    return parts


def score(parts):
    total = sum(p.weight for p in parts)
    return round(sum(p.weight for p in parts if p.right) / total, 4) if total else 0.0
