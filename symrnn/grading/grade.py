"""Grading one answer: equivalence, the named mistake, partial credit and feedback."""
from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Optional

import numpy as np
from sympy import Integer, MatAdd, MatMul

from ..derivation import derive
from ..graph.unroll import T, t
from ..model.cell import Cell
from ..model.nodes import SumOverTime
from . import canonical, credit
from .answer import as_matrix, read
from .forms import free_symbols
from ..mistakes import RESULTS, forms_of, show, variants
from .keys import forbidden_adjoint, key_of_lhs, resolve_key
from .notation import Notation, Vocabulary, default_notation, from_profile
from .numeric import Undefined, aligned, close, points, values

REPAIR_COST = 0.4       # what an answer loses for each repair that makes its shapes fit
TRANSPOSED_SHARE = 0.5  # a transposed result gets this share of its transpose's credit


@dataclass
class Named:
    """A mistake the answer makes: catalogue ``key``, its ``name``, and the sentence."""
    key: str
    name: str
    sentence: str


@dataclass
class GradeResult:
    """What :func:`grade` found: ``correct``, ``score`` in [0, 1], the ``feedback``
    paragraph, the ``mistakes`` that reproduce a wrong answer (``mistake``: the first
    one's name), the ``parts`` that are right or wrong, and ``exact``: equal by the
    normal form, a proof for every T and size."""
    correct: bool
    score: float
    feedback: str
    key: str
    mistakes: List[Named] = field(default_factory=list)
    parts: list = field(default_factory=list)
    exact: bool = False           # equal by the normal form (a proof for every T and size)
    answer: object = None         # the answer as a SymPy expression (None if unreadable)
    syntax: Optional[str] = None

    @property
    def mistake(self):
        """The name of the (first) mistake found, or None."""
        return self.mistakes[0].name if self.mistakes else None

    def __repr__(self):
        return (f"<GradeResult {self.key}: {'correct' if self.correct else 'wrong'}, score "
                f"{self.score:g}{', ' + self.mistake if self.mistake else ''}>")


@dataclass
class _Candidate:
    mistake: object            # a catalogue Mistake, or None for the derived formula
    change: object             # its Change (None for the derived formula)
    full: object
    body: object
    full_values: list
    body_values: list


def as_cell(cell):
    """A Cell from a Cell, a preset name ('elman', 'lstm', 'gru') or the text of a cell."""
    from .. import GRU, LSTM, ElmanRNN, parse_cell
    if isinstance(cell, Cell):
        return cell
    if isinstance(cell, str):
        presets = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU}
        if cell.strip().lower() in presets:
            return presets[cell.strip().lower()]()
        if "\n" in cell or ":" in cell:
            return parse_cell(cell)
        raise ValueError(f"cell: unknown cell {cell!r}; give a Cell, 'elman', 'lstm', 'gru' "
                         "or the text of a cell")
    raise ValueError(f"cell: expected a Cell, a preset name or the text of a cell, got "
                     f"{type(cell).__name__}")


class Grader:
    """Grades answers for one cell: derives it once, draws the random points once,
    and computes the mistaken formulas of a key once."""

    def __init__(self, cell, notation=None):
        self.cell = as_cell(cell)
        self.given_notation = notation
        if notation is None:
            notation = default_notation(self.cell)
        elif not isinstance(notation, Notation):   # a notation profile of the sheets
            notation = from_profile(notation, self.cell)
        self.notation = notation
        self.derivation = derive(self.cell)
        self.vocabulary = Vocabulary(self.cell, notation)
        self.points = points(self.derivation)
        self._keys = {}

    # -- keys ----------------------------------------------------------------------------
    def _key(self, key):
        if key not in self._keys:
            self._keys[key] = _KeyData(self, resolve_key(self.derivation, key, self.vocabulary))
        return self._keys[key]

    def parse(self, answer, syntax="auto"):
        """The answer as a SymPy expression in the cell's symbols (AnswerSyntaxError
        if it cannot be read; ShapeMismatch if its shapes do not fit)."""
        parsed = read(answer, self.vocabulary, syntax)
        if parsed.expr is None or parsed.repairs:
            raise parsed.shape_error
        return parsed.expr

    # -- grading ---------------------------------------------------------------------------
    def grade(self, answer, key, syntax="auto"):
        """Grade one answer as the gradient ``key`` of this cell, as :func:`grade` does."""
        data = self._key(key)
        k = data.key
        parsed = read(answer, self.vocabulary, syntax, k.symbol.shape)
        if parsed.lhs is not None and not key_of_lhs(parsed.lhs, k):
            return self._wrong(k, parsed, f"The left side is {show(parsed.lhs)}, but the "
                                          f"question asks for {k.text}.")
        if parsed.expr is None:
            e = parsed.shape_error
            return self._wrong(k, parsed, f"The shapes do not fit: {e.reason} (column "
                                          f"{e.column + 1}).")
        expr = as_matrix(parsed.expr, k.symbol.shape)
        if expr is None:
            return self._wrong(k, parsed, f"The answer is a number; {k.text} is a "
                                          f"{_shape(k.symbol)} matrix.")
        problem = self._problem(expr, k)
        if problem:
            return self._wrong(k, parsed, problem, expr)
        try:
            answer_values = values(self.points, expr)
        except Undefined as e:
            return self._wrong(k, parsed, f"The answer uses a value that does not exist: {e}.",
                               expr)
        return data.judge(parsed, expr, answer_values)

    def _problem(self, expr, key):
        """Why ``expr`` cannot be the answer for ``key`` at all, or None."""
        shape, want = expr.shape, key.symbol.shape
        if shape != want and shape != want[::-1]:
            return f"The answer has the shape {_shape(expr)}; {key.text} is {_shape(key.symbol)}."
        free = free_symbols(expr) - {T} - set(self.cell.sizes)
        if free - {t}:
            names = ", ".join(sorted(map(str, free - {t})))
            return f"The answer depends on {names}, which no sum binds."
        if t in free and key.kind == "initial":
            return f"The answer depends on t; {key.text} is one value."
        bad = forbidden_adjoint(expr, key, self.cell)
        if bad is not None:
            return f"The answer uses {show(bad[0])}: {bad[1]}."
        return None

    def _wrong(self, key, parsed, message, expr=None):
        feedback = _feedback(key, False, problem=message)
        return GradeResult(False, 0.0, feedback, key.text, answer=expr,
                           syntax=parsed.syntax if parsed else None)


def _shape(e):
    return "x".join(str(d) for d in e.shape)


class _KeyData:
    """One key of one grader: the derived formula, its values, the mistaken formulas."""

    def __init__(self, grader, key):
        self.grader = grader
        self.key = key
        self.pts = grader.points
        self.target_values = values(self.pts, key.target)
        self._candidates = None

    @property
    def candidates(self):
        if self._candidates is None:
            self._candidates = self._build_candidates()
        return self._candidates

    def _build_candidates(self):
        key, pts = self.key, self.pts
        d = self.grader.derivation
        is_sum = key.is_sum
        body = key.target.term if is_sum else None
        out = [_Candidate(None, None, key.target, body, self.target_values,
                          values(pts, body) if is_sum else None)]
        time = Integer(1) if key.kind == "initial" else t
        for mistake, change in variants(forms_of(d, key.target, time)):
            variant = change.expr
            full = SumOverTime(variant, t, 1, T) if is_sum else variant
            try:
                full_values = values(pts, full)
            except (Undefined, NotImplementedError, ValueError, TypeError):
                continue
            if any(close(full_values, c.full_values) for c in out):
                continue        # the same numbers as the right formula or an earlier mistake
            body_values = values(pts, variant) if is_sum else None
            out.append(_Candidate(mistake, change, full, variant if is_sum else None,
                                  full_values, body_values))
        return out

    # -- matching ----------------------------------------------------------------------------
    def _relation(self, a, b):
        """The modifiers that turn ``b``'s values into ``a``'s: [] for equal, None if none."""
        if close(a, b):
            return [], None
        if _transposed_close(a, b):
            return ["transposed"], None
        scale = _scale(a, b, [p.T for p in self.pts])
        if scale is None:
            return None, None
        factor, per_T = scale
        if per_T:
            if abs(factor - 1) < 1e-6:
                return ["mean"], None
            if abs(factor + 1) < 1e-6:
                return ["mean", "sign"], None
            return None, None
        if abs(factor + 1) < 1e-6:
            return ["sign"], None
        nice = Fraction(factor).limit_denominator(8)
        if abs(float(nice) - factor) < 1e-6 and abs(nice.numerator) <= 8 and nice != 0:
            return ["factor"], str(nice)
        return None, None

    def match(self, expr, answer_values):
        """(candidate, modifiers, factor) of the first formula the answer equals, exactly
        first, then up to the modifiers; None when none."""
        free_t = t in free_symbols(expr)
        missing_sum = self.key.is_sum and free_t
        for exact in (True, False):
            for c in self.candidates:
                if missing_sum:
                    mods, factor = self._relation(answer_values, c.body_values)
                    if mods is not None and (not exact or not mods):
                        return c, mods + ["sum"], factor
                    continue
                mods, factor = self._relation(answer_values, c.full_values)
                if mods is not None and (not exact or not mods):
                    return c, mods, factor
        return None

    def _relimited(self, expr):
        """A match of ``expr`` with its sums over t running over 1..T, the limits named."""
        sums = [e for e in expr.atoms(SumOverTime) if e.index == t and e.limits != (1, T)]
        if not sums:
            return None
        lo, hi = sums[0].limits
        fixed = expr.xreplace({e: SumOverTime(e.term, t, 1, T) for e in sums})
        try:
            found = self.match(fixed, values(self.pts, fixed))
        except (Undefined, NotImplementedError):
            return None
        if found is None:
            return None
        candidate, mods, _ = found
        return candidate, mods + ["limits"], f"t = {show(lo)}..{show(hi)}"

    # -- the verdict ---------------------------------------------------------------------------
    def judge(self, parsed, expr, answer_values):
        key, d = self.key, self.grader.derivation
        repairs = parsed.repairs
        right = close(answer_values, self.target_values)
        exact = bool(right and expr.shape == key.target.shape
                     and canonical.equal(expr, key.target, d))
        found = None if right else self.match(expr, answer_values)
        if found is None and not right and key.is_sum:
            found = self._relimited(expr)
        mistakes = [_repair_named(r) for r in repairs]
        mods = []
        if found is not None:
            candidate, mods, factor = found
            m = candidate.mistake
            if m is not None:
                sentence = m.sentence([(key.text, candidate.change)])
                if m.why:
                    sentence += f"; {m.why}"
                mistakes.append(Named(m.key, m.name, f"{m.name}: {sentence}"))
            of = "the formula with that mistake" if m is not None else "the derived formula"
            for mod in mods:
                entry = RESULTS[mod]
                mistakes.append(Named(mod, entry.name, entry.says.format(
                    what="the answer is", right=of, sizes="", factor=factor,
                    limits=factor, name=key.name)))
        correct = right and not repairs
        scored = transposed(expr) if "transposed" in mods else expr
        if scored.shape != key.target.shape:
            parts = [credit.Part("the formula", 1.0, False)]
        elif key.is_sum:
            parts = credit.sum_parts(self.pts, scored, key.target)
        else:
            time = Integer(1) if key.kind == "initial" else t
            parts = credit.group_parts(self.pts, scored, key.target, d, time)
        if correct:
            for p in parts:
                p.right = True
        value = credit.score(parts)
        if "transposed" in mods:
            value *= TRANSPOSED_SHARE
        value = max(0.0, round(value - REPAIR_COST * len(repairs), 4))
        if correct:
            value = 1.0
        feedback = _feedback(key, correct, exact, mistakes, parts, value, found, len(self.pts),
                             max(p.T for p in self.pts), right)
        return GradeResult(correct, value, feedback, key.text, mistakes, parts, exact, expr,
                           parsed.syntax)


def transposed(expr):
    """expr^T with the transpose taken inside sums over t (so the sum stays visible)."""
    if isinstance(expr, SumOverTime):
        return SumOverTime(transposed(expr.term), expr.index, *expr.limits)
    if isinstance(expr, MatAdd):
        return MatAdd(*[transposed(a) for a in expr.args])
    if isinstance(expr, MatMul):
        coeff, factors = expr.as_coeff_matrices()
        if len(factors) == 1:
            return coeff * transposed(factors[0])
    return expr.T


def _repair_named(repair):
    entry = RESULTS["diag order" if repair.kind == "diag order" else "transpose repair"]
    return Named(entry.key, entry.name,
                 entry.says.format(detail=f"'{repair.what}' at column {repair.column + 1}"))


def _flat(vals):
    return [np.concatenate([x.ravel() for x in p]) for p in vals]


def _transposed_close(a, b):
    a, b = aligned(a, b)
    if len(a) != len(b):
        return False
    flipped = [[x.T for x in p] for p in a]
    if any(len(p) != len(q) or any(x.shape != y.shape for x, y in zip(p, q))
           for p, q in zip(flipped, b)):
        return False
    return all(x.shape[0] != x.shape[1] or not np.allclose(x, x.T) for p in a for x in p) \
        and close(flipped, b)


def _scale(a, b, lengths):
    """(c, per_T) when a = c b at every point (per_T: a = c b / T), else None."""
    a, b = aligned(a, b)
    if len(a) != len(b) or any(len(p) != len(q) or any(x.shape != y.shape for x, y in zip(p, q))
                               for p, q in zip(a, b)):
        return None
    ratios = []
    for fa, fb in zip(_flat(a), _flat(b)):
        finite = np.isfinite(fb) & np.isfinite(fa)
        fa, fb = fa[finite], fb[finite]
        norm = float(fb @ fb)
        if norm < 1e-20:
            if float(fa @ fa) > 1e-20:
                return None
            ratios.append(None)
            continue
        c = float(fa @ fb) / norm
        if np.linalg.norm(fa - c * fb) > 1e-7 * np.sqrt(norm) + 1e-12:
            return None
        ratios.append(c)
    known = [(c, T_) for c, T_ in zip(ratios, lengths) if c is not None]
    if not known:
        return None
    c0 = known[0][0]
    if all(abs(c - c0) <= 1e-6 * max(1.0, abs(c0)) for c, _ in known):
        return c0, False
    cT = known[0][0] * known[0][1]
    if all(abs(c * T_ - cT) <= 1e-6 * max(1.0, abs(cT)) for c, T_ in known):
        return cT, True
    return None


def _feedback(key, correct, exact=False, mistakes=(), parts=(), value=0.0, found=None,
              n_points=0, max_T=0, right_values=False, problem=None):
    """The paragraph a student reads, from ``templates/feedback.txt.j2``."""
    from ..render.sheet import environment
    if problem or correct:
        verdict = None
    elif found is None and not mistakes:
        verdict = "unmatched"
    elif found is None:
        verdict = "repaired right" if right_values else "repaired wrong"
    else:
        verdict = None
    text = environment().get_template("feedback.txt.j2").render(
        correct=correct, exact=exact, key=key.text, n_points=n_points, max_T=max_T,
        problem=problem, verdict=verdict, score=f"{value:g}",
        mistakes=[m.sentence[:1].upper() + m.sentence[1:] for m in mistakes],
        right=[p.name for p in parts if p.right], wrong=[p.name for p in parts if not p.right])
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


_CACHE = {}


def grade(answer, cell, key, notation=None, syntax="auto"):
    """Grade ``answer`` (LaTeX or the text syntax) as the gradient ``key`` of ``cell``.

    Parameters
    ----------
    answer : str
        What the student wrote: LaTeX, or the text syntax of a cell.
    cell : Cell or str
        A Cell, ``'elman'``, ``'lstm'``, ``'gru'``, or the text of a cell.
    key : str
        ``'W'`` (a parameter), ``'h0'`` (an initial state), ``'dL/dh'`` (the adjoint
        of a variable at step t), ...
    notation : optional
        A ``symrnn.grading.Notation`` (default: the sheets'; delta is dL/dz when the
        cell has z), or a notation profile of the sheets (``'d2l'``, ``'cs231n'``, a
        .toml file).
    syntax : str
        ``'auto'`` (default), ``'latex'`` or ``'text'``.

    Returns
    -------
    GradeResult
        ``correct``, ``score`` in [0, 1], ``feedback``, ``mistakes``, ``parts``.

    Raises
    ------
    symrnn.grading.AnswerSyntaxError
        An answer that cannot be read: a ``ValueError`` naming the column, with a
        caret line under the token.
    """
    cache_key = (cell if isinstance(cell, str) else id(cell),
                 notation if notation is None or isinstance(notation, str) else id(notation))
    grader = _CACHE.get(cache_key)
    if grader is None or (not isinstance(cell, str) and grader.cell is not cell) \
            or (notation is not None and not isinstance(notation, str)
                and grader.given_notation is not notation):
        grader = Grader(cell, notation)
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[cache_key] = grader
    return grader.grade(answer, key, syntax)


__all__ = ["GradeResult", "Grader", "Named", "as_cell", "grade"]
