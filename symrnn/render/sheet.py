"""The solution sheet: render ``templates/sheet08.tex.j2``, compile it with TeX.

``render_sheet(cell)`` returns the LaTeX text; ``write_sheet(out_dir, cell, pdf)``
writes ``sheet08.tex`` (and ``sheet08.pdf`` when TeX is there) without ever
leaving a half-written file in ``out_dir``.
"""
import errno
import importlib.resources
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
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
from .gradient_norms import NORMS, gradient_norms
from .latex_printer import Partial, ProductOverTime, printer_for
from .narrative import Eq, Typesetter, check_typesettable, derivation_context, fit, pack
from .notation import DEFAULT, cell_kind, load_notation
from .numeric_check import check_gradients
from .preactivations import name_preactivations
from .rewrite import unit_sum_targets
from .text import latex_text
from .tikz import unrolled_figure

__all__ = ["SheetError", "cell_context", "check_sizes", "document_name", "environment",
           "printed_expressions", "readable", "render_cell_document", "render_derivation",
           "render_sheet", "sheet_context", "template_dirs", "tex_engine", "write_sheet"]

SHEET = "sheet08"
FIGURE_T = 3
CHECK = dict(T=5, sizes=(3, 4, 2), seed=0)
# the sizes of the check beyond the first three (a cell may have any number of sizes)
MORE_SIZES = (5, 3, 4, 2)
# where the results stand in Goodfellow et al. (2016), section 10.2.2 (keys: see
# narrative.summary); only for the exercise's model, which is the book's without biases
TEXTBOOK_EQUATIONS = {"o": "(10.18)", "hT": "(10.19)", "h": "(10.21)", "V": "(10.24)",
                      "W": "(10.26)", "U": "(10.28)"}
TEX_HINT = ("no TeX engine found: install latexmk and pdflatex (Debian: apt-get install "
            "latexmk texlive-latex-recommended texlive-pictures) to get the PDF")


class SheetError(RuntimeError):
    """TeX could not compile the sheet; the message names the first error and its line."""


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


def check_sizes(cell):
    """The sizes of the numerical check: 3, 4, 2 for the first three sizes of ``cell``
    (D, N, M for the presets), then 5, 3, 4, 2, ... for any further one."""
    values = list(CHECK["sizes"]) + [MORE_SIZES[k % len(MORE_SIZES)]
                                     for k in range(max(0, len(cell.sizes) - 3))]
    return tuple(values[:len(cell.sizes)])


def _check_context(cell, derivations, ts):
    """The table of the numerical check: one block of rows per (label, derivation, the
    cell the derivation was made for)."""
    checks = []
    for label, d, original in derivations:
        rows = check_gradients(d, T=CHECK["T"], sizes=check_sizes(d.cell), seed=CHECK["seed"],
                               reference_cell=original)
        checks.append(SimpleNamespace(model=label, rows=[SimpleNamespace(
            name=ts(_gradient_symbol(d.cell, r.name), inline=True),
            fd=_number(ts, r.rel_err_fd), independent=_number(ts, r.rel_err_independent),
            fd_value=r.rel_err_fd, independent_value=r.rel_err_independent) for r in rows]))
    all_rows = [r for c in checks for r in c.rows]
    for c in checks:  # a long table in two halves side by side
        half = (len(c.rows) + 1) // 2 if len(c.rows) > 8 else len(c.rows)
        c.pairs = [(c.rows[k], c.rows[k + half] if k + half < len(c.rows) else None)
                   for k in range(half)]
    sizes = dict(zip(cell.sizes, check_sizes(cell)))
    finite = all(r.fd_value is not None and math.isfinite(r.fd_value) for r in all_rows)
    return checks, SimpleNamespace(
        T=ts(Eq_(T, CHECK["T"]), inline=True),
        sizes=[ts(Eq_(size, value), inline=True) for size, value in sizes.items()],
        fd_bound=_bound(ts, [r.fd_value for r in all_rows]),
        independent_bound=_bound(ts, [r.independent_value for r in all_rows]),
        finite=finite,
        has_independent=any(r.independent_value is not None for r in all_rows))


def _norms_context(ts, d3, cell):
    """The curves of ||dL/dh^(t)|| against T - t and what the caption prints."""
    W = cell.param("W")
    h = next(v for v in cell.states)
    curves = gradient_norms(d3, recurrent=W.name)
    rho = Symbol("rho")
    for c in curves:
        c.legend = ts(Eq_(rho, Float(c.rho, 3)), inline=True)
    sizes = dict(zip(cell.sizes, NORMS["sizes"]))
    last_loss = StepVar("L", T, 1, 1)
    return SimpleNamespace(
        curves=curves, steps=NORMS["steps"],
        dh=ts(Adjoint(StepVar(h.name, time, *h.shape)), inline=True),
        dlast=ts(Partial(last_loss, StepVar(h.name, time, *h.shape)), inline=True),
        W=ts(W, inline=True), rho=ts(rho, inline=True),
        dh0=ts(Adjoint(StepVar(h.name, 0, *h.shape)), inline=True),
        h0_zero=ts(Eq_(StepVar(h.name, 0, *h.shape), ZeroMatrix(*h.shape), evaluate=False),
                   inline=True),
        g=ts(cell.targets[0], inline=True),
        sizes=[ts(Eq_(size, value), inline=True) for size, value in sizes.items()],
        input_scale=ts(Pow(10, int(round(math.log10(NORMS["input_scale"]))),
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


def sheet_context(cell=None, notation=None, title=None, course=None, author=None):
    """Everything ``sheet08.tex.j2`` prints, for ``cell`` (default: the exercise's RNN)."""
    cell = cell if cell is not None else ElmanRNN()
    if not isinstance(cell, ElmanRNN):
        raise ValueError(f"cell: the solution sheet is about the Elman RNN of the exercise, "
                         f"not {cell.name!r}; use 'symrnn sheet --cell' or "
                         "render_cell_document() for other cells")
    profile = load_notation(notation)
    is_exercise = (cell.activation, cell.output, cell.bias) == ("tanh", "softmax_ce", False)
    # Problem 2: the model of the exercise (or the variant asked for)
    d2, ts2, _ = readable(cell, profile)
    p2 = derivation_context(d2, ts=ts2,
                            summary_tags=TEXTBOOK_EQUATIONS if is_exercise else None)
    fig = unrolled_figure(d2.cell, FIGURE_T, ts2)
    o = StepVar("o", time, *cell.param("V").shape[:1], 1)

    # Problem 3: the same network, its output fed into another network
    upstream = ElmanRNN(activation=cell.activation, output="upstream", bias=cell.bias)
    d3, ts3, _ = readable(upstream, profile)
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

    checks, check = _check_context(cell, [("Problem 2", d2, cell), ("Problem 3", d3, upstream)],
                                   ts2)

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
    norms = _norms_context(ts3, d3, upstream)
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


def cell_context(cell, source=None, notation=None, title=None, course=None, author=None):
    """Everything ``cell.tex.j2`` prints: the derivation sheet of any cell. (``source``,
    the text the cell was parsed from, is not printed: the document shows the cell's
    equations as mathematics.)"""
    profile = load_notation(notation)
    d, ts, info = readable(cell, profile)
    p = derivation_context(d, ts=ts, introduced=info.introduced)
    # with its pre-activations, one copy beside each edge; a crowded figure, whose edges
    # carry no copies (a gated cell), as the cell is written: the arguments of the gates
    # would only add a level of nodes
    fig = unrolled_figure(d.cell, FIGURE_T, ts) if not isinstance(cell, (LSTM, GRU)) else None
    if fig is None or not fig.labelled:
        fig = unrolled_figure(cell, FIGURE_T, ts)
    name = latex_text(cell.name) if isinstance(cell, (LSTM, GRU)) or _plain(cell.name) else None
    checks, check = _check_context(d.cell, [(name or "", d, cell)], ts)
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


def printed_expressions(cell=None, notation=None):
    """Every LaTeX expression the sheet prints, for testing them one by one."""
    return sheet_context(cell, notation).printed


def render_sheet(cell=None, notation=None, **texts):
    """The text of ``sheet08.tex`` for ``cell`` (default: ``ElmanRNN()``) in the notation
    profile ``notation`` (a name, a .toml file or a ``Notation``); ``texts``: title,
    course, author."""
    return environment().get_template(f"{SHEET}.tex.j2").render(
        s=sheet_context(cell, notation, **texts))


def render_cell_document(cell, source=None, notation=None, **texts):
    """The text of the standalone derivation sheet of ``cell``."""
    return environment().get_template("cell.tex.j2").render(
        s=cell_context(cell, source, notation, **texts))


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


# ---- compiling ---------------------------------------------------------------
def tex_engine():
    """The command that compiles a .tex to PDF here, or None without TeX."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                "-file-line-error"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    return None


_FILE_LINE = re.compile(r"^(?:\./)?[^:\s]+\.tex:(\d+): (.*)$")


def first_error(log, source_lines=()):
    """``'line N: message'`` of the first error in a pdflatex log, or None."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = _FILE_LINE.match(line)
        if m:
            where, message = int(m.group(1)), m.group(2).strip()
            break
        if line.startswith("! "):
            message, where = line[2:].strip(), None
            for later in lines[i + 1:i + 30]:
                n = re.match(r"^l\.(\d+)", later)
                if n:
                    where = int(n.group(1))
                    break
            break
    else:
        return None
    text = f"line {where}: {message}" if where else message
    if where and 0 < where <= len(source_lines):
        text += f"  [{source_lines[where - 1].strip()[:100]}]"
    return text


def compile_tex(tex_path, engine=None, timeout=120):
    """Compile ``tex_path`` in its own folder; return the PDF path or raise SheetError."""
    engine = engine or tex_engine()
    if engine is None:
        raise RuntimeError(TEX_HINT)
    tex_path = Path(tex_path)
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # the same PDF for the same .tex
    env.setdefault("FORCE_SOURCE_DATE", "1")
    runs = 1 if engine[0] == "latexmk" else 2  # pdflatex: twice for the references
    for _ in range(runs):
        try:
            proc = subprocess.run(engine + [tex_path.name], cwd=tex_path.parent, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SheetError(f"{tex_path.name}: TeX did not finish in {timeout} s") from None
        pdf = tex_path.with_suffix(".pdf")
        if proc.returncode != 0 or not pdf.exists():
            log_file = tex_path.with_suffix(".log")
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            source = tex_path.read_text().splitlines()
            error = first_error(log, source) or first_error(proc.stdout, source) \
                or f"{engine[0]} exited with status {proc.returncode}"
            raise SheetError(f"{tex_path.name}: LaTeX error at {error}")
    return pdf


def _replace(src, dst):
    """Move ``src`` over ``dst`` in one step (a copy next to dst first if on another disk)."""
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def _note(message):
    print(message, file=sys.stderr)


def write_sheet(out_dir="output", cell=None, pdf=None, notify=_note, source=None,
                notation=None, **texts):
    """Write ``out_dir/sheet08.tex`` and, with TeX, ``out_dir/sheet08.pdf``; for a cell
    other than the Elman RNN its derivation sheet ``derivation-<name>.tex/.pdf``.

    pdf=None: compile when a TeX engine is installed (else one line on how to get it,
    through ``notify``); pdf=True: TeX is required (RuntimeError without it);
    pdf=False: the .tex only. A failed compile raises SheetError and writes no
    file (``out_dir`` is created first, to fail early when it cannot be).
    ``notation``: a notation profile (a name, a .toml file or a ``Notation``); a profile
    other than the default adds its name to the file name. ``texts``: title, course,
    author. Returns the paths written.
    """
    engine = tex_engine() if pdf is not False else None
    if pdf is True and engine is None:
        raise RuntimeError(TEX_HINT)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # fail before the seconds of TeX, not after
    if not os.access(out, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(out))
    name = document_name(cell, notation)
    options = {k: v for k, v in dict(texts, notation=notation).items() if v is not None}
    text = render_sheet(cell, **options) if cell is None or isinstance(cell, ElmanRNN) \
        else render_cell_document(cell, source, **options)
    with tempfile.TemporaryDirectory(prefix="symrnn-sheet-") as build:
        tex = Path(build) / f"{name}.tex"
        tex.write_text(text, encoding="utf-8")
        made = [tex]
        if engine is not None:
            made.append(compile_tex(tex, engine))
        written = []
        for path in made:
            target = out / path.name
            _replace(path, target)
            written.append(target)
    if pdf is None and engine is None:
        notify(TEX_HINT)
    return written
