"""The documentation as a reader meets it: README.md and docs/*.md.

- The Sphinx site builds with warnings as errors and every cross-reference resolved
  (``-W -n``), offline, into a temporary directory; the operation table lists every
  operation of the registry.
- Every relative link of the README and the pages names a file that exists (and a
  heading that exists, for a link with an anchor to a Markdown page).
- Every code snippet runs. The Markdown is read with markdown-it-py (the parser under
  MyST), and each page's blocks run in order, in one namespace, in a temporary working
  directory: python blocks are executed (a block starting with ``>>>`` is a doctest),
  the ``$ symrnn ...`` lines of console blocks are parsed with the CLI's own parser.
  An HTML comment ``<!-- snippet: ... -->`` on the line above a block changes that:
  ``requires MODULE ...`` (``tex``: pdflatex and latexmk), ``run [exit=N]``, ``file
  NAME``, ``cell``, ``skip REASON``; docs/internals.md ("These pages") describes them.
- The README keeps the two command blocks that .ci/run and the main command read.
"""
import contextlib
import doctest
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))
HEAVY = {"torch", "jax", "numba", "tex"}     # the markers of tests/conftest.py
NUMBER = re.compile(r"\d+(\.\d+)?e[-+]\d+")  # 2.5e-16: compared as "a number"


@dataclass
class Snippet:
    page: Path
    line: int            # 1-based line of the opening fence
    language: str
    text: str
    requires: list = field(default_factory=list)
    run: bool = False
    exit: int = 0
    file: str = None
    cell: bool = False
    skip: str = None

    @property
    def where(self):
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _tokens(path):
    return markdown_it.MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))


def _markers(snippet, comment):
    for text in re.findall(r"<!--\s*snippet:(.*?)-->", comment, re.S):
        word, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        if word == "requires" and rest:
            snippet.requires += rest.split()
        elif word == "run" and rest in ("", *(f"exit={n}" for n in range(256))):
            snippet.run, snippet.exit = True, int(rest[5:]) if rest else 0
        elif word == "file" and rest and "/" not in rest:
            snippet.file = rest
        elif word == "cell" and not rest:
            snippet.cell = True
        elif word == "skip" and rest:
            snippet.skip = rest
        else:
            raise AssertionError(f"{snippet.where}: unknown snippet marker {text.strip()!r}")


def snippets(path):
    """The fenced blocks of ``path`` with the markers in the comments just above them."""
    tokens = _tokens(path)
    out = []
    for i, token in enumerate(tokens):
        if token.type != "fence" or token.info.startswith("{"):
            continue  # a MyST directive, not a snippet
        snippet = Snippet(path, token.map[0] + 1, (token.info.split() or [""])[0],
                          token.content)
        start, j, comments = token.map[0], i - 1, []
        while j >= 0 and tokens[j].type == "html_block" and tokens[j].map[1] == start:
            comments.insert(0, tokens[j].content)
            start, j = tokens[j].map[0], j - 1
        for comment in comments:
            _markers(snippet, comment)
        out.append(snippet)
    return out


def missing(snippet):
    """Why the snippet cannot run here (a module or TeX missing), or None."""
    for name in snippet.requires:
        if name == "tex":
            if not (shutil.which("pdflatex") and shutil.which("latexmk")):
                return "needs TeX (pdflatex, latexmk)"
        else:
            try:
                found = importlib.util.find_spec(name) is not None
            except ImportError:
                found = False
            if not found:
                return f"needs {name}"
    return snippet.skip


def _commands(snippet):
    """``[(argv, expected output), ...]`` of a console block's ``$`` lines."""
    out = []
    for line in snippet.text.splitlines():
        if line.startswith("$ "):
            out.append((shlex.split(line[2:], comments=True), []))
        elif out:
            out[-1][1].append(line)
    return [(argv, "\n".join(lines)) for argv, lines in out]


def _symrnn_argv(argv):
    if argv[:1] == ["symrnn"]:
        return argv[1:]
    if argv[:3] in (["python", "-m", "symrnn"], ["python3", "-m", "symrnn"]):
        return argv[3:]
    return None


def parse_command(snippet, argv):
    from symrnn.cli import UsageError, build_parser

    args = _symrnn_argv(argv)
    if args is None or args == ["--version"]:
        return
    try:
        build_parser().parse_args(args)
    except (UsageError, SystemExit) as e:
        raise AssertionError(f"{snippet.where}: {shlex.join(argv)}: {e}") from None


def _same_output(expected, actual):
    def normal(text):
        return NUMBER.sub("1.0e+00", "\n".join(line.rstrip() for line in
                                               text.strip("\n").splitlines())) + "\n"
    return doctest.OutputChecker().check_output(normal(expected), normal(actual),
                                                doctest.ELLIPSIS)


def run_command(snippet, argv, expected):
    from symrnn.cli import main

    args = _symrnn_argv(argv)
    if args is None:
        raise AssertionError(f"{snippet.where}: only symrnn commands run: {shlex.join(argv)}")
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = main(args)
    if code != snippet.exit or not _same_output(expected, output.getvalue()):
        raise AssertionError(f"{snippet.where}: {shlex.join(argv)} exited {code} "
                             f"(expected {snippet.exit}) and printed\n{output.getvalue()}"
                             f"\nexpected\n{expected}")


def run_python(snippet, namespace):
    if snippet.text.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(snippet.text, namespace, snippet.where,
                                                   str(snippet.page), snippet.line)
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, out=report.write, clear_globs=False)
        namespace.update(test.globs)
        if runner.failures:
            raise AssertionError(f"{snippet.where}: doctest failed\n{report.getvalue()}")
        return
    code = compile(snippet.text, snippet.where, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, namespace)


def run_page(page, workdir):
    """Run the snippets of ``page`` in ``workdir``: ``(run, [(snippet, why skipped)])``."""
    import symrnn

    namespace = {"__name__": "__docs__"}
    ran, skipped = 0, []
    for snippet in snippets(page):
        why = missing(snippet)
        if why:
            skipped.append((snippet, why))
            continue
        if snippet.file:
            (workdir / snippet.file).write_text(snippet.text, encoding="utf-8")
            if snippet.file.endswith(".cell"):
                symrnn.parse_cell(snippet.text)
        elif snippet.cell:
            symrnn.parse_cell(snippet.text)
        elif snippet.language == "python":
            run_python(snippet, namespace)
        elif snippet.language == "console":
            for argv, expected in _commands(snippet):
                parse_command(snippet, argv)
                if snippet.run:
                    run_command(snippet, argv, expected)
        elif snippet.run:
            raise AssertionError(f"{snippet.where}: 'run' is for console blocks")
        else:
            continue  # text, toml, ...: shown, not run
        ran += 1
    return ran, skipped


def _page_param(page):
    requires = {r for s in snippets(page) for r in s.requires}
    marks = [getattr(pytest.mark, m) for m in sorted(requires & HEAVY)]
    if marks or any(s.run for s in snippets(page)):
        marks.append(pytest.mark.slow)
    return pytest.param(page, marks=marks, id=str(page.relative_to(ROOT)))


@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES])
def test_every_snippet_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))    # a module a snippet wrote imports
    monkeypatch.setenv("COLUMNS", "100")
    try:
        ran, skipped = run_page(page, tmp_path)
    finally:  # the modules the snippets wrote and imported are forgotten
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
                del sys.modules[name]
    for snippet, why in skipped:
        print(f"skipped {snippet.where}: {why}")


# -- links --------------------------------------------------------------------------

def _slug(heading):
    """The anchor GitHub and MyST give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path):
    tokens = _tokens(path)
    return {_slug(tokens[i + 1].content) for i, t in enumerate(tokens)
            if t.type == "heading_open"}


def _links(path):
    for token in _tokens(path):
        for child in token.children or []:
            if child.type == "link_open":
                yield child.attrs["href"], token.map[0] + 1


@pytest.mark.parametrize("page", PAGES + [ROOT / "benchmarks" / "README.md"]
                         + sorted((ROOT / "benchmarks" / "results").glob("*.md")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(page):
    for href, line in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", href):
            continue  # https:, mailto:
        target, _, anchor = href.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.relative_to(ROOT)}:{line}: {href} does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in _headings(path), \
                f"{page.relative_to(ROOT)}:{line}: {href}: no heading #{anchor}"


# -- the README's command blocks ---------------------------------------------------

def test_the_readme_keeps_the_commands_that_ci_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"cmd=\$\(awk '(.*?)' README.md\)", script).group(1)
    found = subprocess.run(["awk", awk, "README.md"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert found == "bash scripts/install.sh --test && python3 -m pytest -q"
    assert re.search(r"<!-- main-command -->\n```\nbash scripts/install.sh && symrnn sheet\n```",
                     text)
    assert len(text.splitlines()) <= 200


# -- the Sphinx site ---------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for name in ("sphinx", "myst_parser", "furo"):
        pytest.importorskip(name)
    out = tmp_path_factory.mktemp("docs")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]))
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q",
                            "-b", "html", "-d", str(out / "doctrees"), str(DOCS),
                            str(out / "html")], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr
    return out / "html"


@pytest.mark.slow
def test_the_docs_build_without_a_warning(site):
    assert (site / "index.html").exists()
    for page in DOCS.glob("*.md"):
        assert (site / f"{page.stem}.html").exists(), page.name


@pytest.mark.slow
def test_the_operation_table_lists_the_registry(site):
    from symrnn.ops import OPERATIONS

    html = (site / "operations.html").read_text(encoding="utf-8")
    for op in OPERATIONS.values():
        shown = op.name or op.__name__
        assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{shown}" \
               f"</span></code>" in html, shown
        for key, kernel in op.kernels.items():
            if kernel is not None:
                assert f"<strong>{key}</strong>" in html


def test_a_rule_that_divides_prints_its_division():
    # the sheets' printer once dropped the 1 (/) of a reciprocal whose only other
    # factor was the adjoint: log's rule read b (.) dL/da, as if it multiplied by b
    from sympy import MatrixSymbol, Symbol

    from symrnn.model.nodes import Adjoint
    from symrnn.ops import Reciprocal, functions
    from symrnn.render.narrative import Typesetter, rule_catalogue

    n = Symbol("n", integer=True, positive=True)
    a, b = MatrixSymbol("a", n, 1), MatrixSymbol("b", n, 1)
    ts = Typesetter(None)
    for op in functions().values():
        divisions = len(op.vjp(a, b, Adjoint(a)).atoms(Reciprocal))
        (rule,) = rule_catalogue(ts, [op.__name__], inline=True)
        printed = rule.results[0].rhs
        assert printed.count(r"\oslash") + printed.count(r"\frac{1}") == divisions, \
            (op.__name__, printed)
