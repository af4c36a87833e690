"""The printer of the array-library backend: the kernels as functions of a namespace.

The PyTorch and JAX backends (``symrnn/backends``) run the kernels of the
shared schedule, lowered by the one product table like every backend's, and
printed here as Python functions whose first argument ``_xp`` is an array
namespace: every library call is ``_xp.<name>`` (``_xp.dot``, ``_xp.empty``, an
operation's kernel ``_xp.op_Tanh``), so that one module serves both libraries
(``backends/namespaces.py`` has their namespaces). Only the functions are
printed; the PyTorch and JAX front ends check the arguments themselves.

The code is functional, as JAX needs it: an array is never changed in place.
``a[i] = v`` is printed ``a = _xp.set(a, i, v)`` (PyTorch sets it in place and
returns the same tensor, JAX makes a new array), and a step loop is a function
of the step and of the arrays the loop changes (its carry), run by
``_xp.loop(start, stop, step, body, carry)``: a Python loop in PyTorch,
``lax.fori_loop`` in JAX, traced once whatever T.
"""
from . import ir
from .emit import NumPyPrinter
from .kernels import operations

NAMESPACE = "_xp"


class ArrayPrinter(NumPyPrinter):
    """Python over an array namespace ``_xp`` (see the module's docstring)."""

    def print_module(self, module):
        self.ops = operations()
        return "\n\n".join(self.doprint(f) for f in module.functions) + "\n"

    # -- expressions ----------------------------------------------------------------
    def _print_Helper(self, node):
        return self._kernel(node) or f"{NAMESPACE}.{node.name}"

    def _print_NumPy(self, node):
        return self._kernel(node) or f"{NAMESPACE}.{node.attr}"

    def _kernel(self, node):
        """An operation's kernel: ``_xp.op_<its class>``, else None."""
        op = self.ops.get(node)
        return None if op is None else f"{NAMESPACE}.op_{op.__name__}"

    def _print_Transpose(self, node):
        # a column parameter is stored 1-D, and PyTorch transposes only 2-D arrays
        return f"{NAMESPACE}.T({self._print(node.value)})"

    def _print_Call(self, node):
        if node.out is not None:
            raise NotImplementedError(f"an output array in the functional backend: {node}")
        return super()._print_Call(node)

    def _print_Rows(self, node):
        raise NotImplementedError("lists of rows in the functional backend (row_lists=False)")

    def _index(self, index):
        """An index as a value (``slice(lo, hi)`` for ``lo:hi``), for ``_xp.set``."""
        items = index if isinstance(index, tuple) else (index,)
        printed = [f"slice({'None' if i.lo is None else self._print(i.lo)}, "
                   f"{'None' if i.hi is None else self._print(i.hi)})"
                   if isinstance(i, ir.Slice) else self._print(i) for i in items]
        return printed[0] if len(printed) == 1 else f"({', '.join(printed)})"

    # -- statements -----------------------------------------------------------------
    def _set(self, target, value):
        """``target = value`` for a name, or an element of an array set functionally."""
        if isinstance(target, ir.Index):
            if not isinstance(target.value, ir.VARIABLES):
                raise NotImplementedError(f"setting an element of {target.value}")
            array = self._print(target.value)
            return f"{array} = {NAMESPACE}.set({array}, {self._index(target.index)}, {value})"
        return f"{self._print(target)} = {value}"

    def _print_Assign(self, node, level):
        if len(node.targets) == 1:
            return self._set(node.targets[0], self._print(node.value))
        return super()._print_Assign(node, level)

    def _print_Update(self, node, level):
        value = ir.BinOp(node.op, node.target, node.value)
        return self._set(node.target, self._print(value))

    def _print_Fill(self, node, level):
        if isinstance(node.target, ir.Index):
            return self._set(node.target, self._print(node.value))
        name = self._print(node.target)
        return f"{name} = {NAMESPACE}.fill({name}, {self._print(node.value)})"

    def _print_Do(self, node, level):
        raise NotImplementedError(f"a call for its effect in the functional backend: {node}")

    def _print_Alloc(self, node, level):
        shape = ", ".join(self._print(s) for s in node.shape)
        return (f"{self._print(node.target)} = {NAMESPACE}."
                f"{'zeros' if node.zeros else 'empty'}(({shape},))")

    def _print_Release(self, node, level):
        return []

    def _print_Function(self, node, level):
        body = ir.flatten(node.body)  # (the blocks label statements for other printers)
        self.carries = _carries(node.args, body)
        self.loops = 0
        taken = {n.id for n in ir.names_in(node) if isinstance(n, ir.Name)}
        self.fresh = lambda base: next(f"{base}{k}" for k in range(10**6)
                                       if f"{base}{k}" not in taken)
        args = ", ".join([NAMESPACE] + [self._print(a) for a in node.args])
        head = f"{self.indent * level}def {self._print(node.name)}({args}):"
        return [head] + [line for s in body for line in self._statement(s, level + 1)]

    def _print_For(self, node, level):
        """The loop's body as a function of the step and the carry, and its run."""
        carry = self.carries[id(node)]
        body, self.loops = self.fresh(f"_step{self.loops}_"), self.loops + 1
        names = ", ".join(self._print(n) for n in carry) + ("," if len(carry) == 1 else "")
        pad = self.indent * (level + 1)
        lines = [f"{self.indent * level}def {body}({self._print(node.var)}, _carry):",
                 f"{pad}({names}) = _carry"]
        lines += [line for s in node.body for line in self._statement(s, level + 1)]
        lines.append(f"{pad}return ({names})")
        lines.append(f"{self.indent * level}({names}) = {NAMESPACE}.loop("
                     f"{self._print(node.start)}, {self._print(node.stop)}, {node.step}, "
                     f"{body}, ({names}))")
        return lines


def _carries(args, statements):
    """``{id(loop): [names]}``: what each step loop of a function (its ``args``
    and its ``statements``, without blocks) carries from step to step: the
    names its body changes that were bound before it (the other names its body
    binds live within one step; one that is read after the loop without being
    bound before it has no value to start from: refused)."""
    out = {}
    bound = set(args)
    statements = list(statements)
    for i, s in enumerate(statements):
        if isinstance(s, ir.For):
            changed = ir.changed(s.body)
            later = ir.names_in(tuple(statements[i + 1:]))
            escaping = (changed & later) - bound
            if escaping:
                raise NotImplementedError(f"{sorted(map(str, escaping))[0]} is bound in a "
                                          "step loop and read after it")
            out[id(s)] = sorted(changed & bound, key=ir.order)
        bound |= ir.changed((s,))
    return out
