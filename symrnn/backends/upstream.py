"""The cell whose gradients carry a loss computed outside it, as Problem 3 of the sheet.

``m(x)`` returns per-step values v^(t) of a cell (its outputs) and its states at
the last step; a loss the user computes from them sends back the gradients
g_v^(t) = dL/dv^(t) and dL/ds^(T). That loss, to first order, is

    L = sum_t sum_v g_v^(t)^T v^(t) + sum_s g_s^(t)^T s^(t),
        with g_s^(t) = 0 for t < T and g_s^(T) = dL/ds^(T),

a cell like any other: the same parameters, inputs, states and equations (those
that read no target), the upstream gradients as its targets and that loss.
Its derivation is the one the backward pass runs: the g^(t) enter the derived
recurrences exactly as g^(t) enters Problem 3, nothing is written by hand.
"""
from sympy import MatAdd, MatrixSymbol

from ..model.cell import Cell
from ..model.nodes import Prev


def reads_targets(cell):
    """The names of the values of ``cell`` that read a target, directly or through
    other values (at this step or, through a state, at the one before)."""
    targets = {s.name for s in cell.targets}
    reads = {lhs.name: {m.name for m in rhs.atoms(MatrixSymbol)}
             | {p.state.name for p in rhs.atoms(Prev)} for lhs, rhs in cell.equations}
    found = set()
    while True:
        more = {n for n, used in reads.items() if n not in found and used & (targets | found)}
        if not more:
            return found
        found |= more


def default_outputs(cell):
    """The values that ``m(x)`` returns over all steps: those that are neither the loss
    nor a state, and read no target (``o``, ``yhat``, the gates, ...), in the cell's order."""
    skip = reads_targets(cell) | {s.name for s in cell.states} | {cell.loss_var.name}
    return tuple(lhs.name for lhs, _ in cell.equations if lhs.name not in skip)


def check_outputs(cell, outputs):
    """``outputs`` (names, or None for the default) as a tuple, or a ValueError."""
    if outputs is None:
        outputs = default_outputs(cell)
    if isinstance(outputs, str) or not all(isinstance(n, str) for n in outputs):
        raise ValueError(f"outputs: expected a sequence of names of the cell's values, got "
                         f"{outputs!r}")
    outputs = tuple(outputs)
    names = {lhs.name for lhs, _ in cell.equations} - {cell.loss_var.name}
    targets = reads_targets(cell)
    for n in outputs:
        if n not in names:
            raise ValueError(f"outputs: {n!r} is not a value of the cell; its values: "
                             + ", ".join(sorted(names)))
        if n in targets:
            raise ValueError(f"outputs: {n!r} reads a target; without targets it has no value")
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"outputs: a name given twice in {outputs!r}")
    if not cell.inputs:
        raise ValueError("outputs: the cell has no input, so a call without targets has no "
                         "number of steps")
    late = [s.name for s in cell.states if s.name in targets]
    if late:
        raise ValueError(f"the state {late[0]!r} reads a target: the cell runs only with its "
                         "targets, m(x, y)")
    return outputs


def upstream_cell(cell, outputs):
    """``(cell', gradient targets, seeds)``: the cell whose loss is the one above for the
    values ``outputs`` (checked names) and the states; ``gradient targets`` the names of
    its targets g_v, one per output, ``seeds`` {state: its target g_s} for the
    states that are not outputs (a state that is one takes its seed into its g_v)."""
    taken = ({s.name for s in cell.params + cell.inputs + cell.targets + cell.variables
              + cell.fixed_values} | {c.name for c in cell.constants}
             | {str(s) for s in cell.sizes} | {f"{s.name}0" for s in cell.states})

    def fresh(base):
        name, k = base, 1
        while name in taken or f"{name}0" in taken:
            name, k = f"{base}_{k}", k + 1
        taken.update({name, f"{name}0"})
        return name

    skip = reads_targets(cell) | {cell.loss_var.name}
    by_name = {lhs.name: lhs for lhs, _ in cell.equations}
    grads = [MatrixSymbol(fresh(f"g_{n}"), *by_name[n].shape) for n in outputs]
    seeds = {s.name: MatrixSymbol(fresh(f"g_{s.name}_last"), *s.shape)
             for s in cell.states if s.name not in outputs}
    terms = [g.T * by_name[n] for g, n in zip(grads, outputs)]
    terms += [g.T * by_name[s] for s, g in seeds.items()]
    loss = terms[0] if len(terms) == 1 else MatAdd(*terms)
    variant = Cell(f"{cell.name} (upstream gradients)", params=cell.params,
                   inputs=cell.inputs, targets=grads + list(seeds.values()), states=cell.states,
                   equations=[(lhs, rhs) for lhs, rhs in cell.equations
                              if lhs.name not in skip],
                   loss=loss, notation=cell.notation, constants=cell.constants,
                   fixed=cell.fixed)
    return variant, tuple(g.name for g in grads), {s: g.name for s, g in seeds.items()}
