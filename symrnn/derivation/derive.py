"""From the chain rule on one generic step to closed forms for any T."""
from dataclasses import dataclass, field

from sympy import Identity, MatAdd, MatMul, ZeroMatrix

from .. import plugins
from ..display import Shown
from ..graph.unroll import T, shared, step_equations, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .reverse import adjoint_sum, backprop, seed


@dataclass
class Derivation(Shown):
    """The BPTT gradients of a cell, derived once for a generic step t.

    Made by :func:`~symrnn.derive`. ``str(d)`` is what ``symrnn derive`` prints; in a
    notebook ``d`` displays itself as LaTeX.

    Attributes
    ----------
    cell : Cell
        The cell it was derived from.
    step : list
        The equations of step t, with the copies W^(t), ... of the parameters.
    contributions : dict
        Every chain-rule term of step t: which rule produced what.
    adjoints : dict
        ``{dL/dv^(t): expression}`` for every variable of step t, in the order they
        are computed (t = T, ..., 1); the states' entries are recurrences in the
        adjoints of step t+1.
    terminal : dict
        ``{dL/ds^(T): expression}`` for every state s: there is no step T+1.
    gradients : dict
        ``{"W": sum over t of dL/dW^(t), ..., "h0": dL/dh^(0)}``: the closed forms
        (for a parameter that a named matrix reads, plus its part through it).
    fixed_adjoints : dict
        ``{dL/dAb: expression}`` for every named matrix Ab of the parameters, in the
        order they are computed: the sum over t of dL/dAb^(t), plus what the named
        matrices computed from Ab pass back.
    """
    cell: object
    step: list
    contributions: dict
    adjoints: dict
    terminal: dict
    gradients: dict
    copy_gradients: dict = field(default_factory=dict)
    fixed_adjoints: dict = field(default_factory=dict)
    # what verify() found wrong, if it did: code built from it would be wrong too
    failed_verification: str = field(default=None, repr=False, compare=False)
    _shown_as = "derivation"

    def verify(self, T, seed=0, sizes=None, raises=True):
        """Prove the closed forms for ``T`` steps against an independent scalar chain rule.

        The user guide's "What verify proves" explains both routes and what a pass
        does and does not prove.

        Parameters
        ----------
        T : int
            The number of steps, at least 1.
        seed : int
            Seed of the two random points the routes are compared at.
        sizes : dict, optional
            The sizes, by ``Symbol`` or by name (1 to 8); the others default to 2
            and 3.
        raises : bool
            Raise on a difference (default), or return the report.

        Returns
        -------
        Verification
            What was compared; its truth value is the verdict.

        Raises
        ------
        VerificationError
            Naming the first quantity that differs.
        """
        from .verify import verify
        return verify(self, T, seed=seed, sizes=sizes, raises=raises)

    def lambdify(self, backend="numpy"):
        """The generated function ``f(params, x, y, h0=None) -> (loss, grads)``.

        ``backend`` is ``"numpy"``, ``"numba"`` or ``"readable"``; see
        :func:`symrnn.codegen.lambdify.lambdify`."""
        return plugins.call("derivation.lambdify", self, backend)

    def refuse_if_failed(self, what):
        """Raise a ValueError if ``verify`` found this derivation wrong: ``what``
        (code built from it) would compute the same wrong gradients."""
        if self.failed_verification is not None:
            raise ValueError(f"derivation: {what} refused, since {self.failed_verification}; "
                             "the gradients it would compute are wrong")

    def torch(self, sizes=None, **options):
        """A ``torch.nn.Module`` whose backward is this derivation's BPTT.

        ``m = d.torch(D=8, N=4, M=5)`` (the parameters' sizes as keywords, or a dict
        ``sizes``). ``loss = m(x, y, h0=None)`` is the loss (summed over steps and
        sequences, or their mean with ``reduction="mean"``) and ``loss.backward()``
        runs the derived BPTT; ``outputs, states = m(x, h0=None)`` gives the per-step
        values and the final states, and a loss computed from them back-propagates
        through the derived BPTT too. Options ``batch_first``, ``dtype``, ``device``,
        ``reduction`` ("sum", "mean"), ``outputs`` (names), ``kernels`` ("auto",
        "numba", "torch"). Needs PyTorch (``pip install 'symrnn[torch]'``); see
        ``symrnn.backends.torch_module``.
        """
        self.refuse_if_failed("torch()")
        return _consumer("derivation.torch", "Derivation.torch() needs PyTorch: "
                         "pip install 'symrnn[torch]'")(self, sizes, **options)

    def jax(self, unroll=False, **options):
        """``f(params, x, y, h0=None) -> loss`` in JAX, with this derivation's BPTT as
        its ``jax.custom_vjp``.

        ``f`` takes the arguments of the NumPy function of :meth:`lambdify`;
        ``jax.grad(f)`` gives the derived gradients. With ``outputs=True``:
        ``f(params, x, h0=None) -> (outputs, final states)``. Options ``layout``
        ("TNB", "TBN"), ``reduction`` ("sum", "mean"); ``unroll=True`` unrolls the
        loops over the steps (``lax.fori_loop`` otherwise). Needs JAX
        (``pip install 'symrnn[jax]'``); see ``symrnn.backends.jax_function``.
        """
        self.refuse_if_failed("jax()")
        return _consumer("derivation.jax", "Derivation.jax() needs JAX: "
                         "pip install 'symrnn[jax]'")(self, unroll=unroll, **options)

    # displays: the printers live in symrnn.render, registered in symrnn.plugins
    def _repr_latex_(self):
        """The recurrences and gradients, for a notebook (in the notation of
        ``symrnn.render.set_notation``)."""
        return plugins.call("derivation.notebook", self)

    def __str__(self):
        return plugins.call("derivation.text", self)

    def recurrence(self, state):
        """dL/ds^(t) for the state ``state``, in terms of the adjoints of step t+1 of
        the states only (the intermediate variables' adjoints inlined)."""
        var = StepVar(state.name, t, *state.shape)
        return self.inline(self.adjoints[Adjoint(var)])

    def inline(self, expr):
        """Replace the adjoints of intermediate variables by their definitions, those
        inlined in turn, up to INLINE_LEVELS deep (the adjoints of a longer chain
        of intermediates stay by name: written out, each level would double the
        cost of SymPy's work on the expression)."""
        inlined = self._inlined()
        inner = {b: inlined[b.var.name] for b in expr.atoms(Adjoint) if b.var.name in inlined}
        return _shifted_in(expr, inner).doit()

    def _inlined(self):
        """{intermediate: its adjoint's definition at step t, inlined}, made once."""
        key = tuple(self.adjoints.items())
        cached = self.__dict__.get("_inline_table")
        if cached is not None and cached[0] == key:
            return cached[1]
        states = {s.name for s in self.cell.states}
        inlined, levels = {}, {}
        for a, body in self.adjoints.items():   # each reads those before it (or at t+1)
            name = a.var.name
            if name in states:
                continue
            inner = {b: inlined[b.var.name] for b in body.atoms(Adjoint)
                     if b.var.name in inlined and levels[b.var.name] < INLINE_LEVELS}
            levels[name] = 1 + max([levels[b.var.name] for b in inner] + [0])
            inlined[name] = _shifted_in(body, inner)
        self.__dict__["_inline_table"] = (key, inlined)
        return inlined


INLINE_LEVELS = 8


def _consumer(hook, needs):
    """The function registered for ``hook``; an ImportError saying what to install when
    its module cannot be imported (PyTorch or JAX missing)."""
    try:
        return plugins.resolve(hook)
    except ImportError as e:
        raise ImportError(f"{needs} ({e})") from None


def _shifted_in(expr, definitions):
    """``expr`` with each adjoint ``a`` in ``definitions`` (its definition at step t)
    replaced by that definition at a's step."""
    return expr.xreplace({a: (e if a.var.time == t else e.subs(t, a.var.time))
                          for a, e in definitions.items()})


def _carried(contributions, loss):
    """dL/ds^(t-1) through step t: the sum of ``contributions``. A term that the loss
    L^(t) contributes directly (a loss that reads prev(s)) holds no adjoint of step t,
    which would make it vanish where step t does not exist (t = T+1 once shifted):
    it is multiplied by dL/dL^(t), which is 1 for t <= T and 0 beyond."""
    through = [c for c in contributions if c.consumer != loss]
    direct = adjoint_sum([c for c in contributions if c.consumer == loss])
    if direct is None:
        return adjoint_sum(through)
    return MatAdd(*[c.term for c in through], MatMul(direct, Adjoint(loss))).doit()


def derive(cell):
    """Derive the BPTT gradients of ``cell`` for any sequence length T.

    The cell's step is unrolled with one copy of each parameter per step, the
    adjoint rules are applied once to a generic step t, and the copies are summed:
    the result holds for every T.

    Parameters
    ----------
    cell : Cell
        A preset or a cell of your own (:func:`~symrnn.parse_cell`).

    Returns
    -------
    Derivation

    Examples
    --------
    >>> import symrnn
    >>> d = symrnn.derive(symrnn.ElmanRNN())
    >>> print(d.gradients["W"])
    sum_{t=1}^{T} dL/dz^(t) h^(t-1)^T
    """
    step = step_equations(cell, t)
    states = [StepVar(s.name, t, *s.shape) for s in cell.states]
    found = backprop(step, seed(step[-1][0]), live=states)
    share = lambda e: shared(cell, e)

    loss = step[-1][0]
    adjoints = {}
    for lhs, _ in reversed(step[:-1]):
        if lhs not in found and lhs not in states:
            continue  # nothing depends on it: yhat when the loss is written in o
        within = adjoint_sum(found.get(lhs, []))
        carried = _carried(found.get(lhs.at(t - 1), []), loss)
        terms = [e for e in (within, carried and carried.subs(t, t + 1)) if e is not None]
        adjoints[Adjoint(lhs)] = share(MatAdd(*terms).doit()) if terms else ZeroMatrix(*lhs.shape)
    if any(e.has(Adjoint(loss.at(t + 1))) for e in adjoints.values()):
        # dL/dL^(t) = 1 at every step t = 1..T, and 0 at the step T+1 that does not
        # exist: the factor that drops the loss's own terms of step t+1 at t = T
        adjoints = {Adjoint(loss): Identity(1), **adjoints}

    terminal = {}
    for s in cell.states:
        within = adjoint_sum(found.get(StepVar(s.name, t, *s.shape), []))
        terminal[Adjoint(StepVar(s.name, T, *s.shape))] = (
            share(within.subs(t, T)) if within is not None else ZeroMatrix(*s.shape))

    # the named matrices of the parameters: computed once, so that their copies'
    # contributions are summed over t as a parameter's, and passed back through
    # their equations (once, not per step) to the parameters they read
    through = backprop(list(cell.fixed), {}, live=cell.fixed_values)
    fixed_adjoints = {}
    for lhs, _ in reversed(cell.fixed):
        fixed_adjoints[Adjoint(lhs)] = _summed(found, through, lhs, share, fixed_adjoints)

    copy_gradients, gradients = {}, {}
    for p in cell.params:
        copy_gradients[p.name] = adjoint_sum(found.get(StepVar(p.name, t, *p.shape), []))
        gradients[p.name] = _summed(found, through, p, share, fixed_adjoints)
    for s in cell.states:
        carried = adjoint_sum(found.get(StepVar(s.name, t - 1, *s.shape), []))
        gradients[f"{s.name}0"] = (share(carried.subs(t, 1)) if carried is not None
                                   else ZeroMatrix(*s.shape))
    return Derivation(cell, step, found, adjoints, terminal, gradients, copy_gradients,
                      fixed_adjoints)


def _summed(found, through, value, share, fixed_adjoints):
    """dL/d``value`` for a parameter or a named matrix: the sum over t of its copies'
    contributions (``found``), plus those through named matrices (``through``) that
    the loss depends on (``fixed_adjoints``, those computed so far)."""
    term = adjoint_sum(found.get(StepVar(value.name, t, *value.shape), []))
    parts = [SumOverTime(share(term), t, 1, T)] if term is not None else []
    passed = adjoint_sum([c for c in through.get(value, [])
                          if not fixed_adjoints[Adjoint(c.consumer)].is_ZeroMatrix])
    parts += [passed] if passed is not None else []
    if not parts:
        return ZeroMatrix(*value.shape)
    return parts[0] if len(parts) == 1 else MatAdd(*parts)
