"""The unrolled graph: every step gets its own copies of the parameters."""
from sympy import Integer, MatrixSymbol, Symbol

from ..model.nodes import Prev, StepVar

t = Symbol("t", integer=True, positive=True)
T = Symbol("T", integer=True, positive=True)


def at_time(cell, expr, time):
    """The step expression ``expr`` at step ``time``, parameters replaced by copies."""
    expr = expr.replace(lambda e: isinstance(e, Prev),
                        lambda e: StepVar(e.state.name, time - 1, *e.state.shape))
    symbols = expr.atoms(MatrixSymbol)
    return expr.xreplace({s: StepVar(s.name, time, *s.shape) for s in symbols})


def step_equations(cell, time=t):
    """The equations of step ``time``: ``[(StepVar lhs, rhs), ...]``."""
    return [(at_time(cell, lhs, time), at_time(cell, rhs, time)) for lhs, rhs in cell.equations]


def shared(cell, expr):
    """Replace every copy W^(t) by the shared W: the copies are equal in value (so
    are those of a named matrix of the parameters, Ab^(t) = Ab)."""
    params = {p.name: p for p in cell.params + cell.fixed_values}
    return expr.replace(lambda e: isinstance(e, StepVar) and e.name in params,
                        lambda e: params[e.name])


class UnrolledGraph:
    """T steps of a cell; step k uses the copies W^(k), U^(k), ... of the parameters."""

    def __init__(self, cell, T):
        if int(T) < 1:
            raise ValueError(f"T: must be at least 1, got {T}")
        self.cell = cell
        self.T = int(T)
        self.steps = [step_equations(cell, Integer(k)) for k in range(1, self.T + 1)]
        self.initial_states = [StepVar(s.name, 0, *s.shape) for s in cell.states]

    @property
    def equations(self):
        return [eq for step in self.steps for eq in step]

    @property
    def losses(self):
        return [step[-1][0] for step in self.steps]

    def copies(self, param):
        return [StepVar(param.name, k, *param.shape) for k in range(1, self.T + 1)]

    def edges(self):
        """(source, target, step) for each direct dependency, for drawing the graph."""
        out = []
        for k, step in enumerate(self.steps, start=1):
            for lhs, rhs in step:
                for src in sorted(rhs.atoms(StepVar), key=str):
                    out.append((src, lhs, k))
        return out
