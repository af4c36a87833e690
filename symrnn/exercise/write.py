"""Writing the variants: the sheets (.tex, and .pdf with TeX), the answer key and the
Moodle quiz, all into a temporary folder next to the output folder, moved there at the
end (never a half-written file). The same seed and family give the same bytes: no
date anywhere, JSON with sorted keys, PDFs with SOURCE_DATE_EPOCH and an empty /ID."""
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..checking.problems import valid_seed
from ..render.tex import TEX_HINT, compile_tex, tex_engine
from ..render.text import expression_text
from . import moodle, numbers, sheets
from .family import Family, make_family

__all__ = ["Variant", "draw", "write_exercises", "MAX_VARIANTS"]

MAX_VARIANTS = 500
KEY = "answer-key.json"
QUIZ = "moodle.xml"


class Variant:
    """Variant ``number`` (from 1) of ``count``: its ``choice`` of the family."""

    def __init__(self, number, count, seed, choice):
        self.number, self.count, self.seed, self.choice = number, count, seed, choice
        self._views = None

    def __repr__(self):
        return f"<Variant {self.number}: {self.choice.name()}, {self.choice.notation}>"

    @property
    def views(self):
        if self._views is None:
            self._views = sheets.Views(self.choice)
        return self._views

    @property
    def stem(self):
        return f"{self.number:0{max(2, len(str(self.count)))}d}"

    @property
    def cell(self):
        """The cell the solution sheet derives (its pre-activations named)."""
        return self.views.two.d.cell

    @property
    def notation(self):
        """The ``symrnn.grading.Notation`` in which the sheets write the answers (the
        profile's symbols and layout, the sheet's deltas)."""
        from ..grading.notation import from_profile
        two = self.views.two
        return from_profile(self.views.profile, two.d.cell, adjoints=two.info.deltas)

    def answers(self):
        """{parameter: {"latex": ..., "text": ...}}: the gradients as the solution sheet
        prints them (LaTeX) and as ``symrnn derive`` does (text)."""
        two = self.views.two
        out = {}
        for p in two.d.cell.params:
            g = two.d.gradients[p.name]
            out[p.name] = {"latex": two.ts(g),
                           "text": expression_text(g, two.d.cell, self.views.profile)}
        return out


def draw(count, seed, family=None):
    """The ``count`` variants of ``family`` (default: ``make_family()``) for ``seed``:
    the family's cells in an order drawn with the seed, one per variant (repeating only
    when the family has fewer cells than variants)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VARIANTS:
        raise ValueError(f"variants: expected a whole number from 1 to {MAX_VARIANTS}, got "
                         f"{count!r}")
    valid_seed(seed)
    family = make_family() if family is None else family
    if not isinstance(family, Family):
        raise ValueError(f"family: expected a symrnn.exercise.Family, got "
                         f"{type(family).__name__}")
    cells = family.cells()
    order = np.random.default_rng(seed).permutation(len(cells))
    return [Variant(k + 1, count, seed, cells[order[k % len(cells)]]) for k in range(count)]


def _array(a):
    return np.asarray(a).tolist()


def _numerical(variant, problem):
    row = variant.views.profile.layout == "row"
    entries = []
    for name, index, value, check, tolerance in problem.entries:
        i, j = index[::-1] if row else index
        entries.append({"gradient": name, "row": i + 1, "column": j + 1,
                        "value": round(value, 10), "tolerance": tolerance})
    return {"T": len(problem.xs), "sizes": dict(numbers.SIZES),
            "params": {k: _array(v) for k, v in problem.params.items()},
            "x": _array(problem.xs), "y": _array(problem.ys), "h0": _array(problem.h0),
            "entries": entries}


def _key(seed, family, variants, files, numeric):
    return {"seed": seed, "family": family.as_dict(), "variants": [
        {"number": v.number, "choice": v.choice.as_dict(), "cell": v.choice.name(),
         "files": files[v.number], "answers": v.answers(),
         **({"numerical": numeric[v.number]} if v.number in numeric else {})}
        for v in variants]}


def _compile(tex, engine, logs):
    folder = tex.parent / f".build-{tex.stem}"
    folder.mkdir()
    copy = folder / tex.name
    shutil.copyfile(tex, copy)
    pdf = compile_tex(copy, engine)
    if logs is not None:
        shutil.copyfile(copy.with_suffix(".log"), logs / f"{tex.stem}.log")
    target = tex.with_suffix(".pdf")
    os.replace(pdf, target)
    shutil.rmtree(folder)
    return target


def _move_into(build, out):
    """Move the finished files of ``build`` into ``out`` (a new folder: renamed at once)."""
    if not out.exists():
        os.rename(build, out)
        return
    for path in sorted(build.rglob("*")):
        if path.is_file():
            target = out / path.relative_to(build)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    shutil.rmtree(build)


def write_exercises(out, count, seed, family=None, *, pdf=None, numerical=True, logs=False,
                    notify=None, texts=None):
    """Write ``count`` variants of exercise sheet 08 into the folder ``out``.

    For each variant k: ``exercise-k.tex`` and ``solution-k.tex`` (and their PDFs: with
    pdf=None when TeX is installed, pdf=True requires it, pdf=False writes .tex only),
    each on the variant's cell drawn from ``family`` (a ``Family``; default
    ``make_family()``); ``answer-key.json`` (the family, every variant's choice and its
    gradients as the solution prints them, the numbers of the numerical variant); with
    ``numerical``, ``moodle.xml``: the numerical variants as Moodle questions. ``logs``:
    TeX's logs into ``out/logs``. ``texts``: {title, course, author} of the sheets.
    Returns the paths written. Nothing is written to ``out`` unless all succeeds.
    """
    variants = draw(count, seed, family)
    family = make_family() if family is None else family
    engine = tex_engine() if pdf is not False else None
    if pdf is True and engine is None:
        raise RuntimeError(TEX_HINT)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} is a file, not a folder")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"out: the folder {parent} does not exist")
    build = Path(tempfile.mkdtemp(prefix=".symrnn-exercise-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        build.chmod(0o777 & ~umask)          # a folder as mkdir makes it, not mkdtemp's 0700
        log_dir = build / "logs" if logs and engine is not None else None
        if log_dir is not None:
            log_dir.mkdir()
        files, numeric, items = {}, {}, []
        for v in variants:
            if texts:
                v.views.texts = dict(texts)
            names = {}
            tables = sheets.tables(v.views)
            for kind, template, context in (
                    ("exercise", "exercise.tex.j2",
                     sheets.exercise_context(v.views, v.number, count, seed)),
                    ("solution", "exercise-solution.tex.j2",
                     sheets.solution_context(v.views, v.number, count, seed, tables))):
                tex = build / f"{kind}-{v.stem}.tex"
                tex.write_text(sheets.render(template, context), encoding="utf-8")
                names[kind] = tex.name
                if engine is not None:
                    names[f"{kind} pdf"] = _compile(tex, engine, log_dir).name
            files[v.number] = names
            if numerical:
                problem = numbers.numeric_problem(v.choice, (seed, v.number))
                numeric[v.number] = _numerical(v, problem)
                items += moodle.questions(v.number, v.views, problem)
        if numerical:
            data = moodle.quiz(f"symrnn exercise 08, seed {seed}", items)
            moodle.check_quiz(data)
            (build / QUIZ).write_bytes(data)
        key = _key(seed, family, variants, files, numeric)
        (build / KEY).write_text(json.dumps(key, indent=1, sort_keys=True) + "\n",
                                 encoding="utf-8")
        written = sorted(p.relative_to(build) for p in build.rglob("*") if p.is_file())
        _move_into(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    if pdf is None and engine is None and notify is not None:
        notify(TEX_HINT)
    return [out / p for p in written]
