#!/usr/bin/env bash
# Everything symrnn needs on a fresh Debian machine: TeX for the PDF, the package
# itself (editable), and with --test the test dependencies (pytest, hypothesis,
# Numba, a CPU build of PyTorch and JAX for the tests of those backends) and the
# documentation's (Sphinx, MyST-Parser, Furo: tests/test_docs.py builds docs/).
set -euo pipefail
cd "$(dirname "$0")/.."
tex="texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
extra=""
[ "${1:-}" = "--test" ] && extra="[test,docs]" && tex="$tex poppler-utils"
if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    missing=$(for p in $tex; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
else
    echo "install.sh: no apt-get; install TeX Live (pdflatex, latexmk, TikZ) yourself" >&2
fi
if [ -n "$extra" ] && ! python3 -c "import torch" >/dev/null 2>&1; then
    # the CPU build of torch for the tests: setup.cfg asks only torch>=2.1, which pip
    # would resolve to the newest torch, a CUDA build of several GB
    python3 -m pip install -q "torch==2.13.0"
fi
python3 -m pip install -q -e ".$extra"

# --test: Node.js with KaTeX and MathJax 3 (tests/js/package.json, versions pinned in
# tests/js/package-lock.json) for the tests that render symrnn's notebook displays;
# without Node those tests are skipped
if [ "${1:-}" = "--test" ]; then
    if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    if command -v npm >/dev/null; then
        npm ci --prefix tests/js --no-audit --no-fund --silent
    else
        echo "install.sh: no npm; the KaTeX and MathJax tests will be skipped" >&2
    fi
fi
