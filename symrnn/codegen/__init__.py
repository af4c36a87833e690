"""Code generation: a derivation's formulas as a Python module, by passes over one IR.

The way through (``driver.py`` runs a backend's passes, ``targets.py`` lists them):

    derivation --start--> Module.problem      the formulas (SymPy)       module.py
               --schedule, carry, hoist, sums--> Module.kernels          scheduled.py
               --lower--> Module.functions    statements over arrays     ir.py
               --gates, release, loopnests, outline, prune--> (the same, rewritten)
               --name--> every temporary an identifier
               --assemble--> Module.body      the whole file's statements
               --print--> source              emit.py, readable.py

What each part holds:

    module.py      the Module the passes hand on, and the Problem (the formulas)
    scheduled.py   the schedule every backend reads: loops over the steps, values over
                   all steps at once, pads, the loss and the gradients
    ir.py          the statements and expressions of the generated code; temporaries
                   (``Temp``) by role and value until ``name`` names them
    passes/        one module per pass, ``run(module) -> module``
    lower.py       the one product table: a matrix expression in row layout
    inplace.py     a value computed in one buffer (used by the lower pass)
    fuse.py        same-form statements and terms as one (used by gates and sums)
    loops.py, nests.py, views.py, shapes.py
                   element-wise statements as loop nests for Numba (loopnests, outline)
    kernels.py     the operations' kernels as the generated code calls them
    emit.py        the NumPy and Numba printers; readable.py the readable backend's
    dump.py        the module between two passes as text (``--dump-ir``)
    lambdify.py    ``lambdify(derivation, backend)``, ``module_source``
    runtime.py, runtime_calls.py, runtime_numba.py
                   what the generated module needs at run time (copied into it)
    numba_cache.py the on-disk cache of the Numba backend
"""
