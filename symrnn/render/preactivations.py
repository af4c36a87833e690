"""Name what the derivation repeats: the pre-activations and their gradients.

A cell written the natural way applies its functions to sums: f = sigmoid(W_f h +
U_f x + b_f). On paper one names the argument, z_f = W_f h + U_f x + b_f, and the
gradient of the loss with respect to it, delta_f = dL/dz_f = f (.) (1 - f) (.) dL/df:
every parameter of the gate then has the gradient sum_t delta_f h^T, and the
recurrence reads W_f^T delta_f instead of the whole Jacobian. ``name_preactivations``
makes that cell: the same parameters, inputs, targets and states, the same function
(an equation per named argument, inserted before its first use), and returns which
variables are pre-activations and the symbol of each one's gradient. The engine then
derives the named cell like any other; nothing here differentiates.
"""
from types import SimpleNamespace

from sympy import MatrixSymbol, Transpose

from ..model.cell import Cell
from ..model.nodes import Prev
from ..ops import Elementwise, LogSoftmax, Softmax
from .symbols import default_symbol

__all__ = ["name_preactivations", "entrywise"]

# letters a pre-activation may take, in order of preference
LETTERS = ("z", "a", "u", "p", "e", "k", "m", "n", "v", "w")
DELTA = r"\delta"


def entrywise(node):
    """Is ``node`` a function applied entry by entry (a diagonal Jacobian)?"""
    return isinstance(node, Elementwise) and type(node).scalar is not Elementwise.scalar


def _simple(expr):
    """A value that needs no name: a variable, a parameter, h^(t-1), a constant, or a
    function of one of these (exp(h^(t-1))); sums and products get a name."""
    if isinstance(expr, (MatrixSymbol, Prev)):
        return True
    if isinstance(expr, Transpose) and isinstance(expr.arg, MatrixSymbol):
        return True
    if isinstance(expr, Elementwise):
        return _simple(expr.arg)
    return not expr.atoms(MatrixSymbol, Prev)


def _post_order(expr):
    for a in getattr(expr, "args", ()):
        yield from _post_order(a)
    yield expr


def name_preactivations(cell, symbol=default_symbol):
    """``(named cell, info)``; ``info.introduced`` maps each new variable to the
    variable whose equation it was taken from, ``info.preactivations`` lists the
    variables (new or the cell's own) that entry-wise functions are applied to,
    ``info.deltas`` maps each of them to the LaTeX of its gradient's symbol, and
    ``info.notation`` holds the LaTeX of the new names. ``symbol(name)`` gives the
    ``Symbol`` a name is printed as (a notation profile's)."""
    taken = {s.name for s in cell.params + cell.inputs + cell.targets + cell.variables}
    taken |= {str(s) for s in cell.sizes} | {f"{s.name}0" for s in cell.states}
    printed = {symbol(n).latex() for n in taken}
    cores = {symbol(n).core for n in taken}  # a letter the cell uses is not a new name's
    variables = {v.name for v in cell.variables}
    states = {s.name for s in cell.states}

    # the arguments to name, in order of first use, and whose equation they are in
    wanted, consumer_of = [], {}
    for lhs, rhs in cell.equations:
        for node in _post_order(rhs):
            if isinstance(node, Elementwise) and not _simple(node.arg) and node.arg not in wanted:
                wanted.append(node.arg)
                consumer_of[node.arg] = lhs.name
    activated = [a for a in wanted if any(entrywise(n) and n.arg == a for _, r in cell.equations
                                          for n in _post_order(r))]
    own = []
    for lhs, rhs in cell.equations:
        for node in _post_order(rhs):
            if entrywise(node) and isinstance(node.arg, MatrixSymbol) \
                    and node.arg.name in variables and node.arg.name not in states \
                    and node.arg.name not in own:
                own.append(node.arg.name)

    def fresh(consumer, index, logits):
        sub = consumer if index == 1 else f"{consumer}_{index}"
        letters = ("o",) + LETTERS if logits else LETTERS
        single = len(activated) + len(own) == 1 and not logits
        for letter in letters:
            if letter in cores and not (logits and letter == "o"):
                continue
            names = ([letter] if single or logits else []) + [f"{letter}_{sub}"]
            for name in names:
                tex = _latex_name(name, letter, consumer, index, symbol)
                if name not in taken and tex not in printed:
                    taken.add(name)
                    printed.add(tex)
                    return name, tex
        raise ValueError(f"cell {cell.name!r}: no free name for the argument of a function "
                         f"in the equation of {consumer}")

    names, notation, count = {}, {}, {}
    for arg in wanted:
        consumer = consumer_of[arg]
        count[consumer] = count.get(consumer, 0) + 1
        logits = arg not in activated and _logits(cell, arg)
        name, tex = fresh(consumer, count[consumer], logits)
        names[arg] = MatrixSymbol(name, *arg.shape)
        notation[name] = tex

    equations, defined = [], set()
    for lhs, rhs in cell.equations:
        new_rhs = _replace(rhs, names)
        for node in _post_order(rhs):
            if isinstance(node, Elementwise) and node.arg in names \
                    and names[node.arg] not in defined:
                var = names[node.arg]
                equations.append((var, _replace(node.arg, names, top=False)))
                defined.add(var)
        equations.append((lhs, new_rhs))
    loss = equations.pop()[1]

    introduced = {names[a].name: consumer_of[a] for a in wanted}
    pre = own + [n for n, c in introduced.items() if n != "o"
                 and any(entrywise(e) and isinstance(e.arg, MatrixSymbol) and e.arg.name == n
                         for _, r in equations for e in _post_order(r))]
    deltas = _delta_names(pre, introduced, symbol, notation, printed)
    named = Cell(cell.name, params=cell.params, inputs=cell.inputs, targets=cell.targets,
                 states=cell.states, equations=equations, loss=loss,
                 notation={**cell.notation, **notation},
                 targets_are_distributions=cell.targets_are_distributions,
                 constants=cell.constants, fixed=cell.fixed)
    for attribute in ("activation", "output", "bias"):  # the presets' options
        if hasattr(cell, attribute):
            setattr(named, attribute, getattr(cell, attribute))
    return named, SimpleNamespace(introduced=introduced, preactivations=pre, deltas=deltas,
                                  notation=notation, original=cell)


def _logits(cell, arg):
    """Is ``arg`` the argument of a softmax or a log-softmax (the logits)?"""
    return any(isinstance(n, (Softmax, LogSoftmax)) and n.arg == arg
               for _, rhs in cell.equations for n in _post_order(rhs))


def _latex_name(name, letter, consumer, index, symbol):
    if name == letter:
        return letter
    sub = symbol(consumer).latex()
    return "%s_{%s%s}" % (letter, sub, "" if index == 1 else f",{index}")


def _delta_names(pre, introduced, symbol, notation, printed):
    """The symbol of dL/dp for each pre-activation p: delta alone when there is one,
    else delta with the subscript of p's variable (delta_f for z_f)."""
    if any(DELTA in tex for tex in printed if tex not in notation.values()):
        return {}  # the cell has a delta of its own: gradients stay fractions
    if len(pre) == 1:
        return {pre[0]: DELTA}
    out = {}
    for p in pre:
        sub = symbol(introduced[p]).latex() if p in introduced else symbol(p).latex()
        out[p] = "%s_{%s}" % (DELTA, sub)
    if len(set(out.values())) < len(out):
        return {p: "%s_{%s}" % (DELTA, notation.get(p) or symbol(p).latex()) for p in pre}
    return out


def _replace(expr, names, top=True):
    """``expr`` with each named argument of a function replaced by its variable (top
    down: the argument is matched as the cell wrote it)."""
    if isinstance(expr, Elementwise) and expr.arg in names:
        return type(expr)(names[expr.arg])
    if not getattr(expr, "args", None) or not getattr(expr, "is_Matrix", False):
        return expr
    args = tuple(_replace(a, names) for a in expr.args)
    return expr.func(*args) if args != expr.args else expr
