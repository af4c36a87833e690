"""The exercise sheet and the solution sheet of one variant: what their templates
(``templates/exercise.tex.j2``, ``templates/exercise-solution.tex.j2``) print.

Every formula is the engine's: the variant's cell derived and typeset as the derivation
sheets do (``render.sheet.cell_view``: pre-activations named, their gradients delta),
Problem 3 from the derivation of the same network with its output fed into another
network, the check's table from ``checking.gradient_table``.
"""
from types import SimpleNamespace

from sympy import Eq as Eq_

from ..checking.gradient_table import gradient_table
from ..graph.unroll import T, t
from ..model.nodes import Adjoint, StepVar
from ..render import sheet
from ..render.narrative import Eq, derivation_context
from ..render.notation import load_notation
from ..render.rewrite import unit_sum_targets
from ..render.text import latex_text

__all__ = ["Views", "exercise_context", "render", "solution_context", "tables"]


class Views:
    """The derivations of one variant: Problem 2's (``two``: ``render.sheet.cell_view`` of
    its cell) and Problem 3's (``three``), in the variant's notation profile."""

    def __init__(self, choice, texts=None):
        self.choice = choice
        self.profile = load_notation(choice.notation)
        self.cell = choice.cell()
        self.upstream = choice.upstream()
        self.two = sheet.cell_view(self.cell, self.profile)
        self.three = sheet.cell_view(self.upstream, self.profile)
        self.p2 = derivation_context(self.two.d, ts=self.two.ts,
                                     introduced=self.two.info.introduced)
        self.texts = texts or {}

    def output(self):
        """o^(t), the output the loss reads (a StepVar of the derivation)."""
        o = next(v for v in self.cell.variables if v.name == "o")
        return StepVar("o", t, *o.shape)


def _head(v):
    """dL/do^(t) = ... of Problem 2, as the exercise gives it."""
    ts, d = v.two.ts, v.two.d
    o = v.output()
    return Eq(ts(Adjoint(o), inline=True),
              ts(unit_sum_targets(d.adjoints[Adjoint(o)], d.cell), inline=True))


def exercise_context(v, number, count, seed):
    """Everything ``exercise.tex.j2`` prints for the variant of ``v`` (a ``Views``)."""
    ts, cell, p2 = v.two.ts, v.two.d.cell, v.p2
    h = cell.states[0]
    x = cell.inputs[0]
    first = cell.params[0]
    return SimpleNamespace(
        number=number, count=count, seed=seed, cell_name=latex_text(cell.name),
        texts=sheet.document_texts(v.profile, **v.texts),
        previous=ts(StepVar(h.name, t - 1, *h.shape), inline=True),
        state_space=ts.space(h), input=ts(StepVar(x.name, t, *x.shape), inline=True),
        input_space=ts.space(x),
        forward=p2.forward, params=p2.params, one_hot=p2.one_hot,
        target=ts(StepVar(cell.targets[0].name, t, *cell.targets[0].shape), inline=True),
        T=ts(T), time=ts(t), loss_total=p2.loss_total,
        gradients=[ts(Adjoint(p), inline=True) for p in cell.params],
        head=_head(v),
        first_param=ts(first, inline=True),
        copy=ts(StepVar(first.name, t, *first.shape), inline=True),
        copy_gradient=ts(Adjoint(StepVar(first.name, t, *first.shape)), inline=True),
        output=ts(v.output(), inline=True))


def tables(v):
    """The numerical check of both problems (``GradientTable`` each)."""
    return [gradient_table(v.two.d, "Problem 2", reference_cell=v.cell),
            gradient_table(v.three.d, "Problem 3", reference_cell=v.upstream)]


def _problem3(v):
    d2, ts2 = v.two.d, v.two.ts
    d3, ts3 = v.three.d, v.three.ts
    o = v.output()
    target = v.upstream.targets[0]
    g = StepVar(target.name, t, *target.shape)
    p3 = derivation_context(d3, ts=ts3, introduced=v.three.info.introduced)
    before = {e.lhs: e for e in v.p2.summary}
    changed = [e for e in p3.summary if before.get(e.lhs) is None
               or [before[e.lhs].rhs] + before[e.lhs].more != [e.rhs] + e.more]
    return SimpleNamespace(
        loss=Eq(ts3(d3.step[-1][0]), ts3(d3.step[-1][1])),
        g=ts3(g, inline=True), o=ts3(o, inline=True),
        g_is=ts3(Eq_(g, Adjoint(o), evaluate=False), inline=True),
        head=ts3(Eq_(Adjoint(o), d3.adjoints[Adjoint(o)], evaluate=False), inline=True),
        old_head=ts2(unit_sum_targets(d2.adjoints[Adjoint(o)], d2.cell), inline=True),
        old_head_lhs=ts3(Adjoint(o), inline=True), changed=changed)


def solution_context(v, number, count, seed, check_tables):
    """Everything ``exercise-solution.tex.j2`` prints for the variant of ``v``."""
    context = sheet.cell_context(v.two, check_tables, **v.texts)
    words = v.choice.describe()
    return SimpleNamespace(
        number=number, count=count, seed=seed, cell_name=latex_text(v.cell.name),
        texts=context.texts, words=latex_text(words), d=context.d, fig=context.fig,
        checks=context.checks, check=context.check, problem3=_problem3(v),
        printed=context.printed)


def render(template, context):
    return sheet.environment().get_template(template).render(s=context)

