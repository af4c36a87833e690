"""From the chain rule on one generic step to closed forms for any T."""
from dataclasses import dataclass, field

from sympy import MatAdd, ZeroMatrix

from ..graph.unroll import T, shared, step_equations, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .reverse import adjoint_sum, backprop, seed


@dataclass
class Derivation:
    """BPTT gradients of a cell, derived once for a generic step t.

    step          the equations of step t, with the copies W^(t), ...
    contributions every chain-rule term of step t: which rule produced what
    adjoints      {dL/dv^(t): expression} for every variable of step t, in the
                  order they are computed (t = T, ..., 1); the states' entries are
                  recurrences in dL/d(.)^(t+1)
    terminal      {dL/ds^(T): expression} for every state s: no step T+1
    gradients     {"W": sum over t of dL/dW^(t), ..., "h0": dL/dh^(0)}: closed forms
    """
    cell: object
    step: list
    contributions: dict
    adjoints: dict
    terminal: dict
    gradients: dict
    copy_gradients: dict = field(default_factory=dict)

    def verify(self, T, seed=0, sizes=None, raises=True):
        """Compare the closed forms with an independent scalar chain rule for T steps
        (see ``verify.py``); raises ``VerificationError`` where they differ."""
        from .verify import verify
        return verify(self, T, seed=seed, sizes=sizes, raises=raises)

    def lambdify(self, backend="numpy"):
        """The generated NumPy function; see ``symrnn.codegen.lambdify``."""
        from ..codegen.lambdify import lambdify
        return lambdify(self, backend)

    def torch(self, sizes=None, **options):
        """A ``torch.nn.Module`` whose backward is this derivation's BPTT; the
        parameters' sizes as keywords (``D=8, N=4, M=5``) or a dict ``sizes``;
        options ``batch_first``, ``dtype``, ``device``. Needs PyTorch
        (``pip install 'symrnn[torch]'``); see ``symrnn.backends.torch_module``."""
        try:
            from ..backends.torch_module import module
        except ImportError as e:
            raise ImportError("Derivation.torch() needs PyTorch: "
                              f"pip install 'symrnn[torch]' ({e})") from None
        return module(self, sizes, **options)

    def jax(self, unroll=False):
        """``f(params, x, y, h0=None) -> loss`` in JAX with this derivation's BPTT
        as its ``jax.custom_vjp``; see ``symrnn.backends.jax_function``. Needs
        JAX (``pip install 'symrnn[jax]'``)."""
        try:
            from ..backends.jax_function import function
        except ImportError as e:
            raise ImportError("Derivation.jax() needs JAX: "
                              f"pip install 'symrnn[jax]' ({e})") from None
        return function(self, unroll=unroll)

    def _repr_latex_(self):
        """The recurrences and gradients, for a notebook (rendered by symrnn.render, in
        the notation of ``symrnn.render.set_notation``)."""
        from ..render.notebook import derivation_latex
        return derivation_latex(self)

    def _latex(self, printer):
        from ..render.notebook import derivation_latex
        return derivation_latex(self, display=False)

    def _sympystr(self, printer):
        from ..render.text import derivation_text
        return derivation_text(self)

    def __str__(self):
        from ..render.text import derivation_text
        return derivation_text(self)

    def _pretty(self, printer):
        from ..render.text import derivation_pretty
        return derivation_pretty(self)

    def recurrence(self, state):
        """dL/ds^(t) in terms of dL/d(.)^(t+1) of the states only (intermediates inlined)."""
        var = StepVar(state.name, t, *state.shape)
        return self.inline(self.adjoints[Adjoint(var)])

    def inline(self, expr):
        """Replace the adjoints of intermediate variables by their definitions."""
        states = {s.name for s in self.cell.states}
        definitions = {a: e for a, e in self.adjoints.items() if a.var.name not in states}

        def lookup(a):
            shift = a.var.time - t
            body = definitions.get(Adjoint(a.var.at(t)))
            return a if body is None else self.inline(body.subs(t, t + shift))

        return expr.replace(lambda e: isinstance(e, Adjoint) and e.var.name not in states,
                            lookup).doit()


def derive(cell):
    """Derive the BPTT gradients of ``cell`` for any sequence length T."""
    step = step_equations(cell, t)
    states = [StepVar(s.name, t, *s.shape) for s in cell.states]
    found = backprop(step, seed(step[-1][0]), live=states)
    share = lambda e: shared(cell, e)

    adjoints = {}
    for lhs, _ in reversed(step[:-1]):
        if lhs not in found and lhs not in states:
            continue  # nothing depends on it: yhat when the loss is written in o
        within = adjoint_sum(found.get(lhs, []))
        carried = adjoint_sum(found.get(lhs.at(t - 1), []))
        terms = [e for e in (within, carried and carried.subs(t, t + 1)) if e is not None]
        adjoints[Adjoint(lhs)] = share(MatAdd(*terms).doit()) if terms else ZeroMatrix(*lhs.shape)

    terminal = {}
    for s in cell.states:
        within = adjoint_sum(found.get(StepVar(s.name, t, *s.shape), []))
        terminal[Adjoint(StepVar(s.name, T, *s.shape))] = (
            share(within.subs(t, T)) if within is not None else ZeroMatrix(*s.shape))

    copy_gradients, gradients = {}, {}
    for p in cell.params:
        term = adjoint_sum(found.get(StepVar(p.name, t, *p.shape), []))
        copy_gradients[p.name] = term
        gradients[p.name] = (SumOverTime(share(term), t, 1, T) if term is not None
                             else ZeroMatrix(*p.shape))
    for s in cell.states:
        carried = adjoint_sum(found.get(StepVar(s.name, t - 1, *s.shape), []))
        gradients[f"{s.name}0"] = (share(carried.subs(t, 1)) if carried is not None
                                   else ZeroMatrix(*s.shape))
    return Derivation(cell, step, found, adjoints, terminal, gradients, copy_gradients)
