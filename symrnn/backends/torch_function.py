"""The derived BPTT as a PyTorch autograd function, for eager mode, torch.func and torch.compile.

``Runner`` runs a ``Program`` (``kernels.py``) on tensors: on the CPU by its
Numba kernels when Numba is installed (the tensors seen as NumPy arrays,
float64; a float32 tensor is converted, computed in float64 and converted
back), elsewhere (another device, or ``kernels="torch"``) by its kernels for
an array namespace, in torch operations on the tensors' device and dtype.

``DerivedBPTT`` is the autograd function: its forward runs the program's first
kernel (the loss, or the outputs and the final states), its backward the
``gradients`` kernel with the upstream gradients (``DerivedBackward``, whose
own backward refuses: the derived BPTT is first-order). The backward kernel
computes the forward pass again: nothing is kept between the two but the
inputs. Both functions define ``setup_context`` and ``vmap`` (a loop over the
mapped dimension), so that ``torch.func.grad``, ``vmap`` and ``functional_call``
work; under ``torch.compile`` they call the custom operators
``symrnn::forward`` and ``symrnn::backward`` instead, which the compiler treats
as opaque (their fake implementations give the shapes). The operators find a
runner by a key (a string): ``register`` gives one.
"""
import itertools
import weakref

import torch
from torch import Tensor

from .namespaces import TorchNamespace

RUNNERS = weakref.WeakValueDictionary()   # key -> Runner (kept alive by its module)
_KEYS = itertools.count()
KERNELS = ("auto", "numba", "torch")
REDUCTIONS = ("sum", "mean")


def register(runner):
    """A new key under which the operators find ``runner``."""
    key = f"symrnn-{next(_KEYS)}"
    RUNNERS[key] = runner
    return key


def numba_available():
    try:
        import numba  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        return False
    return True


class Runner:
    """A ``Program`` on tensors. ``tensors`` of a call, in order: the parameters (the
    module's shapes), the inputs (T, B, n), in the loss form the targets (T, B, n),
    the initial states (B, n). ``reduction``: "sum" or "mean" (divided by T B)."""

    def __init__(self, program, reduction="sum", kernels="auto"):
        self.program, self.reduction, self.kernels = program, reduction, kernels
        self.loss = program.outputs is None
        n_params, n_inputs = len(program.params), len(program.inputs)
        n_targets = len(program.targets) if self.loss else 0
        self.params = slice(0, n_params)
        self.sequences = slice(n_params, n_params + n_inputs + n_targets)
        self.inits = slice(self.sequences.stop, self.sequences.stop + len(program.states))
        self.count = self.inits.stop
        self._namespaces = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_namespaces"] = {}
        return state

    # -- which kernels ------------------------------------------------------------------
    def _numba(self, tensors):
        first = tensors[self.sequences.start]
        if self.kernels == "torch" or first.device.type != "cpu":
            return False
        if first.dtype not in (torch.float32, torch.float64):
            return False
        return self.kernels == "numba" or numba_available()

    def _run(self, name, tensors, sequences=False):
        """The kernel ``name`` on ``tensors`` (the kernel's arguments)."""
        first = tensors[self.sequences.start]
        if self._numba(tensors):
            kernel = self.program.kernels("numba", sequences)[name]
            return _from_numpy(kernel(*[_numpy(t) for t in tensors]), first.dtype)
        key = (first.dtype, first.device)
        xp = self._namespaces.get(key)
        if xp is None:
            xp = self._namespaces[key] = TorchNamespace(*key)
        return self.program.kernels("arrays", sequences)[name](xp, *tensors)

    def _scale(self, tensors):
        if self.reduction == "sum":
            return 1.0
        steps, batch = tensors[self.sequences.start].shape[:2]
        return 1.0 / (steps * batch)

    # -- forward and backward -------------------------------------------------------------
    def forward(self, tensors):
        """The loss ``[loss]``, or the outputs (T, B, n) and the final states (B, n)."""
        if self.loss:
            return [self._run("forward", tensors) * self._scale(tensors)]
        values, states = self._run("outputs", self._with_targets(tensors, None))
        return list(values) + list(states)

    def forward_shapes(self, tensors):
        """Empty tensors of the shapes ``forward`` returns (for torch.compile)."""
        first = tensors[self.sequences.start]
        if self.loss:
            return [first.new_empty(())]
        steps, batch = first.shape[:2]
        sizes = self.sizes(tensors)
        width = [_size(v.shape[0], sizes) for v in self.program.cell.variables]
        by_name = dict(zip([v.name for v in self.program.cell.variables], width))
        return ([first.new_empty((steps, batch, by_name[n])) for n in self.program.outputs]
                + [t.new_empty(t.shape) for t in tensors[self.inits]])

    def backward(self, tensors, upstream, sequences):
        """The gradients of the parameters, of the per-step arguments (when
        ``sequences``: the inputs, and the targets of the loss) and of the initial
        states, in that order, for the upstream gradients of ``forward``'s results."""
        if self.loss:
            _, grads = self._run("gradients", tensors, sequences)
            g = upstream[0] * self._scale(tensors)
        else:
            n = len(self.program.outputs)
            _, grads = self._run("gradients", self._with_targets(
                tensors, (upstream[:n], upstream[n:])), sequences)
            g = None
        grads = [v if g is None else g * v for v in grads]
        params = [v.reshape(t.shape) for v, t in zip(grads, tensors[self.params])]
        n_params, n_states = len(params), len(self.program.states)
        inits = grads[n_params:n_params + n_states]
        return params + (grads[n_params + n_states:] if sequences else []) + inits

    def _with_targets(self, tensors, upstream):
        """The outputs form's kernel arguments: the upstream gradients as the targets
        (None: empty arrays of their shapes, which ``outputs`` does not read)."""
        program = self.program
        first = tensors[self.sequences.start]
        steps, batch = first.shape[:2]
        if upstream is None:
            shapes = program.target_shapes(self.sizes(tensors), steps, batch)
            targets = [first.new_empty(s) for s in shapes]
        else:
            values, finals = upstream
            final = dict(zip(program.states, finals))
            targets = []
            for name, g in zip(program.outputs, values):
                if name in final:  # a state that is an output: its last step gets dL/ds^(T)
                    g = g.clone()
                    g[-1] += final[name]
                targets.append(g)
            for state in program.seeds:  # dL/ds^(T) at the last step, zero before
                seed = final[state].new_zeros((steps,) + tuple(final[state].shape))
                seed[-1] = final[state]
                targets.append(seed)
        return (list(tensors[:self.sequences.stop]) + targets + list(tensors[self.inits]))

    def sizes(self, tensors):
        """The cell's sizes (by name) read from the shapes of ``tensors``."""
        cell, sizes = self.program.cell, {}
        for p, t in zip(cell.params, tensors[self.params]):
            dims = p.shape[:1] if p.shape[1] == 1 else p.shape
            sizes.update({str(d): n for d, n in zip(dims, t.shape)})
        for v, t in zip(cell.inputs + cell.targets, tensors[self.sequences]):
            sizes[str(v.shape[0])] = t.shape[-1]
        for s, t in zip(cell.states, tensors[self.inits]):
            sizes[str(s.shape[0])] = t.shape[-1]
        return sizes


def _size(dim, sizes):
    return int(dim) if dim.is_Integer else sizes[str(dim)]


def _numpy(t):
    """A tensor as a float64 NumPy array (no copy for a contiguous float64 CPU tensor)."""
    return t.detach().to(torch.float64).contiguous().numpy()


def _from_numpy(value, dtype):
    """The results of a Numba kernel (arrays, numbers, nested tuples) as tensors."""
    if isinstance(value, tuple):
        return tuple(_from_numpy(v, dtype) for v in value)
    return torch.as_tensor(value, dtype=torch.float64).to(dtype)


def _unbatched(tensors, dims, i):
    return [t if d is None else t.select(d, i) for t, d in zip(tensors, dims)]


def _stacked(results):
    """The results of the calls of a vmap loop, stacked along a new first axis."""
    outs = [torch.stack(column) for column in zip(*results)]
    return tuple(outs), (0,) * len(outs)


class DerivedBPTT(torch.autograd.Function):
    """``apply(key, *tensors)``: ``RUNNERS[key].forward`` (a tuple of tensors)."""

    @staticmethod
    def forward(key, *tensors):
        if torch.compiler.is_compiling():
            return tuple(forward_op(key, list(tensors)))
        return tuple(RUNNERS[key].forward(list(tensors)))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.key = inputs[0]
        ctx.save_for_backward(*inputs[1:])

    @staticmethod
    def backward(ctx, *upstream):
        runner = RUNNERS[ctx.key]
        tensors = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        sequences = any(needs[runner.sequences])
        if torch.compiler.is_compiling():
            grads = backward_op(ctx.key, sequences, list(tensors), list(upstream))
        else:
            grads = DerivedBackward.apply(ctx.key, sequences, *tensors, *upstream)
        grads = list(grads)
        params = grads[:runner.params.stop]
        rest = grads[runner.params.stop:]
        n_seq = runner.sequences.stop - runner.sequences.start
        seqs = rest[:n_seq] if sequences else [None] * n_seq
        inits = rest[n_seq:] if sequences else rest
        out = params + seqs + inits
        return (None,) + tuple(g if need else None for g, need in zip(out, needs))

    @staticmethod
    def vmap(info, in_dims, key, *tensors):
        return _stacked([DerivedBPTT.apply(key, *_unbatched(tensors, in_dims[1:], i))
                         for i in range(info.batch_size)])


class DerivedBackward(torch.autograd.Function):
    """``apply(key, sequences, *tensors, *upstream)``: ``RUNNERS[key].backward``."""

    @staticmethod
    def forward(key, sequences, *tensors):
        runner = RUNNERS[key]
        return tuple(runner.backward(list(tensors[:runner.count]),
                                     list(tensors[runner.count:]), sequences))

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(FIRST_ORDER)

    @staticmethod
    def vmap(info, in_dims, key, sequences, *tensors):
        return _stacked([DerivedBackward.apply(key, sequences,
                                               *_unbatched(tensors, in_dims[2:], i))
                         for i in range(info.batch_size)])


FIRST_ORDER = ("symrnn: the derived BPTT is first-order: its backward pass has no derivative "
               "of its own (a double backward, create_graph=True followed by another "
               "backward, or a Hessian is not derived); differentiate the module's loss once")


# -- the operators that torch.compile sees (opaque: shapes from the fake implementations) --
@torch.library.custom_op("symrnn::forward", mutates_args=())
def forward_op(key: str, tensors: list[Tensor]) -> list[Tensor]:
    return [_fresh(v, tensors) for v in RUNNERS[key].forward(tensors)]


@forward_op.register_fake
def _(key, tensors):
    return RUNNERS[key].forward_shapes(tensors)


@torch.library.custom_op("symrnn::backward", mutates_args=())
def backward_op(key: str, sequences: bool, tensors: list[Tensor],
                upstream: list[Tensor]) -> list[Tensor]:
    return [_fresh(v, tensors + upstream)
            for v in RUNNERS[key].backward(tensors, upstream, sequences)]


@backward_op.register_fake
def _(key, sequences, tensors, upstream):
    runner = RUNNERS[key]
    return [t.new_empty(t.shape) for t in tensors[runner.params]
            ] + ([t.new_empty(t.shape) for t in tensors[runner.sequences]] if sequences
                 else []) + [t.new_empty(t.shape) for t in tensors[runner.inits]]


def _refuse(ctx, *grads):
    raise RuntimeError(FIRST_ORDER)


backward_op.register_autograd(_refuse, setup_context=lambda ctx, inputs, output: None)


def _fresh(value, inputs):
    """``value``, copied if it shares memory with an input (an operator's result may not)."""
    if any(value.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
           for t in inputs if t.device == value.device):
        return value.clone()
    return value
