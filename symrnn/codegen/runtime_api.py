"""The run-time checks of the generated NumPy code that the other backends (PyTorch,
JAX) share, under public names. ``runtime.py`` keeps them private: its source is
copied into the standalone modules of ``symrnn codegen``, where every name of its
own starts with "_".

    fit_shape(name, shape, dims, sizes, origin)   check a shape against size names,
                                                  learning the sizes seen first
    refuse_arguments(value, names, arg)           the ValueError for an argument that
                                                  is not a dict with ``names``
"""
from .runtime import _bad_params as refuse_arguments, _fit as fit_shape

__all__ = ["fit_shape", "refuse_arguments"]
