"""Check a derivation's closed form against the chain rule on the unrolled copies.

Both sides are evaluated exactly, in rational arithmetic, at one random point:
every parameter, input, target and forward value (h^(k), yhat^(k), ...) gets
random rational entries, so the check is an identity in those values, not a
numerical approximation. The unrolled side uses no time invariance: it is the
plain reverse-mode chain rule over T steps with distinct copies W^(1..T).
"""
import random
from dataclasses import dataclass
from fractions import Fraction

import numpy
from sympy import Integer, srepr

from ..codegen import ir, runtime
from ..codegen.emit import NumPyPrinter
from ..codegen.lower import RowLowering
from ..graph.unroll import T as T_symbol, UnrolledGraph, shared, t
from ..model.nodes import Adjoint, Elementwise, StepVar
from .reverse import backprop, seed


class VerificationError(AssertionError):
    """The closed form and the unrolled chain rule disagree."""


@dataclass
class Verification:
    T: int
    sizes: dict
    gradients: list       # the names checked
    chain_rule_terms: int  # contributions on the unrolled graph

    def __bool__(self):
        return True


class _Values(dict):
    """Random rational values, made on first use."""

    def __init__(self, shapes, rng):
        super().__init__()
        self.shapes, self.rng = shapes, rng

    def __missing__(self, key):
        kind, name = key  # ("param", "W"), ("h", 3) or ("fn", "Tanh(...)")
        rows, cols = self.shapes[name if kind in ("param", "fn") else kind]
        if kind != "param":
            shape = (1, rows)    # a per-step column, in row layout with B = 1
        else:
            shape = (rows,) if cols == 1 else (rows, cols)
        value = numpy.array([Fraction(self.rng.randint(-9, 9), self.rng.randint(1, 7))
                             for _ in range(int(numpy.prod(shape)))], dtype=object).reshape(shape)
        self[key] = value
        return value


class _ExactPrinter(RowLowering):
    """Rational coefficients as Fractions, so that nothing is rounded; an
    unnamed function value such as tanh(s^(3)) is one more free value, the same
    wherever the same expression occurs."""

    def number(self, value):
        value = Fraction(int(value.p), int(value.q)) if hasattr(value, "p") else Fraction(value)
        return ir.call(ir.Name("_Fraction"), ir.Const(value.numerator), ir.Const(value.denominator))

    def lower(self, expr):
        if isinstance(expr, Elementwise):  # every subclass: tanh, softmax, ...
            return self.names(expr)
        return super().lower(expr)


class _Evaluator:
    def __init__(self, cell, sizes, rng):
        symbols = cell.params + cell.inputs + cell.targets + cell.variables
        self.cell = cell
        shapes = {s.name: tuple(int(d.subs(sizes)) for d in s.shape) for s in symbols}
        self.params = {p.name for p in cell.params}
        self.values = _Values(shapes, rng)
        self.adjoints = {}
        self.shapes = shapes
        self.size = lambda dim: int(dim.subs(sizes))
        self.printer = _ExactPrinter(self._name, self.params)
        self.namespace = {"numpy": numpy, "_Fraction": Fraction, "_v": self.values, "_a": self.adjoints,
                          **{k: v for k, v in vars(runtime).items() if k.startswith("_")}}

    def _name(self, leaf):
        if isinstance(leaf, Elementwise):
            # tanh(W^(k) h^(k-1)) of the unrolled side is tanh(W h^(k-1)) of the closed form
            key = ("fn", srepr(shared(self.cell, leaf)))
            self.values.shapes.setdefault(key[1], (self.size(leaf.shape[0]), 1))
            return ir.Index(ir.Name("_v"), ir.Const(key))
        if isinstance(leaf, Adjoint):
            return ir.Index(ir.Name("_a"), ir.Const((leaf.var.name, int(leaf.var.time))))
        if leaf.name in self.params:
            return ir.Index(ir.Name("_v"), ir.Const(("param", leaf.name)))
        return ir.Index(ir.Name("_v"), ir.Const((leaf.name, int(leaf.time))))

    def zero(self, name, time):
        rows, cols = self.shapes[name]
        self.adjoints[(name, time)] = numpy.zeros((1, rows), dtype=object) + Fraction(0)

    def __call__(self, expr):
        return eval(NumPyPrinter().doprint(self.printer.lower(expr)), self.namespace)


def _total(values):
    return sum(values[1:], values[0])


def _compare(name, closed, unrolled):
    if closed.shape != unrolled.shape or not (closed == unrolled).all():
        diff = numpy.abs(numpy.asarray(closed - unrolled, dtype=float)).max() \
            if closed.shape == unrolled.shape else "shape"
        raise VerificationError(f"{name}: closed form differs from the unrolled chain rule "
                                f"(max difference {diff})")


def verify(derivation, T, seed_value=0):
    """Raise VerificationError unless the closed form equals the unrolled chain rule."""
    if not isinstance(T, (int, numpy.integer)) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T: must be a positive integer, got {T!r}")
    cell = derivation.cell
    sizes = {s: 2 + i for i, s in enumerate(cell.sizes)}  # small and all different
    rng = random.Random(seed_value)
    unrolled, closed = _Evaluator(cell, sizes, rng), _Evaluator(cell, sizes, rng)
    closed.values = unrolled.values  # the same point for both sides
    closed.namespace["_v"] = unrolled.values

    # unrolled: plain reverse mode over T steps with copies W^(1), ..., W^(T)
    graph = UnrolledGraph(cell, T)
    found = backprop(graph.equations, {l: v for k in graph.losses for l, v in seed(k).items()})
    for lhs, _ in reversed(graph.equations):
        if lhs in graph.losses:
            continue
        terms = [unrolled(c.term) for c in found.get(lhs, [])]
        if terms:
            unrolled.adjoints[(lhs.name, int(lhs.time))] = _total(terms)
        else:
            unrolled.zero(lhs.name, int(lhs.time))
    sums = {}
    for p in cell.params:
        terms = [unrolled(c.term) for copy in graph.copies(p) for c in found.get(copy, [])]
        sums[p.name] = _total(terms) if terms else None
    for s, s0 in zip(cell.states, graph.initial_states):
        terms = [unrolled(c.term) for c in found.get(s0, [])]
        sums[f"{s.name}0"] = _total(terms) if terms else None

    # closed form: the derived recurrences, run from t = T down to 1
    for a in derivation.adjoints:
        closed.zero(a.var.name, T + 1)
    for k in range(T, 0, -1):
        for a, e in derivation.adjoints.items():
            closed.adjoints[(a.var.name, k)] = closed(e.subs(t, Integer(k)))
    for a, e in derivation.terminal.items():
        name = f"dL/d{a.var.name}^(T)"
        _compare(name, closed(e.subs(T_symbol, Integer(T))), unrolled.adjoints[(a.var.name, T)])
    checked = []
    for name, g in derivation.gradients.items():
        g = g.subs(T_symbol, Integer(T)).doit()  # sums over t written out
        if sums[name] is None:
            if not g.is_ZeroMatrix:
                raise VerificationError(f"{name}: unrolled gradient is zero, closed form is not")
            continue
        _compare(name, closed(g), sums[name])
        checked.append(name)
    return Verification(T, {str(k): v for k, v in sizes.items()}, checked,
                        sum(len(v) for v in found.values()))
