import functools
import os
import tempfile

import numpy as np
import pytest

import symrnn

# compiled Numba kernels go to a directory of this test run, not to the user's cache
os.environ.setdefault("SYMRNN_CACHE_DIR", tempfile.mkdtemp(prefix="symrnn-test-cache-"))


HEAVY = ("numba", "tex", "torch", "jax")  # what compiles or imports a large library


def pytest_collection_modifyitems(items):
    """A test that compiles (Numba, TeX) or needs PyTorch or JAX is slow too: the
    quick loop ``pytest -m "not slow"`` leaves it out (setup.cfg)."""
    for item in items:
        if any(item.get_closest_marker(m) for m in HEAVY) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@functools.lru_cache(maxsize=None)
def derivation(**model):
    return symrnn.derive(symrnn.ElmanRNN(**model))


@functools.lru_cache(maxsize=None)
def gradient_function(**model):
    return derivation(**model).lambdify()


@pytest.fixture(scope="session")
def seed_derivation():
    return derivation()


def unchanged(call, *arguments):
    """``call()``, asserting that it leaves every argument array (None skipped) as
    it was: the generated code works in place, but only in arrays it made itself."""
    before = [None if a is None else np.array(a, copy=True) for a in arguments]
    result = call()
    assert all(a is None or np.array_equal(a, b) for a, b in zip(arguments, before))
    return result


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """The documents of tests/documents.py compiled once per session (issue 20)."""
    from documents import compiled_documents
    return compiled_documents(tmp_path_factory)
