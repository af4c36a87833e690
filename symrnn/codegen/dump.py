"""The module between two passes as text (``symrnn codegen --dump-ir PASS``).

Before ``lower``: the formulas and the schedule, in SymPy's notation. After:
the functions, with each temporary shown by its role and the value it belongs
to (``$all(h)``: the array of h's steps, ``$row(dL/dz)``: the row of dL/dz at
the loop's step) until ``name`` names them, and each value's statements under
a comment with its definition. After ``assemble``: the generated file.
"""
from sympy import sstr

from . import ir
from .emit import NumPyPrinter
from .scheduled import FusedSum, Gradients, Loop, Loss, Pad, Value


def dump(module, printer=None):
    """``module`` as text (``printer``: the backend's, for the assembled module)."""
    if module.body:
        return (printer or NumPyPrinter)().print_module(module)
    if module.functions:
        out = _DumpPrinter()
        return "\n\n".join(out.doprint(f) for f in module.functions) + "\n"
    if module.kernels:
        return "\n".join(line for k in module.kernels for line in _kernel(k)) + "\n"
    return "\n".join(_problem(module.problem)) + "\n"


def value(v):
    """A value as a reader writes it: ``h``, ``dL/dh``."""
    if not isinstance(v, Value):
        return _temp(v)
    name = v.name if isinstance(v.name, str) else _temp(v.name)
    return f"dL/d{name}" if v.adjoint else name


def _temp(t):
    if isinstance(t, ir.Name):
        return t.id
    if not isinstance(t, ir.Temp):
        return str(t)
    of = "" if t.of is None else f"({value(t.of)})"
    n = "" if t.n is None else f"#{t.n}"
    return f"${t.role}{of}{n}"


def _problem(problem):
    lines = ["equations:"]
    lines += [f"    {lhs.name} := {sstr(rhs)}" for lhs, rhs in problem.equations]
    lines.append("adjoints:")
    lines += [f"    {sstr(a)} := {sstr(e)}" for a, e in problem.adjoints.items()]
    lines.append("gradients:")
    lines += [f"    dL/d{k} := {sstr(e)}" for k, e in problem.gradients.items()]
    lines += [f"    {sstr(a)} := {sstr(e)}" for a, e in problem.fixed_adjoints.items()]
    return lines


def _kernel(kernel):
    lines = [f"kernel {kernel.name}: padded {_values(kernel.padded)}"
             + (f", read at t+1 {_values(kernel.shifted)}" if kernel.shifted else "")]
    for item in kernel.items:
        kind = type(item).__name__
        if isinstance(item, Loop):
            steps = "1..T" if item.direction > 0 else "T..1"
            lines.append(f"  loop t = {steps}: carried {_values(item.carried)}, stored "
                         f"{_values(item.stored)}, local {_values(item.local)}")
            lines += [f"    hoisted {value(let.value)} := {sstr(let.expr)}"
                      for let in item.hoisted]
            for entry in item.body:
                if isinstance(entry, FusedSum):
                    lines.append(f"    {value(entry.leaf)} := one product over "
                                 f"{', '.join(map(sstr, entry.terms))}")
                else:
                    lines.append(f"    {value(entry.value)} := {sstr(entry.expr)}")
        elif isinstance(item, Pad):
            lines.append(f"  pad {value(item.value)} with a step T+1")
        elif isinstance(item, Loss):
            lines.append(f"  loss := sum over t and sequences of {sstr(item.expr)}")
        elif isinstance(item, Gradients):
            lines.append("  gradients:")
            lines += [f"    {value(let.value)} := {sstr(let.expr)}" for let in item.fixed]
            lines += [f"    dL/d{g.of}{'0' if g.state else ''} := "
                      f"{'0' if g.expr is None else sstr(g.expr)}" for g in item.items]
        elif item.lets:
            lines.append(f"  {kind.lower()}:")
            lines += [f"    {value(let.value)} := {sstr(let.expr)}" for let in item.lets]
    return lines


def _values(values):
    return "{" + ", ".join(sorted(value(v) for v in values)) + "}"


class _DumpPrinter(NumPyPrinter):
    """The functions with their temporaries unnamed and their blocks labelled."""

    def _print_Temp(self, node):
        return _temp(node)

    def _print_Block(self, node, level):
        label = node.label
        head = f"# {label.kind}"
        if label.value is not None:
            head += f" {value(label.value)}"
        if label.expr is not None:
            head += f" := {sstr(label.expr)}"
        return [self.indent * level + head] + super()._print_Block(node, level)
