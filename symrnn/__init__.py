"""symrnn: derive, typeset and compile BPTT gradients of recurrent cells.

This module is the composition root. The layers, each importing only those below it:

    ops, plugins, display   the operations; the registry; the print methods of the data
    model, graph            a cell's equations; the unrolled graph
    derivation              the closed forms (data: a Derivation)
    checking, codegen,      numbers that check the derivation; code from it; PyTorch and
    backends, render        JAX; the derivation typeset
    documents               the sheets: render's text with checking's numbers
    check, testing, cli     the public faces and the command line

The data reaches the consumers above it only through ``symrnn.plugins``, filled
here: ``str(d)``, ``sympy.latex(node)``, ``d.torch()`` ... call the function
registered under their hook, imported on first use.
"""
# The names below are imported on first use (PEP 562), so that ``import symrnn`` does
# not import SymPy: the command line then starts inside its own error handling (a
# Ctrl-C while SymPy loads is one line, not a traceback) and ``symrnn --version`` is quick.
import importlib

from . import plugins

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "Cell", "Derivation", "ElmanRNN", "derive", "log_softmax", "parse_cell",
           "prev", "relu", "sigmoid", "softmax", "tanh"]
_HOMES = {name: ".derivation" if name in ("Derivation", "derive") else ".model"
          for name in __all__}

# hook -> the function that does it ("module:function", imported on the first call)
for _hook, _target in {
    "expression.text": "symrnn.render.text:expression_text",
    "expression.pretty": "symrnn.render.text:expression_pretty",
    "expression.latex": "symrnn.render.notebook:expression_latex",
    "cell.text": "symrnn.render.text:cell_text",
    "cell.pretty": "symrnn.render.text:cell_pretty",
    "cell.latex": "symrnn.render.notebook:cell_aligned",
    "cell.notebook": "symrnn.render.notebook:cell_latex",
    "derivation.text": "symrnn.render.text:derivation_text",
    "derivation.pretty": "symrnn.render.text:derivation_pretty",
    "derivation.latex": "symrnn.render.notebook:derivation_aligned",
    "derivation.notebook": "symrnn.render.notebook:derivation_latex",
    "derivation.lambdify": "symrnn.codegen.lambdify:lambdify",
    "derivation.torch": "symrnn.backends.torch_module:module",
    "derivation.jax": "symrnn.backends.jax_function:function",
}.items():
    plugins.register(_hook, _target)
del _hook, _target


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule: symrnn.testing, symrnn.check, ...
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
