"""The on-disk cache of the Numba backend (symrnn/codegen/numba_cache.py) and the
arguments that must not compile a kernel twice. One small cell, compiled once
in this process into a temporary cache; a second process must load it from
there (Numba's cache statistics, not a timing)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import symrnn
from symrnn.codegen import numba_cache
from symrnn.codegen.lambdify import module_source

pytestmark = pytest.mark.numba

TEXT = """
params: w[D] U[D,N]
input: x[N]
target: y[D]
state: h[D]
h = tanh(w * prev(h) + U @ x)
loss = (h - y).T @ (h - y) / 2
"""

SECOND_PROCESS = """
import numpy as np, symrnn
f = symrnn.derive(symrnn.parse_cell({text!r})).lambdify("numba")
rng = np.random.default_rng(0)
f({{"w": rng.normal(size=3), "U": rng.normal(size=(3, 2))}}, rng.normal(size=(4, 2)),
  rng.normal(size=(4, 3)))
loops = f.__globals__["gradients"].loops
print(sum(len(k.stats.cache_hits) for k in loops), sum(len(k.stats.cache_misses) for k in loops),
      f.__globals__["__file__"])
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("symrnn-cache")


@pytest.fixture(scope="module")
def compiled(cache):
    """The cell lambdified for Numba with ``cache`` as the cache directory, and
    its gradient kernel compiled once."""
    before = os.environ.get(numba_cache.ENVIRONMENT)
    os.environ[numba_cache.ENVIRONMENT] = str(cache)
    try:
        f = symrnn.derive(symrnn.parse_cell(TEXT)).lambdify("numba")
    finally:
        if before is None:
            del os.environ[numba_cache.ENVIRONMENT]
        else:
            os.environ[numba_cache.ENVIRONMENT] = before
    f(*problem())
    return f


def problem():
    rng = np.random.default_rng(0)
    return ({"w": rng.normal(size=3), "U": rng.normal(size=(3, 2))}, rng.normal(size=(4, 2)),
            rng.normal(size=(4, 3)))


def test_a_second_process_loads_the_compiled_kernel(cache, compiled):
    module = pathlib.Path(compiled.__globals__["__file__"])
    assert module.parent == cache and module.read_text() == compiled.source
    assert list(cache.glob("__pycache__/*.nbi"))  # Numba's index of a compiled function
    root = pathlib.Path(symrnn.__file__).parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), **{numba_cache.ENVIRONMENT: str(cache)})
    run = subprocess.run([sys.executable, "-c", SECOND_PROCESS.format(text=TEXT)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    hits, misses, path = run.stdout.split()
    loops = [k for k in compiled.__globals__["gradients"].loops if k.signatures]
    assert (hits, misses, path) == (str(len(loops)), "0", str(module)) and loops
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no half-written file


def _second_process(cache):
    root = pathlib.Path(symrnn.__file__).parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), **{numba_cache.ENVIRONMENT: str(cache)})
    run = subprocess.run([sys.executable, "-c", SECOND_PROCESS.format(text=TEXT)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    hits, misses, _ = run.stdout.split()
    return int(hits), int(misses)


def test_a_damaged_cache_entry_is_a_miss_and_is_rebuilt(cache, compiled):
    # Numba's data file garbled (its index intact), then its index cut short; and a
    # bytecode file of the module that is garbage (it is not read at all)
    module = pathlib.Path(compiled.__globals__["__file__"])
    (module.parent / "__pycache__" / (module.stem + ".cpython-311.pyc")).write_bytes(b"\0" * 40)
    loops = len([k for k in compiled.__globals__["gradients"].loops if k.signatures])
    for pattern, damage in (("*.nbc", lambda b: b[:len(b) // 2] + bytes(
            255 - c for c in b[len(b) // 2:len(b) // 2 + 64]) + b[len(b) // 2 + 64:]),
                            ("*.nbi", lambda b: b[:100])):
        for path in cache.glob("__pycache__/" + pattern):
            path.write_bytes(damage(path.read_bytes()))
        assert _second_process(cache) == (0, loops)   # compiled again, and saved
    assert _second_process(cache) == (loops, 0)


def test_read_only_and_fortran_arguments_do_not_compile_again(compiled):
    params, x, y = problem()
    loops = compiled.__globals__["gradients"].loops
    assert all(len(k.signatures) <= 1 for k in loops) and any(k.signatures for k in loops)
    expected = compiled(params, x, y)
    for a in [*params.values(), x, y]:
        a.setflags(write=False)
    params["U"] = np.asfortranarray(params["U"])
    loss, grads = compiled(params, np.asfortranarray(x), y)
    assert all(len(k.signatures) <= 1 for k in loops)
    assert loss == expected[0] and all(np.array_equal(grads[k], expected[1][k]) for k in grads)


def test_no_writable_cache_directory_runs_without_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    d = symrnn.derive(symrnn.parse_cell(TEXT))
    for value in (str(blocker / "cache"), ""):  # a path that cannot be a directory; off
        monkeypatch.setenv(numba_cache.ENVIRONMENT, value)
        f = d.lambdify("numba")
        assert "__file__" not in f.__globals__ and callable(f.__globals__["gradients"])
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_a_damaged_module_in_the_cache_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv(numba_cache.ENVIRONMENT, str(tmp_path))
    d = symrnn.derive(symrnn.parse_cell(TEXT))
    source = module_source(d, "numba")
    path = tmp_path / (numba_cache.module_name(source) + ".py")
    path.write_text("# half a module\n")  # as if a writer had stopped half-way
    assert numba_cache.place(source) == str(path) and path.read_text() == source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["__pycache__", path.name]


def test_default_directory(monkeypatch):
    monkeypatch.delenv(numba_cache.ENVIRONMENT, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert numba_cache.directory() == os.path.join("/somewhere", "symrnn")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert numba_cache.directory() == os.path.join(os.path.expanduser("~"), ".cache", "symrnn")
