"""Where the layers above the data plug into it.

The model and the derivation are data. A node, a ``Cell`` or a ``Derivation`` still
offers its users ``str``, ``sympy.latex``, ``pprint``, ``_repr_latex_``, ``lambdify``,
``torch`` and ``jax``, but the printers and code generators that do that work live in
the layers above (``render``, ``codegen``, ``backends``), which import the data and
never the reverse. So the data asks this registry for the function that does a job,
by the job's name (a *hook* such as ``"derivation.latex"``), and the composition root
``symrnn/__init__.py`` fills the registry with ``"module:function"`` entries: a
consumer is imported on the first call of its hook, not when symrnn is imported.

This module imports nothing of symrnn: every layer may use it.
"""
import importlib

__all__ = ["call", "hooks", "register", "resolve"]

_ENTRIES = {}   # hook -> "package.module:function", or the function itself
_RESOLVED = {}  # hook -> the function (its module imported)


def register(hook, target):
    """Let ``hook`` be done by ``target``: a function, or ``"package.module:function"``
    (imported on the first call). Registering a hook again replaces its entry."""
    if not (callable(target) or (isinstance(target, str) and target.count(":") == 1)):
        raise ValueError(f"target: expected a function or 'module:function', got {target!r}")
    _ENTRIES[hook] = target
    _RESOLVED.pop(hook, None)


def resolve(hook):
    """The function registered for ``hook``; LookupError naming it when there is none."""
    function = _RESOLVED.get(hook)
    if function is not None:
        return function
    target = _ENTRIES.get(hook)
    if target is None:
        raise LookupError(f"symrnn: nothing is registered for {hook!r} (the registrations "
                          "are in symrnn/__init__.py)")
    if isinstance(target, str):
        module, name = target.split(":")
        target = getattr(importlib.import_module(module), name)
    _RESOLVED[hook] = target
    return target


def call(hook, *args, **kwargs):
    """Call the function registered for ``hook``."""
    return resolve(hook)(*args, **kwargs)


def hooks():
    """``{hook: target}`` as registered (targets as given: text or functions)."""
    return dict(_ENTRIES)
