"""The catalogue of typical BPTT mistakes, each a transformation of the DERIVED formula.

A mistake takes the formula the engine derived (in three forms: as derived; with
the adjoints of intermediate variables written out; and with the state's adjoint
at the asked step expanded by its recurrence) and returns the formulas a student
makes with it, each with a detail naming what changed. A wrong answer equal to
one of them is that mistake. Everything about a mistake is in its entry here:
its name, the sentence the feedback says, and its transformation.

The modifiers at the end (sign, 1/T, transposed result, missing sum) apply on top
of any formula, the right one included; ``grade.py`` checks them.
"""
from dataclasses import dataclass
from typing import Callable

from sympy import (HadamardPower, HadamardProduct, MatAdd, MatMul, MatrixSymbol,
                   OneMatrix, Transpose, ZeroMatrix)

from ..graph.unroll import at_time, shared, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import Elementwise, Sigmoid, Tanh
from .forms import hadamard_factors, terms
from .show import show


@dataclass(frozen=True)
class Mistake:
    key: str                  # a short identifier: "transpose", "time shift", ...
    name: str                 # what the feedback calls it
    says: str                 # the sentence, with {detail}
    variants: Callable        # (Forms) -> [(detail, expression), ...]


@dataclass
class Forms:
    """The derived formula of one key in the forms the mistakes transform.

    derived   as the engine gives it (for a sum over t: the term of step t)
    inlined   adjoints of intermediate variables written out
    expanded  and the states' adjoints at the asked step expanded by one recurrence
    later     the adjoints that come from later steps than the asked one
    """
    cell: object
    derivation: object
    derived: object
    inlined: object
    expanded: object
    time: object              # the step of the asked quantity (t, or 1 for h0)

    @property
    def bases(self):
        out = []
        for e in (self.derived, self.inlined, self.expanded):
            if e not in out:
                out.append(e)
        return out


def _replace_all(expr, old, new):
    return expr.xreplace({old: new})


def _replace_outside_adjoints(expr, old, new):
    """``expr`` with ``old`` replaced by ``new`` except inside adjoints: h^(t) shifted
    leaves dL/dh^(t) as it is."""
    if isinstance(old, Adjoint):
        return expr.xreplace({old: new})
    hidden = {a: MatrixSymbol(f"_adjoint{i}", *a.shape)
              for i, a in enumerate(nodes(expr, Adjoint))}
    shown = {v: k for k, v in hidden.items()}
    return expr.xreplace(hidden).xreplace({old: new}).xreplace(shown)


def nodes(expr, cls, inside_adjoints=True):
    """The distinct sub-expressions of type ``cls`` in preorder (a stable order that
    needs no printing; ``sorted(key=str)`` prints every node)."""
    seen, out, todo = set(), [], [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, cls) and e not in seen:
            seen.add(e)
            out.append(e)
        if isinstance(e, Adjoint) and not inside_adjoints:
            continue
        todo.extend(reversed([a for a in getattr(e, "args", ()) if getattr(a, "is_Matrix", False)]))
    return out


def _later(adjoint, time):
    offset = adjoint.var.time - time
    return offset.is_Integer and offset > 0


# -- the transformations -----------------------------------------------------------------

def _transpose_dropped(forms):
    out = []
    for base in forms.bases:
        for node in nodes(base, Transpose):
            if node.arg.shape == node.shape and not isinstance(node.arg, OneMatrix):
                out.append((f"{show(node.arg)} where {show(node)} belongs",
                            _replace_all(base, node, node.arg)))
    return out


def _shifted(atom, by):
    if isinstance(atom, Adjoint):
        return Adjoint(atom.var.at(atom.var.time + by))
    return atom.at(atom.time + by)


def _time_shift(forms):
    params = {p.name for p in forms.cell.params}
    out = []
    for base in forms.bases:
        atoms = [a for a in nodes(base, StepVar, inside_adjoints=False) if a.name not in params]
        atoms += [a for a in nodes(base, Adjoint) if isinstance(a.var, StepVar)]
        for atom in atoms:
            time = atom.var.time if isinstance(atom, Adjoint) else atom.time
            for by in (1, -1):
                if (time + by).is_Integer and time + by < 0:
                    continue
                moved = _shifted(atom, by)
                try:
                    variant = _replace_outside_adjoints(base, atom, moved)
                except (ValueError, TypeError):
                    continue
                out.append((f"{show(moved)} where {show(atom)} belongs", variant))
    return out


def _recurrent_dropped(forms):
    out = []
    for base in forms.bases:
        later = [a for a in nodes(base, Adjoint) if isinstance(a.var, StepVar)
                 and _later(a, forms.time)]
        if later:
            zero = {a: ZeroMatrix(*a.shape) for a in later}
            names = ", ".join(sorted({show(a) for a in later}))
            out.append((f"the terms through {names} are missing", base.xreplace(zero)))
    return out


def activation_factors(cell, expr):
    """[(op, ans, x, factors)]: each derivative of an activation in ``expr``'s entry-wise
    products, with its value ``ans`` (h^(t), or the node tanh(s^(t))), its argument
    and the factors op'(x) stands for."""
    found = []
    candidates = []
    defined = {}
    for lhs, rhs in cell.equations:
        if isinstance(rhs, Elementwise):
            defined[lhs.name] = rhs
    for node in nodes(expr, StepVar, inside_adjoints=False):
        if node.name in defined:
            rhs = shared(cell, at_time(cell, defined[node.name], node.time))
            candidates.append((type(rhs), node, _name_argument(cell, rhs.arg, node.time)))
    for node in nodes(expr, Elementwise):
        candidates.append((type(node), node, node.arg))
    for op, ans, x in dict.fromkeys(candidates):
        factors = derivative_factors(op, ans, x)
        if factors:
            found.append((op, ans, x, factors))
    return found


def _name_argument(cell, arg, time):
    """The argument of an activation, by its name when an equation names it (z^(t))."""
    for lhs, rhs in cell.equations:
        if shared(cell, at_time(cell, rhs, time)) == arg:
            return StepVar(lhs.name, time, *lhs.shape)
    return arg


def _op_name(op):
    return op.name or op.__name__.lower()


def derivative_factors(op, ans, x):
    """The entry-wise factors of op'(x) in the operation's own adjoint rule, or None."""
    g = MatrixSymbol("_g", *ans.shape)
    try:
        rule = op.vjp(ans, x, g)
    except Exception:   # an operation whose rule needs more than (ans, x)
        return None
    if rule is None:
        return None
    factors = [f.doit() for f in hadamard_factors(rule.doit())]
    if g not in factors:
        return None
    factors.remove(g)
    return factors or None


def _without(factors, remove):
    rest = list(factors)
    for f in remove:
        if f not in rest:
            return None
        rest.remove(f)
    return rest


def _hadamards_with(base, factors):
    for node in nodes(base, HadamardProduct):
        rest = _without(hadamard_factors(node), factors)
        if rest is not None:
            yield node, rest


def _rebuild(parts, shape):
    parts = [p for p in parts if not (isinstance(p, OneMatrix))] or [OneMatrix(*shape)]
    return parts[0] if len(parts) == 1 else HadamardProduct(*parts)


def _activation_dropped(forms):
    out = []
    for base in forms.bases:
        for op, ans, x, factors in activation_factors(forms.cell, base):
            for node, rest in _hadamards_with(base, factors):
                out.append((f"the factor {_op_name(op)}'({show(x)}) is missing",
                            _replace_all(base, node, _rebuild(rest, node.shape))))
    return out


def _alternatives(op, ans, x):
    """The derivatives students put in place of op'(x): (what, factors)."""
    one = OneMatrix(*ans.shape)
    if op is Tanh:
        return [(f"sigma'-form {show(ans)} (.) (1 - {show(ans)}) in place of tanh'",
                 [ans, (one - ans).doit()]),
                (f"1 - {show(ans)} in place of 1 - {show(ans)} (.) {show(ans)}",
                 [(one - ans).doit()]),
                (f"the derivative written in {show(x)} (1 - {show(x)} (.) {show(x)}) instead "
                 f"of in {show(ans)}", [(one - HadamardPower(x, 2)).doit()])]
    if op is Sigmoid:
        return [(f"tanh'-form 1 - {show(ans)} (.) {show(ans)} in place of sigma'",
                 [(one - HadamardPower(ans, 2)).doit()]),
                (f"the derivative written in {show(x)} instead of in {show(ans)}",
                 [x, (one - x).doit()])]
    return []


def _activation_wrong(forms):
    out = []
    for base in forms.bases:
        for op, ans, x, factors in activation_factors(forms.cell, base):
            for node, rest in _hadamards_with(base, factors):
                for what, other in _alternatives(op, ans, x):
                    out.append((what, _replace_all(base, node,
                                                   _rebuild(rest + other, node.shape))))
    return out


def _diag_wrong_side(forms):
    """W^T (J (.) g) -> J (.) (W^T g): diag(J) on the other side of W^T."""
    out = []
    for base in forms.bases:
        derivatives = activation_factors(forms.cell, base)
        for product in nodes(base, MatMul):
            args = product.args
            for i in range(len(args) - 1):
                a, h = args[i], args[i + 1]
                if not isinstance(h, HadamardProduct) or not getattr(a, "is_Matrix", False) \
                        or a.shape[0] != a.shape[1] or a.shape[0] == 1:
                    continue
                for op, ans, x, factors in derivatives:
                    rest = _without(hadamard_factors(h), factors)
                    if rest is None or not rest:
                        continue
                    inner = MatMul(a, _rebuild(rest, h.shape))
                    moved = HadamardProduct(*factors, inner)
                    new = MatMul(*args[:i], moved, *args[i + 2:]) if len(args) > 2 else moved
                    out.append((f"diag({_op_name(op)}'({show(x)})) stands before {show(a)} instead "
                                f"of after it", _replace_all(base, product, new)))
    return out


def _gate(cell, factor):
    """The gate a factor is (u, or 1 - u), or None."""
    gates = {lhs.name for lhs, rhs in cell.equations if isinstance(rhs, Sigmoid)}
    for v in factor.atoms(StepVar):
        if v.name in gates:
            return v
    return None


def _factor_dropped(forms):
    out = []
    for base in forms.bases:
        for node in nodes(base, HadamardProduct):
            args = hadamard_factors(node)
            for f in dict.fromkeys(args):
                if f.atoms(Adjoint) or len(args) < 2:
                    continue
                rest = list(args)
                rest.remove(f)
                gate = _gate(forms.cell, f)
                shown = show(f.arg if isinstance(f, Transpose) else f)
                what = f"the gate factor {shown}" if gate is not None else f"the factor {shown}"
                out.append((f"{what} is missing", _replace_all(base, node,
                                                               _rebuild(rest, node.shape))))
    return out


def _gates(cell):
    return {lhs.name for lhs, rhs in cell.equations if isinstance(rhs, Sigmoid)}


def _gate_complement(forms):
    """u where 1 - u belongs and the other way round (the conventions of GRU papers differ)."""
    gates = _gates(forms.cell)
    out = []
    for base in forms.bases:
        for node in nodes(base, HadamardProduct):
            for f in dict.fromkeys(hadamard_factors(node)):
                one = OneMatrix(*f.shape)
                if isinstance(f, StepVar) and f.name in gates:
                    other = one - f
                elif isinstance(f, MatAdd) and len(f.args) == 2 and one in f.args:
                    rest = [a for a in f.args if a != one][0]
                    other = -rest if isinstance(rest, MatMul) and rest.args[0] == -1 else None
                    if other is None or not (isinstance(other, StepVar) and other.name in gates):
                        continue
                else:
                    continue
                factors = list(hadamard_factors(node))
                factors[factors.index(f)] = other
                out.append((f"{show(other)} where {show(f)} belongs",
                            _replace_all(base, node, HadamardProduct(*factors))))
    return out


def _function_dropped(forms):
    """tanh(s^(t)) written s^(t): a function of the forward pass left out."""
    out = []
    for base in forms.bases:
        for node in nodes(base, Elementwise, inside_adjoints=False):
            out.append((f"{show(node.arg)} where {show(node)} belongs",
                        _replace_outside_adjoints(base, node, node.arg)))
    return out


def _term_dropped(forms):
    out = []
    for base in forms.bases:
        parts = terms(base)
        if len(parts) < 2:
            continue
        for i, part in enumerate(parts):
            rest = parts[:i] + parts[i + 1:]
            through = [show(a) for a in nodes(part, Adjoint)]
            what = f"the term through {', '.join(through)}" if through else \
                f"the term {show(part)}"
            out.append((f"{what} is missing", MatAdd(*rest) if len(rest) > 1 else rest[0]))
    return out


CATALOGUE = (
    Mistake("transpose", "missing transpose",
            "a transpose is missing: {detail}", _transpose_dropped),
    Mistake("time shift", "time shift",
            "a time shift: {detail}", _time_shift),
    Mistake("recurrent term", "missing recurrent term",
            "the recurrent term is missing ({detail}): the adjoint must collect what "
            "later steps pass back", _recurrent_dropped),
    Mistake("activation derivative", "activation derivative dropped",
            "the derivative of the activation is missing: {detail}", _activation_dropped),
    Mistake("wrong derivative", "wrong activation derivative",
            "the wrong derivative of the activation: {detail}", _activation_wrong),
    Mistake("diag side", "diag on the wrong side of the matrix",
            "the diagonal Jacobian is on the wrong side: {detail}; it scales the adjoint "
            "of the later step before the matrix carries it back", _diag_wrong_side),
    Mistake("gate factor", "missing factor",
            "a factor is missing: {detail}", _factor_dropped),
    Mistake("gate complement", "gate and its complement swapped",
            "a gate and its complement are swapped: {detail}", _gate_complement),
    Mistake("missing function", "missing function",
            "a function of the forward pass is missing: {detail}", _function_dropped),
    Mistake("missing term", "missing term",
            "a term is missing: {detail}", _term_dropped),
)

# modifiers of a whole formula, checked on the right one and on every variant
MODIFIERS = {
    "sign": ("wrong sign", "the sign is wrong (the whole formula is negated)"),
    "mean": ("1/T of a mean", "the formula is divided by T: L is the sum of the L^(t), "
                              "not their mean"),
    "factor": ("wrong constant factor", "the formula is off by the factor {detail}"),
    "transposed": ("transposed result", "the result is transposed: dL/d{name} has the "
                                        "shape of {name}"),
    "sum": ("missing sum over t", "the sum over t is missing: the per-step term alone is "
                                  "the gradient of one copy {name}^(t)"),
    "limits": ("wrong limits of the sum", "the sum over t runs over {detail}; L sums the "
                                          "losses of all steps, t = 1..T"),
    "diag order": ("diag after the vector", "a diagonal matrix follows the column it "
                                            "should multiply ({detail}: the shapes do not fit; "
                                            "the misprint of Goodfellow et al.'s eq. 10.21)"),
    "transpose repair": ("missing transpose", "a transpose is missing: {detail} (the shapes "
                                              "do not fit as written)"),
}


def forms_of(derivation, key):
    """The ``Forms`` of ``key``'s derived formula (the term of step t for a sum)."""
    target = key.target
    body = target.term if isinstance(target, SumOverTime) else target
    time = {"initial": 1}.get(key.kind, t)
    inlined = derivation.inline(body)
    states = {s.name: s for s in derivation.cell.states}

    def expand(a):
        state = states[a.var.name]
        recurrence = derivation.recurrence(state)
        return derivation.inline(recurrence.subs(t, a.var.time))

    at_time_ = [a for a in nodes(inlined, Adjoint) if isinstance(a.var, StepVar)
                and a.var.name in states and a.var.time == time]
    expanded = inlined.xreplace({a: expand(a) for a in at_time_}) if at_time_ else inlined
    return Forms(derivation.cell, derivation, body, inlined, expanded, time)


def variants(forms):
    """[(mistake, detail, expression)] of every catalogue entry, in catalogue order."""
    out = []
    for mistake in CATALOGUE:
        for detail, expr in mistake.variants(forms):
            out.append((mistake, detail, expr))
    return out


__all__ = ["CATALOGUE", "MODIFIERS", "Forms", "Mistake", "activation_factors",
           "derivative_factors", "forms_of", "variants"]
