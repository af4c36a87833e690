"""Printers of the statement IR (``ir.py``): Python source for NumPy and for Numba.

Each node type has one ``_print_<Node>`` method. Parentheses come from the
precedence of the operators in the tree, so ``Transpose(BinOp("+", W, Q))``
prints ``(W + Q).T``. The Numba printer differs only in the runtime helpers it
calls (``_nb_dot`` for ``_dot``) and in how a loop reads per-step rows (the
3-D array itself instead of a list of its rows); ``NumbaModulePrinter`` prints
the compiled functions of a module with it and the rest with NumPy's. A
printer prints a whole module with ``print_module``.
"""
import ast
import inspect
import io
import itertools
import pprint
import tokenize

from . import ir

NUMPY_ALIAS = "_np"  # the generated kernels reach NumPy only through this reserved name
_LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
RANGE, LIST = "_range", "_list"  # and the builtins through these (a cell may name a variable range)

# precedence: higher binds tighter (Python's order)
_ADD, _MUL, _UNARY, _POW, _ATOM = 10, 11, 12, 13, 14
_BINARY = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "**": _POW}


class NumPyPrinter:
    """Python source that runs on NumPy arrays."""

    helper_prefix = "_"
    indent = "    "

    def doprint(self, node, level=0):
        """The source of an expression, or of a statement (indented ``level`` times)."""
        if isinstance(node, ir.Stmt):
            return "\n".join(self._statement(node, level))
        return self._print(node)

    def print_module(self, module):
        """The source of the generated file (``module.body``, see ``passes/assemble.py``)."""
        return "\n\n".join(self.top_level(s) for s in module.body) + "\n"

    def top_level(self, statement):
        return self.doprint(statement)

    def _print(self, node):
        return getattr(self, "_print_" + type(node).__name__)(node)

    def _statement(self, node, level):
        out = getattr(self, "_print_" + type(node).__name__)(node, level)
        return out if isinstance(out, list) else [self.indent * level + out]

    def _paren(self, node, minimum):
        code = self._print(node)
        return f"({code})" if self.precedence(node) < minimum else code

    def precedence(self, node):
        if isinstance(node, ir.BinOp):
            return _BINARY[node.op]
        if isinstance(node, ir.Neg):
            return _UNARY
        if isinstance(node, ir.Const) and isinstance(node.value, (int, float)) and node.value < 0:
            return _UNARY
        return _ATOM

    # -- expressions ------------------------------------------------------------
    def _print_Name(self, node):
        return node.id

    def _print_Temp(self, node):
        raise ValueError(f"a temporary without a name (the name pass names them): {node}")

    def _print_Data(self, node):
        return pprint.pformat(_plain(node.value), sort_dicts=False)

    def _print_NameOf(self, node):
        return repr(self._print(node.node))

    def _print_Const(self, node):
        value = node.value
        if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite constant: {value!r}")
        return repr(value)

    def _print_Helper(self, node):
        return self.helper_prefix + node.name

    def _print_NumPy(self, node):
        return f"{NUMPY_ALIAS}.{node.attr}"

    def _print_Attr(self, node):
        return f"{self._paren(node.value, _ATOM)}.{node.attr}"

    def _print_Transpose(self, node):
        return f"{self._paren(node.value, _ATOM)}.T"

    def _print_Call(self, node):
        args = list(node.args) + ([node.out] if node.out is not None else [])
        return f"{self._paren(node.func, _ATOM)}({', '.join(self._print(a) for a in args)})"

    def _print_BinOp(self, node):
        p = _BINARY[node.op]
        if node.op == "**":  # right-associative
            return f"{self._paren(node.left, p + 1)}**{self._paren(node.right, _UNARY)}"
        return f"{self._paren(node.left, p)} {node.op} {self._paren(node.right, p + 1)}"

    def _print_Neg(self, node):
        return f"-{self._paren(node.value, _UNARY + 1)}"

    def _print_Index(self, node):
        index = node.index if isinstance(node.index, tuple) else (node.index,)
        return f"{self._paren(node.value, _ATOM)}[{', '.join(self._print(i) for i in index)}]"

    def _print_Slice(self, node):
        lo = "" if node.lo is None else self._print(node.lo)
        hi = "" if node.hi is None else self._print(node.hi)
        return f"{lo}:{hi}"

    def _print_Tuple(self, node):
        items = [self._print(i) for i in node.items]
        return f"({', '.join(items)}{',' if len(items) == 1 else ''})"

    def _print_Rows(self, node):
        return f"{LIST}({self._print(node.value)})"

    # -- statements -----------------------------------------------------------------
    def _print_Assign(self, node, level):
        return f"{', '.join(self._print(t) for t in node.targets)} = {self._print(node.value)}"

    def _print_Update(self, node, level):
        return f"{self._print(node.target)} {node.op}= {self._print(node.value)}"

    def _print_Fill(self, node, level):
        return f"{self._print(node.target)}[:] = {self._print(node.value)}"

    def _print_Do(self, node, level):
        return self._print(node.call)

    def _print_Alloc(self, node, level):
        shape = ", ".join(self._print(s) for s in node.shape)
        func = "zeros" if node.zeros else "empty"
        return f"{self._print(node.target)} = {NUMPY_ALIAS}.{func}(({shape}))"

    def _print_For(self, node, level):
        head = (f"{self.indent * level}for {self._print(node.var)} in {RANGE}("
                f"{self._print(node.start)}, {self._print(node.stop)}, {node.step}):")
        body = [line for s in node.body for line in self._statement(s, level + 1)]
        return [head] + body

    def _print_Return(self, node, level):
        values = [self._print(v) for v in node.values]
        return "return " + (", ".join(values) if len(values) > 1 else values[0])

    def _print_Release(self, node, level):
        return "del " + ", ".join(self._print(n) for n in node.names)

    def _print_Block(self, node, level):
        return [line for s in node.body for line in self._statement(s, level)]

    def _print_Docstring(self, node, level):
        return repr(node.text)

    def _print_Import(self, node, level):
        if not node.names:
            return f"import {node.module}" + (f" as {node.alias}" if node.alias else "")
        return f"from {node.module} import {', '.join(node.names)}"

    def _print_Imports(self, node, level):
        return "\n\n".join("\n".join(self._print_Import(i, level) for i in group)
                           for group in node.groups if group)

    def _print_Copied(self, node, level):
        return _source(node.obj)

    def _print_Function(self, node, level):
        args = ", ".join(self._print(a) for a in node.args)
        head = f"{self.indent * level}def {self._print(node.name)}({args}):"
        return [head] + [line for s in node.body for line in self._statement(s, level + 1)]


class NumbaPrinter(NumPyPrinter):
    """The same statements for Numba: its compiled helpers, and the 3-D arrays of
    the steps where NumPy reads a list of rows (Numba compiles no list of arrays)."""

    helper_prefix = "_nb_"

    def _print_Rows(self, node):
        return self._print(node.value)

    def _print_Release(self, node, level):
        return []  # Numba compiles no del; its arrays live to the end of the call


class NumbaModulePrinter(NumPyPrinter):
    """A Numba module: its compiled functions and its module-level statements
    for Numba (its helpers), the rest (a kernel that calls compiled step
    loops) for NumPy."""

    def top_level(self, statement):
        if isinstance(statement, ir.Function) and not statement.compiled:
            return NumPyPrinter().doprint(statement)
        return NumbaPrinter().doprint(statement)


def _source(obj):
    """The source of a function, or of a module without its docstring (its
    statements from the first one after the docstring on) and without its
    imports (the module's import block gathers those of all its parts: ``assemble``)."""
    source = inspect.getsource(obj)
    if not inspect.ismodule(obj):
        return "\n".join(source.splitlines())
    body = ast.parse(source).body
    skip = {i for node in body if isinstance(node, (ast.Import, ast.ImportFrom))
            for i in range(node.lineno - 1, node.end_lineno)}
    lines = source.splitlines(True)
    leading = list(itertools.takewhile(lambda n: isinstance(n, (ast.Import, ast.ImportFrom)),
                                       body[1:]))
    after = (leading or body)[-1 if leading else 0].end_lineno
    # from the first comment or statement after the docstring and the leading imports
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    first = next(tok.start[0] - 1 for tok in tokens
                 if tok.start[0] > after and tok.type not in _LAYOUT)
    return "".join(lines[i] for i in range(first, len(lines)) if i not in skip)


def _plain(value):
    """``value`` with the identifiers of names (``NameOf``) as strings, for pprint."""
    if isinstance(value, ir.NameOf):
        return value.node.id
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
