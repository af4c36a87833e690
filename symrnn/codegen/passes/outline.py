"""outline: a kernel too large to compile whole, as Python that calls its compiled step loops.

Input: the functions (those ``loopnests`` compiled whole, and the others).
Output: each function not compiled replaced by Python that calls a compiled
function for each of its step loops (their element-wise statements as loop
nests, see ``loops.py``); loops of one form are one compiled function.

Numba hands a function to LLVM as one module, and LLVM's optimisation time grows
faster than the function: a whole kernel of a six-layer cell took minutes to
compile (issue 15). So only the loops over the steps are compiled, each as a
function of its own (its element-wise statements as loop nests, see
``loops.py``); the rest of a kernel, a few NumPy calls over all steps at once,
runs as in the NumPy kernel. Loops of the same form, such as the layers of a
stacked cell or the forward loop of ``forward`` and of ``gradients``, are one
compiled function called with different arrays.
"""
from dataclasses import replace

from .. import ir
from ..kernels import scalar_names
from ..loops import Loops
from ..nests import LOOP_VARS
from ..shapes import Shapes
from .lower import argument_shapes
from .lower.context import STEP


def run(module):
    if all(f.compiled for f in module.functions):
        return module
    arguments = argument_shapes(module.cell)
    outliner = Outliner(arguments, scalar_names(), STEP)
    functions = [f if f.compiled else outliner.function(f) for f in module.functions]
    return replace(module, functions=tuple(functions) + tuple(
        replace(g, compiled=True) for g in outliner.loops))


def _read_later(statements, names):
    """Those of ``names`` that ``statements`` read before binding them again."""
    live, rebound = set(), set()
    for s in statements:
        if isinstance(s, ir.Release):
            continue
        bound = ir.bound([s]) if isinstance(s, (ir.Assign, ir.Alloc)) else set()
        targets = set(getattr(s, "targets", ())) | (
            {s.target} if isinstance(s, ir.Alloc) else set())
        read = ir.names_in(s) - (targets & bound)
        live |= (read & names) - rebound
        rebound |= bound
    return live


def _ordered_names(node):
    """The names in ``node`` in order of first appearance."""
    seen = {}
    for n in ir.walk(node):
        if isinstance(n, ir.VARIABLES):
            seen.setdefault(n, None)
    return list(seen)


def _canonical(f, keep):
    """``f`` with its arguments (``arg`` 0, ...) and the names it binds (``local``
    0, ...; except those in ``keep``, the same in every loop) renamed in order of
    first appearance, so that two loops of the same form become equal."""
    bound = ir.bound(f.body) - set(f.args)
    mapping = {a: ir.Temp("arg", n=i) for i, a in enumerate(f.args)}
    own = [n for n in _ordered_names(f.body) if n in bound and not keep(n)]
    mapping.update({n: ir.Temp("local", n=i) for i, n in enumerate(own)})
    return ir.rename(f.args, mapping), ir.rename(f.body, mapping)


def _generic(name):
    """A temporary that ``loops.py`` makes alike in every loop nest: the entries'
    indices, the numbers and the arrays of a nest."""
    return name in LOOP_VARS or isinstance(name, ir.Temp) and name.role in ("scalar", "lp")


class Outliner:
    """``function(f)``: ``f`` (a kernel's IR) with each step loop replaced by a call
    of a compiled loop function; ``loops``: those functions, one per form.
    ``arguments`` and ``scalars`` as for ``Loops``; ``step_var``: the loop
    variable of the step loops."""

    def __init__(self, arguments, scalars, step_var):
        self.arguments, self.scalars, self.step_var = dict(arguments), scalars, step_var
        self.forms = {}

    @property
    def loops(self):
        return list(self.forms.values())

    def function(self, f):
        body, out = list(f.body), []
        shapes = Shapes(self.arguments, {k.name for k in self.scalars if isinstance(k, ir.Helper)})
        defined = set(f.args)
        for i, s in enumerate(body):
            if not (isinstance(s, ir.For) and s.var == self.step_var):
                out.append(s)
                defined |= ir.bound([s])
                shapes.bind(s)
                continue
            part, moved = [s], []
            reads = ir.names_in(s)
            while out and self._prelude(out[-1], reads):  # the rows and constants it reads
                last = out.pop()
                if isinstance(last, ir.Release):
                    moved.insert(0, last)
                else:
                    part.insert(0, last)
                    reads |= ir.names_in(last)
            inside = ir.bound(part)
            later = _read_later(body[i + 1:], inside)
            args = [n for n in _ordered_names(tuple(part)) if n in defined and n not in inside
                    or n in defined and self._read_before_bound(n, part)]
            results = tuple(sorted(inside & later - {self.step_var}, key=ir.order))
            call = self._call(part, args, results, shapes)
            if call is not None:
                out.append(call)
            defined = (defined - inside) | set(results)
            out += [r for r in (self._released(m, defined) for m in moved) if r]
            shapes.bind(s)
        kept = []
        for s in out:
            if isinstance(s, ir.Release):
                s = self._released(s, defined | set(f.args))
                if s is None:
                    continue
            kept.append(s)
        return replace(f, body=tuple(kept))

    @staticmethod
    def _read_before_bound(name, part):
        for p in part:
            if name in ir.names_in(p) and name not in ir.bound([p]):
                return True
            if name in ir.bound([p]):
                return isinstance(p, ir.For) or name in ir.names_in(getattr(p, "value", ()))
        return False

    @staticmethod
    def _prelude(s, reads):
        """A statement just before a step loop that goes into the loop's function: a
        value the loop reads (its rows, which only a compiled loop can take as a 3-D
        array, and the constants made for it), or a release."""
        if isinstance(s, ir.Release):
            return True
        return (isinstance(s, ir.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ir.VARIABLES) and s.targets[0] in reads)

    @staticmethod
    def _released(s, defined):
        names = tuple(n for n in s.names if n in defined)
        return ir.Release(names) if names else None

    def _call(self, part, args, results, shapes):
        body = tuple(part) + ((ir.Return(results),) if results else ())
        f = ir.Function(ir.Temp("loop"), tuple(args), body)
        known = {n: shapes.env.get(n) for n in args}
        lowered = Loops(known, self.scalars).function(f)
        if not lowered.body:  # a loop with nothing left to do
            return None
        key = _canonical(lowered, lambda n: n == self.step_var or _generic(n))
        if key not in self.forms:
            name = ir.Temp("loop", n=len(self.forms))
            self.forms[key] = ir.Function(name, key[0], key[1])
        call = ir.call(self.forms[key].name, *args)
        return ir.Assign(results, call) if results else ir.Do(call)
