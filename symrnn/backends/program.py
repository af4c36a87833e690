"""The forward pass and BPTT of a derivation, as closures over an array namespace.

Structured like the NumPy backend: only the recurrences run step by step. The
forward scan carries the states (t = 1..T). The backward pass first computes
the adjoints of step T from the derivation's terminal forms (no step T+1),
then those of steps 1..T-1 from the recurrences: a scan over the adjoints that
step t reads at step t+1 (t = T-1..1). Every other equation and adjoint, and
every sub-expression of a scan's body that does not depend on the scan's own
variables, is computed for all its steps at once, before or after the scan.
Each gradient, a sum over t, is one operation over all the steps (a matrix
product of the stacked rows for a matrix parameter).

A value is keyed ``(tag, name, shift)``: tag ``"v"`` a forward value, ``"d"``
its adjoint dL/d(value); shift the step relative to t (-1, 0, +1), or
``"@k"`` for the fixed step k (the initial states' gradients read step 1).
Stacked values are (T, B, r), or the rows of the steps an env is a view of
(``_steps``); at a shift they are built from the stacked value of the whole
call (the initial state before step 1). A step after T does not exist and is
never read: nothing is padded.
"""
from sympy import HadamardProduct, MatAdd

from ..derivation.reverse import adjoint_sum
from ..derivation.subexpressions import repeated
from ..graph.reach import reachable
from ..graph.unroll import T, shared, t
from ..model.nodes import Adjoint, StepVar
from .expressions import Compiler, kind


def _key(leaf):
    var = leaf.var if isinstance(leaf, Adjoint) else leaf
    shift = var.time - t
    shift = int(shift) if shift.is_Integer else f"@{int(var.time)}"
    return ("d" if isinstance(leaf, Adjoint) else "v", var.name, shift)


def _leaves(expr):
    """The StepVars and Adjoints that ``expr`` reads (not the variable inside an adjoint)."""
    if isinstance(expr, (StepVar, Adjoint)):
        return {expr}
    out = set()
    for a in expr.args:
        if getattr(a, "is_Matrix", False):
            out |= _leaves(a)
    return out


def _split(order, same, future):
    """(loop, before, after) for values in computation ``order``: ``same[n]``
    the values of the same step that n reads, ``future[n]`` whether n reads a
    carried value (the previous step's, in the scan's direction). The loop
    holds the carried values and what lies on a path from a carried value to
    one; before: what depends on no loop value; after: the rest."""
    carried = set().union(*[future[n] for n in order]) if order else set()
    depends = set()  # what the scan must compute first: a carried value counts
    for n in order:  # even when it reads no carried value itself
        if n in carried or future[n] or same[n] & depends:
            depends.add(n)
    feeds = reachable(carried, same)
    loop = [n for n in order if n in carried or (n in depends and n in feeds)]
    after, before = [], []
    for n in order:
        if n in loop:
            continue
        (after if n in depends else before).append(n)
    return loop, before, after


class Program:
    """The compiled forward pass and BPTT of ``derivation``."""

    def __init__(self, derivation):
        d = self.derivation = derivation
        cell = self.cell = d.cell
        self.params = [p.name for p in cell.params]
        self.states = [s.name for s in cell.states]
        self.sequences = [v.name for v in cell.inputs + cell.targets]
        self.constants = {}
        self.placeholders = 0
        self.shared_terms = []  # (key, closure) of the values several gradients read
        stacked = Compiler(self._stacked_leaf, self.constants)
        step = Compiler(self._step_leaf, self.constants)
        self._compile = stacked.compile
        self._compile_step = step.compile
        self._rows = stacked._rows

        # -- forward: equations of step t ---------------------------------------
        eqs = [(lhs.name, shared(cell, rhs)) for lhs, rhs in d.step]
        names = {n for n, _ in eqs}
        same = {n: {v.name for v in rhs.atoms(StepVar) if v.name in names and v.time == t}
                for n, rhs in eqs}
        prev = {n: {v.name for v in rhs.atoms(StepVar) if v.name in names and v.time != t}
                for n, rhs in eqs}
        order = [n for n, _ in eqs]
        loop, before, after = _split(order, same, prev)
        rhs_of = dict(eqs)
        shapes = {lhs.name: lhs.shape for lhs, _ in d.step}
        self.forward_before = [(("v", n, 0), self._stacked(rhs_of[n]))
                               for n in before]
        self.forward_after = [(("v", n, 0), self._stacked(rhs_of[n]))
                              for n in after]
        in_loop = set(loop)
        # the scan carries the states that a step reads at t-1 (a state that no
        # step reads there is computed like any other value)
        read_before = set().union(*prev.values())
        self.carried_states = [s for s in self.states if s in read_before]
        self.forward_scan = self._scan(
            [(("v", n, 0), rhs_of[n], shapes[n]) for n in loop],
            lambda leaf: isinstance(leaf, StepVar) and leaf.name in in_loop,
            carried=[("v", s, -1) for s in self.carried_states])
        self.loss_key = ("v", cell.loss_var.name, 0)

        # -- backward: the adjoints of step t, t = T-1..1, and of step T ------------
        # Step T has no step T+1: its adjoints are the derivation's terminal forms
        # (for the states; the others read nothing of step t+1). Nothing of step
        # T+1 is ever evaluated, so no term 0 * (value at T+1) can be 0 * inf.
        defs = [(a.var.name, e) for a, e in d.adjoints.items()]
        anames = {n for n, _ in defs}
        same = {n: {_key(a)[1] for a in e.atoms(Adjoint) if _key(a)[2] == 0} for n, e in defs}
        nxt = {n: {_key(a)[1] for a in e.atoms(Adjoint) if _key(a)[2] == 1} for n, e in defs}
        order = [n for n, _ in defs]
        loop, before, after = _split(order, same, nxt)
        carried = sorted(set().union(*nxt.values()) & anames) if defs else []
        e_of = dict(defs)
        ashapes = {a.var.name: a.shape for a in d.adjoints}
        terminal = {a.var.name: _at_step_t(e) for a, e in d.terminal.items()}

        def adjoint(n):
            """(key, closure of its recurrence, closure of its form at step T, or
            None when that is the same: then one operation over all the steps)."""
            at_T = terminal.get(n, e_of[n])
            late = sorted({_key(l)[1] for l in _leaves(at_T) if _key(l)[2] == 1})
            if late:
                raise NotImplementedError(f"dL/d{n} at the last step T reads {late[0]} at "
                                          "step T+1")
            same_form = at_T == e_of[n] and n not in loop
            return (("d", n, 0), self._stacked(e_of[n]),
                    None if same_form else self._stacked(at_T))

        self.backward_before = [adjoint(n) for n in before]
        self.backward_last = [(key, at_T) for key, _, at_T in map(adjoint, loop)]
        self.backward_after = [adjoint(n) for n in after]
        in_loop = set(loop)
        self.backward_scan = self._scan(
            [(("d", n, 0), e_of[n], ashapes[n]) for n in loop],
            lambda leaf: isinstance(leaf, Adjoint) and leaf.var.name in in_loop,
            carried=[("d", n, 1) for n in carried])

        # -- gradients --------------------------------------------------------------
        # a value that several sums use (dL/dz (.) ... for W, U and b) is computed once
        sums = {k: e for k, e in d.gradients.items() if k in self.params}
        inputs = {}
        for v in cell.inputs + cell.targets:
            term = adjoint_sum(d.contributions.get(StepVar(v.name, t, *v.shape), []))
            if term is not None:
                inputs[v.name] = shared(cell, term)
        named = {}
        for e in repeated(list(sums.values()) + list(inputs.values()), _shareable):
            name = f"_pre{self.placeholders}"
            self.placeholders += 1
            self.shared_terms.append((("v", name, 0), self._compile(e.xreplace(named))))
            named[e] = StepVar(name, t, *e.shape)
        self.gradients = {}
        for key, e in d.gradients.items():
            if key in self.params:
                self.gradients[key] = self._compile(e.xreplace(named))
            else:  # an initial state's: per sequence, (B, r)
                self.gradients[key] = self._stacked(e)
        self.input_gradients = {k: self._stacked(e.xreplace(named)) for k, e in inputs.items()}

    # -- compiling -------------------------------------------------------------------
    def _stacked(self, expr):
        """A per-step value over all steps at once; a fixed one broadcast to rows."""
        if kind(expr) == "F":
            rows = self._rows(expr)
            return lambda env: env["_zero"] + rows(env)
        return self._compile(expr)

    def _stacked_leaf(self, leaf):
        key = _key(leaf)
        return lambda env: _stacked_value(env, key)

    def _step_leaf(self, leaf):
        key = _key(leaf)
        return lambda env: env[key]

    def _hoist(self, expr, is_loop_leaf, out):
        """``expr`` with each maximal per-step sub-expression that reads no loop
        value replaced by a placeholder computed over all steps before the scan
        (appended to ``out`` as (key, closure))."""
        if not any(is_loop_leaf(l) for l in _leaves(expr)):
            if isinstance(expr, (StepVar, Adjoint)) or kind(expr) == "F":
                return expr
            name = f"_pre{self.placeholders}"
            self.placeholders += 1
            out.append((("v", name, 0), self._compile(expr)))
            return StepVar(name, t, *expr.shape)
        if isinstance(expr, (StepVar, Adjoint)):
            return expr
        args = list(expr.args)
        if isinstance(expr, (MatAdd, HadamardProduct)):
            fixed = [a for a in args if not any(is_loop_leaf(l) for l in _leaves(a))]
            if len(fixed) > 1:
                args = [a for a in args if a not in fixed] + [expr.func(*fixed)]
        return expr.func(*[self._hoist(a, is_loop_leaf, out) if getattr(a, "is_Matrix", False)
                            else a for a in args])

    def _scan(self, body, is_loop_leaf, carried):
        """A scan over ``body`` ([(key, expr, shape)] in order): the hoisted
        values, the keys its step reads from stacked values (xs), the keys it
        carries, the closures of its body and the keys it keeps (ys)."""
        hoisted, steps, reads = [], [], set()
        computed = {key for key, _, _ in body}
        for key, expr, shape in body:
            expr = self._hoist(expr, is_loop_leaf, hoisted)
            reads |= {_key(l) for l in _leaves(expr)}
            if kind(expr) == "F":
                rows = self._rows(expr)
                steps.append((key, lambda env, rows=rows: env["_zero_step"] + rows(env)))
            else:
                steps.append((key, self._compile_step(expr)))
        xs = sorted(reads - computed - set(carried), key=repr)
        return {"hoisted": hoisted, "xs": xs, "carried": carried, "body": steps,
                "ys": [key for key, _, _ in body]}

    # -- running --------------------------------------------------------------------------
    def _run_scan(self, env, scan, carry, reverse):
        if not scan["body"]:
            return carry
        xp = env["_xp"]
        for key, fn in scan["hoisted"]:
            env[key] = fn(env)
        xs = [_stacked_value(env, key) for key in scan["xs"]]
        local = dict(env)
        local["_zero_step"] = env["_zero"][0]
        carried, xs_keys, body = scan["carried"], scan["xs"], scan["body"]
        now = [(k[0], k[1], 0) for k in carried]

        def step(carry, row):
            for key, v in zip(carried, carry):
                local[key] = v
            for key, v in zip(xs_keys, row):
                local[key] = v
            for key, fn in body:
                local[key] = fn(local)
            return [local[k] for k in now], [local[k] for k in scan["ys"]]

        carry, ys = xp.scan(step, carry, xs, env["_T"], reverse)
        for key, v in zip(scan["ys"], ys):
            env[key] = v
        return carry

    @staticmethod
    def environment(xp, sizes, values):
        """The env of a call: ``values`` (parameters, stored per-step values; at
        least ``"_zero"``, zeros (T, B, 1)) and the entries the closures read."""
        env = dict(values)
        T, B = env["_zero"].shape[0], env["_zero"].shape[1]
        env.update({"_xp": xp, "_sizes": sizes, "_T": T, "_count": T * B,
                    "_steps": (1, T), "_whole": env})
        return env

    def forward(self, xp, sizes, params, sequences, initial):
        """The loss and the values the backward pass reads (``env``).

        params: {name: 2-D matrix}; sequences: {input or target name: (T, B, r)}
        in row layout; initial: the initial states, each (B, r)."""
        first = sequences[self.sequences[0]]
        T, B = first.shape[0], first.shape[1]
        env = self.environment(xp, sizes, dict(params, _zero=xp.zeros((T, B, 1))))
        for name, fn in self.constants.values():
            env[name] = fn(env)
        for name in self.sequences:
            env[("v", name, 0)] = sequences[name]
        for s, v in zip(self.states, initial):
            env[("init", s)] = v
        for key, fn in self.forward_before:
            env[key] = fn(env)
        start = dict(zip(self.states, initial))
        self._run_scan(env, self.forward_scan, [start[s] for s in self.carried_states],
                       reverse=False)
        for key, fn in self.forward_after:
            env[key] = fn(env)
        return env[self.loss_key].sum(), env

    def backward(self, env, inputs=False):
        """``({param: 2-D gradient}, [initial state's gradient (B, r)], {input or
        target: (T, B, r) or None})``; the inputs' and targets' gradients only
        when ``inputs``. ``env`` (from ``forward``) is left as it is: a graph kept
        for another backward pass (``retain_graph=True``) may run this again."""
        env = self.environment(env["_xp"], env["_sizes"], env)
        xp, T = env["_xp"], env["_T"]
        last, rest = _steps(env, T, T), _steps(env, 1, T - 1)

        def join(key):  # steps 1..T-1 and step T
            env[key] = last[key] if T == 1 else xp.concat([rest[key], last[key]])

        def run(adjoints):
            for key, fn, at_T in adjoints:
                if at_T is None:
                    env[key] = fn(env)
                    continue
                last[key] = at_T(last)
                if T > 1:
                    rest[key] = fn(rest)
                join(key)

        run(self.backward_before)
        scan = self.backward_scan
        for key, at_T in self.backward_last:
            last[key] = at_T(last)
        if T > 1:
            self._run_scan(rest, scan, [last[(tag, n, 0)][0] for tag, n, _ in scan["carried"]],
                           reverse=True)
        for key in scan["ys"]:
            join(key)
        run(self.backward_after)
        for key, fn in self.shared_terms:
            env[key] = fn(env)
        grads = {k: self.gradients[k](env) for k in self.params}
        states = [self.gradients[f"{s}0"](env)[0] for s in self.states]
        given = {}
        if inputs:
            for name in self.sequences:
                fn = self.input_gradients.get(name)
                given[name] = fn(env) if fn is not None else None
        return grads, states, given


def _at_step_t(expr):
    """A terminal form (at step T) written at step t: the same closures evaluate it."""
    return expr.replace(lambda e: isinstance(e, StepVar) and e.time.has(T),
                        lambda e: e.at(e.time.subs(T, t)))


def _steps(env, first, last):
    """A view of ``env`` on the steps first..last (1-based): the per-step values
    it reads are the rows of those steps, taken from ``env`` when first read."""
    view = {k: v for k, v in env.items() if isinstance(k, str)}
    view["_zero"] = env["_zero"][first - 1:last]
    view["_T"], view["_steps"] = last - first + 1, (first, last)
    return view


def _stacked_value(env, key):
    """The stacked value of ``key`` on the steps of ``env``, built from the value
    at shift 0 of the whole call when needed: at a shift -1 the initial state
    comes before step 1; a step after T is never read."""
    v = env.get(key)
    if v is not None:
        return v
    tag, name, shift = key
    whole = env["_whole"]
    if isinstance(shift, str):  # the fixed step k: one row, broadcast over the steps
        k = int(shift[1:])
        v = whole[("init", name)][None] if k == 0 else whole[(tag, name, 0)][k - 1:k]
    else:
        first, last = env["_steps"]
        lo, hi = first + shift, last + shift
        if hi > whole["_T"]:
            raise NotImplementedError(f"{name} read at step T+1")
        base = whole[(tag, name, 0)]
        v = (base[lo - 1:hi] if lo >= 1
             else whole["_xp"].concat([whole[("init", name)][None], base[:hi]]))
    env[key] = v
    return v


def _shareable(e):
    """A per-step value (not a leaf) worth computing once."""
    return not isinstance(e, (StepVar, Adjoint)) and kind(e) in ("C", "R", "S")
