"""How the engine's objects show themselves: ``str``, ``sympy.latex`` and ``pprint`` of a
node (h^(t), dL/dh^(t), tanh(z^(t)), sum_{t=1}^{T} ...), of a SymPy matrix expression
that holds nodes (a gradient, an adjoint), of a ``Cell`` and of a ``Derivation`` read
like the sheet.

The printers live in ``symrnn.render``, above the data; the objects reach them through
the registry (``symrnn.plugins``), under the hooks ``"<kind>.<form>"``: kind
``expression``, ``cell`` or ``derivation``, form ``text``, ``latex`` or ``pretty``.

Only SymPy's own printers are answered (``str``/``repr``, ``sympy.latex``,
``sympy.pprint``): a printer of another class, such as a code printer or a
user's subclass of ``StrPrinter``, prints a node with its own ``_print_<Node>``.
SymPy's containers (``MatAdd``, ``MatMul``, ``HadamardProduct``, ``Transpose``, ...)
have no print method of their own, and a node's method cannot change how its
container prints: ``show_containers()`` gives ``MatrixExpr`` the same methods,
which hand a container to symrnn's printers only when it holds a node of symrnn
(any other matrix expression prints as SymPy prints it).
"""
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.printing.latex import LatexPrinter
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.str import StrPrinter

from . import plugins

__all__ = ["Readable", "Shown", "show_containers"]

# the printer class whose call each form answers, and the hook's form
_FORMS = {StrPrinter: "text", LatexPrinter: "latex", PrettyPrinter: "pretty"}


def _dispatch(printer, expr, **kwargs):
    """What ``printer`` prints for ``expr`` without asking ``expr`` (its
    ``_print_<Class>`` along the classes of ``expr``)."""
    for cls in type(expr).__mro__:
        method = getattr(printer, f"_print_{cls.__name__}", None)
        if method is not None:
            return method(expr, **kwargs)
    return printer.emptyPrinter(expr)


class Shown:
    """The print methods SymPy's printers look for, handing the object to the printer
    registered for ``_shown_as`` (expression, cell or derivation)."""

    _shown_as = "expression"

    def _show(self, printer, **kwargs):
        form = _FORMS.get(type(printer))
        if form is None:
            return _dispatch(printer, self, **kwargs)
        return plugins.call(f"{self._shown_as}.{form}", self)

    def _latex(self, printer, **kwargs):
        return self._show(printer, **kwargs)

    def _sympystr(self, printer, **kwargs):
        return self._show(printer, **kwargs)

    def _pretty(self, printer, **kwargs):
        return self._show(printer, **kwargs)


class Readable(Shown):
    """Mixed into the node classes (before ``MatrixExpr``)."""


def _holds_node(expr):
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, Readable):
            return True
        stack.extend(e.args)
    return False


def _container_show(self, printer, **kwargs):
    if type(printer) in _FORMS and _holds_node(self):
        return plugins.call(f"expression.{_FORMS[type(printer)]}", self)
    return _dispatch(printer, self, **kwargs)


def show_containers():
    """Let SymPy's matrix expressions that hold symrnn's nodes print as the sheet does
    (done once, below: a container can hold a node only once this module, which the
    nodes' classes import, has been imported)."""
    for method in ("_latex", "_sympystr", "_pretty"):
        if getattr(MatrixExpr, method, None) is not _container_show:
            setattr(MatrixExpr, method, _container_show)


show_containers()
