"""The documents' text: the solution sheet (``templates/sheet08.tex.j2``) and the
derivation sheet of any cell (``templates/cell.tex.j2``).

Typesetting only: the numbers a sheet prints (its check's table, the curves of its
plot) are computed by ``symrnn.checking`` and handed in (``symrnn.documents`` does
both). For the solution sheet, ``exercise(cell, notation)`` makes the derivations it
prints, ``sheet_context(exercise, tables, norms)`` everything the template prints and
``render_sheet_text`` the LaTeX; for a cell, ``cell_view``, ``cell_context`` and
``render_cell_text``.
"""
import importlib.resources
import math
import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
from sympy import Eq as Eq_, Float, Integer, MatAdd, MatMul, Pow, Symbol, ZeroMatrix
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..derivation import derive
from ..graph.unroll import T, t as time
from ..model.nodes import Adjoint, StepVar
from ..model.gated import GRU, LSTM
from ..model.presets import ElmanRNN
from ..ops import functions
from .latex_printer import Partial, ProductOverTime, printer_for
from .narrative import Eq, Typesetter, check_typesettable, derivation_context, fit, pack
from .notation import DEFAULT, cell_kind, load_notation
from .preactivations import name_preactivations
from .rewrite import unit_sum_targets
from .text import latex_text
from .tikz import unrolled_figure

__all__ = ["cell_context", "cell_view", "document_name", "environment", "exercise",
           "readable", "render_cell_text", "render_derivation", "render_sheet_text",
           "sheet_context", "template_dirs"]

SHEET = "sheet08"
FIGURE_T = 3
# where the results stand in Goodfellow et al. (2016), section 10.2.2 (keys: see
# narrative.summary); only for the exercise's model, which is the book's without biases
TEXTBOOK_EQUATIONS = {"o": "(10.18)", "hT": "(10.19)", "h": "(10.21)", "V": "(10.24)",
                      "W": "(10.26)", "U": "(10.28)"}
def template_dirs():
    """Where the templates are: the repository's ``templates/``, else ``symrnn/templates``."""
    dirs = []
    repo = Path(__file__).resolve().parents[2] / "templates"
    if repo.is_dir():
        dirs.append(repo)
    try:
        installed = Path(str(importlib.resources.files("symrnn") / "templates"))
        if installed.is_dir() and installed not in dirs:
            dirs.append(installed)
    except (ModuleNotFoundError, TypeError):
        pass
    if not dirs:
        raise FileNotFoundError("symrnn: the LaTeX templates were not found (looked in "
                                f"{repo} and in the installed package symrnn/templates)")
    return dirs


def environment():
    """Jinja2 with LaTeX-safe delimiters: <% ... %>, << ... >>, <# ... #>."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs()]),
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["tex"] = latex_text
    env.globals["fit"] = fit
    env.globals["pack"] = pack
    return env


def render_derivation(derivation, figure_T=None, adjoint_names=None, label="fig:unrolled",
                      notation=None):
    """The LaTeX of the model, rules, step-by-step backward pass and summary of any
    derivation, with the macros of the documents (no preamble)."""
    check_typesettable(derivation.cell)
    settings = load_notation(notation).printer_settings(derivation.cell)
    d = derivation_context(derivation, adjoint_names, settings=settings)
    fig = unrolled_figure(derivation.cell, figure_T, d.typesetter) if figure_T else None
    body = ("<% import 'derivation.tex.j2' as m %>"
            "<< m.model(d, fig, label) >>\n\n<< m.rules(d) >>\n\n<< m.derivation(d) >>\n\n"
            "<< m.summary(d) >>\n")
    return environment().from_string(body).render(d=d, fig=fig, label=label)


def readable(cell, notation=None):
    """``(derivation, typesetter, info)`` of ``cell`` as the documents print it: its
    pre-activations named (``preactivations.py``), the gradients of the
    pre-activations named delta, in the notation profile ``notation``."""
    check_typesettable(cell)
    profile = load_notation(notation)
    symbol = printer_for(cell, **profile.printer_settings(cell)).symbol
    named, info = name_preactivations(cell, symbol)
    named.notation_kind = cell_kind(cell)  # the profile's table of the preset, if any
    settings = profile.printer_settings(named)
    d = derive(named)
    return d, Typesetter(named, info.deltas, settings), info


def _number(ts, x):
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return "not finite"
    return "$%s$" % ts(Integer(0) if x == 0 else Float(x, 2))


def _gradient_symbol(cell, name):
    for p in cell.params:
        if p.name == name:
            return Adjoint(p)
    for s in cell.states:
        if f"{s.name}0" == name:
            return Adjoint(StepVar(s.name, 0, *s.shape))
    raise KeyError(name)


def _bound(ts, values):
    """The smallest power of ten above all ``values``, printed (None when none is a
    finite number)."""
    values = [abs(v) for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    exponent = max(math.ceil(math.log10(max(max(values), 1e-300))), -16)
    return ts(Pow(10, exponent, evaluate=False), inline=True)


def _check_context(cell, tables, ts):
    """The table of the numerical check: one block of rows per ``GradientTable``
    (``symrnn.checking.gradient_table``), the point's T and sizes from the first."""
    checks = []
    for table in tables:
        checks.append(SimpleNamespace(model=table.label, rows=[SimpleNamespace(
            name=ts(_gradient_symbol(cell, r.name), inline=True),
            fd=_number(ts, r.rel_err_fd), independent=_number(ts, r.rel_err_independent),
            fd_value=r.rel_err_fd, independent_value=r.rel_err_independent)
            for r in table.rows]))
    all_rows = [r for c in checks for r in c.rows]
    for c in checks:  # a long table in two halves side by side
        half = (len(c.rows) + 1) // 2 if len(c.rows) > 8 else len(c.rows)
        c.pairs = [(c.rows[k], c.rows[k + half] if k + half < len(c.rows) else None)
                   for k in range(half)]
    first = tables[0]
    finite = all(r.fd_value is not None and math.isfinite(r.fd_value) for r in all_rows)
    return checks, SimpleNamespace(
        T=ts(Eq_(T, first.T), inline=True),
        sizes=[ts(Eq_(size, value), inline=True) for size, value in first.sizes.items()],
        fd_bound=_bound(ts, [r.fd_value for r in all_rows]),
        independent_bound=_bound(ts, [r.independent_value for r in all_rows]),
        finite=finite,
        has_independent=any(r.independent_value is not None for r in all_rows))


def _norms_context(ts, norms, cell):
    """The curves of ||dL/dh^(t)|| against T - t (``symrnn.checking.gradient_norms``)
    and what the caption prints."""
    W = cell.param(norms.recurrent)
    h = next(v for v in cell.states)
    rho = Symbol("rho")
    curves = [SimpleNamespace(rho=c.rho, points=c.points,
                              legend=ts(Eq_(rho, Float(c.rho, 3)), inline=True))
              for c in norms.curves]
    last_loss = StepVar("L", T, 1, 1)
    return SimpleNamespace(
        curves=curves, steps=norms.steps,
        dh=ts(Adjoint(StepVar(h.name, time, *h.shape)), inline=True),
        dlast=ts(Partial(last_loss, StepVar(h.name, time, *h.shape)), inline=True),
        W=ts(W, inline=True), rho=ts(rho, inline=True),
        dh0=ts(Adjoint(StepVar(h.name, 0, *h.shape)), inline=True),
        h0_zero=ts(Eq_(StepVar(h.name, 0, *h.shape), ZeroMatrix(*h.shape), evaluate=False),
                   inline=True),
        g=ts(cell.targets[0], inline=True),
        sizes=[ts(Eq_(size, value), inline=True) for size, value in norms.sizes.items()],
        input_scale=ts(Pow(10, int(round(math.log10(norms.input_scale))),
                           evaluate=False), inline=True))


def document_texts(notation, title=None, course=None, author=None):
    """The title, course and author of a document (escaped for LaTeX; None when not set):
    the arguments, else the notation profile's."""
    profile = load_notation(notation)
    values = {"title": title if title is not None else profile.title,
              "course": course if course is not None else profile.course,
              "author": author if author is not None else profile.author}
    return SimpleNamespace(**{k: (latex_text(v) or None) if v is not None else None
                              for k, v in values.items()})


def _product_of_factors(recurrence, h, layout):
    """The factor that carries dL/dh^(t+1) back to step t in the recurrence, as the
    product over the later steps k = t + 1, ..., t + j."""
    terms = recurrence.args if isinstance(recurrence, MatAdd) else (recurrence,)
    target = Adjoint(StepVar(h.name, time + 1, *h.shape))
    for term in terms:
        if isinstance(term, MatMul) and term.args[-1] == target:
            factor = MatMul(*term.args[:-1])
            k, j = Symbol("k", integer=True), Symbol("j", integer=True, positive=True)
            return ProductOverTime(factor.subs(time, k - 1), k, time + 1, time + j), j
    return None, None


def exercise(cell=None, notation=None):
    """The derivations the solution sheet prints, for ``cell`` (default: the exercise's
    RNN): Problem 2's (``d2``, ``ts2``) and Problem 3's, of the same network with its
    output fed into another one (``upstream``, ``d3``, ``ts3``); ``checked``: ``[(label,
    derivation, the cell it describes)]`` whose numerical check the sheet prints,
    ``plotted``: ``(derivation, state-to-state matrix)`` of its plot of gradient norms."""
    cell = cell if cell is not None else ElmanRNN()
    if not isinstance(cell, ElmanRNN):
        raise ValueError(f"cell: the solution sheet is about the Elman RNN of the exercise, "
                         f"not {cell.name!r}; use 'symrnn sheet --cell' or "
                         "render_cell_document() for other cells")
    profile = load_notation(notation)
    d2, ts2, _ = readable(cell, profile)
    upstream = ElmanRNN(activation=cell.activation, output="upstream", bias=cell.bias)
    d3, ts3, _ = readable(upstream, profile)
    return SimpleNamespace(cell=cell, upstream=upstream, profile=profile,
                           d2=d2, ts2=ts2, d3=d3, ts3=ts3,
                           checked=[("Problem 2", d2, cell), ("Problem 3", d3, upstream)],
                           plotted=(d3, "W"))


def sheet_context(ex, tables, norms, title=None, course=None, author=None):
    """Everything ``sheet08.tex.j2`` prints: the derivations of ``exercise(...)``, the
    tables of its check (``GradientTable`` of each of ``ex.checked``) and the curves of
    its plot (``NormCurves`` of ``ex.plotted``)."""
    cell, upstream, profile = ex.cell, ex.upstream, ex.profile
    d2, ts2, d3, ts3 = ex.d2, ex.ts2, ex.d3, ex.ts3
    is_exercise = (cell.activation, cell.output, cell.bias) == ("tanh", "softmax_ce", False)
    # Problem 2: the model of the exercise (or the variant asked for)
    p2 = derivation_context(d2, ts=ts2,
                            summary_tags=TEXTBOOK_EQUATIONS if is_exercise else None)
    fig = unrolled_figure(d2.cell, FIGURE_T, ts2)
    o = StepVar("o", time, *cell.param("V").shape[:1], 1)

    # Problem 3: the same network, its output fed into another network
    p3 = derivation_context(d3, ts=ts3)
    g = StepVar(upstream.targets[0].name, time, *upstream.targets[0].shape)
    before = {e.lhs: e for e in p2.summary}
    changed = [e for e in p3.summary if before.get(e.lhs) is None
               or [before[e.lhs].rhs] + before[e.lhs].more != [e.rhs] + e.more]
    problem3 = SimpleNamespace(
        loss=Eq(ts3(d3.step[-1][0]), ts3(d3.step[-1][1])),
        g=ts3(g, inline=True), o=ts3(o, inline=True),
        g_is=ts3(Eq_(g, Adjoint(o), evaluate=False), inline=True),
        head=ts3(Eq_(Adjoint(o), d3.adjoints[Adjoint(o)], evaluate=False), inline=True),
        old_head=ts2(unit_sum_targets(d2.adjoints[Adjoint(o)], cell), inline=True),
        old_head_lhs=ts3(Adjoint(o), inline=True),
        changed=changed, same_output=cell.output == "upstream")

    checks, check = _check_context(cell, tables, ts2)

    # the remarks after the result
    W, h = cell.param("W"), next(v for v in cell.states)
    recurrence = next(s for s in p2.steps if s.kind == "recurrence") \
        if any(s.kind == "recurrence" for s in p2.steps) else None
    diagonals = sorted(recurrence.expr.atoms(DiagMatrix), key=str) if recurrence else []
    product, steps_ahead = _product_of_factors(recurrence.expr, h, profile.layout) \
        if recurrence else (None, None)
    remarks = SimpleNamespace(
        WT=ts2(W.T, inline=True), spaces={v.name: ts2.space(v) for v in (W, h)},
        diag=ts2(diagonals[0], inline=True) if diagonals else None,
        product=ts2(product) if product is not None else None,
        increasing=profile.layout != "row",
        j=ts2(steps_ahead, inline=True) if steps_ahead is not None else None,
        t_plus_j=ts2(time + steps_ahead, inline=True) if steps_ahead is not None else None,
        dh_next=ts2(Adjoint(StepVar(h.name, time + 1, *h.shape)), inline=True),
        dh_t=ts2(Adjoint(StepVar(h.name, time, *h.shape)), inline=True),
        dW=ts2(Adjoint(W), inline=True),
        delta=ts2(Adjoint(StepVar("z", time, *h.shape)), inline=True))
    norms = _norms_context(ts3, norms, upstream)
    return SimpleNamespace(
        cell=cell, cell_name=latex_text(cell.name), activation=cell.activation,
        output=cell.output, bias=cell.bias, is_exercise=is_exercise,
        activation_words=functions()[cell.activation].words
        if cell.activation in functions() else "the identity",
        p2=p2, p3=p3, fig=fig, problem3=problem3, checks=checks, check=check,
        remarks=remarks, norms=norms, rows=profile.layout == "row",
        texts=document_texts(profile, title, course, author),
        head=Eq(ts2(Adjoint(o), inline=True), problem3.old_head),
        printed=_merge([ts.printed for ts in (ts2, ts3)]))


def cell_view(cell, notation=None):
    """The derivation the derivation sheet of ``cell`` prints (``d``, ``ts``, ``info``, as
    ``readable`` makes them); ``checked``: ``[(label, derivation, cell)]`` whose
    numerical check it prints."""
    profile = load_notation(notation)
    d, ts, info = readable(cell, profile)
    name = latex_text(cell.name) if isinstance(cell, (LSTM, GRU)) or _plain(cell.name) else None
    return SimpleNamespace(cell=cell, profile=profile, d=d, ts=ts, info=info, name=name,
                           checked=[(name or "", d, cell)])


def cell_context(view, tables, title=None, course=None, author=None):
    """Everything ``cell.tex.j2`` prints: the derivation sheet of any cell, its
    derivation from ``cell_view(cell, ...)`` and the table of its check
    (``GradientTable`` of each of ``view.checked``). (The text the cell was parsed from
    is not printed: the document shows the cell's equations as mathematics.)"""
    cell, profile, d, ts, info, name = (view.cell, view.profile, view.d, view.ts, view.info,
                                        view.name)
    p = derivation_context(d, ts=ts, introduced=info.introduced)
    # with its pre-activations, one copy beside each edge; a crowded figure, whose edges
    # carry no copies (a gated cell), as the cell is written: the arguments of the gates
    # would only add a level of nodes
    fig = unrolled_figure(d.cell, FIGURE_T, ts) if not isinstance(cell, (LSTM, GRU)) else None
    if fig is None or not fig.labelled:
        fig = unrolled_figure(cell, FIGURE_T, ts)
    checks, check = _check_context(d.cell, tables, ts)
    return SimpleNamespace(cell=cell, name=name, d=p, fig=fig,
                           checks=checks, check=check,
                           texts=document_texts(profile, title, course, author),
                           is_gated=isinstance(cell, (LSTM, GRU)),
                           kind="lstm" if isinstance(cell, LSTM) else
                           "gru" if isinstance(cell, GRU) else "text",
                           printed=ts.printed)


def _plain(name):
    """A cell's name worth printing in a title: short, letters, digits and a few marks."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.,()+-]{0,59}", name or ""))


def _merge(lists):
    out = []
    for lst in lists:
        for x in lst:
            if x not in out:
                out.append(x)
    return out


def render_sheet_text(context):
    """The text of ``sheet08.tex`` from ``sheet_context(...)``."""
    return environment().get_template(f"{SHEET}.tex.j2").render(s=context)


def render_cell_text(context):
    """The text of the derivation sheet of a cell from ``cell_context(...)``."""
    return environment().get_template("cell.tex.j2").render(s=context)


def document_name(cell, notation=None):
    """The file name (without .tex) of the document for ``cell`` (and, unless it is the
    default, the notation profile's name)."""
    if cell is None or isinstance(cell, ElmanRNN):
        name = SHEET
    else:
        stem = re.sub(r"[^A-Za-z0-9]+", "-", cell.name).strip("-").lower()[:60] or "cell"
        name = f"derivation-{stem}"
    profile = load_notation(notation)
    if profile.name != DEFAULT:
        suffix = re.sub(r"[^A-Za-z0-9]+", "-", profile.name).strip("-").lower()[:40]
        name += f"-{suffix or 'notation'}"
    return name


