"""The table of typical BPTT mistakes: what each is called, what it does to the
derived formula, and the sentence that teaches it.

``CATALOGUE`` holds the mistakes made inside a formula. Each entry's transformation
takes the formula the engine derived (``Forms``: as derived, with the adjoints of
intermediate variables written out, and with the state's adjoint at the formula's step
expanded by its recurrence) and returns the formulas a student writes with that mistake
(``Change``: the formula, and what it reads in place of what). A ``habit`` is made in
every formula it applies to at once (W for W^T, the recurrence cut), the others in one.

``RESULTS`` holds the mistakes of a whole result (its sign, a mean, its transpose, the
sum over t), each with its transformation of the result's value where one exists.

Both tables serve the answer checker (``symrnn.grading``: an answer equal to a
transformed formula is that mistake) and the hints of ``symrnn.testing.check_bptt``
(``hints.py``: the derivation with a mistake made, compared with a hand-written BPTT).
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

from sympy import (HadamardPower, HadamardProduct, MatAdd, MatMul, MatrixSymbol, OneMatrix,
                   Transpose, ZeroMatrix)

from ..graph.unroll import at_time, shared
from ..model.nodes import Adjoint, StepVar
from ..ops import Elementwise, Sigmoid, Tanh
from .forms import (hadamard_factors, nodes, replace_all, replace_outside_adjoints, terms)
from .show import show

__all__ = ["CATALOGUE", "RESULTS", "Change", "Mistake", "ResultMistake", "activation_factors",
           "derivative_factors", "variants"]


@dataclass(frozen=True)
class Change:
    """A derived formula with a mistake made: ``expr``; ``fields`` fill the sentence;
    the same change in another formula has the same ``tag``."""
    expr: object
    fields: dict = field(default_factory=dict, compare=False)
    tag: object = None


@dataclass(frozen=True)
class Mistake:
    """A mistake made inside a formula (an entry of ``CATALOGUE``)."""
    key: str                      # a short identifier: "transpose", "time shift", ...
    name: str                     # what a person calls it
    says: str                     # the sentence: {where} the formula(s), {uses} uses/use,
    #                               the change's fields; with ``part``: {parts}
    transform: Callable           # (Forms) -> [Change, ...]
    part: Optional[str] = None    # the clause said of each formula, joined into {parts}
    why: str = ""                 # what the feedback on an answer adds: why it is wrong
    habit: bool = False           # made in every formula it applies to at once

    def sentence(self, changes):
        """The sentence for ``[(where, Change), ...]``: the formulas the mistake is made
        in (printed, e.g. dL/dW) with the change made in each."""
        if self.part is not None:
            parts = "; ".join(self.part.format(where=w, **c.fields) for w, c in changes)
            return self.says.format(parts=parts)
        wheres = list(dict.fromkeys(w for w, _ in changes))
        return self.says.format(where=" and ".join(wheres),
                                uses="uses" if len(wheres) == 1 else "use",
                                **changes[0][1].fields)


@dataclass(frozen=True)
class ResultMistake:
    """A mistake of a whole result (an entry of ``RESULTS``)."""
    key: str
    name: str
    says: str                     # {what} (e.g. "'W' is", "the answer is"), {right}, and
    #                               the fields the entry names
    apply: Optional[Callable] = None   # (value, sizes) -> the value with the mistake
    in_answers: bool = True       # the answer checker looks for it
    in_code: bool = False         # check_bptt looks for it


# -- the transformations of a formula ------------------------------------------------------

def _time(e):
    return str(e).replace(" ", "")


def _transpose_dropped(forms):
    out = []
    for base in forms.bases:
        for node in nodes(base, Transpose):
            if node.arg.shape == node.shape and not isinstance(node.arg, OneMatrix):
                out.append(Change(replace_all(base, node, node.arg),
                                  {"new": show(node.arg), "old": show(node)}, tag=node))
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
                    variant = replace_outside_adjoints(base, atom, moved)
                except (ValueError, TypeError):
                    continue
                out.append(Change(variant, {"new": show(moved), "old": show(atom)}))
    return out


def _later(adjoint, time):
    offset = adjoint.var.time - time
    return offset.is_Integer and offset > 0


def _recurrent_dropped(forms):
    out = []
    for base in forms.bases:
        later = [a for a in nodes(base, Adjoint) if isinstance(a.var, StepVar)
                 and _later(a, forms.time)]
        if later:
            names = sorted({show(a) for a in later})
            out.append(Change(base.xreplace({a: ZeroMatrix(*a.shape) for a in later}),
                              {"through": ", ".join(names), "s": "s" if len(names) > 1 else "",
                               "step": _time(forms.time + 1)}, tag="later steps"))
    return out


def activation_factors(cell, expr):
    """[(op, ans, x, factors)]: each derivative of an activation in ``expr``'s entry-wise
    products, with its value ``ans`` (h^(t), or the node tanh(s^(t))), its argument
    and the factors op'(x) stands for."""
    found, candidates, defined = [], [], {}
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
    parts = [p for p in parts if not isinstance(p, OneMatrix)] or [OneMatrix(*shape)]
    return parts[0] if len(parts) == 1 else HadamardProduct(*parts)


def _activation_dropped(forms):
    out = []
    for base in forms.bases:
        for op, ans, x, factors in activation_factors(forms.cell, base):
            for node, rest in _hadamards_with(base, factors):
                out.append(Change(replace_all(base, node, _rebuild(rest, node.shape)),
                                  {"factor": f"{_op_name(op)}'({show(x)})"}))
    return out


def _alternatives(op, ans, x):
    """The derivatives students put in place of op'(x): (what, factors)."""
    one = OneMatrix(*ans.shape)
    a, z = show(ans), show(x)
    if op is Tanh:
        return [(f"the sigma'-form {a} (.) (1 - {a}) in place of tanh'", [ans, (one - ans).doit()]),
                (f"1 - {a} in place of 1 - {a} (.) {a}", [(one - ans).doit()]),
                (f"the derivative written in {z} (1 - {z} (.) {z}) instead of in {a}",
                 [(one - HadamardPower(x, 2)).doit()])]
    if op is Sigmoid:
        return [(f"the tanh'-form 1 - {a} (.) {a} in place of sigma'",
                 [(one - HadamardPower(ans, 2)).doit()]),
                (f"the derivative written in {z} instead of in {a}", [x, (one - x).doit()])]
    return []


def _activation_wrong(forms):
    out = []
    for base in forms.bases:
        for op, ans, x, factors in activation_factors(forms.cell, base):
            for node, rest in _hadamards_with(base, factors):
                for what, other in _alternatives(op, ans, x):
                    out.append(Change(replace_all(base, node,
                                                  _rebuild(rest + other, node.shape)),
                                      {"what": what}))
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
                    if not rest:
                        continue
                    moved = HadamardProduct(*factors, MatMul(a, _rebuild(rest, h.shape)))
                    new = MatMul(*args[:i], moved, *args[i + 2:]) if len(args) > 2 else moved
                    out.append(Change(replace_all(base, product, new),
                                      {"diag": f"diag({_op_name(op)}'({show(x)}))",
                                       "matrix": show(a)}, tag=(op, a)))
    return out


def _gate(cell, factor):
    """The gate a factor is (u, or 1 - u), or None."""
    for v in factor.atoms(StepVar):
        if v.name in _gates(cell):
            return v
    return None


def _gates(cell):
    return {lhs.name for lhs, rhs in cell.equations if isinstance(rhs, Sigmoid)}


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
                shown = show(f.arg if isinstance(f, Transpose) else f)
                what = f"the gate factor {shown}" if _gate(forms.cell, f) is not None \
                    else f"the factor {shown}"
                out.append(Change(replace_all(base, node, _rebuild(rest, node.shape)),
                                  {"what": what}))
    return out


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
                out.append(Change(replace_all(base, node, HadamardProduct(*factors)),
                                  {"new": show(other), "old": show(f)}))
    return out


def _function_dropped(forms):
    """tanh(s^(t)) written s^(t): a function of the forward pass left out."""
    out = []
    for base in forms.bases:
        for node in nodes(base, Elementwise, inside_adjoints=False):
            out.append(Change(replace_outside_adjoints(base, node, node.arg),
                              {"new": show(node.arg), "old": show(node)}))
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
            out.append(Change(MatAdd(*rest) if len(rest) > 1 else rest[0], {"what": what}))
    return out


REPLACED = "{where} {uses} {new} where the derivation has {old}"

CATALOGUE = (
    Mistake("transpose", "missing transpose", REPLACED, _transpose_dropped,
            why="a product A v passes its gradient back as A^T times the gradient of the "
                "product", habit=True),
    Mistake("time shift", "time shift", REPLACED, _time_shift,
            why="each factor belongs to the step at which the forward pass computed it"),
    Mistake("recurrent term", "missing recurrent term",
            "the recurrence is cut: {parts}, so each step keeps only its direct term",
            _recurrent_dropped, part="{where} lacks its term{s} through step {step} ({through})",
            why="the adjoint of a state collects what the later steps pass back", habit=True),
    Mistake("activation derivative", "activation derivative dropped",
            "the derivative of the activation is missing in {where}: the factor {factor}",
            _activation_dropped),
    Mistake("wrong derivative", "wrong activation derivative",
            "{where} {uses} the wrong derivative of the activation: {what}", _activation_wrong),
    Mistake("diag side", "diag on the wrong side of the matrix",
            "in {where} the diagonal Jacobian {diag} stands before {matrix} instead of after "
            "it; it scales the adjoint of the later step before the matrix carries it back",
            _diag_wrong_side, habit=True),
    Mistake("gate factor", "missing factor", "a factor is missing in {where}: {what}",
            _factor_dropped),
    Mistake("gate complement", "gate and its complement swapped",
            REPLACED + ": a gate and its complement are swapped", _gate_complement),
    Mistake("missing function", "missing function",
            REPLACED + ": a function of the forward pass is missing", _function_dropped),
    Mistake("missing term", "missing term", "a term is missing in {where}: {what}",
            _term_dropped),
)


def variants(forms):
    """[(mistake, change)] of every ``CATALOGUE`` entry for ``forms``, in table order."""
    return [(mistake, change) for mistake in CATALOGUE for change in mistake.transform(forms)]


def _divided(*by):
    def apply(value, sizes):
        n = 1
        for name in by:
            if sizes.get(name) is None:
                return None
            n *= sizes[name]
        return value / n
    return apply


def _transposed(value, sizes):
    return value.T if getattr(value, "ndim", 0) == 2 and min(value.shape) > 1 else None


RESULTS = {m.key: m for m in (
    ResultMistake("transposed", "transposed result",
                  "{what} {right} transposed (an outer product in the wrong order?)",
                  _transposed, in_code=True),
    ResultMistake("sign", "wrong sign", "{what} {right} times -1",
                  lambda value, sizes: -value, in_code=True),
    ResultMistake("mean", "1/T of a mean",
                  "{what} 1/T of {right}{sizes}: BPTT sums the steps' contributions, it does "
                  "not average them", _divided("T"), in_code=True),
    ResultMistake("batch mean", "1/B of a mean over the batch",
                  "{what} 1/B of {right}{sizes}: the loss is the sum over the batch, not its "
                  "mean", _divided("B"), in_answers=False, in_code=True),
    ResultMistake("step and batch mean", "1/(T B) of a mean",
                  "{what} 1/(T B) of {right}{sizes}: the loss is a sum over the steps and the "
                  "batch, not a mean", _divided("T", "B"), in_answers=False, in_code=True),
    ResultMistake("factor", "wrong constant factor", "{what} {factor} times {right}"),
    ResultMistake("sum", "missing sum over t",
                  "the sum over t is missing: the per-step term alone is the gradient of one "
                  "copy {name}^(t)"),
    ResultMistake("limits", "wrong limits of the sum",
                  "the sum over t runs over {limits}; L sums the losses of all steps, t = 1..T"),
    # what the answer checker repairs to make an answer's shapes fit
    ResultMistake("diag order", "diag after the vector",
                  "a diagonal matrix follows the column it should multiply ({detail}: the "
                  "shapes do not fit; the misprint of Goodfellow et al.'s eq. 10.21)"),
    ResultMistake("transpose repair", "missing transpose",
                  "a transpose is missing: {detail} (the shapes do not fit as written)"),
)}
