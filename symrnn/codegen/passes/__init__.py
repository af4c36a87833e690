"""The passes of code generation, one module each.

A pass is a module with ``run(module) -> module`` (``module.py``): it reads the
parts of the module it needs and returns a new module with its own part
rewritten. Its docstring's first line says what it does, and the next
paragraph states its input and its output. A pass keeps no state between two
runs; what it needs while it works lives in objects it makes for that run.
Its settings come from the backend (``module.option``, see ``targets.py``).

The backends' lists of passes are in ``targets.py``; ``driver.py`` runs them
and can show the module after any of them (``symrnn codegen --dump-ir PASS``).
"""
