"""The likely mistake behind a wrong hand-written BPTT, for ``symrnn.testing``.

A wrong gradient is compared with wrong gradients made on purpose, each computed
from the derivation with one classic mistake, never guessed from magnitudes:

* the right gradient transposed, times -1, or divided by T, B or T * B (a mean
  where BPTT and the loss sum);
* the derivation with the recurrence cut: every term through step t+1 left out of
  the adjoints, so that each step keeps only its direct term;
* the derivation with a square parameter W in place of W^T in the recurrence;
* the derivation with one state's value at the wrong step in one formula: h^(t)
  where h^(t-1) belongs, or the other way round.

The last three are lambdified like the derivation itself, one at a time and only
when a check has failed. ``likely_mistakes`` returns a sentence per mistake that fits,
with the keys it explains.
"""
import dataclasses
import itertools

import numpy as np
from sympy import MatAdd, Transpose, ZeroMatrix, preorder_traversal

from .checking.metric import relative_error
from .graph.unroll import t
from .model.nodes import Adjoint, StepVar

__all__ = ["likely_mistakes"]

MATCH = 1e-6          # relative error within which a wrong gradient equals a candidate
_BUILT = {}           # id(derivation) -> (derivation, [(sentence, function)], the rest)


def _time(time):
    return str(time).replace(" ", "")


def _text(var):
    """h^(t-1), dL/dz^(t+1): the CLI's plain-text notation."""
    if isinstance(var, Adjoint):
        return f"dL/d{_text(var.var)}"
    return f"{var.name}^({_time(var.args[1])})"


def _quote(keys):
    return ", ".join(repr(k) for k in keys)


def _close(a, b):
    a = np.asarray(a) if a is not None else None
    return a is not None and a.shape == np.shape(b) and relative_error(a, b) <= MATCH


# -- relations to the right gradients ------------------------------------------------

def _relations(problem):
    """(factor, sentence about {right}): given * factor == right; factor None: the
    transpose."""
    T, B = problem.T, problem.batch
    out = [(None, "{right} transposed (an outer product in the wrong order?)"),
           (-1.0, "{right} times -1")]
    means = [(T, f"1/T of {{right}} (T = {T}): BPTT sums the steps' contributions, it "
                 "does not average them")]
    if B is not None:
        means += [(B, f"1/B of {{right}} (B = {B}): the loss is the sum over the batch, "
                      "not its mean"),
                  (T * B, f"1/(T B) of {{right}} (T = {T}, B = {B}): the loss is a sum over "
                          "the steps and the batch, not a mean")]
    seen = {1}
    for factor, sentence in means:
        if factor not in seen:
            seen.add(factor)
            out.append((float(factor), sentence))
    return out


def _related(given, right, factor):
    if given is None:
        return False
    g, r = np.asarray(given), np.asarray(right)
    if factor is None:
        return g.ndim == 2 and r.ndim == 2 and min(r.shape) > 1 and _close(g, r.T)
    return g.dtype.kind in "biuf" and _close(g * factor, r)


# -- the derivation with one mistake ------------------------------------------------

def _terms(expr):
    return list(expr.args) if isinstance(expr, MatAdd) else [expr]


def _reads_next_step(term):
    return any(isinstance(n, Adjoint) and n.var.args[1] == t + 1 for n in preorder_traversal(term))


def _cut(derivation):
    """(sentence, derivation) with every term through step t+1 left out, or None."""
    adjoints, lacking = {}, []
    for lhs, expr in derivation.adjoints.items():
        terms = _terms(expr)
        kept = [a for a in terms if not _reads_next_step(a)]
        if len(kept) < len(terms):
            through = sorted({_text(n) for a in terms if _reads_next_step(a)
                              for n in preorder_traversal(a)
                              if isinstance(n, Adjoint) and n.var.args[1] == t + 1})
            lacking.append(f"{_text(lhs)} lacks its term{'s' if len(through) > 1 else ''} "
                           f"through step t+1 ({', '.join(through)})")
        adjoints[lhs] = MatAdd(*kept) if kept else ZeroMatrix(*expr.shape)
    if not lacking:
        return None
    sentence = ("the recurrence is cut: " + "; ".join(lacking)
                + ", so each step keeps only its direct term")
    return sentence, dataclasses.replace(derivation, adjoints=adjoints)


def _values(expr):
    """The subexpressions of ``expr`` outside its adjoints (dL/dh^(t) names no value h^(t))."""
    yield expr
    if not isinstance(expr, Adjoint):
        for a in expr.args:
            yield from _values(a)


def _swap(expr, old, new):
    """``expr`` with the value ``old`` replaced by ``new``, adjoints left alone."""
    if expr == old:
        return new
    if isinstance(expr, Adjoint) or not expr.args:
        return expr
    args = [_swap(a, old, new) for a in expr.args]
    return expr.func(*args) if args != list(expr.args) else expr


def _shifts(derivation):
    """(sentence, derivation) with one state read at the neighbouring step in one
    adjoint or gradient formula: h^(t) for h^(t-1) and h^(t-1) for h^(t)."""
    states = {s.name for s in derivation.cell.states}
    initial = {f"{s}0": s for s in states}
    for table in ("gradients", "adjoints"):
        formulas = getattr(derivation, table)
        for lhs, expr in formulas.items():
            read = sorted({v for v in _values(expr) if isinstance(v, StepVar)
                           and v.name in states and v.args[1] in (t, t - 1)}, key=str)
            for old in read:
                new = StepVar(old.name, t - 1 if old.args[1] == t else t, *old.shape)
                if table == "adjoints":
                    name = _text(lhs)
                elif lhs in initial:
                    name = f"dL/d{initial[lhs]}^(0)"
                else:
                    name = f"dL/d{lhs}"
                changed = dict(formulas)
                changed[lhs] = _swap(expr, old, new)
                yield (f"{name} uses {_text(new)} where the derivation has {_text(old)}",
                       dataclasses.replace(derivation, **{table: changed}))


def _untransposed(derivation):
    """(sentence, derivation) with a square parameter P in place of P^T throughout the
    recurrence: the adjoints and the initial states' gradients (dL/dh^(0) is its last
    step)."""
    initial = {f"{s.name}0" for s in derivation.cell.states}
    for p in derivation.cell.params:
        if not p.shape[0] == p.shape[1] != 1:
            continue
        swap = {Transpose(p): p}
        adjoints = {lhs: e.xreplace(swap) for lhs, e in derivation.adjoints.items()}
        changed = [lhs for lhs, e in derivation.adjoints.items() if adjoints[lhs] != e]
        if changed:
            gradients = {k: e.xreplace(swap) if k in initial else e
                         for k, e in derivation.gradients.items()}
            yield (f"{' and '.join(_text(lhs) for lhs in changed)} "
                   f"use{'s' if len(changed) == 1 else ''} {p.name} where the derivation has "
                   f"{p.name}^T", dataclasses.replace(derivation, adjoints=adjoints,
                                                      gradients=gradients))


def _candidates(derivation):
    """(sentence, function) of each mistake: lambdified on first use, then kept."""
    key = id(derivation)
    if key not in _BUILT:
        if len(_BUILT) >= 32:
            _BUILT.clear()
        cut = _cut(derivation)
        pending = itertools.chain([cut] if cut else [], _untransposed(derivation),
                                  _shifts(derivation))
        _BUILT[key] = (derivation, [], pending)
    _, built, pending = _BUILT[key]
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
    keys = [k for k in wrong if k != "loss" and k in ref]
    sentences, explained = [], set()
    for factor, sentence in _relations(problem):
        fits = [k for k in keys if k not in explained and _related(grads.get(k), ref[k], factor)]
        if fits:
            if "loss" in wrong and factor is not None and _related(loss, ref_loss, factor):
                what, right = f"the loss and {_quote(fits)} are", "the right values"
                fits = ["loss"] + fits
            else:
                what = f"{_quote(fits)} {'is' if len(fits) == 1 else 'are'}"
                right = "the right gradient" + ("" if len(fits) == 1 else "s")
            sentences.append((f"{what} {sentence.format(right=right)}", set(fits)))
            explained.update(fits)
    if "loss" in wrong and not keys:
        for factor, sentence in _relations(problem)[1:]:
            if _related(loss, ref_loss, factor):
                sentences.append((f"the loss is {sentence.format(right='the right value')}",
                                  {"loss"}))
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
