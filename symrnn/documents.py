"""The documents: the solution sheet and the derivation sheet of any cell, typeset by
``symrnn.render`` with the numbers ``symrnn.checking`` computes for them.

``render.sheet`` says which derivations a document checks numerically and plots
(``exercise(...).checked``, ``.plotted``; ``cell_view(...).checked``), this module
computes their numbers (``checking.gradient_table``, ``checking.gradient_norms``) and
hands them to render, which only formats. ``write_sheet`` writes the .tex and, with
TeX, the PDF, never leaving a half-written file.
"""
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .checking.gradient_norms import gradient_norms
from .checking.gradient_table import gradient_table
from .model.presets import ElmanRNN
from .render import sheet
from .render.tex import TEX_HINT, compile_tex, tex_engine

__all__ = ["cell_context", "printed_expressions", "render_cell_document", "render_sheet",
           "sheet_context", "write_sheet"]


def _tables(checked):
    return [gradient_table(d, label, reference_cell=cell) for label, d, cell in checked]


def sheet_context(cell=None, notation=None, title=None, course=None, author=None):
    """Everything ``sheet08.tex.j2`` prints, for ``cell`` (default: the exercise's RNN)."""
    ex = sheet.exercise(cell, notation)
    derivation, recurrent = ex.plotted
    return sheet.sheet_context(ex, _tables(ex.checked),
                               gradient_norms(derivation, recurrent=recurrent),
                               title=title, course=course, author=author)


def cell_context(cell, source=None, notation=None, title=None, course=None, author=None):
    """Everything ``cell.tex.j2`` prints: the derivation sheet of ``cell``. (``source``,
    the text the cell was parsed from, is not printed: the document shows the cell's
    equations as mathematics.)"""
    view = sheet.cell_view(cell, notation)
    return sheet.cell_context(view, _tables(view.checked), title=title, course=course,
                              author=author)


def printed_expressions(cell=None, notation=None):
    """Every LaTeX expression the solution sheet prints, for testing them one by one."""
    return sheet_context(cell, notation).printed


def render_sheet(cell=None, notation=None, **texts):
    """The text of ``sheet08.tex`` for ``cell`` (default: ``ElmanRNN()``) in the notation
    profile ``notation`` (a name, a .toml file or a ``Notation``); ``texts``: title,
    course, author."""
    return sheet.render_sheet_text(sheet_context(cell, notation, **texts))


def render_cell_document(cell, source=None, notation=None, **texts):
    """The text of the standalone derivation sheet of ``cell``."""
    return sheet.render_cell_text(cell_context(cell, source, notation, **texts))


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
    name = sheet.document_name(cell, notation)
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
