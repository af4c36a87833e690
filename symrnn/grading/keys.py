"""What a question asks for: a gradient, an initial state's gradient, or an adjoint.

    "W", "dL/dW"              the gradient of a parameter: a sum over t
    "h0", "dL/dh^(0)"         the gradient of an initial state
    "dL/dh", "dL/dh^(t)", "h" the adjoint dL/dv^(t) of a variable at a generic step t
                              (for a state, the recurrence in the adjoints of step t+1)

and which adjoints an answer may use as known quantities: none that depends on
the quantity asked for (dL/dh^(t) may use dL/dz^(t+1), not dL/dz^(t)).
"""
from dataclasses import dataclass

from sympy import MatrixSymbol, ZeroMatrix

from ..graph.unroll import t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .nodes import StepLossAdjoint


@dataclass(frozen=True)
class Key:
    kind: str            # "param", "initial" or "adjoint"
    name: str            # the parameter, the state, or the variable
    symbol: object       # the adjoint asked for: Adjoint(W), Adjoint(h^(0)), Adjoint(h^(t))
    target: object       # the derivation's expression of it

    @property
    def text(self):
        if self.kind == "param":
            return f"dL/d{self.name}"
        if self.kind == "initial":
            return f"dL/d{self.name}^(0)"
        return f"dL/d{self.name}^(t)"

    @property
    def is_sum(self):
        return isinstance(self.target, SumOverTime)


def _strip(text):
    text = text.strip()
    for prefix in ("dL/d", "dL_d", "d L/d"):
        if text.startswith(prefix):
            return text[len(prefix):].strip(), True
    return text, False


def resolve_key(derivation, key, vocabulary=None):
    """The ``Key`` that ``key`` names for ``derivation``; ValueError naming ``key``."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"key: expected a gradient such as 'W' or 'dL/dh', got {key!r}")
    cell = derivation.cell
    params = {p.name: p for p in cell.params}
    states = {s.name: s for s in cell.states}
    variables = {v.name: v for v in cell.variables if v.name != "L"}
    name, derivative = _strip(key)
    time = None
    for suffix, value in (("^(t)", "t"), ("(t)", "t"), ("^{(t)}", "t"), ("^(0)", "0"),
                          ("(0)", "0"), ("^{(0)}", "0")):
        if name.endswith(suffix):
            name, time = name[:-len(suffix)], value
            break
    if name.startswith("\\") or "{" in name:
        found = _latex_key(key, vocabulary)
        if found is not None:
            name, time = found
    if name in params and time is None:
        return Key("param", name, Adjoint(params[name]), derivation.gradients[name])
    if time == "0" and name in states or time is None and name.endswith("0") \
            and name[:-1] in states and name not in variables:
        state = states[name if time == "0" else name[:-1]]
        return Key("initial", state.name, Adjoint(StepVar(state.name, 0, *state.shape)),
                   derivation.gradients[f"{state.name}0"])
    if name in variables and time in (None, "t"):
        var = StepVar(name, t, *variables[name].shape)
        target = derivation.adjoints.get(Adjoint(var))
        if target is None:
            target = ZeroMatrix(*var.shape)   # nothing depends on it (yhat)
        return Key("adjoint", name, Adjoint(var), target)
    adjoints = [a.var.name for a in derivation.adjoints]
    choices = list(params) + [f"{s}0" for s in states] + [f"dL/d{v}" for v in adjoints]
    raise ValueError(f"key: {key!r} is not a gradient of {cell.name}; choose one of "
                     + ", ".join(choices))


def _latex_key(key, vocabulary):
    """(name, time) of a key written as a LaTeX derivative, or None."""
    if vocabulary is None:
        return None
    from .latex import parse_latex
    from . import syntax as S
    try:
        node = parse_latex(key)
    except ValueError:
        return None
    if not isinstance(node, S.Derivative):
        return None
    of = node.of
    found = vocabulary.lookup(of.core, of.subs, of.marks)
    time = of.time
    if found is None and of.sub_time is not None:
        found = vocabulary.lookup(of.core, of.subs[:-1], of.marks)
        time = of.sub_time
    if not found or found[0] != "name":
        return None
    return found[1], None if time is None else str(time)


def key_of_lhs(expr, key):
    """Whether an answer's left side ``expr`` (built) names the quantity of ``key``."""
    if key.kind == "param":
        return expr == key.symbol or isinstance(expr, Adjoint) and isinstance(
            expr.var, MatrixSymbol) and expr.var.name == key.name
    return expr == key.symbol


def forbidden_adjoint(expr, key, cell):
    """The first adjoint in ``expr`` that the answer may not use for ``key``, with why;
    None when every adjoint is a known quantity."""
    params = {p.name for p in cell.params}
    order = {lhs.name: i for i, (lhs, _) in enumerate(cell.equations)}
    fixed = {v.name for v in cell.fixed_values}
    for a in sorted(expr.atoms(Adjoint, StepLossAdjoint), key=str):
        var = a.var
        if key.kind == "param" and isinstance(var, MatrixSymbol) and var.name in fixed:
            continue    # dL/dA = dL/dA_b - (dL/dA_b)^T: a named matrix's gradient is known
        if isinstance(var, StepVar) and var.name == cell.loss_var.name:
            continue    # dL/dL^(t+1): 1 up to T (a loss that reads prev(h))
        if isinstance(var, MatrixSymbol) or var.name in params:
            return a, "a gradient of a parameter is what is asked, not a known quantity"
        if isinstance(a, StepLossAdjoint):
            continue
        if key.kind == "initial":
            if var.name == key.name and var.time == 0:
                return a, "it is the gradient asked for"
            if var.time.is_Integer and var.time <= 0:
                return a, "there is no such adjoint (the steps run from t = 1 to T)"
        elif key.kind == "adjoint":
            offset = var.time - t
            if not offset.is_Integer:
                return a, "an adjoint at another step than t, t+1, ... is not known here"
            if offset < 0 or offset == 0 and order[var.name] <= order[key.name]:
                return a, "it depends on the adjoint asked for"
    return None


def derived_value(derivation, adjoint):
    """The derivation's expression of the adjoint symbol ``adjoint``: dL/dW (a sum over
    t), dL/dh^(0), dL/dv^(t) (a recurrence), dL/dv^(T) (the last step), dL/dW^(t) (the
    gradient of one copy). KeyError when the derivation has no such expression."""
    from ..graph.unroll import T
    cell = derivation.cell
    var = adjoint.var
    params = {p.name for p in cell.params}
    if adjoint in derivation.fixed_adjoints:
        return derivation.fixed_adjoints[adjoint]
    if isinstance(var, MatrixSymbol):
        return derivation.gradients[var.name]
    if var.name in params:
        return derivation.copy_gradients[var.name]
    if var.time == 0:
        return derivation.gradients[f"{var.name}0"]
    if var.time == T and adjoint in derivation.terminal:
        return derivation.terminal[adjoint]
    general = derivation.adjoints[Adjoint(var.at(t))]
    if var.time == T:
        later = [a for a in general.atoms(Adjoint) if (a.var.time - t).is_Integer
                 and a.var.time - t > 0]
        general = general.xreplace({a: ZeroMatrix(*a.shape) for a in later})
    return general.subs(t, var.time) if var.time != t else general
