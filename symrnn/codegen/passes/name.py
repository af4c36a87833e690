"""name: every temporary gets an identifier.

Input: the functions and the module's statements, with ``Temp`` nodes. Output:
the same with every ``Temp`` replaced by an ``ir.Name``, distinct temporaries
by distinct names, none equal to a name of the cell or of the runtime (the
names of ``del`` in the order of their identifiers).

Setting ``names``: the scheme, ``scheme(temp, text) -> wanted identifier``
(``text(of)`` is what the value ``of`` is called: a value's name, a name, or
another temporary's identifier). The default, ``PRIVATE``: every name
starts with ``_``, which no name of a cell may (``_all_h`` for the array of h's
steps, ``_d_h`` for the rows of dL/dh); the readable backend has the sheet's
(``readable.SHEET``).
"""
import keyword
from dataclasses import replace

from .. import ir, runtime, runtime_calls
from ..scheduled import Value


def run(module):
    scheme = module.option("names", PRIVATE)
    taken = {n.id for n in ir.names_in((module.functions, module.body))
             if isinstance(n, ir.Name)} | RUNTIME
    namer = _Namer(scheme, taken)
    functions = tuple(namer.rename(f) for f in module.functions)
    body = tuple(namer.rename(s) for s in module.body)
    return replace(module, functions=functions, body=body)


RESERVED = ("_np", "_range", "_list", "np", "range", "list", "len")
RUNTIME = set(vars(runtime)) | set(vars(runtime_calls)) | set(RESERVED)  # the module's names


def named(node, scheme=None):
    """``node`` (any IR) with its temporaries named, apart from the names in it."""
    taken = {n.id for n in ir.names_in(node) if isinstance(n, ir.Name)}
    return _Namer(scheme or PRIVATE, taken | RUNTIME).rename(node)


class _Namer:
    def __init__(self, scheme, taken):
        self.scheme, self.taken, self.names = scheme, set(taken), {}

    def name(self, temp):
        found = self.names.get(temp)
        if found is None:
            want = self.scheme(temp, lambda of: base_text(of, self.name))
            found, k = want, 1
            while found in self.taken or keyword.iskeyword(found):
                found, k = f"{want}_{k}", k + 1
            self.taken.add(found)
            found = self.names[temp] = ir.Name(found)
        return found

    def rename(self, node):
        node = ir.rebuild(node, lambda n: self.name(n) if isinstance(n, ir.Temp) else n)
        return _sorted_releases(node)


def _sorted_releases(node):
    if isinstance(node, ir.Release):
        return ir.Release(tuple(sorted(node.names, key=lambda n: n.id)))
    if isinstance(node, (ir.Function, ir.For, ir.Block)):
        return replace(node, body=tuple(_sorted_releases(s) for s in node.body))
    return node


def base_text(of, name):
    """The text a temporary's name is made from: a value's name, a name, another
    temporary's identifier."""
    if isinstance(of, Value):
        return base_text(of.name, name) if not isinstance(of.name, str) else of.name
    if isinstance(of, ir.Name):
        return of.id
    if isinstance(of, ir.Temp):
        return name(of).id
    return str(of)


_FIXED = {"steps": "_T", "batch": "_B", "step": "_t", "loss": "_loss"}
_ROLES = {"all": "all", "rows": "r", "row": "t", "prev": "prev", "logsoftmax": "ls",
          "flatrows": "rf"}
_NUMBERED = {"shared": "_cse", "tmp": "_tmp", "fixed": "_fix", "columns": "_cols",
             "product": "_rows", "lp": "_lp", "scalar": "_s", "loop": "_nb_loop", "arg": "_a",
             "local": "_v", "sums": "_sums", "gates": "_gates"}
_ENTRY = ("_i", "_j", "_k", "_l")


def PRIVATE(temp, text):
    role, of = temp.role, temp.of
    if role in _FIXED:
        return _FIXED[role]
    if role == "entry":
        return _ENTRY[temp.n]
    if role in _NUMBERED:
        return f"{_NUMBERED[role]}{temp.n}"
    adjoint = isinstance(of, Value) and of.adjoint
    base = text(of)
    if role == "flat":
        return f"_d_{base}" if adjoint else base  # a value a pass made: its name has a _
    if role in _ROLES:
        return f"_{'d' if adjoint else ''}{_ROLES[role]}_{base}"
    if role in ("init", "grad", "grad0", "tr"):
        return f"_{role}_{base}"
    if role == "transpose":
        return f"_tr_{base}"
    if role == "stacked":
        return f"_st{base}_{temp.n}"
    if role == "part":
        return f"{base}_{temp.n}"
    if role == "expanded":
        return f"_x{base}"
    n = "" if temp.n is None else temp.n
    return f"_{role}{'_' + base if of is not None else ''}{n}"
