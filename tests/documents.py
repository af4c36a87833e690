"""The documents the tests compile, once per session and two at a time: every text of
``TEXTS`` (the solution sheet, the LSTM and GRU sheets in the notation profiles, the
derivation sheets of the corpus of published cells in examples/cells/ and of cells with
hostile constructs), and how a person sees them: TeX's log (overfull boxes), the
number of pages, the text of the PDF."""
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

import symrnn
from symrnn.render import tex as tex_module

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "examples" / "cells").glob("*.cell"))
needs_tex = pytest.mark.skipif(tex_module.tex_engine() is None, reason="no TeX engine")

# cells written with the constructs that once crashed or printed badly: a state that
# enters another through a number, exp(0) and a division by a vector, decimals that
# multiply, a fourth size name, a loss that is not finite at random points, a loss that
# reads the previous state, named matrices of the parameters and named constants
HOSTILE = {
    "half": """\
params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
a = tanh(W @ prev(h) + U @ x)
h = 0.5 * a
o = V @ h
loss = -y.T @ log_softmax(o)
""",
    "expzero": """\
params: Wz[D,D] Uz[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(Wz @ prev(h) + Uz @ x) * exp(0 * prev(h)) / exp(prev(h))
o = V @ h
loss = 0.5 * (o - y).T @ (o - y) + 0.1 * 0.1 * 0.98 * h.T @ h
""",
    "fourth": """\
params: W[D,D] U[D,N] A[F,D] B[M,F] c[K]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
o = B @ relu(A @ h)
loss = -y.T @ log_softmax(o)
""",
    "nonfinite": """\
params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
o = V @ log(h)
loss = 0.5 * (o - y).T @ (o - y)
""",
    "prevloss": """\
params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
h = tanh(W @ prev(h) + U @ x)
loss = prev(h).T @ prev(h) + y.T @ (V @ h)
""",
    "named": """\
params: A[D,D] W[D,N] V[M,D] w[1,D]
input: x[N]
target: y[M]
state: h[D]
const: beta = 0.65 dt = 0.1
Ab = (1 - beta) * (A + A.T) + beta * (A - A.T) - 0.05 * eye(D)
Ac = Ab @ Ab.T
h = prev(h) + dt * tanh(Ab @ prev(h) + Ac @ prev(h) + W @ x)
o = V @ h
loss = 0.5 * (o - y).T @ (o - y) + sum(w @ Ac)
""",
}


def corpus_cell(path):
    return symrnn.parse_cell(path.read_text(), name=path.stem)


PROFILES = ("goodfellow", "d2l", "cs231n")


def document_names():
    """The names of the documents of ``texts()`` (without rendering them)."""
    names = ["sheet08", "sheet08-d2l", "sheet08-cs231n"]
    names += [f"{c}{'' if n == 'goodfellow' else '-' + n}" for c in ("lstm", "gru")
              for n in PROFILES]
    names += [p.stem for p in CORPUS] + [f"{p.stem}-d2l" for p in CORPUS[::4]]
    return names + [f"hostile-{n}" for n in HOSTILE]


def texts():
    """{document name: LaTeX}."""
    from symrnn.documents import render_cell_document, render_sheet
    out = {"sheet08": render_sheet(), "sheet08-d2l": render_sheet(notation="d2l"),
           "sheet08-cs231n": render_sheet(notation="cs231n")}
    for cell in (symrnn.LSTM, symrnn.GRU):
        for notation in PROFILES:
            name = cell.__name__.lower() + ("" if notation == "goodfellow" else f"-{notation}")
            out[name] = render_cell_document(cell(), notation=notation)
    for path in CORPUS:
        out[path.stem] = render_cell_document(corpus_cell(path))
    for path in CORPUS[::4]:  # a few in row vectors with subscripts too
        out[f"{path.stem}-d2l"] = render_cell_document(corpus_cell(path), notation="d2l")
    for name, text in HOSTILE.items():
        out[f"hostile-{name}"] = render_cell_document(symrnn.parse_cell(text, name=name))
    return out


def compile_all(documents, root):
    """Compile ``{name: LaTeX}`` in ``root``, two at a time: ``{name: SimpleNamespace(tex,
    log, pdf)}`` (pdf None when TeX failed; the log says why)."""
    paths = {}
    for name, text in documents.items():
        folder = root / name
        folder.mkdir()
        paths[name] = folder / f"{name}.tex"
        paths[name].write_text(text, encoding="utf-8")

    def build(path):
        # one pass of pdflatex: the widths and pages of the final document (the second
        # pass that latexmk adds only resolves "Figure ??" into "Figure 1")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", path.name],
                       cwd=path.parent, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=300)
        pdf = path.with_suffix(".pdf")
        return pdf if pdf.exists() else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        pdfs = dict(zip(paths, pool.map(build, paths.values())))
    return {name: SimpleNamespace(tex=path.read_text(encoding="utf-8"),
                                  log=path.with_suffix(".log").read_text(errors="replace"),
                                  pdf=pdfs[name]) for name, path in paths.items()}


def overfull(log):
    """(widths of the overfull hboxes in pt, number of overfull vboxes) in a TeX log."""
    hboxes = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    return hboxes, log.count("Overfull \\vbox")


def pages(log):
    return int(re.search(r"Output written on \S+ \((\d+) pages?", log).group(1))


def pdf_text(pdf):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext is not installed")
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout


def compiled_documents(tmp_path_factory):
    """Every document of ``texts()``, compiled (see ``compile_all``): the session fixture
    ``compiled`` of conftest.py."""
    if tex_module.tex_engine() is None:
        pytest.skip("no TeX engine")
    return compile_all(texts(), tmp_path_factory.mktemp("documents"))
