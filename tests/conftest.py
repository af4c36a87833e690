import functools

import pytest

import symrnn


@functools.lru_cache(maxsize=None)
def derivation(**model):
    return symrnn.derive(symrnn.ElmanRNN(**model))


@functools.lru_cache(maxsize=None)
def gradient_function(**model):
    return derivation(**model).lambdify()


@pytest.fixture(scope="session")
def seed_derivation():
    return derivation()
