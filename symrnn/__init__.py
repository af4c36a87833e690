"""symrnn: derive, typeset and compile BPTT gradients of recurrent cells."""
# The names below are imported on first use (PEP 562), so that ``import symrnn`` does
# not import SymPy: the command line then starts inside its own error handling (a
# Ctrl-C while SymPy loads is one line, not a traceback) and ``symrnn --version`` is quick.
import importlib

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "Cell", "Derivation", "ElmanRNN", "derive", "log_softmax", "parse_cell",
           "prev", "relu", "sigmoid", "softmax", "tanh"]
_HOMES = {name: ".derivation" if name in ("Derivation", "derive") else ".model"
          for name in __all__}


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
