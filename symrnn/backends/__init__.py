"""The derived BPTT on array libraries other than NumPy: PyTorch and JAX.

``expressions.py`` turns each SymPy expression of a derivation into a Python
closure over an array-library namespace ``xp``; ``program.py`` arranges those
closures like the NumPy backend (a forward scan over the states, a backward
scan over their adjoints, everything else over all steps at once);
``torch_module.py`` and ``jax_function.py`` wrap the program for their library.
Nothing here imports PyTorch or JAX until ``Derivation.torch()`` or
``Derivation.jax()`` is called.
"""
