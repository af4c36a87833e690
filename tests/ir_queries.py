"""Queries on the IR of generated code (symrnn/codegen/ir.py), for the tests that
assert its structure: the module after a pass, the step loops of a kernel, the
statements, calls and temporaries in a part of it."""
import symrnn
from symrnn.codegen import driver, ir
from symrnn.codegen.passes.lower.context import STEP
from symrnn.codegen.scheduled import Value


def generated(cell, backend="numpy", until="release"):
    """The module of ``cell``'s code after ``backend``'s pass ``until`` (by default
    the last one before the temporaries are named)."""
    return driver.run(symrnn.derive(cell), backend, until)


def kernel(module, name="gradients"):
    return module.function(name)


def step_loops(node):
    """The loops over the steps in ``node``, in order (forward ones count up)."""
    return [s for s in ir.walk(node) if isinstance(s, ir.For) and s.var == STEP]


def statements(node):
    """The statements in ``node`` that compute something (not blocks or loops)."""
    return [s for s in ir.walk(node) if isinstance(s, ir.Stmt)
            and not isinstance(s, (ir.Block, ir.For, ir.Function))]


def outside_loops(f):
    """The statements of ``f`` that are not inside a step loop."""
    return [s for s in statements(ir.flatten(f.body)) if not any(
        s is t for loop in step_loops(f.body) for t in ir.walk(loop.body))]


def calls(node, func):
    """The calls of ``func`` (an ``ir.Helper``, ``ir.NumPy`` or ``ir.Name``) in ``node``."""
    return [c for c in ir.walk(node) if isinstance(c, ir.Call) and c.func == func]


def temps(node, role):
    """The temporaries of ``role`` in ``node``."""
    return {t for t in ir.walk(node) if isinstance(t, ir.Temp) and t.role == role}


def group(temp):
    """The group of values side by side that ``temp`` is an array of (None if it is not)."""
    of = temp.of
    return of.name if isinstance(of, Value) and isinstance(of.name, ir.Temp) else None


def value(name, adjoint=False):
    return Value(name, adjoint)


DOT = ir.Helper("dot")


def imports(source):
    """The modules a generated module's source imports (from its syntax tree)."""
    import ast
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module)
    return out
