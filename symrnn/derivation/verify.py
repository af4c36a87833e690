"""Check a derivation's closed forms against a second route that shares nothing with it.

The closed forms (``derive``) come from the adjoint rules of ``vjps.py``
applied once to a generic step t, with copies W^(t) summed over t. The second
route uses none of that: for small concrete sizes it writes the T steps out with
explicit matrices of scalar symbols (its own loop over the steps, no unrolled
copies), asks SymPy's scalar ``diff`` for the partial derivative of every
scalar of every equation with respect to every scalar it reads (from the
operations' SymPy definitions, ``ops.py``, not their rules), and sums the
paths by the textbook scalar chain rule. No rule of ``vjps.py``, no code
printer and no generated code is involved.

Both routes are evaluated at one random point with rational entries, in
50-digit arithmetic (mpmath), and must agree to 40 significant digits: every
parameter gradient, dL/ds^(0) of every initial state, and dL/dv^(k) of every
variable at every step k. A wrong rule, a wrong shift in time or a missing
term changes a value at the first digits, not the fortieth.
"""
import random
from dataclasses import dataclass, field

import mpmath
from sympy import S, Integer, Rational, Symbol, diff, lambdify, sympify
from sympy.matrices.expressions.matexpr import MatrixSymbol

from ..graph.unroll import T as T_symbol, t
from ..model.nodes import Adjoint, Elementwise, Prev, StepVar, SumOverTime, constant_values
from .explicit import evaluate

DIGITS = 50      # working precision
AGREEMENT = 40   # significant digits both routes must share
_MODULES = [{"Heaviside": lambda v, at_zero=None: _heaviside(v), "Max": max, "Min": min,
             "sign": lambda v: mpmath.sign(v)}, "mpmath"]


class VerificationError(AssertionError):
    """The closed forms and the independent chain rule disagree (an ``AssertionError``);
    the message names the first quantity that differs."""


class _Undecided(Exception):
    """The cell has a value that is not a number whatever the point (1/0 of a constant)."""


class _Degenerate(Exception):
    """The random point sits on a kink (relu at exactly 0): draw another."""


def _heaviside(v):
    if v == 0:
        raise _Degenerate
    return mpmath.mpf(1) if v > 0 else mpmath.mpf(0)


@dataclass
class Verification:
    """What :meth:`symrnn.Derivation.verify` compared: T, the sizes, the gradients,
    how many adjoints and chain-rule terms, the mismatches, and why no comparison
    could be made (``undecided``). Its truth value is ``ok``, which is False only
    with ``raises=False``."""
    T: int
    sizes: dict
    gradients: list          # the gradient names compared
    adjoints: int = 0        # dL/dv^(k) vectors compared
    chain_rule_terms: int = 0  # scalar partial derivatives the second route multiplied
    mismatches: list = field(default_factory=list)
    undecided: str = None    # why no comparison could be made (then ok is False too)

    @property
    def ok(self):
        return not self.mismatches and self.undecided is None

    def __bool__(self):
        return self.ok


def _mpf(c):
    """A coefficient as an mpmath number: exact, its named constants by their values."""
    c = Rational(_valued(sympify(c)))
    return mpmath.mpf(int(c.p)) / int(c.q)


def _valued(expr):
    """``expr`` with the named constants replaced by their exact values."""
    values = constant_values(expr)
    return expr.xreplace(values) if values else expr


def _rational(rng):
    """A random non-zero rational, so that no kink is hit by chance (relu at 0)."""
    return mpmath.mpf(rng.choice((-1, 1)) * rng.randint(1, 99)) / rng.randint(1, 97)


# -- the second route: scalar equations of T steps, SymPy's diff, scalar chain rule --

class _Template:
    """One equation of a generic step with explicit scalar symbols: each entry's
    value and its partial derivatives, as one mpmath function of the symbols."""

    def __init__(self, lhs, rhs, env, size):
        entries = [_valued(sympify(e)) for row in evaluate(rhs, env.get, size) for e in row]
        self.lhs, self.cols = lhs, size(lhs.shape[1])  # entries row by row
        self.reads = []  # per entry: the symbols it reads
        outputs = []
        for e in entries:
            if e.has(S.ComplexInfinity, S.NaN, S.Infinity, S.NegativeInfinity):
                raise _Undecided(f"{lhs} has an entry {e}, not a number at any point")
            symbols = sorted(e.free_symbols, key=str)
            self.reads.append(symbols)
            outputs.append(e)
            outputs.extend(diff(e, s) for s in symbols)
        self.symbols = sorted(set().union(*[set(r) for r in self.reads]), key=str)
        self.function = lambdify(self.symbols, outputs, modules=_MODULES, dummify=False)


class _ScalarRoute:
    def __init__(self, cell, sizes):
        self.cell = cell
        self.size = lambda d: int(d.subs(sizes))
        self.role = {}  # template symbol -> ("param", name, i, j), ("fixed", name, i, j)
        env = {}        # or (name, step offset, i)
        for p in cell.params:
            env[p] = self._matrix(p, lambda i, j, p=p: ("param", p.name, i, j))
        self.fixed = []  # the named matrices of the parameters: computed once
        for lhs, rhs in cell.fixed:
            self.fixed.append(_Template(lhs, rhs, env, self.size))
            env[lhs] = self._matrix(lhs, lambda i, j, v=lhs: ("fixed", v.name, i, j))
        for v in cell.inputs + cell.targets:
            env[v] = self._matrix(v, lambda i, j, v=v: (v.name, 0, i))
        for s in cell.states:
            env[Prev(s)] = self._matrix(s, lambda i, j, s=s: (s.name, -1, i), "_prev_")
        self.templates = []
        for lhs, rhs in cell.equations:
            self.templates.append(_Template(lhs, rhs, env, self.size))
            env[lhs] = self._matrix(lhs, lambda i, j, v=lhs: (v.name, 0, i))

    def _matrix(self, sym, role, prefix=""):
        rows, cols = map(self.size, sym.shape)
        out = []
        for i in range(rows):
            row = []
            for j in range(cols):
                s = Symbol(f"{prefix}{sym.name}_{i}_{j}", real=True)
                self.role[s] = role(i, j)
                row.append(s)
            out.append(row)
        return out

    def key(self, symbol, k):
        role = self.role[symbol]
        return role if role[0] in ("param", "fixed") else (role[0], k + role[1], role[2])

    def run(self, values, T):
        """dL/d(every scalar) for L = sum of the T per-step losses."""
        fixed = []
        for tpl in self.fixed:
            out = tpl.function(*[values[self.key(s, 0)] for s in tpl.symbols])
            at, entries = 0, []
            for i, reads in enumerate(tpl.reads):
                values[("fixed", tpl.lhs.name, i // tpl.cols, i % tpl.cols)] = out[at]
                entries.append(dict(zip(reads, out[at + 1:at + 1 + len(reads)])))
                at += 1 + len(reads)
            fixed.append((tpl, entries))
        steps = []
        for k in range(1, T + 1):
            computed = []
            for tpl in self.templates:
                args = [values[self.key(s, k)] for s in tpl.symbols]
                out = tpl.function(*args)
                at, entries = 0, []
                for i, reads in enumerate(tpl.reads):
                    values[(tpl.lhs.name, k, i)] = out[at]
                    entries.append(dict(zip(reads, out[at + 1:at + 1 + len(reads)])))
                    at += 1 + len(reads)
                computed.append((tpl, entries))
            steps.append(computed)
        adjoint, partials = {}, 0
        for k in range(T, 0, -1):
            for tpl, entries in reversed(steps[k - 1]):
                for i, partial in enumerate(entries):
                    if tpl.lhs.name == self.cell.loss_var.name:  # dL/dL^(k) = 1
                        adjoint[(tpl.lhs.name, k, i)] = mpmath.mpf(1)
                    a = adjoint.get((tpl.lhs.name, k, i), 0)
                    partials += len(partial)
                    if a == 0:
                        continue
                    for s, d in partial.items():
                        key = self.key(s, k)
                        adjoint[key] = adjoint.get(key, 0) + a * d
        for tpl, entries in reversed(fixed):  # once, after every step passed its part
            for i, partial in enumerate(entries):
                a = adjoint.get(("fixed", tpl.lhs.name, i // tpl.cols, i % tpl.cols), 0)
                partials += len(partial)
                for s, d in partial.items():
                    key = self.key(s, 0)
                    adjoint[key] = adjoint.get(key, 0) + a * d
        return adjoint, partials


# -- the point: random rationals for every parameter, input, target and start ---------

def _point(cell, sizes, T, rng):
    size = lambda d: int(d.subs(sizes))
    values = {}
    for p in cell.params:
        for i in range(size(p.shape[0])):
            for j in range(size(p.shape[1])):
                values[("param", p.name, i, j)] = _rational(rng)
    for v in cell.inputs + cell.targets:
        for k in range(1, T + 1):
            for i in range(size(v.shape[0])):
                values[(v.name, k, i)] = _rational(rng)
    for s in cell.states:
        for i in range(size(s.shape[0])):
            values[(s.name, 0, i)] = _rational(rng)
    return values


# -- the closed forms, evaluated entry by entry ------------------------------------

class _ClosedForm:
    def __init__(self, cell, sizes, values, T):
        self.params = {p.name for p in cell.params}
        self.fixed = {lhs.name for lhs in cell.fixed_values}
        self.values, self.T = values, T
        self.size = lambda d: int(d.subs(sizes))
        self.adjoint = {}  # (name, k) -> column (list of rows)
        self.k = None      # the step t stands for
        self.functions = {}

    def _time(self, time):
        return int(time.xreplace({t: Integer(self.k or 0), T_symbol: Integer(self.T)}))

    def _column(self, name, k, rows):
        # a term of step T+1 is multiplied by an adjoint of that step, which is 0
        # (dL/dL^(T+1) for the loss's own terms); the generated code and the
        # backends rely on it and hold any finite values there (codegen: the
        # values of step T again): so does this route, so that a term of step
        # T+1 that is not multiplied by 0 makes a difference here too
        k = min(k, self.T)
        return [[self.values[(name, k, i)]] for i in range(rows)]

    def leaf(self, expr):
        if isinstance(expr, Adjoint) and isinstance(expr.var, MatrixSymbol):
            return self.adjoint[(expr.var.name, None)]  # of a named matrix: no step
        if isinstance(expr, Adjoint):
            k = self._time(expr.var.time)
            rows = self.size(expr.shape[0])
            if k > self.T:
                return [[0] for _ in range(rows)]
            return self.adjoint[(expr.var.name, k)]
        if isinstance(expr, (StepVar, MatrixSymbol)) and (expr.name in self.params
                                                          or expr.name in self.fixed):
            rows, cols = map(self.size, expr.shape)
            role = "param" if expr.name in self.params else "fixed"
            return [[self.values[(role, expr.name, i, j)] for j in range(cols)]
                    for i in range(rows)]
        if isinstance(expr, StepVar):
            return self._column(expr.name, self._time(expr.time), self.size(expr.shape[0]))
        if isinstance(expr, Elementwise):  # an unnamed value such as tanh(s^(t))
            arg = evaluate(expr.arg, self.leaf, self.size, _mpf)
            return [[v] for v in self._function(type(expr), len(arg))(*[r[0] for r in arg])]
        if isinstance(expr, SumOverTime):
            lo, hi = (self._time(x) for x in expr.limits)
            outer, total = self.k, None
            for k in range(lo, hi + 1):
                self.k = k
                term = evaluate(expr.term, self.leaf, self.size, _mpf)
                total = term if total is None else [[a + b for a, b in zip(r, s)]
                                                    for r, s in zip(total, term)]
            self.k = outer
            return total
        return None

    def _function(self, op, n):
        if (op, n) not in self.functions:
            u = [Symbol(f"u{i}", real=True) for i in range(n)]
            self.functions[(op, n)] = lambdify(u, op.definition(u), modules=_MODULES)
        return self.functions[(op, n)]

    def __call__(self, expr, k):
        self.k = k
        return evaluate(expr, self.leaf, self.size, _mpf)


# -- the comparison ---------------------------------------------------------------

def _disagree(closed, independent):
    scale = max([mpmath.mpf(1)] + [abs(v) for v in independent])
    diff_ = max(abs(a - b) for a, b in zip(closed, independent))
    return diff_ > scale * mpmath.mpf(10) ** -AGREEMENT, diff_


def default_sizes(cell):
    """Small sizes, alternately 2 and 3, so that no two neighbouring sizes agree."""
    return {s: 2 + i % 2 for i, s in enumerate(cell.sizes)}


def verify(derivation, T, seed=0, sizes=None, raises=True, points=2):
    """Compare the closed forms with the independent scalar chain rule for ``T`` steps,
    at ``points`` random points (two: a relu that happens to be off everywhere at
    one point hides nothing at the other).

    Raises ``VerificationError`` naming the first quantity that differs (with
    ``raises=False``, returns a ``Verification`` whose ``ok`` is False instead).
    """
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T: must be a positive integer, got {T!r}")
    cell = derivation.cell
    sizes = checked_sizes(cell, sizes)
    with mpmath.workdps(DIGITS):
        routes = derivation.__dict__.setdefault("_scalar_routes", {})
        key = tuple(sorted((str(k), v) for k, v in sizes.items()))
        try:
            route = routes.get(key) or routes.setdefault(key, _ScalarRoute(cell, sizes))
        except _Undecided as e:
            return _undecided(T, sizes, str(e), raises)
        rng, report = random.Random(seed), None
        for _ in range(points):
            for attempt in range(8):
                try:
                    found = _compare(derivation, route, sizes, T, rng, raises)
                    break
                except (_Degenerate, ZeroDivisionError, OverflowError, MemoryError):
                    continue  # a kink, a pole, or values beyond any float: another point
            else:
                return _undecided(T, sizes, "no regular random point found (every draw hit a "
                                  "kink or a pole, or values beyond the range of a float)", raises)
            if report is None:
                report = found
            else:
                report.mismatches += found.mismatches
    return report


def _undecided(T, sizes, why, raises):
    """The verdict when no comparison could be made: not verified, not found wrong."""
    if raises:
        raise VerificationError(f"verify(T={T}) could not compare: {why}")
    return Verification(T, {str(k): v for k, v in sizes.items()}, [], undecided=why)


MAX_SIZE = 8  # the scalar route writes out every entry: small sizes only


def checked_sizes(cell, sizes):
    """``{size symbol: int}`` for every size of ``cell``: ``sizes`` (keys symbols or
    their names, values positive integers up to MAX_SIZE), the defaults for the others."""
    out = default_sizes(cell)
    if sizes is None:
        return out
    if not hasattr(sizes, "items"):
        raise ValueError(f"sizes: expected a dict such as {{'D': 2}}, got {type(sizes).__name__}")
    by_name = {str(s): s for s in cell.sizes}
    for key, value in sizes.items():
        symbol = by_name.get(str(key)) if isinstance(key, (str, Symbol)) else None
        if symbol is None:
            known = ", ".join(by_name) or "none"
            raise ValueError(f"sizes: {key!r} is not a size of the cell (its sizes: {known})")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
            raise ValueError(f"sizes[{str(key)!r}]: expected an integer from 1 to {MAX_SIZE}, "
                             f"got {value!r}")
        out[symbol] = value
    return out


def _compare(derivation, route, sizes, T, rng, raises):
    cell = derivation.cell
    values = _point(cell, sizes, T, rng)
    independent, partials = route.run(values, T)
    closed = _ClosedForm(cell, sizes, values, T)
    report = Verification(T, {str(k): v for k, v in sizes.items()}, [], chain_rule_terms=partials)

    def check(name, got, key):
        flat = [v for row in got for v in row]
        want = [independent.get(key(i), 0) for i in range(len(flat))]
        bad, by = _disagree(flat, want)
        if bad:
            report.mismatches.append(f"{name}: the closed form differs from the independent "
                                     f"chain rule by {mpmath.nstr(by, 3)}")
            if derivation.failed_verification is None:  # the builders consult it
                derivation.failed_verification = f"verify(T={T}) found {report.mismatches[-1]}"
            if raises:
                raise VerificationError(report.mismatches[-1])

    for k in range(T, 0, -1):
        for a, expr in derivation.adjoints.items():
            value = closed.adjoint[(a.var.name, k)] = closed(expr, k)
            check(f"dL/d{a.var.name}^({k})", value, lambda i, n=a.var.name, k=k: (n, k, i))
            report.adjoints += 1
    for a, expr in derivation.terminal.items():
        value = closed(expr, T)
        check(f"dL/d{a.var.name}^(T)", value, lambda i, n=a.var.name: (n, T, i))
    for a, expr in derivation.fixed_adjoints.items():
        value = closed.adjoint[(a.var.name, None)] = closed(expr, None)
        cols = int(a.var.shape[1].subs(sizes))
        check(f"dL/d{a.var.name}", value,
              lambda i, n=a.var.name, c=cols: ("fixed", n, i // c, i % c))
    for name, expr in derivation.gradients.items():
        value = closed(expr, None)
        if name in {p.name for p in cell.params}:
            cols = int(cell.param(name).shape[1].subs(sizes))
            key = lambda i, n=name, c=cols: ("param", n, i // c, i % c)
        else:
            key = lambda i, n=name[:-1]: (n, 0, i)
        check(name, value, key)
        report.gradients.append(name)
    return report
