"""Answers and derived gradients evaluated at random points, independently of each other.

A ``Point`` is one random network: sizes, T, parameters, inputs, targets (class
distributions when the cell's targets are), initial states. Its forward pass
gives every value v^(k) for k = 1 .. T + 1 (one step beyond T, so that an
expression may name h^(t+1) at t = T; the loss counts steps 1 .. T only); the
derivation's adjoint recurrences, evaluated backwards with the adjoints of step
T + 1 zero, give every dL/dv^(k). An answer is then evaluated entry by entry
with those values: the adjoints it names are known quantities, as on the sheet.
Nothing of the answer is substituted into the derivation or the other way round.
"""
from types import SimpleNamespace

import numpy as np
from sympy import (HadamardPower, HadamardProduct, Identity, Integer, MatAdd, MatMul, MatPow,
                   MatrixSymbol, OneMatrix, Transpose, ZeroMatrix)
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..graph.unroll import T, step_equations, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import Elementwise
from .forms import free_symbols
from .nodes import StepLossAdjoint

_XP = SimpleNamespace(
    tanh=np.tanh, sigmoid=lambda x: 0.5 + 0.5 * np.tanh(0.5 * x), exp=np.exp, log=np.log,
    sqrt=np.sqrt, abs=np.abs, rowmax=lambda x: x.max(-1, keepdims=True),
    rowsum=lambda x: x.sum(-1, keepdims=True))

# the lengths and seeds of the points every answer is evaluated at; sizes are
# distinct at each point, so that a missing transpose cannot hide in a square
POINTS = ((1, 0), (2, 1), (3, 2), (4, 3), (3, 4))
SIZE_VALUES = (3, 2, 4, 5, 6, 7, 8, 9)


class Undefined(ValueError):
    """The answer names a value the network does not have, such as x^(0)."""


class Point:
    def __init__(self, derivation, T_value, seed):
        self.d = derivation
        cell = derivation.cell
        self.T = T_value
        rng = np.random.default_rng(seed)
        sizes = list(cell.sizes)
        shift = seed % len(SIZE_VALUES)
        values = SIZE_VALUES[shift:] + SIZE_VALUES[:shift]
        self.sizes = {s: values[i % len(values)] for i, s in enumerate(sizes)}
        self.params = {p.name: rng.normal(size=self.shape(p)) * 0.6 / np.sqrt(self.shape(p)[1])
                       for p in cell.params}
        self.param_names = set(self.params)
        self.numbers = {**{s: Integer(v) for s, v in self.sizes.items()},
                        **{c: c.value for c in cell.constants}}
        self.values = {}
        for s in cell.states:
            self.values[(s.name, 0)] = rng.normal(size=self.shape(s)) * 0.5
        distributions = cell.targets_are_distributions
        self.memo = {}
        with np.errstate(all="ignore"):
            for lhs, rhs in cell.fixed:     # the named matrices of the parameters
                self.params[lhs.name] = self.evaluate(rhs)
            self.param_names = set(self.params)     # a step reads them as it reads W
            for k in range(1, T_value + 2):
                for x in cell.inputs:
                    self.values[(x.name, k)] = rng.normal(size=self.shape(x))
                for y in cell.targets:
                    rows = self.shape(y)[0]
                    self.values[(y.name, k)] = (rng.dirichlet(np.ones(rows)).reshape(-1, 1)
                                                if distributions else rng.normal(size=(rows, 1)))
                for lhs, rhs in step_equations(cell, Integer(k)):
                    self.values[(lhs.name, k)] = self.evaluate(rhs)
            self.adjoints = {}
            for k in range(T_value, 0, -1):
                for a, e in derivation.adjoints.items():
                    self.adjoints[(a.var.name, k)] = self.evaluate(e, {t: k})
            for s in cell.states:
                self.adjoints[(s.name, 0)] = self.evaluate(derivation.gradients[f"{s.name}0"])
            self.local = {}

    def shape(self, sym):
        return tuple(int(d.xreplace(self.sizes)) if not isinstance(d, int) else d
                     for d in sym.shape)

    def _step(self, time, env):
        value = time.xreplace(env).xreplace({T: Integer(self.T)})
        if not value.is_Integer:
            raise Undefined(f"the time {time} is not a step (a free index)")
        return int(value)

    def _local(self, k):
        """dL^(k)/dv^(k) for every v: the adjoints of step k with nothing from later steps."""
        if k not in self.local:
            table = {}
            for a, e in self.d.adjoints.items():
                table[a.var.name] = self.evaluate(e, {t: k}, local=(k, table))
            self.local[k] = table
        return self.local[k]

    def evaluate(self, expr, env=None, local=None):
        """The value of ``expr`` as a 2-D array; ``env`` binds t and the sums' indices."""
        env = {s: Integer(v) for s, v in env.items()} if env else {}
        key = (expr, tuple(sorted(env.items(), key=str)), local and local[0])
        if local is None and key in self.memo:
            return self.memo[key]
        value = self._evaluate(expr, env, local)
        if local is None:
            self.memo[key] = value
        return value

    def _evaluate(self, e, env, local):
        ev = lambda x, env=env: self.evaluate(x, env, local)
        if isinstance(e, MatrixSymbol):
            if e.name in self.params:
                return self.params[e.name]
            raise Undefined(f"{e.name} has no value here")
        if isinstance(e, StepVar):
            if e.name in self.param_names:
                return self.params[e.name]
            k = self._step(e.time, env)
            value = self.values.get((e.name, k))
            if value is None:
                raise Undefined(f"{e.name}^({k}) is not defined (the sequence has steps 1 "
                                f"to T; only states have a value at step 0)")
            return value
        if isinstance(e, Adjoint) and e in self.d.fixed_adjoints:
            return self.evaluate(self.d.fixed_adjoints[e])
        if isinstance(e, Adjoint):
            var = e.var
            if not isinstance(var, StepVar) or var.name in self.param_names:
                raise Undefined(f"dL/d{var} is not a known quantity")
            k = self._step(var.time, env)
            rows = self.shape(var)[0]
            if local is not None and k == local[0]:
                return local[1].get(var.name, np.zeros((rows, 1)))
            if k > self.T or local is not None and k > local[0]:
                return np.zeros((rows, 1))
            value = self.adjoints.get((var.name, k))
            if value is None:
                raise Undefined(f"dL/d{var.name}^({k}) is not defined")
            return value
        if isinstance(e, StepLossAdjoint):
            k = self._step(e.var.time, env)
            if not 1 <= k <= self.T:
                return np.zeros((self.shape(e.var)[0], 1))
            return self._local(k)[e.var.name]
        if isinstance(e, MatAdd):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out + ev(a)
            return out
        if isinstance(e, MatMul):
            coeff, factors = e.as_coeff_matrices()
            out = ev(factors[0])
            for f in factors[1:]:
                out = out @ ev(f)
            if coeff != 1:
                out = self.number(coeff, env) * out
            return out
        if isinstance(e, MatPow):
            return np.linalg.matrix_power(ev(e.base), int(e.exp))
        if isinstance(e, HadamardProduct):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out * ev(a)
            return out
        if isinstance(e, HadamardPower):
            return ev(e.base) ** int(e.exp)
        if isinstance(e, Transpose):
            return ev(e.arg).T
        if isinstance(e, DiagMatrix):
            return np.diagflat(ev(e.args[0]))
        if isinstance(e, (OneMatrix, ZeroMatrix, Identity)):
            rows, cols = self.shape(e)
            if isinstance(e, Identity):
                return np.eye(rows)
            return (np.ones if isinstance(e, OneMatrix) else np.zeros)((rows, cols))
        if isinstance(e, Elementwise):
            column = ev(e.arg)
            return np.asarray(type(e).kernels["array"](_XP, column.T), dtype=float).T
        if isinstance(e, SumOverTime):
            lo, hi = (self._step(x, env) for x in e.limits)
            total = np.zeros(self.shape(e))
            for j in range(lo, hi + 1):
                total = total + ev(e.term, {**env, e.index: j})
            return total
        raise NotImplementedError(f"cannot evaluate {type(e).__name__}")

    def number(self, coeff, env):
        """A scalar coefficient: t, T, the sizes and the named constants given values."""
        return float(coeff.xreplace(env).xreplace({T: Integer(self.T)}).xreplace(self.numbers))

    def steps(self, expr):
        """The values of ``expr`` at every step t = 1..T (one array each), or its one
        value when t is not free in it."""
        if t in free_symbols(expr):
            return [self.evaluate(expr, {t: k}) for k in range(1, self.T + 1)]
        return [self.evaluate(expr)]


def points(derivation):
    return [Point(derivation, T_value, seed) for T_value, seed in POINTS]


def values(pts, expr):
    """``expr`` at every point: a list (per point) of lists (per step) of arrays."""
    with np.errstate(all="ignore"):
        return [p.steps(expr) for p in pts]


def aligned(a, b):
    """``a`` and ``b`` with a value that does not depend on t repeated at every step
    of the other (h^(0) against a recurrence at t = 1..T, 0 against anything)."""
    if len(a) != len(b):
        return a, b
    a2, b2 = [], []
    for pa, pb in zip(a, b):
        if len(pa) == 1 and len(pb) > 1:
            pa = pa * len(pb)
        elif len(pb) == 1 and len(pa) > 1:
            pb = pb * len(pa)
        a2.append(pa)
        b2.append(pb)
    return a2, b2


def close(a, b, rtol=1e-7):
    """Whether two lists of values (as ``values`` returns) agree; entries where the
    reference ``b`` is not finite are not compared."""
    a, b = aligned(a, b)
    if len(a) != len(b):
        return False
    for pa, pb in zip(a, b):
        if len(pa) != len(pb):
            return False
        flat_a = np.concatenate([x.ravel() for x in pa]) if pa else np.zeros(0)
        flat_b = np.concatenate([x.ravel() for x in pb]) if pb else np.zeros(0)
        if any(x.shape != y.shape for x, y in zip(pa, pb)):
            return False
        finite = np.isfinite(flat_b)
        if not np.all(np.isfinite(flat_a[finite])):
            return False
        scale = np.max(np.abs(flat_b[finite]), initial=0.0)
        if np.max(np.abs(flat_a[finite] - flat_b[finite]), initial=0.0) > rtol * scale + 1e-12:
            return False
    return True
