"""Sphinx configuration of symrnn's documentation.

Build: ``python3 -m sphinx -W -n -b html docs docs/_build/html`` (tests/test_docs.py
builds it the same way into a temporary directory). Everything is offline: no
intersphinx, MathJax is loaded by the reader's browser, not by the build.
"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the checkout's symrnn, not an installed one

import symrnn  # noqa: E402

project = "symrnn"
author = "the symrnn authors"
copyright = "the symrnn authors"
release = version = symrnn.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "symrnn_docs",          # docs/_ext/symrnn_docs.py: the operation table, the CLI help
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"symrnn {release}"
html_static_path = []

autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# -n (nitpicky) turns every unresolved cross-reference into a warning, so that a broken
# reference fails the build under -W. Names of other libraries have no target here
# (no intersphinx: the build is offline); they are ignored by pattern.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sympy|numpy|np|torch|jax|hypothesis|pytest)(\..*)?"),
    (r"py:class", r"(str|int|float|bool|dict|list|tuple|callable|optional|None)"),
    (r"py:class", r"symrnn\.grading\.grade\.Named"),   # an internal record of GradeResult
]
highlight_language = "none"

# the operation table prints the rules with the sheets' printer, whose bold is \bm
mathjax3_config = {"tex": {"macros": {"bm": [r"\boldsymbol{#1}", 1]}}}
