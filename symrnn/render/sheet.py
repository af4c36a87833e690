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
from sympy import Eq as Eq_, Float, Integer, MatMul, Pow
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..derivation import derive
from ..graph.unroll import T, t as time
from ..model.nodes import Adjoint, StepVar
from ..model.gated import GRU, LSTM
from ..model.presets import ElmanRNN
from .narrative import Eq, Typesetter, derivation_context
from .numeric_check import check_gradients
from .rewrite import as_diag, unit_sum_targets
from .tikz import unrolled_figure

__all__ = ["SheetError", "environment", "printed_expressions", "render_derivation",
           "render_sheet", "sheet_context", "template_dirs", "tex_engine", "write_sheet"]

SHEET = "sheet08"
FIGURE_T = 3
CHECK = dict(T=5, sizes=(3, 4, 2), seed=0)
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


_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}"}


def _escape(text):
    """Plain text (a cell's name) made safe for LaTeX."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def environment():
    """Jinja2 with LaTeX-safe delimiters: <% ... %>, << ... >>, <# ... #>."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs()]),
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["tex"] = _escape
    return env


def render_derivation(derivation, figure_T=None, adjoint_names=None, label="fig:unrolled"):
    """The LaTeX of the model, rules, step-by-step backward pass and results of any
    derivation, with the same macros as the sheet (for the appendix on other cells)."""
    d = derivation_context(derivation, adjoint_names)
    fig = unrolled_figure(derivation.cell, figure_T, d.typesetter) if figure_T else None
    body = ("<% import 'derivation.tex.j2' as m %>"
            "<< m.model(d, fig, label) >>\n\n<< m.rules(d) >>\n\n<< m.derivation(d) >>\n\n"
            "<< m.results(d) >>\n")
    return environment().from_string(body).render(d=d, fig=fig, label=label)


def _number(ts, x):
    if x is None:
        return "n/a"
    return "$%s$" % ts(Integer(0) if x == 0 else Float(x, 2))


def _gradient_symbol(cell, name):
    for p in cell.params:
        if p.name == name:
            return Adjoint(p)
    for s in cell.states:
        if f"{s.name}0" == name:
            return Adjoint(StepVar(s.name, 0, *s.shape))
    raise KeyError(name)


def _compare(ts, d2, d3):
    """Which adjoints differ between the two derivations, which are the same, and
    which gradients of parameters and initial states are the same."""
    changed, same = [], []
    for a, e in d2.adjoints.items():
        (changed if d3.adjoints.get(a) != e else same).append(ts(a, inline=True, names=False))
    same_gradients = []
    for name, g in d2.gradients.items():
        symbol = ts(_gradient_symbol(d2.cell, name), inline=True)
        (same_gradients if d3.gradients.get(name) == g else changed).append(symbol)
    return changed, same, same_gradients


def _bound(ts, values):
    """The smallest power of ten above all ``values``, printed (None when all are None)."""
    values = [abs(v) for v in values if v is not None]
    if not values:
        return None
    exponent = max(math.ceil(math.log10(max(max(values), 1e-300))), -16)
    return ts(Pow(10, exponent, evaluate=False), inline=True)


def sheet_context(cell=None):
    """Everything ``sheet08.tex.j2`` prints, for ``cell`` (default: the exercise's RNN)."""
    cell = cell if cell is not None else ElmanRNN()
    if isinstance(cell, (LSTM, GRU)):
        cell = ElmanRNN()  # the exercise's network; the gated cells are in the appendix
    if not isinstance(cell, ElmanRNN):
        raise ValueError("the sheet is about the Elman RNN of the exercise; "
                         "use render_derivation() for other cells")
    appendix = [SimpleNamespace(name=gated.name, params=len(gated.params),
                                states=len(gated.states),
                                tex=render_derivation(derive(gated),
                                                      label=f"fig:{gated.name.lower()}"))
                for gated in (LSTM(), GRU())]
    # Problem 2: the model of the exercise (or the one asked for)
    d2 = derive(cell)
    p2 = derivation_context(d2)
    ts2 = p2.typesetter
    fig_ts = Typesetter(cell)
    fig = unrolled_figure(cell, FIGURE_T, fig_ts)
    o = StepVar("o", time, *next(v for v in cell.variables if v.name == "o").shape)
    head2 = unit_sum_targets(d2.adjoints[Adjoint(o)], cell)

    # Problem 3: the same network, its output fed into another network
    upstream = ElmanRNN(activation=cell.activation, output="upstream", bias=cell.bias)
    d3 = derive(upstream)
    p3 = derivation_context(d3)
    ts3 = p3.typesetter
    g = StepVar(upstream.targets[0].name, time, *upstream.targets[0].shape)
    changed, same, same_gradients = _compare(ts3, d2, d3)
    problem3 = SimpleNamespace(
        loss=Eq(ts3(d3.step[-1][0]), ts3(d3.step[-1][1])),
        g=ts3(g, inline=True), o=ts3(o, inline=True),
        g_is=Eq(ts3(g), ts3(Adjoint(o))),
        head=Eq(ts3(Adjoint(o)), ts3(d3.adjoints[Adjoint(o)])),
        old_head=ts3(head2, inline=True), old_head_lhs=ts3(Adjoint(o), inline=True),
        changed=changed, same=same, same_gradients=same_gradients,
        same_output=cell.output == "upstream")

    # the check against NumPy, computed now
    ts_check = Typesetter(cell)
    checks = []
    for label, d in (("Problem 2", d2), ("Problem 3", d3)):
        rows = check_gradients(d, **CHECK)
        checks.append(SimpleNamespace(model=label, rows=[SimpleNamespace(
            name=ts_check(_gradient_symbol(d.cell, r.name), inline=True),
            fd=_number(ts_check, r.rel_err_fd),
            independent=_number(ts_check, r.rel_err_independent),
            fd_value=r.rel_err_fd, independent_value=r.rel_err_independent) for r in rows]))
    all_rows = [r for c in checks for r in c.rows]
    check = SimpleNamespace(
        T=ts_check(Eq_(T, CHECK["T"]), inline=True),
        sizes=[ts_check(Eq_(size, value), inline=True)
               for size, value in zip(cell.sizes, CHECK["sizes"])],
        fd_bound=_bound(ts_check, [r.fd_value for r in all_rows]),
        independent_bound=_bound(ts_check, [r.independent_value for r in all_rows]))

    # the remarks after the result
    W, h = cell.param("W"), next(v for v in cell.states if v.name == "h")
    z_next = Adjoint(StepVar("z", time + 1, *h.shape))
    delta_next = as_diag(unit_sum_targets(d2.inline(z_next), cell))
    diagonals = sorted(delta_next.atoms(DiagMatrix), key=str)
    remarks = SimpleNamespace(
        WT=ts2(W.T, inline=True), spaces={v.name: ts2.space(v) for v in (W, h)},
        factor=ts2(MatMul(W.T, diagonals[0]) if diagonals else W.T, inline=True),
        delta_next=Eq(ts2(z_next), ts2(delta_next)) if diagonals else None,
        dh_next=ts2(Adjoint(StepVar("h", time + 1, *h.shape)), inline=True),
        dh_t=ts2(Adjoint(StepVar("h", time, *h.shape)), inline=True),
        dW=ts2(Adjoint(W), inline=True))

    return SimpleNamespace(
        cell=cell, cell_name=_escape(cell.name), activation=cell.activation,
        output=cell.output, bias=cell.bias,
        is_exercise=(cell.activation, cell.output, cell.bias) == ("tanh", "softmax_ce", False),
        p2=p2, p3=p3, fig=fig, problem3=problem3, checks=checks, check=check,
        remarks=remarks, appendix=appendix,
        head=Eq(ts2(Adjoint(o), inline=True), ts2(head2, inline=True)),
        printed=_merge([ts.printed for ts in (ts2, fig_ts, ts3, ts_check)]))


def _merge(lists):
    out = []
    for lst in lists:
        for x in lst:
            if x not in out:
                out.append(x)
    return out


def printed_expressions(cell=None):
    """Every LaTeX expression the sheet prints, for testing them one by one."""
    return sheet_context(cell).printed


def render_sheet(cell=None):
    """The text of ``sheet08.tex`` for ``cell`` (default: ``ElmanRNN()``)."""
    return environment().get_template(f"{SHEET}.tex.j2").render(s=sheet_context(cell))


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


def write_sheet(out_dir="output", cell=None, pdf=None, notify=_note):
    """Write ``out_dir/sheet08.tex`` and, with TeX, ``out_dir/sheet08.pdf``.

    pdf=None: compile when a TeX engine is installed (else one line on how to get it,
    through ``notify``); pdf=True: TeX is required (RuntimeError without it);
    pdf=False: the .tex only. A failed compile raises SheetError and writes no
    file (``out_dir`` is created first, to fail early when it cannot be).
    Returns the paths written.
    """
    engine = tex_engine() if pdf is not False else None
    if pdf is True and engine is None:
        raise RuntimeError(TEX_HINT)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # fail before the seconds of TeX, not after
    if not os.access(out, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(out))
    text = render_sheet(cell)
    with tempfile.TemporaryDirectory(prefix="symrnn-sheet-") as build:
        tex = Path(build) / f"{SHEET}.tex"
        tex.write_text(text)
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
