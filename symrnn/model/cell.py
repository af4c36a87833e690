"""A recurrent cell given by the equations of one time step."""
import keyword

from sympy import MatrixSymbol, ZeroMatrix

from .nodes import Prev

# names the generated code uses for itself: none a cell can take, since every
# one of them starts with "_" (see symrnn/codegen/program.py)
CODE_NAMES = frozenset()


def generated_names(names, params, states):
    """The names the generated functions' API derives from the cell's names, each
    mapped to the name it comes from: the initial state ``h0`` of a state ``h``
    (a keyword argument, and a key of the gradients)."""
    return {f"{s}0": s for s in states}


class Cell:
    """The equations of one step of a recurrent network, as data.

    params    shared parameters (``MatrixSymbol``), copied per step when unrolled
    inputs    per-step inputs, e.g. x^(t)
    targets   per-step targets, e.g. y^(t) (or the upstream gradient g^(t))
    states    variables carried to the next step; ``prev(h)`` is h^(t-1)
    equations ``(lhs, rhs)`` pairs in the order they are computed
    loss      the 1x1 loss L^(t) of one step; L = sum over t of L^(t)
    """

    def __init__(self, name, *, params, inputs, targets, states, equations, loss,
                 notation=None, targets_are_distributions=False):
        self.name = name
        self.params = tuple(params)
        self.inputs = tuple(inputs)
        self.targets = tuple(targets)
        self.states = tuple(states)
        self.loss_var = MatrixSymbol("L", 1, 1)
        self.equations = tuple((lhs, rhs) for lhs, rhs in equations) + ((self.loss_var, loss),)
        # how to typeset a name: {"yhat": r"\hat{y}"}; bold is added by the printer
        self.notation = dict(notation or {})
        # targets are class distributions: integer labels are accepted as one-hot
        self.targets_are_distributions = targets_are_distributions
        self._check()

    @property
    def variables(self):
        return tuple(lhs for lhs, _ in self.equations)

    @property
    def sizes(self):
        """The size symbols (D, N, M, ...) in order of first appearance."""
        seen = []
        for sym in self.params + self.inputs + self.targets + self.variables:
            for dim in sym.shape:
                for s in sorted(dim.free_symbols, key=str):
                    if s not in seen:
                        seen.append(s)
        return tuple(seen)

    def param(self, name):
        return next(p for p in self.params if p.name == name)

    def _check(self):
        known = set(self.params) | set(self.inputs) | set(self.targets)
        names = [s.name for s in self.params + self.inputs + self.targets + self.variables]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"equations: names used twice: {', '.join(duplicated)}")
        for sym in self.params + self.inputs + self.targets + self.variables:
            if not sym.name.isidentifier() or sym.name.startswith("_") or keyword.iskeyword(sym.name):
                raise ValueError(f"equations: {sym.name!r} is not a usable name "
                                 "(a Python identifier not starting with '_')")
        generated = generated_names(names, [p.name for p in self.params],
                                    [s.name for s in self.states])
        sizes = {str(s) for s in self.sizes}
        for n in names:
            if n in generated or n in CODE_NAMES or n in sizes:
                why = (f"the generated code derives it from {generated[n]!r}" if n in generated
                       else "it is a size" if n in sizes else "the generated code uses it")
                raise ValueError(f"equations: the name {n!r} is taken ({why}); choose another name")
        for sym in self.inputs + self.targets + self.variables:
            if sym.shape[1] != 1:
                raise ValueError(f"equations: {sym.name} must be a column vector, "
                                 f"has shape {sym.shape}")
        for state in self.states:
            if state not in self.variables:
                raise ValueError(f"states: {state} has no equation")
        for lhs, rhs in self.equations:
            if not isinstance(lhs, MatrixSymbol):
                raise ValueError(f"equations: left-hand side {lhs} is not a MatrixSymbol")
            if rhs.shape != lhs.shape:
                raise ValueError(f"equations: {lhs} has shape {lhs.shape} but its "
                                 f"right-hand side has shape {rhs.shape}")
            for p in rhs.atoms(Prev):
                if p.state not in self.states:
                    raise ValueError(f"equations: prev({p.state}) but {p.state} is not a state")
            outside_prev = rhs.xreplace({p: ZeroMatrix(*p.shape) for p in rhs.atoms(Prev)})
            free = outside_prev.atoms(MatrixSymbol) - known
            if free:
                raise ValueError(f"equations: {lhs} uses {', '.join(sorted(map(str, free)))} "
                                 "before it is defined")
            known.add(lhs)

    def __repr__(self):
        return f"<Cell {self.name}: " + "; ".join(f"{l} = {r}" for l, r in self.equations) + ">"
