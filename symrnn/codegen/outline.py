"""Split a kernel into parts that Numba compiles one by one (an IR-to-IR step).

Numba lowers every array expression of a function into loops of its own and
LLVM then optimises the whole function at once; the time grows much faster
than the function (issue 15: 37 s for a two-layer stacked LSTM cell, minutes
for six). ``outline`` cuts a function's statements into parts of at most
``size`` statements; each part becomes a function of the names it reads that
were bound before it, returning the names it binds that are read after it. A
loop longer than ``size`` keeps its ``for`` and calls the parts of its body, so
a loop-carried name counts as read after every part of the body. Arrays are
passed by reference, so in-place writes need no return.
"""
import dataclasses

from . import ir


def _names(node, out):
    """Every ``Name`` in an expression or statement tree, into ``out``."""
    if isinstance(node, ir.Name):
        out.add(node.id)
    elif isinstance(node, (tuple, list)):
        for item in node:
            _names(item, out)
    elif dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            _names(getattr(node, f.name), out)
    return out


def reads(statements, bound=frozenset()):
    """Names a statement list reads (or writes in place) before binding them
    itself, in the order it runs; a loop's variable is bound in its body."""
    free, bound = set(), set(bound)
    for s in statements:
        if isinstance(s, ir.For):
            free |= _names((s.start, s.stop), set()) - bound
            free |= reads(s.body, bound | {s.var.id})
        elif isinstance(s, ir.Assign):
            free |= _names(s.value, set()) - bound
            free |= _names([t for t in s.targets if not isinstance(t, ir.Name)], set()) - bound
        elif isinstance(s, ir.Alloc):
            free |= _names(s.shape, set()) - bound
        else:
            free |= _names(s, set()) - bound
        bound |= binds([s])
    return free


def binds(statements):
    """Names a statement list (re)binds: assignment targets, allocations,
    augmented assignments to a name, loop variables."""
    out = set()
    for s in statements:
        if isinstance(s, ir.Assign):
            out.update(t.id for t in s.targets if isinstance(t, ir.Name))
        elif isinstance(s, (ir.Update, ir.Alloc)) and isinstance(s.target, ir.Name):
            out.add(s.target.id)
        elif isinstance(s, ir.For):
            out.add(s.var.id)
            out |= binds(s.body)
    return out


def _weight(statement):
    return 1 + sum(map(_weight, statement.body)) if isinstance(statement, ir.For) else 1


class Outliner:
    """``outline(function)`` -> the function calling its parts, and the parts."""

    def __init__(self, size=24):
        self.size = size

    def outline(self, function):
        self.parts, self.prefix = [], function.name.id + "_part"
        args = {a.id for a in function.args}
        body = self._split(list(function.body), args, set())
        return [dataclasses.replace(function, body=tuple(body))] + self.parts

    def _groups(self, statements):
        """Consecutive runs of statements of total weight <= size; a heavier
        loop alone."""
        groups, current, weight = [], [], 0
        for s in statements:
            w = _weight(s)
            if current and (weight + w > self.size or isinstance(s, ir.Return)):
                groups.append(current)
                current, weight = [], 0
            current.append(s)
            weight += w
        if current:
            groups.append(current)
        return groups

    def _split(self, statements, bound, read_later):
        """``statements`` as calls of parts; ``bound``: names bound before them,
        ``read_later``: names read after them."""
        if sum(map(_weight, statements)) <= self.size:
            return statements
        out = []
        groups = self._groups(statements)
        for i, group in enumerate(groups):
            after = read_later | reads([s for g in groups[i + 1:] for s in g])
            if isinstance(group[-1], ir.Return):  # the return stays in the caller
                *group, last = group
            else:
                last = None
            if len(group) == 1 and isinstance(group[0], ir.For) and _weight(group[0]) > self.size:
                loop = group[0]
                inner_bound = bound | {loop.var.id}
                body = self._split(list(loop.body), inner_bound, after | reads(loop.body))
                out.append(dataclasses.replace(loop, body=tuple(body)))
            elif group:
                out.append(self._part(group, bound, after))
            if last is not None:
                out.append(last)
            bound = bound | binds(group)
        return out

    def _part(self, group, bound, after):
        inputs = sorted(reads(group) & bound)
        outputs = sorted(binds(group) & after)
        name = ir.Name(f"{self.prefix}{len(self.parts)}")
        body = list(group)
        if outputs:
            body.append(ir.Return(tuple(ir.Name(n) for n in outputs)))
        self.parts.append(ir.Function(name, tuple(ir.Name(n) for n in inputs), tuple(body)))
        call = ir.call(name, *(ir.Name(n) for n in inputs))
        if outputs:
            return ir.Assign(tuple(ir.Name(n) for n in outputs), call)
        return ir.Do(call)
