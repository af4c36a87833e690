"""The derived BPTT as a PyTorch autograd function, for eager mode, torch.func and torch.compile.

``Runner`` runs a ``Program`` (``kernels.py``) on tensors: on the CPU by its
Numba kernels when Numba is installed (the tensors seen as NumPy arrays,
float64; a float32 tensor is converted, computed in float64 and converted
back), elsewhere (another device, or ``kernels="torch"``) by its kernels for
an array namespace, in torch operations on the tensors' device and dtype.

``DerivedBPTT`` is the autograd function, in one of four modes (the last part
of its key):

    loss                  the loss; its backward runs the ``gradients`` kernel
                          (the forward pass again, then BPTT)
    gradients             the loss and its gradients at once, by the ``gradients``
                          kernel, when a backward pass will follow (no forward
                          pass twice): its backward scales them by the upstream
                          gradient
    gradients+sequences   the same, with the gradients of the inputs and targets
    outputs               the outputs and the final states; its backward runs the
                          ``gradients`` kernel of the cell of ``upstream.py`` with
                          the upstream gradients

A backward pass is itself an autograd function whose own backward refuses:
the derived BPTT is first-order. Both define ``setup_context`` and ``vmap`` (a
loop over the mapped dimension), so that ``torch.func.grad``, ``vmap`` and
``functional_call`` work; under ``torch.compile`` they call the custom operators
``symrnn::forward`` and ``symrnn::backward`` instead, which the compiler treats
as opaque (their fake implementations give the shapes). The operators find a
runner by its key (a string), which ``register`` gives.
"""
import functools
import itertools
import weakref

import torch
from torch import Tensor

from .namespaces import TorchNamespace

RUNNERS = weakref.WeakValueDictionary()   # key -> Runner (kept alive by its module)
_KEYS = itertools.count()
KERNELS = ("auto", "numba", "torch")
# float32 on the CPU: the Numba kernels (float64) while B times the widest state is at
# most this many entries (measured by benchmarks/bench_frameworks.py: above, torch's
# float32 matrix products win)
NUMBA_FLOAT32_ROWS = 1024
REDUCTIONS = ("sum", "mean")


MODES = ("loss", "gradients", "gradients+sequences", "outputs")


def register(runner):
    """``{mode: key}``: the keys under which the functions and the operators find
    ``runner`` in each of its modes (the loss's, or outputs)."""
    base = f"symrnn-{next(_KEYS)}"
    RUNNERS[base] = runner
    counts = (runner.params.stop, runner.sequences.stop - runner.sequences.start,
              runner.inits.stop - runner.inits.start)
    modes = MODES[:3] if runner.loss else MODES[3:]
    return {mode: f"{base}|{mode}|{','.join(map(str, counts))}" for mode in modes}


def parse(key):
    """``(mode, (parameters, sequences, initial states))`` of a key: text only, so that
    torch.compile traces it (it does not trace a look-up in ``RUNNERS``)."""
    _, mode, counts = key.split("|")
    return mode, tuple(int(n) for n in counts.split(","))


def lookup(key):
    """``(runner, mode)`` of a key."""
    return RUNNERS[key.split("|")[0]], parse(key)[0]


@functools.lru_cache(maxsize=None)
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
        """Whether this call runs the Numba kernels: with ``kernels="numba"``; with
        "auto" on the CPU when Numba is installed, for float64 tensors, and for
        float32 ones while the rows of a step are few (B times the widest state
        at most ``NUMBA_FLOAT32_ROWS``: above, the matrix products, which Numba's
        kernels compute in float64, cost more than torch's float32 ones)."""
        first = tensors[self.sequences.start]
        if self.kernels == "numba" and first.device.type != "cpu":
            raise ValueError(f"kernels: 'numba' runs on the CPU; the tensors are on "
                             f"{first.device}")
        if self.kernels != "auto":
            return self.kernels == "numba"
        if first.device.type != "cpu" or not numba_available():
            return False
        if first.dtype == torch.float64:
            return True
        widest = max([t.shape[-1] for t in tensors[self.inits]] or [1])
        return first.dtype == torch.float32 and first.shape[1] * widest <= NUMBA_FLOAT32_ROWS

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
    def forward(self, tensors, mode):
        """The results of ``mode`` (see the module's docstring): ``[loss]``, ``[loss,
        gradients...]`` (in ``backward``'s order), or the outputs (T, B, n) and the
        final states (B, n)."""
        if mode == "outputs":
            values, states = self._run("outputs", self._with_targets(tensors, None))
            return list(values) + list(states)
        scale = self._scale(tensors)
        if mode == "loss":
            return [self._run("forward", tensors) * scale]
        sequences = mode == "gradients+sequences"
        loss, grads = self._run("gradients", tensors, sequences)
        return [loss * scale] + [v * scale for v in self._ordered(grads, tensors, sequences)]

    def forward_shapes(self, tensors, mode):
        """Empty tensors of the shapes ``forward`` returns (for torch.compile)."""
        first = tensors[self.sequences.start]
        if mode != "outputs":
            return [first.new_empty(())] + ([] if mode == "loss" else self.gradient_shapes(
                tensors, mode == "gradients+sequences"))
        steps, batch = first.shape[:2]
        sizes = self.sizes(tensors)
        width = [_size(v.shape[0], sizes) for v in self.program.cell.variables]
        by_name = dict(zip([v.name for v in self.program.cell.variables], width))
        return ([first.new_empty((steps, batch, by_name[n])) for n in self.program.outputs]
                + [t.new_empty(t.shape) for t in tensors[self.inits]])

    def gradient_shapes(self, tensors, sequences):
        """Empty tensors of the shapes ``backward`` returns."""
        return [t.new_empty(t.shape) for t in tensors[self.params]] + (
            [t.new_empty(t.shape) for t in tensors[self.sequences]] if sequences else []) + [
            t.new_empty(t.shape) for t in tensors[self.inits]]

    def backward(self, tensors, upstream, sequences):
        """The gradients of the parameters, of the per-step arguments (when
        ``sequences``: the inputs, and the targets of the loss) and of the initial
        states, in that order, for the upstream gradients of the loss (modes loss)
        or of the outputs and the final states (mode outputs)."""
        if self.loss:
            _, grads = self._run("gradients", tensors, sequences)
            g = upstream[0] * self._scale(tensors)
            return [g * v for v in self._ordered(grads, tensors, sequences)]
        n = len(self.program.outputs)
        _, grads = self._run("gradients", self._with_targets(
            tensors, (upstream[:n], upstream[n:])), sequences)
        return self._ordered(grads, tensors, sequences)

    def _ordered(self, grads, tensors, sequences):
        """A gradients kernel's results (parameters, initial states, sequences) in the
        order of the tensors (parameters in their shapes, sequences, initial states)."""
        n_params, n_states = self.params.stop, len(self.program.states)
        params = [v.reshape(t.shape) for v, t in zip(grads, tensors[self.params])]
        inits = list(grads[n_params:n_params + n_states])
        return params + (list(grads[n_params + n_states:]) if sequences else []) + inits

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
    """``apply(key, *tensors)``: the results of ``Runner.forward`` in the key's mode."""

    @staticmethod
    def forward(key, *tensors):
        if torch.compiler.is_compiling():
            return tuple(forward_op(key, list(tensors)))
        runner, mode = lookup(key)
        return tuple(runner.forward(list(tensors), mode))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.key = inputs[0]
        mode, _ = parse(ctx.key)
        if mode.startswith("gradients"):  # the gradients, computed with the loss
            ctx.mark_non_differentiable(*output[1:])
            ctx.save_for_backward(*output[1:], *inputs[1:])
        else:
            ctx.save_for_backward(*inputs[1:])

    @staticmethod
    def backward(ctx, *upstream):
        mode, (n_params, n_seq, _) = parse(ctx.key)
        needs = ctx.needs_input_grad[1:]
        if mode.startswith("gradients"):
            sequences = mode == "gradients+sequences"
            if torch.compiler.is_compiling():  # (compiled graphs have no double backward)
                grads = Scaled.forward(ctx.key, upstream[0], *ctx.saved_tensors)
            else:
                grads = apply(Scaled, ctx.key, upstream[0], *ctx.saved_tensors)
        else:
            sequences = any(needs[n_params:n_params + n_seq])
            tensors = ctx.saved_tensors
            if torch.compiler.is_compiling():
                grads = backward_op(ctx.key, sequences, list(tensors), list(upstream))
            else:
                grads = apply(DerivedBackward, ctx.key, sequences, *tensors, *upstream)
        grads = list(grads)
        params, rest = grads[:n_params], grads[n_params:]
        seqs = rest[:n_seq] if sequences else [None] * n_seq
        inits = rest[n_seq:] if sequences else rest
        out = params + seqs + inits
        return (None,) + tuple(g if need else None for g, need in zip(out, needs))

    @staticmethod
    def vmap(info, in_dims, key, *tensors):
        return _stacked([DerivedBPTT.apply(key, *_unbatched(tensors, in_dims[1:], i))
                         for i in range(info.batch_size)])


class DerivedBackward(torch.autograd.Function):
    """``apply(key, sequences, *tensors, *upstream)``: ``Runner.backward``."""

    @staticmethod
    def forward(key, sequences, *tensors):
        runner, _ = lookup(key)
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


class Scaled(torch.autograd.Function):
    """``apply(key, g, *gradients, *tensors)``: each gradient (computed with the loss)
    times the upstream gradient ``g`` of the loss. The tensors of the call come
    along so that a double backward reaches this function's backward, which
    refuses, like the rest: the derived BPTT is first-order."""

    @staticmethod
    def forward(key, g, *tensors):
        mode, (n_params, n_seq, n_states) = parse(key)
        n = n_params + n_states + (n_seq if mode == "gradients+sequences" else 0)
        return tuple(g * v for v in tensors[:n])

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(FIRST_ORDER)

    @staticmethod
    def vmap(info, in_dims, key, g, *tensors):
        g_dim, dims = in_dims[1], in_dims[2:]
        gg = g.movedim(g_dim, 0) if g_dim is not None else g.expand(info.batch_size)
        out = []
        for v, d in zip(Scaled.forward(key, g.new_ones(()), *tensors), dims):
            v = v.movedim(d, 0) if d is not None else v.expand(info.batch_size, *v.shape)
            out.append(gg.reshape((-1,) + (1,) * (v.dim() - 1)) * v)
        return tuple(out), (0,) * len(out)


def _eager(function):
    """``function`` (with ``setup_context``) as a function of the older form, whose
    ``apply`` does not bind its arguments to the signature of ``forward`` (which
    costs more than the rest of a small call), for calls outside torch.func."""
    def forward(ctx, *args):
        output = function.forward(*args)
        function.setup_context(ctx, args, output)
        return output
    return type(f"Eager{function.__name__}", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": function.backward,
                 "__doc__": f"{function.__name__} outside torch.func."})


_EAGER = {}


def apply(function, *args):
    """``function.apply(*args)``; in eager mode without torch.func transforms, that of
    its twin of the older form (the same forward, context and backward)."""
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return function.apply(*args)
    twin = _EAGER.get(function)
    if twin is None:
        twin = _EAGER[function] = _eager(function)
    return twin.apply(*args)


FIRST_ORDER = ("symrnn: the derived BPTT is first-order: its backward pass has no derivative "
               "of its own (a double backward, create_graph=True followed by another "
               "backward, or a Hessian is not derived); differentiate the module's loss once")


# -- the operators that torch.compile sees (opaque: shapes from the fake implementations) --
@torch.library.custom_op("symrnn::forward", mutates_args=())
def forward_op(key: str, tensors: list[Tensor]) -> list[Tensor]:
    runner, mode = lookup(key)
    return [_fresh(v, tensors) for v in runner.forward(tensors, mode)]


@forward_op.register_fake
def _(key, tensors):
    runner, mode = lookup(key)
    return runner.forward_shapes(tensors, mode)


@torch.library.custom_op("symrnn::backward", mutates_args=())
def backward_op(key: str, sequences: bool, tensors: list[Tensor],
                upstream: list[Tensor]) -> list[Tensor]:
    runner, _ = lookup(key)
    return [_fresh(v, tensors + upstream) for v in runner.backward(tensors, upstream, sequences)]


@backward_op.register_fake
def _(key, sequences, tensors, upstream):
    runner, _ = lookup(key)
    return runner.gradient_shapes(tensors, sequences)


def _refuse(ctx, *grads):
    raise RuntimeError(FIRST_ORDER)


def _nothing(ctx, inputs, output):
    pass


backward_op.register_autograd(_refuse, setup_context=_nothing)


def _fresh(value, inputs):
    """``value``, copied if it shares memory with an input (an operator's result may not)."""
    if any(value.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
           for t in inputs if t.device == value.device):
        return value.clone()
    return value
