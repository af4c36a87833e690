"""The module that code generation carries from pass to pass.

Every pass takes a ``Module`` and returns a new one (``dataclasses.replace``):
the derivation's formulas (``problem``) are rewritten, scheduled (``schedule``),
lowered to statements (``functions``), and assembled with the runtime into the
statements of the whole generated file (``body``), which a printer prints.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """The formulas of a derivation, at a generic step t (SymPy).

    equations       [(lhs StepVar, rhs)] of the step, copies W^(t) as W
    adjoints        {Adjoint: expression}, in the order they are computed
    gradients       {parameter or "h0": expression}
    fixed_adjoints  {Adjoint of a named matrix: expression}
    fixed           [(named matrix, expression of the parameters)]
    internal        names of the values that passes made (not the cell's)
    """
    equations: tuple
    adjoints: dict
    gradients: dict
    fixed_adjoints: dict
    fixed: tuple
    internal: frozenset = frozenset()


@dataclass(frozen=True)
class Module:
    """What the passes rewrite. ``target``: the backend's name; ``options``: its
    settings for the passes (see ``targets.py``); ``kernels``: the kernels'
    schedules (``scheduled.Kernel``); ``functions``: the generated functions
    (``ir.Function``); ``body``: the module's statements, once assembled."""
    derivation: object
    target: str
    problem: Problem = None
    kernels: tuple = ()
    functions: tuple = ()
    body: tuple = ()
    options: dict = field(default_factory=dict)

    @property
    def cell(self):
        return self.derivation.cell

    def option(self, name, default=None):
        return self.options.get(name, default)

    def function(self, name):
        """The generated function called ``name`` (an ``ir.Name`` or a str)."""
        for f in self.functions:
            if f.name == name or getattr(f.name, "id", None) == name:
                return f
        raise KeyError(name)
