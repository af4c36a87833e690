"""What the templates print about a derivation: every equation as LaTeX from SymPy.

``derivation_context(derivation)`` walks the engine's record of a derivation
(forward equations, chain-rule contributions, adjoints, closed forms) and
returns plain objects for the templates: strings of LaTeX printed by
``BPTTLatexPrinter`` from SymPy expressions, names of rules, flags. It knows
nothing about a particular cell: several states, several parameters and
biases are walked the same way. Displayed equations keep their right-hand sides
as expressions, so that ``fit`` can break them over lines for the room a display
has (see ``breaking.py``).
"""
from dataclasses import dataclass, field
from types import SimpleNamespace

from sympy import Eq as Equality
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatrixSymbol,
                   Number, OneMatrix, StrictLessThan, Symbol, ZeroMatrix)
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.transpose import Transpose

from ..derivation.reverse import adjoint_sum, backprop
from ..derivation.vjps import VJPS
from ..graph.unroll import T, shared, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import Elementwise, Reciprocal, functions
from .breaking import QUAD
from .latex_printer import Partial, printer_for
from .rewrite import as_diag, unit_sum_facts, unit_sum_targets
from .width import FONT_SIZE, TEXT_WIDTH, tex_width

__all__ = ["Eq", "Typesetter", "derivation_context", "fit", "pack", "rule_catalogue",
           "check_typesettable", "path_rules"]
COMPACT_STEPS = 5  # a derivation with more adjoints than this is set densely

# the structural operations of matrix algebra; the functions of a vector name
# themselves (``words`` in symrnn/ops.py)
STRUCTURAL_WORDS = {"MatMul": "matrix product", "ScalarMultiple": "scalar multiple",
                    "MatAdd": "sum", "Transpose": "transpose",
                    "HadamardProduct": "entry-wise product", "HadamardPower": "entry-wise power"}
SAFETY = 0.97   # of the room on a line: the width model is within a few per cent of TeX
NOTEBOOK_WIDTH = 36 * FONT_SIZE  # a notebook cell: short lines


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


class Typesetter:
    """Prints expressions for one cell and remembers every one it printed.

    ``named`` holds the variables whose adjoint has a name of its own (delta
    for z): a name is used only once the text has introduced it. ``settings``
    are the printer's (a notation profile's time, vectors, layout, symbols).
    """

    def __init__(self, cell, adjoint_names=None, settings=None):
        self.cell = cell
        self.adjoint_names = dict(adjoint_names or {})
        self.settings = dict(settings or {})
        self.named = set()
        self.printed = []
        self._printers = {}

    def snapshot(self, names=True):
        """The names in use now (``names`` True), none (False), or the given set."""
        if names is True:
            return frozenset(self.named)
        return frozenset(names or ())

    def printer(self, inline=False, names=True):
        active = tuple(sorted(k for k in self.adjoint_names if k in self.snapshot(names)))
        key = (inline, active)
        if key not in self._printers:
            self._printers[key] = printer_for(
                self.cell, adjoint_names={k: self.adjoint_names[k] for k in active},
                fraction="inline" if inline else "display", **self.settings)
        return self._printers[key]

    def _record(self, tex):
        if tex not in self.printed:
            self.printed.append(tex)
        return tex

    def __call__(self, expr, inline=False, names=True):
        return self._record(self.printer(inline, names).doprint(expr))

    def lines(self, expr, width, names=True, rest=None):
        """``expr`` on lines of at most ``width`` pt (further lines ``rest``)."""
        lines = self.printer(False, names).print_lines(expr, width, rest)
        for line in lines:
            self._record(line)
        return lines

    def width(self, tex, inline=False):
        return tex_width(tex, display=not inline)

    def space(self, sym):
        return self._record(self.printer(False, False).space(sym))

    def introduce(self, name):
        self.named.add(name)

    def generic(self):
        """A typesetter for generic symbols (the rules' a, b, A): this one's time, vectors
        and layout, none of the cell's names."""
        out = Typesetter(None, settings={k: v for k, v in self.settings.items()
                                         if k not in ("symbols", "param_order")})
        out.printed = self.printed
        return out


@dataclass
class Eq:
    """One displayed equation: ``lhs = rhs`` (further ``= rhs`` in ``more``).

    ``parts`` holds the right-hand sides as expressions (or LaTeX), ``rows`` the
    lines of the display as ``(op, LaTeX)``: op "=" starts a line with the
    relation (the first one after ``lhs``), "+" continues a long right-hand side.
    ``layout(width)`` makes the rows for a display with ``width`` pt right of the
    relation.
    """
    lhs: str
    rhs: str
    more: list = field(default_factory=list)
    condition: str = None
    boxed: bool = False
    member: str = None  # "\\in R^{D x D}" after the last line
    tag: str = None
    parts: list = None
    ts: object = None
    names: bool = True
    rows: list = None

    def __post_init__(self):
        if self.parts is None:
            self.parts = [self.rhs] + list(self.more)
        if self.ts is not None:
            self.names = self.ts.snapshot(self.names)
        if self.rows is None:
            self.layout(TEXT_WIDTH * 0.6)

    def then(self, ts, expr, names=True):
        """Append ``= expr`` to the equation."""
        self.more.append(ts(expr, names=names))
        self.parts.append(expr)
        self.ts = self.ts or ts
        self.names = ts.snapshot(names)
        self.layout(TEXT_WIDTH * 0.6)
        return self

    def layout(self, width, join=False):
        """The rows for ``width`` pt right of the relation; with ``join``, a further
        "= ..." stays on the line before when both fit there."""
        rows = []
        for part in self.parts:
            if isinstance(part, str) or self.ts is None:
                lines = [part if isinstance(part, str) else str(part)]
            else:
                lines = self.ts.lines(part, width, names=self.names)
            if join and rows and len(lines) == 1 \
                    and tex_width(rows[-1][1] + " = " + lines[0]) <= width:
                rows[-1] = (rows[-1][0], rows[-1][1] + " = " + lines[0])
                continue
            rows.append(("=", lines[0]))
            rows += [("+", line) for line in lines[1:]]
        self.rows = rows
        return self

    def width(self):
        """The printed width of a one-line equation (lhs = rhs), pt."""
        return tex_width(self.lhs + " = " + " ".join(tex for _, tex in self.rows))

    @property
    def lines(self):
        return [tex for _, tex in self.rows]


def fit(equations, kind="align", ts=None, width=TEXT_WIDTH, join=False):
    """Lay out the equations of one display (``kind``: "align" lhs &= rhs && condition;
    "summary" with a column of labels; "boxed" inside a box) for the page: the room
    right of the relation is what the widest left-hand side and condition leave.
    ``join``: short successive right-hand sides share a line."""
    if not equations:
        return equations
    widths = [tex_width(e.lhs) for e in equations]
    conditions = [tex_width(r"\text{for }" + e.condition) for e in equations if e.condition]
    tags = [1.3 * tex_width(r"\text{(%s)}" % e.tag) for e in equations
            if getattr(e, "tag", None)]
    relation = tex_width("a = b") - tex_width("ab")
    room = width - max(widths) - relation
    if conditions:
        room -= max(conditions) + 2 * QUAD
    if tags and kind == "summary":
        room -= max(tags) + 2 * QUAD
    if kind == "boxed":
        room -= 2 * 3.4 + 2 * QUAD
    room = max(room * SAFETY, 8 * FONT_SIZE)
    for e in equations:
        e.layout(room, join)
    return equations


def pack(equations, columns=3, width=TEXT_WIDTH):
    """Short equations side by side in the columns of align* displays: a list of
    blocks, each ``SimpleNamespace(rows=[[eq, ...], ...])`` with the same number of
    equations in every row but the last. A run of one-line equations gets as many
    columns (up to ``columns``) as the widest of each column allow; an equation too
    long for a line of its own gets a block of its own, broken over lines."""
    gap = 2 * QUAD
    relation = tex_width("a = b") - tex_width("ab")
    room = width * SAFETY

    def fits(run, k):
        rows = [run[i:i + k] for i in range(0, len(run), k)]
        lhs = [max(tex_width(r[j].lhs) for r in rows if j < len(r)) for j in range(k)]
        rhs = [max(tex_width(r[j].rows[0][1]) for r in rows if j < len(r)) for j in range(k)]
        return sum(lhs) + sum(rhs) + k * relation + (k - 1) * gap <= room, rows

    blocks, run = [], []

    def flush():
        for k in range(min(columns, len(run)), 0, -1):
            ok, rows = fits(run, k)
            if ok or k == 1:
                blocks.append(SimpleNamespace(rows=rows))
                break
        run.clear()

    for e in equations:
        e.layout(width, join=True)
        if len(e.rows) == 1 and e.width() <= room:
            run.append(e)
            continue
        if run:
            flush()
        fit([e], width=width, join=True)
        blocks.append(SimpleNamespace(rows=[[e]]))
    if run:
        flush()
    return blocks


def _eq(ts, lhs, rhs, condition=None, boxed=False, names=True):
    return Eq(ts(lhs, names=names), ts(rhs, names=names),
              condition=ts(condition) if condition is not None else None, boxed=boxed,
              parts=[rhs], ts=ts, names=names)


def _shared_values(cell):
    """{name: symbol} of what is copied per step: the parameters and the named matrices
    computed from them (Ab = A - A^T)."""
    return {p.name: p for p in cell.params + cell.fixed_values}


def _copies(cell, expr):
    params = list(_shared_values(cell))
    found = {v for v in expr.atoms(StepVar) if v.name in params}
    return sorted(found, key=lambda v: (params.index(v.name), str(v.time)))


def _jacobian(term, consumer):
    """d consumer / d target, read off a contribution term (J^T g), when it has that form."""
    g = Adjoint(consumer)
    if term == g:
        return Identity(consumer.shape[0])
    if isinstance(term, MatMul) and term.args[-1] == g:
        numbers = [a for a in term.args[:-1] if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in term.args[:-1] if getattr(a, "is_Matrix", False)]
        if len(matrices) > 1:
            return None
        c = 1
        for n in numbers:
            c *= n
        if not matrices:  # a scalar multiple c g: the Jacobian is c I
            return MatMul(c, Identity(consumer.shape[0]))
        return MatMul(c, matrices[0].T) if c != 1 else matrices[0].T
    if isinstance(term, HadamardProduct) and g in term.args:
        rest = [f for f in term.args if f != g]
        return DiagMatrix(rest[0] if len(rest) == 1 else HadamardProduct(*rest))
    return None


# ---- which rules a chain-rule term went through -----------------------------------
def _rule_names(node):
    """The rules of the table that back-propagation applies at ``node``."""
    if isinstance(node, MatMul):
        numbers = [a for a in node.args if isinstance(a, Number)]
        matrices = [a for a in node.args if getattr(a, "is_Matrix", False)]
        c = 1
        for n in numbers:
            c *= n
        out = []
        if c != 1 and (len(matrices) == 1 or c != -1):
            out.append("ScalarMultiple")  # a minus sign on a product is part of a factor
        if len(matrices) > 1:
            out.append("MatMul")
        return out
    return [type(node).__name__]


def path_rules(expr, target):
    """The rules on the paths from the root of ``expr`` down to ``target``."""
    found = []

    def visit(node):
        if node == target:
            return True
        if not getattr(node, "args", None) or not getattr(node, "is_Matrix", False):
            return False
        below = [visit(a) for a in node.args]
        if any(below):
            found.extend(_rule_names(node))
        return any(below)

    visit(expr)
    return list(dict.fromkeys(found))


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
        term=ts(term), contribution=None,
        jacobian=None, chain=None, elementwise=False)
    if jac is not None and not isinstance(jac, Identity):
        use.jacobian = Eq(ts(Partial(consumer, target), inline=True), ts(jac, inline=True))
        use.chain = ts(MatMul(Transpose(Partial(consumer, target)), Adjoint(consumer)))
        use.chain_expr = MatMul(Transpose(Partial(consumer, target)), Adjoint(consumer))
        use.contribution = Eq(use.chain, use.term, parts=[term], ts=ts)
        use.elementwise = isinstance(jac, DiagMatrix)
    return use


def _grouped(ts, d, contributions, target, move=None, later=False):
    """One use per consumer: the contributions of one consumer are added up.
    ``move`` shifts consumer and term in time (to the next step, to step 1). The loss
    of a later step passes back its term times its own gradient, dL/dL^(t+1) (1 up to
    step T, 0 beyond), as the derivation writes it."""
    move = move or (lambda e: e)
    step = dict(d.step)
    loss = d.step[-1][0]
    by_consumer = {}
    for c in contributions:
        by_consumer.setdefault(c.consumer, []).append(c)
    out = []
    order = [lhs for lhs, _ in d.step]  # the uses in the order the step computes them
    for consumer, group in sorted(by_consumer.items(),
                                  key=lambda kv: order.index(kv[0]) if kv[0] in order
                                  else len(order)):
        rhs = step.get(consumer)
        rules = []
        for c in group:
            found = path_rules(rhs, c.target) if rhs is not None else list(c.rules)
            rules += [r for r in found if r not in rules]
        term = _sum([c.term for c in group])
        if len(group) > 1:
            term = term.doit()
        if later and consumer == loss:
            term = MatMul(term, Adjoint(consumer)).doit()
        use = _use(ts, move(consumer), move(term), rules, target)
        use.later = later
        out.append(use)
    return out


def _uses(ts, d, var, is_state):
    """The uses of var^(t): in step t, and (for a state) in step t + 1."""
    here = StepVar(var.name, t, *var.shape)
    out = _grouped(ts, d, d.contributions.get(here, []), here)
    if is_state:
        out += _grouped(ts, d, d.contributions.get(here.at(t - 1), []), here,
                        move=lambda e: e.subs(t, t + 1), later=True)
    return out, here


def _sum(terms):
    return terms[0] if len(terms) == 1 else MatAdd(*terms)


def _rule_nodes(n, m):
    a, b, c = (MatrixSymbol(s, n, 1) for s in "abc")
    A = MatrixSymbol("A", n, m)
    v = MatrixSymbol("b", m, 1)
    row = MatrixSymbol("a", 1, n)
    scale = Symbol("c")
    examples = {
        "MatMul": (MatrixSymbol("a", n, 1), MatMul(A, v), [A, v]),
        "ScalarMultiple": (a, MatMul(scale, b), [b]),
        "MatAdd": (a, MatAdd(b, c), [b, c]),
        "Transpose": (row, Transpose(b), [b]),
        "HadamardProduct": (a, HadamardProduct(b, c), [b, c]),
        "HadamardPower": (a, HadamardPower(b, 2), [b]),
    }
    for cls in functions().values():
        examples[cls.__name__] = (a, cls(b), [b])
    return examples


RULE_ORDER = ["MatAdd", "MatMul", "ScalarMultiple", "Transpose", "HadamardProduct",
              "HadamardPower"]


def _rule_rank(name):
    order = RULE_ORDER + [cls.__name__ for cls in VJPS if cls.__name__ not in RULE_ORDER]
    return order.index(name) if name in order else len(order)


def rule_catalogue(ts, names, inline=False):
    """The engine's adjoint rules used here, applied to generic a = op(b, ...)
    (``inline``: the gradients as dL/da, for a dense document)."""
    n, m = Symbol("n", integer=True, positive=True), Symbol("m", integer=True, positive=True)
    examples = _rule_nodes(n, m)
    out = []
    for name in names:
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
            divides=any(r.atoms(Reciprocal) for _, r in results) or name == "Reciprocal",
            definition=Eq(ts(ans), ts(node)),
            results=[Eq(ts(Adjoint(arg), inline=inline), ts(r, inline=inline))
                     for arg, r in results]))
    return out


def _rules_layout(catalogue):
    """How the table of rules fits the page: "row" (definition, results, words, tag on one
    line), "label-first" (tag and words first, no words column on the right), else
    "two-lines" (the results under the definition). The columns are as wide as their
    widest entry."""
    if not catalogue:
        return "row"
    gap = 2 * FONT_SIZE
    definition = max(tex_width(f"{r.definition.lhs} = {r.definition.rhs}") for r in catalogue)
    results = max(tex_width(r"\Longrightarrow\quad " + r",\quad ".join(
        f"{e.lhs} = {e.rhs}" for e in r.results)) for r in catalogue)
    words = max(tex_width(r"\text{(%s)}" % r.words) for r in catalogue)
    tag = max(tex_width(r"\text{(%s)}" % r.tag) for r in catalogue) + FONT_SIZE
    label = max(tex_width(r"\text{(%s) %s}" % (r.tag, r.words)) for r in catalogue)
    room = SAFETY * TEXT_WIDTH
    separation = 10.0  # amsmath's \minalignsep between the column pairs of align
    if definition + results + words + 2 * separation + tag <= room:
        return "row"
    if label + gap + definition + gap + results <= room:
        return "label-first"
    return "two-lines"


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

    def add(key, eq, kind="adjoint"):
        eq.tag = tags.get(key)
        eq.kind = kind
        out.append(eq)

    for name in ts.adjoint_names:  # every named gradient is usable in every line
        ts.introduce(name)
    for a, e in d.adjoints.items():
        name = a.var.name
        if name in states:
            (aT, eT), = [(x, y) for x, y in d.terminal.items() if x.var.name == name]
            add(name + "T", _eq(ts, aT, as_diag(_inline_heads(d, eT))), "state")
            add(name, _eq(ts, a, as_diag(_inline_heads(d, e)), condition=StrictLessThan(t, T)),
                "state")
        elif name in ts.adjoint_names:
            add(name, Eq(ts(a), ts(a, names=False), parts=[ts(a, names=False)], ts=ts)
                .then(ts, as_diag(_inline_heads(d, e))))
        else:
            add(name, _eq(ts, a, as_diag(_inline_heads(d, e))),
                "state" if name in _heads(d) else "adjoint")
    for a, e in d.fixed_adjoints.items():  # the named matrices: their parameters read them
        add(a.var.name, _eq(ts, a, as_diag(_inline_heads(d, e))), "param")
    for p in _params(d, order):
        add(p.name, _eq(ts, Adjoint(p), as_diag(_inline_heads(d, d.gradients[p.name]))),
            "param")
    for s in cell.states:
        add(s.name + "0", _eq(ts, Adjoint(StepVar(s.name, 0, *s.shape)),
                              as_diag(_inline_heads(d, d.gradients[f"{s.name}0"]))), "initial")
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
    node_rules = path_rules(rhs.xreplace({node: stand_in}), stand_in)
    step_rules = path_rules(node, here)
    rule_of = lambda names: [tags[r] for r in names if r in tags]
    return SimpleNamespace(
        node=ts(node, inline=True),
        node_gradient=Eq(ts(Adjoint(node)), ts(g), parts=[g], ts=ts),
        node_tags=rule_of(node_rules), step_tags=rule_of(step_rules),
        step=ts(through[0].term.xreplace(back)), step_expr=through[0].term.xreplace(back))


def _sorted_tags(tags):
    return sorted(dict.fromkeys(tags), key=lambda tag: int(tag[1:]))


def _adjoint_step(ts, d, var, tags):
    cell = d.cell
    states = {s.name for s in cell.states}
    is_state = var.name in states
    uses, here = _uses(ts, d, var, is_state)
    for u in uses:
        u.tags = _sorted_tags(tags[r] for r in u.rules if r in tags)
    a = Adjoint(here)
    step = SimpleNamespace(kind="adjoint", var=ts(here, inline=True), name=var.name,
                           is_state=is_state, is_loss=here == d.step[-1][0], uses=uses,
                           lhs=ts(a),
                           lhs_inline=ts(a, inline=True), inner=None,
                           definition=None, equation=None, simplified=None,
                           terminal=None, terminal_display=None, named=None, defined_by=None,
                           tags=_sorted_tags(x for u in uses for x in u.tags))
    shared_form = d.adjoints[a]
    with_copies = _sum([u.expr for u in uses]) if uses else shared_form
    step.inner = _inner_chain(ts, d, here, uses, tags)
    eq = _eq(ts, a, with_copies)
    if step.inner is not None:
        eq = Eq(ts(a), step.inner.step, more=[eq.rhs], parts=[step.inner.step_expr, with_copies],
                ts=ts)
    elif len(uses) == 1 and uses[0].chain:  # one use: dL/dv = (J)^T dL/du = term
        eq = Eq(ts(a), uses[0].chain, more=[eq.rhs], parts=[uses[0].chain_expr, with_copies],
                ts=ts)
    simple = unit_sum_targets(shared_form, cell)
    diag = as_diag(simple)
    if shared_form != with_copies and (simple != shared_form or diag == simple):
        eq.then(ts, shared_form)  # else the diagonal form below, with the shared parameters
    step.equation = eq
    step.copies_replaced = [Eq(ts(c, inline=True),
                               ts(_shared_values(cell)[c.name], inline=True))
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
        if ts.width(step.terminal.lhs + " = " + step.terminal.rhs, inline=True) \
                > 0.35 * TEXT_WIDTH:  # too long for a sentence: displayed
            step.terminal_display = _eq(ts, aT, eT)
    step.T = ts(T)
    if step.is_loss:  # L = sum_t L^(t): dL/dL^(t) = 1 for t = 1..T, and no step T + 1
        step.loss = Eq(ts(MatrixSymbol("L", 1, 1), inline=True),
                       ts(SumOverTime(here, t, 1, T), inline=True))
        step.first = ts(Equality(t, 1), inline=True)
        step.beyond = ts(here.subs(t, T + 1), inline=True)
        step.time, step.time_next = ts(t, inline=True), ts(t + 1, inline=True)
    return step


def _simple_use(step):
    """Is ``step`` the gradient of a variable with one use, entry by entry, in its step?"""
    return (step.kind == "adjoint" and len(step.uses) == 1 and step.uses[0].elementwise
            and not step.uses[0].later and step.inner is None and step.simplified is None
            and not step.is_state)


def _pairs(steps):
    """A variable and the pre-activation it is a function of, derived in one paragraph:
    a^(t), used only by s^(t), then z_a^(t), used only by a^(t) (a dense document)."""
    out, k = [], 0
    while k < len(steps):
        first = steps[k]
        second = steps[k + 1] if k + 1 < len(steps) else None
        if second is not None and _simple_use(first) and _simple_use(second) \
                and second.named and second.uses[0].consumer_name == first.name:
            for step in (first, second):  # the rule's result directly, without (J)^T g
                e = step.equation
                if len(e.parts) > 2 and e.rhs == step.uses[0].chain:
                    step.equation = Eq(e.lhs, e.more[0], more=e.more[1:], parts=e.parts[1:],
                                       ts=e.ts, names=e.names)
            out.append(SimpleNamespace(kind="pair", first=first, second=second,
                                       tags=_sorted_tags(first.tags + second.tags),
                                       join=first.join))
            k += 2
            continue
        out.append(first)
        k += 1
    return out


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
    uses = _grouped(ts, d, d.contributions.get(copy, []), copy)
    term = d.copy_gradients.get(p.name) if p.name in d.copy_gradients \
        else adjoint_sum(d.contributions.get(copy, []))  # a named matrix's copy
    term = term if term is not None else ZeroMatrix(*p.shape)
    eq = _eq(ts, Adjoint(copy), as_diag(term))
    eq.tag = ", ".join(_sorted_tags(tags[r] for u in uses for r in u.rules if r in tags))
    return SimpleNamespace(name=p.name, var=ts(p, inline=True), copy=ts(copy, inline=True),
                           uses=uses, copy_gradient=eq)


def _initial_step(ts, d, s):
    """dL/ds^(0): the initial state is used by step 1 only."""
    start = StepVar(s.name, 0, *s.shape)
    previous = StepVar(s.name, t - 1, *s.shape)
    uses = _grouped(ts, d, d.contributions.get(previous, []), start,
                    move=lambda e: e.subs(t, 1))
    gradient = d.gradients[f"{s.name}0"]
    eq = _eq(ts, Adjoint(start), _sum([u.expr for u in uses]) if uses else gradient)
    if uses and _sum([u.expr for u in uses]) != gradient:
        eq.then(ts, gradient)
    short = ts(Equality(Adjoint(start), as_diag(gradient), evaluate=False), inline=True)
    return SimpleNamespace(kind="initial", var=ts(start, inline=True), uses=uses, equation=eq,
                           final=_eq(ts, Adjoint(start), as_diag(gradient)),
                           short=ts.width(short, inline=True) < 0.4 * TEXT_WIDTH and short)


def _fixed_adjoint(ts, a, e):
    """dL/dAb of a named matrix: the sum of its copies' gradients (and what the named
    matrices computed from it pass back), then that sum written out."""
    copies = SumOverTime(Adjoint(StepVar(a.var.name, t, *a.shape)), t, 1, T)
    parts = e.args if isinstance(e, MatAdd) else (e,)
    if not any(isinstance(p, SumOverTime) for p in parts):  # used by named matrices only
        return _eq(ts, a, as_diag(e))
    first = [copies if isinstance(p, SumOverTime) else p for p in parts]
    return _eq(ts, a, _sum(first)).then(ts, as_diag(e))


def _notation(ts, catalogue):
    """The symbols the rules' paragraph explains: 1, 1^T v, u (.) v = diag(u) v, u (/) v."""
    n = Symbol("n", integer=True, positive=True)
    u, v = MatrixSymbol("u", n, 1), MatrixSymbol("v", n, 1)
    return SimpleNamespace(
        one=ts(OneMatrix(n, 1), inline=True), v=ts(v, inline=True), u=ts(u, inline=True),
        ones_sum=ts(MatMul(OneMatrix(1, n), v), inline=True),
        hadamard=ts(HadamardProduct(u, v), inline=True),
        diag=ts(MatMul(DiagMatrix(u), v), inline=True),
        divides=any(r.divides for r in catalogue),
        quotient=ts(HadamardProduct(u, Reciprocal(v)), inline=True))


def _fixed_contributions(cell):
    """The chain-rule terms of the named matrices' equations (computed once)."""
    return backprop(list(cell.fixed), {}, live=cell.fixed_values) if cell.fixed else {}


def _rules_used(d):
    """The rules of every chain-rule term of the derivation (and of the named matrices'
    equations), in the order of the table."""
    used = []
    step = {**dict(d.step), **dict(d.cell.fixed)}
    found = list(d.contributions.items()) + list(_fixed_contributions(d.cell).items())
    for target, contributions in found:
        for c in contributions:
            rhs = step.get(c.consumer)
            for r in (path_rules(rhs, c.target) if rhs is not None else c.rules):
                if r not in used:
                    used.append(r)
    used.sort(key=_rule_rank)
    return used


def derivation_context(derivation, adjoint_names=None, ts=None, summary_tags=None,
                       settings=None, introduced=None):
    """Everything the ``derivation`` macros print about one derivation.

    adjoint_names  {variable name: LaTeX}; the adjoint of that variable gets a
                   name of its own once the text has derived it (the sheet
                   passes ``{"z": r"\\delta"}`` for the exercise's RNN).
    summary_tags   {key: label} for lines of the summary (see ``summary``).
    settings       the printer's settings (a notation profile's).
    introduced     {variable name: the variable whose equation it was taken from}:
                   the pre-activations named for the derivation (``preactivations.py``).
    """
    d = derivation
    cell = d.cell
    ts = ts or Typesetter(cell, adjoint_names or {}, settings)
    step_vars = [lhs for lhs, _ in d.step]
    loss = step_vars[-1]
    forward = [_eq(ts, lhs, shared(cell, rhs)) for lhs, rhs in d.step]
    forward_copies = [_eq(ts, lhs, rhs) for lhs, rhs in d.step]
    loss_total = _eq(ts, MatrixSymbol("L", 1, 1), SumOverTime(loss, t, 1, T))

    compact = len(d.adjoints) > COMPACT_STEPS
    catalogue = rule_catalogue(ts.generic(), _rules_used(d), inline=compact)
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
                if recurrence is not None and len(fit([recurrence.equation])[0].rows) <= 2:
                    steps.append(recurrence)
                pending_states.remove(s)
    # a parameter read only by the named matrices has no copies: its gradient comes
    # through them
    in_steps = {v.name for _, rhs in d.step for v in rhs.atoms(StepVar)}
    read_by_fixed = {p.name for _, rhs in cell.fixed for p in rhs.atoms(MatrixSymbol)}
    only_fixed = [p for p in cell.params if p.name in read_by_fixed and p.name not in in_steps]
    copied = [p for p in cell.params if p not in only_fixed]
    params = [_param_step(ts, d, p, tags) for p in copied + list(cell.fixed_values)]
    initial = [_initial_step(ts, d, s) for s in cell.states]
    param_order = [p.name for p in cell.params]
    for s in initial:
        for u in s.uses:
            u.tags = _sorted_tags(tags[r] for r in u.rules if r in tags)

    def named(sym, kind):
        return SimpleNamespace(tex=ts(sym, inline=True), space=ts.space(sym), kind=kind,
                               name=sym.name,
                               step=ts(StepVar(sym.name, t, *sym.shape), inline=True))

    node = MatrixSymbol("a", Symbol("n", integer=True, positive=True), 1)
    variables = {v.name: v for v in cell.variables}
    introduced = introduced or {}

    for s in steps:
        s.join = compact
    if compact:
        steps = _pairs(steps)
    return SimpleNamespace(
        cell_name=cell.name,
        params=[named(p, "param") for p in copied],
        copies=[ts(StepVar(p.name, t, *p.shape), inline=True)
                for p in copied + list(cell.fixed_values)],
        fixed_named=[named(v, "fixed") for v in cell.fixed_values],
        fixed_from=[named(p, "param") for p in only_fixed],
        fixed=[_eq(ts, lhs, rhs) for lhs, rhs in cell.fixed],
        fixed_adjoints=[_fixed_adjoint(ts, a, e) for a, e in d.fixed_adjoints.items()],
        through=[_eq(ts, Adjoint(p), d.gradients[p.name]) for p in cell.params
                 if p.name in read_by_fixed],
        inputs=[named(x, "input") for x in cell.inputs],
        targets=[named(y, "target") for y in cell.targets],
        one_hot=cell.targets_are_distributions,
        states=[named(s, "state") for s in cell.states],
        initial_states=[ts(StepVar(s.name, 0, *s.shape), inline=True) for s in cell.states],
        step_variables=[ts(v, inline=True) for v in step_vars],
        preactivations=[SimpleNamespace(
            var=ts(StepVar(n, t, *variables[n].shape), inline=True),
            of=ts(StepVar(c, t, *variables[c].shape), inline=True) if c in variables
            else ts(loss, inline=True))
            for n, c in introduced.items()],
        loss=ts(loss, inline=True),
        loss_total=loss_total,
        forward=forward,
        forward_copies=forward_copies,
        sum_over_copies=[Eq(ts(Adjoint(p)), ts(SumOverTime(Adjoint(StepVar(p.name, t, *p.shape)),
                                                           t, 1, T))) for p in copied],
        rules=catalogue,
        rules_layout=_rules_layout(catalogue),
        ones=any(r.ones for r in catalogue),
        steps=steps, params_steps=params, initial=initial,
        summary=summary(d, ts, order=param_order, tags=summary_tags),
        compact=compact,
        copy_tags=_sorted_tags(tag for p in params
                               for tag in (p.copy_gradient.tag or "").split(", ") if tag),
        next_zero=[ts(Equality(Adjoint(a.var.at(T + 1)), ZeroMatrix(*a.shape), evaluate=False),
                      inline=True) for a in _next_step_adjoints(d)],
        notation=_notation(ts.generic(), catalogue),
        derivation=d,
        time=ts(t), T=ts(T),
        rule_node=ts.generic()(node, inline=True),
        rule_gradient=ts.generic()(Adjoint(node), inline=True),
        typesetter=ts,
    )
