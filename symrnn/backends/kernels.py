"""The kernels that d.torch() and d.jax() run, generated from the shared schedule.

A ``Program`` is one way of calling a module. ``Program(derivation)``: the loss
(``m(x, y)``), by the kernels ``forward`` and ``gradients`` of the derivation.
``Program(derivation, "outputs", names)``: the values ``names`` (None: the
default ones) over all steps and the states at the last step (``m(x)``), by
the kernel ``outputs``; its backward
pass is the ``gradients`` kernel of the cell of ``upstream.py``, whose targets
are the upstream gradients. The kernels come from ``codegen`` like every
backend's (the schedule, the one product table): printed for an array
namespace (target ``arrays``), or for Numba (target ``numba``, PyTorch on the
CPU). Each generated module is made on first use and kept; a module with the
gradients of the inputs (and targets) too, dL/dx^(t), only when a call asks for
them. A Program pickles without its generated modules (they are made again).
"""
from ..codegen.lambdify import load
from ..derivation.derive import derive
from .upstream import check_outputs, upstream_cell


class Program:
    """See the module's docstring. ``arguments`` of a kernel, in order: the
    parameters, the inputs, the targets (``targets``: the cell's, or in the
    outputs form the upstream gradients), the initial states."""

    def __init__(self, derivation, form="loss", outputs=None):
        cell = self.cell = derivation.cell
        self.params = [p.name for p in cell.params]
        self.inputs = [s.name for s in cell.inputs]
        self.states = [s.name for s in cell.states]
        if form not in ("loss", "outputs"):
            raise ValueError(f"form: expected 'loss' or 'outputs', got {form!r}")
        self.outputs = None if form == "loss" else check_outputs(cell, outputs)
        if self.outputs is None:
            self.derivation = derivation
            self.targets = [s.name for s in cell.targets]
            self.differentiable = self.inputs + self.targets   # (sequence_gradients)
            self.seeds = {}
        else:
            variant, gradients, self.seeds = upstream_cell(cell, self.outputs)
            self.derivation = derive(variant)
            self.targets = list(gradients) + list(self.seeds.values())
            self.differentiable = list(self.inputs)
        self.variant = self.derivation.cell
        self._modules = {}

    @property
    def first_kernel(self):
        return "forward" if self.outputs is None else "outputs"

    def kernels(self, backend="arrays", sequences=False):
        """The namespace of the generated module (its kernels by name)."""
        key = (backend, bool(sequences))
        found = self._modules.get(key)
        if found is None:
            kernels = ("forward", "gradients") if self.outputs is None else (
                # a Numba module wraps its forward kernel at import (runtime_numba.py)
                ("forward", "outputs", "gradients") if backend == "numba"
                else ("outputs", "gradients"))
            options = {"kernels": kernels,
                       "sequence_gradients": tuple(self.differentiable) if sequences else ()}
            if self.outputs is not None:
                options["outputs"] = self.outputs
            found = self._modules[key] = load(self.derivation, backend, options)
        return found

    def target_shapes(self, sizes, steps, batch):
        """The shapes (T, B, n) of the kernel's targets, by the cell's sizes (a dict)."""
        out = []
        for s in self.variant.targets:
            n = s.shape[0]
            out.append((steps, batch, int(n) if n.is_Integer else sizes[str(n)]))
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_modules"] = {}
        return state
