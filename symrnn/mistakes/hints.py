"""The likely mistake behind a wrong hand-written BPTT, for ``symrnn.testing``.

A wrong gradient is compared with wrong gradients made on purpose with the mistakes of
``catalogue.py``, never guessed from magnitudes:

* the mistakes of a whole result (``RESULTS`` entries marked ``in_code``): the right
  gradient transposed, times -1, or divided by T, B or T B (a mean where BPTT and the
  loss sum);
* the mistakes made inside a formula (``CATALOGUE``): each made in the derivation's own
  formulas (a ``habit``, such as W in place of W^T or the recurrence cut, in every
  formula it applies to; the others in one formula at a time), the derivation with the
  mistake lambdified like the derivation itself, one at a time and only when a check
  has failed.

``likely_mistakes`` returns a sentence per mistake that fits, with the keys it explains.
"""
import dataclasses

import numpy as np
from sympy import Integer

from ..checking.metric import relative_error
from ..graph.unroll import t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from . import catalogue
from .forms import Forms, nodes
from .show import show

__all__ = ["likely_mistakes", "derivation_variants"]

MATCH = 1e-6          # relative error within which a wrong value equals a candidate
_BUILT = {}           # id(derivation) -> (derivation, table, [(sentence, function)], the rest)


def _quote(keys):
    return ", ".join(repr(k) for k in keys)


def _close(a, b):
    a = np.asarray(a) if a is not None else None
    return a is not None and b is not None and a.shape == np.shape(b) \
        and relative_error(a, b) <= MATCH


# -- the mistakes of a whole result -------------------------------------------------------

_SIZES = {"mean": ("T",), "batch mean": ("B",), "step and batch mean": ("T", "B")}


def _result_mistakes(problem):
    """[(entry, size text)] of the ``RESULTS`` entries check_bptt looks for, each
    different from the others on this problem (1/B is no mistake when B = 1 or B = T)."""
    sizes = {"T": problem.T, "B": problem.batch}
    probe, seen, out = np.arange(1.0, 7.0).reshape(2, 3), [], []
    for entry in catalogue.RESULTS.values():
        if not entry.in_code:
            continue
        made = entry.apply(probe, sizes)
        if made is None or any(m.shape == made.shape and np.allclose(m, made)
                               for m in [probe] + seen):
            continue
        seen.append(made)
        names = _SIZES.get(entry.key, ())
        text = f" ({', '.join(f'{n} = {sizes[n]}' for n in names)})" if names else ""
        out.append((entry, text))
    return out


def _related(given, right, entry, sizes):
    """Is ``given`` the value ``right`` with the mistake ``entry`` made?"""
    if given is None:
        return False
    g, r = np.asarray(given), np.asarray(right)
    if g.dtype.kind not in "biuf":
        return False
    made = entry.apply(r, sizes)
    return made is not None and _close(g, made)


# -- the derivation with one mistake ------------------------------------------------------

@dataclasses.dataclass
class _Formula:
    table: str        # "adjoints" or "gradients"
    key: object       # its key in that table
    where: str        # how a sentence names it: dL/dW, dL/dh^(t), dL/dh^(0)
    time: object      # its step: t, or 1 for an initial state's gradient
    expr: object
    initial: bool     # the gradient of an initial state (the recurrence's last step)


def _formulas(derivation):
    cell = derivation.cell
    initial = {f"{s.name}0": s for s in cell.states}
    out = []
    for name, expr in derivation.gradients.items():
        if name in initial:
            s = initial[name]
            where = show(Adjoint(StepVar(s.name, 0, *s.shape)))
            out.append(_Formula("gradients", name, where, Integer(1), expr, True))
        else:
            out.append(_Formula("gradients", name, show(Adjoint(cell.param(name))), t, expr,
                                False))
    for lhs, expr in derivation.adjoints.items():
        out.append(_Formula("adjoints", lhs, show(lhs), t, expr, False))
    return out


def _defined(formula, expr, cell):
    """Does ``expr`` (``formula`` with a mistake made) read only values a BPTT has: a
    state at its step or the one before, anything else at its own step, and no adjoint
    the formula did not read already?"""
    states = {s.name for s in cell.states}
    params = {p.name for p in cell.params}
    for v in nodes(expr, StepVar, inside_adjoints=False):
        if v.name in params:
            continue
        offset = v.time - formula.time
        if not offset.is_Integer:
            return False
        # (an initial state's gradient is at step 1: the same rule)
        if int(offset) not in ((-1, 0) if v.name in states else (0,)):
            return False
    return set(nodes(expr, Adjoint)) <= set(nodes(formula.expr, Adjoint))


def _made(formula, change):
    """``formula``'s expression with ``change`` made (a sum over t keeps its limits)."""
    if isinstance(formula.expr, SumOverTime):
        return SumOverTime(change.expr, formula.expr.index, *formula.expr.limits)
    return change.expr


def _with(derivation, changed):
    """``derivation`` with the formulas of ``changed`` ({_Formula: expr}) replaced."""
    tables = {"adjoints": dict(derivation.adjoints), "gradients": dict(derivation.gradients)}
    for formula, expr in changed:
        tables[formula.table][formula.key] = expr
    return dataclasses.replace(derivation, **tables)


def _changes(mistake, derivation, formula):
    body = formula.expr.term if isinstance(formula.expr, SumOverTime) else formula.expr
    forms = Forms(derivation.cell, derivation, body, body, body, formula.time)
    out = []
    for change in mistake.transform(forms):
        expr = _made(formula, change)
        if expr != formula.expr and _defined(formula, change.expr, derivation.cell):
            out.append((formula, change, expr))
    return out


def _named(mistake, made):
    """The sentence of ``mistake`` made in ``made`` ([(formula, change, expr)]): the
    gradient of an initial state is the recurrence's last step, named only alone."""
    shown = [m for m in made if not m[0].initial] or made
    return mistake.sentence([(formula.where, change) for formula, change, _ in shown])


def derivation_variants(derivation):
    """(sentence, derivation) of each ``CATALOGUE`` mistake made in the derivation's own
    formulas: the habits first (each in every formula it applies to), then the others
    (each in one formula)."""
    formulas = _formulas(derivation)
    seen = set()
    ordered = [m for m in catalogue.CATALOGUE if m.habit] + \
        [m for m in catalogue.CATALOGUE if not m.habit]
    for mistake in ordered:
        made = [m for f in formulas for m in _changes(mistake, derivation, f)]
        if mistake.habit:
            groups = {}
            for formula, change, expr in made:
                group = groups.setdefault(change.tag, {})
                group.setdefault(id(formula), (formula, change, expr))
            candidates = [list(g.values()) for g in groups.values()]
        else:
            candidates = [[m] for m in made]
        for group in candidates:
            signature = tuple((f.table, str(f.key), e) for f, _, e in group)
            if signature in seen:
                continue
            seen.add(signature)
            yield _named(mistake, group), _with(derivation, [(f, e) for f, _, e in group])


def _candidates(derivation):
    """(sentence, function) of each mistake: lambdified on first use, then kept."""
    key, table = id(derivation), catalogue.CATALOGUE
    if key not in _BUILT or _BUILT[key][0] is not derivation or _BUILT[key][1] is not table:
        if len(_BUILT) >= 32:
            _BUILT.clear()
        _BUILT[key] = (derivation, table, [], derivation_variants(derivation))
    _, _, built, pending = _BUILT[key]
    yield from list(built)
    for sentence, wrong in pending:
        try:
            function = wrong.lambdify()
        except Exception:  # a formula the code generator does not take: no candidate
            continue
        built.append((sentence, function))
        yield sentence, function


def likely_mistakes(derivation, problem, given, right, wrong):
    """[(sentence, keys)]: the likely mistakes of a wrong BPTT on ``problem``, each
    with the keys it explains.

    ``given`` and ``right`` are ``(loss, grads)`` of the user's function and of the
    derivation; ``wrong`` the keys ("loss" or gradient keys) that disagree."""
    (loss, grads), (ref_loss, ref) = given, right
    sizes = {"T": problem.T, "B": problem.batch}
    keys = [k for k in wrong if k != "loss" and k in ref]
    results = _result_mistakes(problem)
    sentences, explained = [], set()
    for entry, size_text in results:
        fits = [k for k in keys if k not in explained
                and _related(grads.get(k), ref[k], entry, sizes)]
        if not fits:
            continue
        if "loss" in wrong and entry.key != "transposed" \
                and _related(loss, ref_loss, entry, sizes):
            what, right_text = f"the loss and {_quote(fits)} are", "the right values"
            fits = ["loss"] + fits
        else:
            what = f"{_quote(fits)} {'is' if len(fits) == 1 else 'are'}"
            right_text = "the right gradient" + ("" if len(fits) == 1 else "s")
        sentences.append((entry.says.format(what=what, right=right_text, sizes=size_text),
                          set(fits)))
        explained.update(fits)
    if "loss" in wrong and not keys:
        for entry, size_text in results:
            if entry.key != "transposed" and _related(loss, ref_loss, entry, sizes):
                sentences.append((entry.says.format(what="the loss is", right="the right value",
                                                    sizes=size_text), {"loss"}))
                break
    rest = [k for k in keys if k not in explained]
    if rest:
        for sentence, function in _candidates(derivation):
            try:
                _, candidate = function(problem.params, problem.x, problem.y, **problem.initial)
            except Exception:
                continue
            # it fits when it gives every wrong value (it may be made in one formula only)
            if all(_close(grads.get(k), candidate[k]) for k in rest):
                sentences.append((sentence, set(rest)))
                break
    return sentences

