"""Compiling a document with TeX: the engine found here, the first error of a log.

``compile_tex(path)`` compiles a .tex in its own folder and returns the PDF, or
raises ``SheetError`` naming the first error and its line.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["SheetError", "TEX_HINT", "compile_tex", "first_error", "tex_engine"]

TEX_HINT = ("no TeX engine found: install latexmk and pdflatex (Debian: apt-get install "
            "latexmk texlive-latex-recommended texlive-pictures) to get the PDF")


class SheetError(RuntimeError):
    """TeX could not compile the sheet; the message names the first error and its line."""


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
