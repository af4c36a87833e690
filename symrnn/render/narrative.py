"""What the templates print about a derivation: every equation as LaTeX from SymPy.

``derivation_context(derivation)`` walks the engine's record of a derivation
(forward equations, chain-rule contributions, adjoints, closed forms) and
returns plain objects for the templates: strings of LaTeX printed by
``BPTTLatexPrinter`` from SymPy expressions, names of rules, flags. It knows
nothing about a particular cell: several states, several parameters and
biases are walked the same way.
"""
from dataclasses import dataclass, field
from types import SimpleNamespace

from sympy import Eq as Equality
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol,
                   OneMatrix, StrictLessThan, Symbol, ZeroMatrix)
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.transpose import Transpose

from ..derivation.reverse import backprop
from ..derivation.vjps import VJPS
from ..ops import Elementwise, functions
from ..graph.unroll import T, shared, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from .latex_printer import Partial, printer_for
from .rewrite import as_diag, unit_sum_facts, unit_sum_targets

__all__ = ["Typesetter", "derivation_context", "rule_catalogue", "check_typesettable"]

# the structural operations of matrix algebra; the functions of a vector name
# themselves (``words`` in symrnn/ops.py)
STRUCTURAL_WORDS = {"MatMul": "matrix product", "MatAdd": "sum", "Transpose": "transpose",
                    "HadamardProduct": "entry-wise product", "HadamardPower": "entry-wise power"}


def check_typesettable(cell):
    """Raise ValueError naming what the sheet cannot print: an operation without LaTeX."""
    for lhs, rhs in cell.equations:
        for node in _preorder(rhs):
            if isinstance(node, Elementwise) and not node.latex:
                raise ValueError(f"cell {cell.name!r}: cannot typeset the operation "
                                 f"{type(node).__name__} in the equation of {lhs.name} "
                                 "(it has no LaTeX in symrnn/ops.py)")


def _preorder(expr):
    yield expr
    for a in getattr(expr, "args", ()):
        yield from _preorder(a)


# rough widths in cm of printed pieces, to break long sums over lines
_WIDTH = {"StepVar": 0.8, "MatrixSymbol": 0.45, "OneMatrix": 0.35, "Identity": 0.35,
          "Adjoint": 1.25, "Partial": 1.3, "ZeroMatrix": 0.35}
RHS_WIDTH = 11.5  # cm available right of the '=' (the text is 16.6 cm wide)


def width(expr, names=()):
    """An estimate of the printed width of ``expr`` in display style, in cm."""
    kind = type(expr).__name__
    if isinstance(expr, Adjoint) and getattr(expr.var, "name", None) in names:
        return 0.8
    if kind in _WIDTH:
        return _WIDTH[kind]
    args = [a for a in expr.args if getattr(a, "is_Matrix", False)]
    inner = sum(width(a, names) for a in args)
    if isinstance(expr, MatAdd):
        return inner + 0.6 * (len(args) - 1)
    if isinstance(expr, MatMul):
        numbers = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        parens = sum(0.4 for a in args if isinstance(a, (MatAdd, HadamardProduct)))
        return inner + parens + 0.6 * sum(1 for n in numbers if n not in (1, -1))
    if isinstance(expr, HadamardProduct):
        return inner + 0.55 * (len(args) - 1) + sum(0.4 for a in args if isinstance(a, MatAdd))
    if isinstance(expr, HadamardPower):
        return 2 * inner + 0.55
    if isinstance(expr, Transpose):
        return inner + 0.2 + (0.4 if isinstance(expr.arg, MatAdd) else 0)
    if isinstance(expr, SumOverTime):
        return width(expr.term, names) + 0.9
    return inner + 1.0  # diag(...), tanh(...), softmax(...)


class Typesetter:
    """Prints expressions for one cell and remembers every one it printed.

    ``named`` holds the variables whose adjoint has a name of its own (delta
    for z): a name is used only once the text has introduced it.
    """

    def __init__(self, cell, adjoint_names=None):
        self.cell = cell
        self.adjoint_names = dict(adjoint_names or {})
        self.named = set()
        self.printed = []

    def _printer(self, inline, names):
        active = {k: v for k, v in self.adjoint_names.items() if k in self.named} \
            if names else {}
        return printer_for(self.cell, adjoint_names=active,
                           fraction="inline" if inline else "display")

    def _record(self, tex):
        if tex not in self.printed:
            self.printed.append(tex)
        return tex

    def __call__(self, expr, inline=False, names=True):
        return self._record(self._printer(inline, names).doprint(expr))

    def lines(self, expr, names=True, budget=RHS_WIDTH):
        """``expr`` printed on one line, or a long sum broken into several lines
        (every line after the first starts with its sign)."""
        named = self.named if names else set()
        if not isinstance(expr, MatAdd) or width(expr, named) <= budget:
            return [self(expr, names=names)]
        printer = self._printer(False, names)
        groups, current, used = [], [], 0.0
        for term in printer.ordered_terms(expr):
            w = width(term, named) + 0.6
            if current and used + w > budget:
                groups.append(current)
                current, used = [], 0.0
            current.append(term)
            used += w
        groups.append(current)
        return [self._record(printer.print_terms(g, leading=i == 0))
                for i, g in enumerate(groups)]

    def space(self, sym):
        return self._record(self._printer(False, False).space(sym))

    def introduce(self, name):
        self.named.add(name)


@dataclass
class Eq:
    """One displayed equation: ``lhs = rhs`` (further ``= rhs`` in ``more``).

    ``blocks`` holds the right-hand sides as lists of lines, for the display:
    a long sum is broken over several lines.
    """
    lhs: str
    rhs: str
    more: list = field(default_factory=list)
    condition: str = None
    boxed: bool = False
    blocks: list = None
    member: str = None  # "\\in R^{D x D}" after the last line

    def __post_init__(self):
        if self.blocks is None:
            self.blocks = [[self.rhs]] + [[m] for m in self.more]

    def then(self, ts, expr, names=True):
        """Append ``= expr`` to the equation."""
        self.more.append(ts(expr, names=names))
        self.blocks.append(ts.lines(expr, names=names))
        return self


def _eq(ts, lhs, rhs, condition=None, boxed=False, names=True):
    return Eq(ts(lhs, names=names), ts(rhs, names=names),
              condition=ts(condition) if condition is not None else None, boxed=boxed,
              blocks=[ts.lines(rhs, names=names)])


def _shift(expr, by):
    return expr.subs(t, t + by) if by else expr


def _copies(cell, expr):
    params = [p.name for p in cell.params]
    found = {v for v in expr.atoms(StepVar) if v.name in params}
    return sorted(found, key=lambda v: (params.index(v.name), str(v.time)))


def _jacobian(term, consumer):
    """d consumer / d target, read off a contribution term (J^T g), when it has that form."""
    g = Adjoint(consumer)
    if term == g:
        return Identity(consumer.shape[0])
    if isinstance(term, MatMul) and term.args[-1] == g and len(term.args) == 2:
        return term.args[0].T
    if isinstance(term, HadamardProduct) and g in term.args:
        rest = [f for f in term.args if f != g]
        return DiagMatrix(rest[0] if len(rest) == 1 else HadamardProduct(*rest))
    return None


def _use(ts, consumer, term, rules, target):
    """One use of ``target`` by ``consumer``: its chain-rule term, copies and rules."""
    jac = _jacobian(term, consumer)
    use = SimpleNamespace(
        consumer=ts(consumer, inline=True),
        consumer_name=consumer.name, consumer_var=consumer,
        later=False,
        through=[ts(c, inline=True) for c in _copies(ts.cell, term)],
        rules=list(rules),
        expr=term,
        term=ts(term), term_lines=ts.lines(term), contribution=None,
        jacobian=None, chain=None, elementwise=False)
    if jac is not None and not isinstance(jac, Identity):
        use.jacobian = Eq(ts(Partial(consumer, target), inline=True), ts(jac, inline=True))
        use.chain = ts(MatMul(Transpose(Partial(consumer, target)), Adjoint(consumer)))
        use.contribution = Eq(use.chain, use.term, blocks=[ts.lines(term)])
        use.elementwise = isinstance(jac, DiagMatrix)
    return use


def _grouped(ts, contributions, target, move=None, later=False):
    """One use per consumer: the contributions of one consumer are added up.
    ``move`` shifts consumer and term in time (to the next step, to step 1)."""
    move = move or (lambda e: e)
    by_consumer = {}
    for c in contributions:
        by_consumer.setdefault(c.consumer, []).append(c)
    out = []
    for consumer, group in by_consumer.items():
        rules = list(dict.fromkeys(r for c in group for r in c.rules))
        term = _sum([c.term for c in group])
        if len(group) > 1:
            term = term.doit()
        use = _use(ts, move(consumer), move(term), rules, target)
        use.later = later
        out.append(use)
    return out


def _uses(ts, d, var, is_state):
    """The uses of var^(t): in step t, and (for a state) in step t + 1."""
    here = StepVar(var.name, t, *var.shape)
    out = _grouped(ts, d.contributions.get(here, []), here)
    if is_state:
        out += _grouped(ts, d.contributions.get(here.at(t - 1), []), here,
                        move=lambda e: e.subs(t, t + 1), later=True)
    return out, here


def _sum(terms):
    return terms[0] if len(terms) == 1 else MatAdd(*terms)


def _rule_nodes(n, m):
    a, b, c = (MatrixSymbol(s, n, 1) for s in "abc")
    A = MatrixSymbol("A", n, m)
    v = MatrixSymbol("b", m, 1)
    row = MatrixSymbol("a", 1, n)
    examples = {
        "MatMul": (MatrixSymbol("a", n, 1), MatMul(A, v), [A, v]),
        "MatAdd": (a, MatAdd(b, c), [b, c]),
        "Transpose": (row, Transpose(b), [b]),
        "HadamardProduct": (a, HadamardProduct(b, c), [b, c]),
        "HadamardPower": (a, HadamardPower(b, 2), [b]),
    }
    for cls in functions().values():
        examples[cls.__name__] = (a, cls(b), [b])
    return examples


def rule_catalogue(ts, names):
    """The engine's adjoint rules used here, applied to generic a = op(b, ...)."""
    n, m = Symbol("n", integer=True, positive=True), Symbol("m", integer=True, positive=True)
    examples = _rule_nodes(n, m)
    out = []
    for i, name in enumerate(names, start=1):
        if name not in examples:
            continue
        ans, node, args = examples[name]
        rule = VJPS[type(node)]
        results = []
        for k, arg in enumerate(node.args):
            if arg in args and arg not in [r[0] for r in results]:
                results.append((arg, rule(ans, node.args, k)(Adjoint(ans))))
        words = type(node).words if isinstance(node, Elementwise) and type(node).words \
            else STRUCTURAL_WORDS.get(name, type(node).__name__)
        out.append(SimpleNamespace(
            name=name, tag=f"R{len(out) + 1}", words=words,
            ones=any(r.atoms(OneMatrix) for _, r in results),
            definition=Eq(ts(ans), ts(node)),
            results=[Eq(ts(Adjoint(arg)), ts(r)) for arg, r in results]))
    return out


def _variables_in_order(d):
    return [a.var for a in d.adjoints]


def _dependencies(d, adjoint):
    """Names of the non-state variables whose adjoints ``adjoint``'s expression needs."""
    states = {s.name for s in d.cell.states}
    seen, todo = set(), [adjoint]
    while todo:
        expr = d.adjoints.get(todo.pop())
        if expr is None:
            continue
        for a in expr.atoms(Adjoint):
            name = a.var.name
            if name not in states and name not in seen:
                seen.add(name)
                todo.append(Adjoint(a.var.at(t)))
    return seen


def _heads(d):
    """Adjoints given outright by the loss: no other adjoint in their expression."""
    return {a.var.name: e for a, e in d.adjoints.items() if not e.atoms(Adjoint)}


def _inline_heads(d, expr):
    heads = _heads(d)
    out = expr.replace(lambda e: isinstance(e, Adjoint) and e.var.name in heads
                       and isinstance(e.var, StepVar),
                       lambda e: heads[e.var.name].subs(t, e.var.time))
    return unit_sum_targets(out, d.cell)


def _slide(d, expr):
    return as_diag(unit_sum_targets(d.inline(expr), d.cell))


def _params(d, order):
    if order is None:
        return list(d.cell.params)
    return sorted(d.cell.params, key=lambda p: order.index(p.name) if p.name in order
                  else len(order))


def summary(d, ts, order=None, tags=None):
    """Every result once, in the named adjoints (delta) with the loss's adjoints inlined:
    the adjoints of one step, the last step of each state, the recurrences, the
    parameters and the initial states. ``tags`` {key: label} puts a label on a line
    (keys: variable names, ``name + "T"`` for a state's last step, parameter names,
    ``name + "0"`` for an initial state)."""
    cell = d.cell
    tags = tags or {}
    states = {s.name for s in cell.states}
    out = []

    def add(key, eq):
        eq.tag = tags.get(key)
        out.append(eq)

    for a, e in d.adjoints.items():
        name = a.var.name
        if name in states:
            (aT, eT), = [(x, y) for x, y in d.terminal.items() if x.var.name == name]
            add(name + "T", _eq(ts, aT, as_diag(_inline_heads(d, eT))))
            add(name, _eq(ts, a, as_diag(_inline_heads(d, e)), condition=StrictLessThan(t, T)))
        elif name in ts.adjoint_names:
            ts.introduce(name)
            add(name, Eq(ts(a), ts(a, names=False)).then(ts, as_diag(_inline_heads(d, e))))
        else:
            add(name, _eq(ts, a, as_diag(_inline_heads(d, e))))
    for p in _params(d, order):
        add(p.name, _eq(ts, Adjoint(p), as_diag(_inline_heads(d, d.gradients[p.name]))))
    for s in cell.states:
        add(s.name + "0", _eq(ts, Adjoint(StepVar(s.name, 0, *s.shape)),
                              as_diag(_inline_heads(d, d.gradients[f"{s.name}0"]))))
    return out


def _next_step_adjoints(d):
    """The adjoints at step t + 1 that the recurrences use (zero at t = T)."""
    found = set()
    for s in d.cell.states:
        e = d.adjoints[Adjoint(StepVar(s.name, t, *s.shape))]
        found |= {a for a in e.atoms(Adjoint) if a.var.time == t + 1}
    return sorted(found, key=str)


def _inner_chain(ts, d, here, uses, tags):
    """The only use of ``here`` passes through a function inside its consumer's equation
    (the loss -y^T log softmax(o)): the gradient of that inner node, then the rule of
    the function. None when there is no such node."""
    if len(uses) != 1 or uses[0].later:
        return None
    consumer = uses[0].consumer_var
    rhs = dict(d.step).get(consumer)
    inner = [n for n in _preorder(rhs) if isinstance(n, Elementwise) and n is not rhs
             and here in n.atoms(StepVar)] if rhs is not None else []
    if not inner:
        return None
    node = inner[0]
    stand_in = StepVar("inner", t, *node.shape)
    equations = [e for e in d.step if e[0] != consumer] + [
        (stand_in, node), (consumer, rhs.xreplace({node: stand_in}))]
    is_loss = consumer == d.step[-1][0]
    found = backprop(equations, {consumer: Identity(1) if is_loss else Adjoint(consumer)})
    back = {stand_in: node, Adjoint(stand_in): Adjoint(node)}
    g = _sum([c.term for c in found[stand_in]]).doit()
    through = [c for c in found.get(here, []) if c.term.atoms(Adjoint) & {Adjoint(stand_in)}]
    if len(through) != 1:
        return None
    rule_of = lambda c: [tags[r] for r in dict.fromkeys(c.rules) if r in tags]
    return SimpleNamespace(
        node=ts(node, inline=True),
        node_gradient=Eq(ts(Adjoint(node)), ts(g)),
        node_tags=rule_of(found[stand_in][0]), step_tags=rule_of(through[0]),
        step=ts(through[0].term.xreplace(back)))


def _adjoint_step(ts, d, var, tags):
    cell = d.cell
    states = {s.name for s in cell.states}
    is_state = var.name in states
    uses, here = _uses(ts, d, var, is_state)
    for u in uses:
        u.tags = [tags[r] for r in dict.fromkeys(u.rules) if r in tags]
    a = Adjoint(here)
    step = SimpleNamespace(kind="adjoint", var=ts(here, inline=True), name=var.name,
                           is_state=is_state, uses=uses, lhs=ts(a),
                           lhs_inline=ts(a, inline=True), inner=None,
                           definition=None, equation=None, simplified=None,
                           terminal=None, named=None, defined_by=None,
                           tags=sorted(dict.fromkeys(x for u in uses for x in u.tags),
                                       key=lambda tag: int(tag[1:])))
    shared_form = d.adjoints[a]
    with_copies = _sum([u.expr for u in uses]) if uses else shared_form
    step.inner = _inner_chain(ts, d, here, uses, tags)
    eq = _eq(ts, a, with_copies)
    if step.inner is not None:
        eq = Eq(ts(a), step.inner.step, more=[eq.rhs], blocks=[[step.inner.step]] + eq.blocks)
    elif len(uses) == 1 and uses[0].chain:  # one use: dL/dv = (J)^T dL/du = term
        eq = Eq(ts(a), uses[0].chain, more=[eq.rhs], blocks=[[uses[0].chain]] + eq.blocks)
    simple = unit_sum_targets(shared_form, cell)
    diag = as_diag(simple)
    if shared_form != with_copies and (simple != shared_form or diag == simple):
        eq.then(ts, shared_form)  # else the diagonal form below, with the shared parameters
    step.equation = eq
    step.copies_replaced = [Eq(ts(c, inline=True), ts(cell.param(c.name), inline=True))
                            for c in _copies(cell, with_copies)] if shared_form != with_copies \
        else []
    if simple != shared_form:
        step.simplified = SimpleNamespace(
            facts=[Eq(ts(lhs, inline=True), ts(rhs, inline=True))
                   for lhs, rhs in unit_sum_facts(shared_form, cell)],
            equation=_eq(ts, a, simple))
    if diag != simple:  # the diagonal Jacobian written out: one more "=" line
        (step.simplified.equation if step.simplified else eq).then(ts, diag)
    if var.name in ts.adjoint_names:
        ts.introduce(var.name)
        step.named = ts(a, inline=True)
        step.defined_by = ts(a, inline=True, names=False)
    if is_state:
        (aT, eT), = [(x, e) for x, e in d.terminal.items() if x.var.name == var.name]
        step.terminal = Eq(ts(aT, inline=True), ts(eT, inline=True))
    step.T = ts(T)
    return step


def _recurrence_step(ts, d, state):
    a = Adjoint(StepVar(state.name, t, *state.shape))
    inlined = as_diag(unit_sum_targets(d.recurrence(state), d.cell))
    eq = _eq(ts, a, inlined, condition=StrictLessThan(t, T))
    return SimpleNamespace(
        kind="recurrence", var=ts(StepVar(state.name, t, *state.shape), inline=True),
        next=ts(StepVar(state.name, t + 1, *state.shape), inline=True),
        lhs=ts(a), lhs_inline=ts(a, inline=True), equation=eq, expr=inlined,
        inlined=[ts(Adjoint(StepVar(n, t + 1, *_shape(d, n))), inline=True)
                 for n in sorted(_dependencies(d, a)) if n not in _heads(d)])


def _shape(d, name):
    return next(v.shape for v in d.cell.variables if v.name == name)


def _param_step(ts, d, p, tags):
    """dL/dp^(t) of the copy of one step (the sum over t is in the summary)."""
    copy = StepVar(p.name, t, *p.shape)
    uses = _grouped(ts, d.contributions.get(copy, []), copy)
    term = d.copy_gradients.get(p.name)
    term = term if term is not None else ZeroMatrix(*p.shape)
    eq = _eq(ts, Adjoint(copy), as_diag(term))
    eq.tag = ", ".join(sorted((tags[r] for r in dict.fromkeys(r for u in uses for r in u.rules)
                               if r in tags), key=lambda tag: int(tag[1:])))
    return SimpleNamespace(name=p.name, var=ts(p, inline=True), copy=ts(copy, inline=True),
                           uses=uses, copy_gradient=eq)


def _initial_step(ts, d, s):
    """dL/ds^(0): the initial state is used by step 1 only."""
    start = StepVar(s.name, 0, *s.shape)
    previous = StepVar(s.name, t - 1, *s.shape)
    uses = _grouped(ts, d.contributions.get(previous, []), start, move=lambda e: e.subs(t, 1))
    gradient = d.gradients[f"{s.name}0"]
    eq = _eq(ts, Adjoint(start), _sum([u.expr for u in uses]) if uses else gradient)
    if uses and _sum([u.expr for u in uses]) != gradient:
        eq.then(ts, gradient)
    return SimpleNamespace(kind="initial", var=ts(start, inline=True), uses=uses, equation=eq,
                           final=_eq(ts, Adjoint(start), as_diag(gradient)),
                           short=width(as_diag(gradient)) < 4 and ts(Equality(
                               Adjoint(start), as_diag(gradient), evaluate=False), inline=True))


def _notation(ts):
    """The symbols the rules' paragraph explains: 1, 1^T v, u (.) v = diag(u) v."""
    n = Symbol("n", integer=True, positive=True)
    u, v = MatrixSymbol("u", n, 1), MatrixSymbol("v", n, 1)
    return SimpleNamespace(
        one=ts(OneMatrix(n, 1), inline=True), v=ts(v, inline=True), u=ts(u, inline=True),
        ones_sum=ts(MatMul(OneMatrix(1, n), v), inline=True),
        hadamard=ts(HadamardProduct(u, v), inline=True),
        diag=ts(MatMul(DiagMatrix(u), v), inline=True))


def derivation_context(derivation, adjoint_names=None, ts=None, summary_tags=None):
    """Everything the ``derivation`` macros print about one derivation.

    adjoint_names  {variable name: LaTeX}; the adjoint of that variable gets a
                   name of its own once the text has derived it (the sheet
                   passes ``{"z": r"\\delta"}`` for the exercise's RNN).
    summary_tags   {key: label} for lines of the summary (see ``summary``).
    """
    d = derivation
    cell = d.cell
    ts = ts or Typesetter(cell, adjoint_names or {})
    step_vars = [lhs for lhs, _ in d.step]
    loss = step_vars[-1]
    forward = [_eq(ts, lhs, shared(cell, rhs)) for lhs, rhs in d.step]
    forward_copies = [_eq(ts, lhs, rhs) for lhs, rhs in d.step]
    loss_total = _eq(ts, MatrixSymbol("L", 1, 1), SumOverTime(loss, t, 1, T))

    rules_used = []
    for contributions in d.contributions.values():
        for c in contributions:
            for r in c.rules:
                if r not in rules_used:
                    rules_used.append(r)
    order = [cls.__name__ for cls in VJPS]
    rules_used.sort(key=lambda r: order.index(r) if r in order else len(order))
    catalogue = rule_catalogue(ts, rules_used)
    tags = {r.name: r.tag for r in catalogue}

    # the backward pass in the order it was computed; a state's closed recurrence
    # as soon as every adjoint it needs is derived; the copies of the parameters after
    done, steps = set(), []
    pending_states = list(cell.states)
    for var in _variables_in_order(d):
        steps.append(_adjoint_step(ts, d, var, tags))
        done.add(var.name)
        for s in list(pending_states):
            a = Adjoint(StepVar(s.name, t, *s.shape))
            if s.name in done and _dependencies(d, a) <= done:
                needs = _dependencies(d, a) - set(_heads(d))
                recurrence = _recurrence_step(ts, d, s) if needs else None
                # (shown when it is short; a gated cell's fills half a page)
                if recurrence is not None and len(recurrence.equation.blocks[0]) <= 2:
                    steps.append(recurrence)
                pending_states.remove(s)
    params = [_param_step(ts, d, p, tags) for p in cell.params]
    initial = [_initial_step(ts, d, s) for s in cell.states]
    param_order = [p.name for p in cell.params]
    for s in initial:
        for u in s.uses:
            u.tags = [tags[r] for r in dict.fromkeys(u.rules) if r in tags]

    def named(sym, kind):
        return SimpleNamespace(tex=ts(sym, inline=True), space=ts.space(sym), kind=kind,
                               name=sym.name,
                               step=ts(StepVar(sym.name, t, *sym.shape), inline=True))

    node = MatrixSymbol("a", Symbol("n", integer=True, positive=True), 1)

    return SimpleNamespace(
        cell_name=cell.name,
        params=[named(p, "param") for p in cell.params],
        copies=[ts(StepVar(p.name, t, *p.shape), inline=True) for p in cell.params],
        inputs=[named(x, "input") for x in cell.inputs],
        targets=[named(y, "target") for y in cell.targets],
        states=[named(s, "state") for s in cell.states],
        initial_states=[ts(StepVar(s.name, 0, *s.shape), inline=True) for s in cell.states],
        step_variables=[ts(v, inline=True) for v in step_vars],
        loss=ts(loss, inline=True),
        loss_total=loss_total,
        forward=forward,
        forward_copies=forward_copies,
        sum_over_copies=[Eq(ts(Adjoint(p)), ts(SumOverTime(Adjoint(StepVar(p.name, t, *p.shape)),
                                                           t, 1, T))) for p in cell.params],
        rules=catalogue,
        ones=any(r.ones for r in catalogue),
        steps=steps, params_steps=params, initial=initial,
        summary=summary(d, ts, order=param_order, tags=summary_tags),
        next_zero=[ts(Equality(Adjoint(a.var.at(T + 1)), ZeroMatrix(*a.shape), evaluate=False),
                      inline=True) for a in _next_step_adjoints(d)],
        notation=_notation(ts),
        derivation=d,
        time=ts(t), T=ts(T),
        rule_node=ts(node, inline=True), rule_gradient=ts(Adjoint(node), inline=True),
        typesetter=ts,
    )
