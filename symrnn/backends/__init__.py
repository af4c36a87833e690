"""The derived BPTT on array libraries other than NumPy: PyTorch and JAX.

They run the kernels of the shared schedule (``symrnn/codegen``), made for each
way of calling a module by ``kernels.py``: printed for an array namespace
(``codegen/arrays.py``, the namespaces in ``namespaces.py``), or on the CPU the
Numba backend's. ``upstream.py`` makes the cell whose gradients carry a loss
computed outside it (the outputs form, ``m(x)``). ``torch_function.py`` wraps the
kernels as PyTorch autograd functions and custom operators, ``torch_module.py``
as an ``nn.Module``; ``jax_function.py`` as a ``jax.custom_vjp``; ``arguments.py``
checks the arguments of both. Nothing here imports PyTorch or JAX until
``Derivation.torch()`` or ``Derivation.jax()`` is called.
"""
