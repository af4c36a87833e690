"""What ``symrnn derive`` prints: the forward equations, the backward recurrences, the
last step and the gradients, as text or as LaTeX ``align*`` blocks in a notation."""
from sympy import MatrixSymbol

from ..graph.unroll import T, shared, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .latex_printer import printer_for
from .width import TEXT_WIDTH, tex_width

__all__ = ["sections", "derivation_align"]


def sections(derivation, show=str):
    """(title, [(lhs, rhs), ...]) of what ``derive`` prints, as expressions; ``show``
    prints the initial states named in the first title."""
    cell = derivation.cell
    states = {f"{s.name}0": s for s in cell.states}
    gradients = []
    for name, g in derivation.gradients.items():
        if name in states:
            target = StepVar(states[name].name, 0, *states[name].shape)
        else:
            target = cell.param(name)
        gradients.append((Adjoint(target), g))
    initial = ", ".join(show(StepVar(s.name, 0, *s.shape)) for s in cell.states)
    # the named matrices: computed once from the parameters, before the steps; their
    # gradients (the sums over t of their copies') before the parameters' that read them
    once = [("Computed once from the parameters", list(cell.fixed))] if cell.fixed else []
    fixed = list(derivation.fixed_adjoints.items())
    return once + [
        (f"Forward, for t = 1, ..., T ({initial} given)",
         [(lhs, shared(cell, rhs)) for lhs, rhs in derivation.step]),
        ("Backward, for t = T, ..., 1 (a term at step T+1 is zero)",
         list(derivation.adjoints.items())),
        ("so at t = T", list(derivation.terminal.items())),
        ("Gradients", fixed + gradients),
    ]


def derivation_align(derivation, notation=None):
    """The sections as LaTeX ``align*`` blocks (amsmath, bm), long lines broken."""
    cell = derivation.cell
    printer = printer_for(cell, notation=notation)
    lines = [f"% {cell.name}: BPTT derived by symrnn; needs \\usepackage{{amsmath,bm}}"]
    for title, equations in sections(derivation):
        pairs = [(printer.doprint(lhs), rhs) for lhs, rhs in equations]
        if title.startswith("Forward"):
            loss = StepVar(cell.loss_var.name, t, 1, 1)
            pairs.append((printer.doprint(MatrixSymbol("L", 1, 1)), SumOverTime(loss, t, 1, T)))
        room = 0.95 * (TEXT_WIDTH - max(tex_width(lhs) for lhs, _ in pairs) - 20)
        rows = []
        for lhs, rhs in pairs:
            broken = printer.print_lines(rhs, room)
            rows.append(f"  {lhs} &= {broken[0]}" + "".join(
                f" \\\\\n  &\\quad {line}" for line in broken[1:]))
        lines += [f"% {title}", r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
    return "\n".join(lines)
