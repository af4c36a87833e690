"""A PyTorch module whose backward pass is the derived BPTT.

``Derivation.torch(D=..., N=..., M=...)`` builds it; see ``DerivedRNN``.
"""
import math

import torch

from .arguments import (Sizes, axis_names, by_name, fit_call, initial_states,
                        label_error, param_dims, size_of)
from .namespaces import TorchNamespace
from .program import Program


def _matrix(value, p):
    """A parameter as the 2-D matrix of its symbol (a column (r,) as (r, 1))."""
    return value.reshape(value.shape[0], 1) if p.shape[1] == 1 else value


class DerivedBPTT(torch.autograd.Function):
    """loss = the summed loss of the cell; its backward is the derived closed form.

    apply(program, sizes, *sequences, *initial, *params): the inputs and the
    targets (program.sequences), each (T, B, r) in row layout, each initial
    state (B, r), the parameters in the cell's order with the shapes the API
    takes (a column (r,))."""

    @staticmethod
    def forward(ctx, program, sizes, *tensors):
        cell = program.cell
        k, n = len(program.sequences), len(cell.states)
        sequences, initial, params = tensors[:k], tensors[k:k + n], tensors[k + n:]
        first = sequences[0]
        xp = TorchNamespace(torch, first.dtype, first.device)
        matrices = {p.name: _matrix(v, p) for p, v in zip(cell.params, params)}
        loss, env = program.forward(xp, sizes, matrices, dict(zip(program.sequences, sequences)),
                                    list(initial))
        ctx.program, ctx.env = program, env
        ctx.shapes = [v.shape for v in params]
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        program, cell = ctx.program, ctx.program.cell
        k = len(program.sequences)
        inputs = any(ctx.needs_input_grad[2:2 + k])
        grads, states, given = program.backward(ctx.env, inputs=inputs)
        out = [None, None]
        for name in program.sequences:
            v = given.get(name)
            out.append(None if v is None else g * v)
        out += [g * s for s in states]
        out += [g * grads[p.name].reshape(shape) for p, shape in zip(cell.params, ctx.shapes)]
        return tuple(out)


class DerivedRNN(torch.nn.Module):
    """A recurrent cell with the derived BPTT as its backward pass.

    One ``nn.Parameter`` per parameter of the cell, named by its key (``m.W``,
    ``m.U``, ...; a column such as a bias is 1-D). ``loss = m(x, y, h0=None)``:

        x    float (T, B, N), or (T, N) for one sequence; (B, T, N) with
             ``batch_first=True``; with several inputs, a dict of those by
             the inputs' names (all batched or none)
        y    integer class labels (T, B) or (T,) when the cell's targets are
             class distributions (softmax cross-entropy), else float targets
             (T, B, M) or (T, M); batch first like x; with several targets, a
             dict by their names
        h0   None (zeros), (D,) for every sequence, or (B, D); a cell with
             several states takes each by name (``s0=...``) or in order

    The loss is summed over the steps and the sequences. ``loss.backward()``
    runs the derived closed form in torch operations (on the tensors' device),
    and also gives the gradients of x, of float targets y and of the initial
    states when they require them. x and y are converted to the parameters'
    dtype; every tensor must be on the parameters' device.
    """

    def __init__(self, derivation, sizes, batch_first=False, dtype=None, device=None):
        super().__init__()
        cell = derivation.cell
        self._program = Program(derivation)
        self._cell = cell
        self._axes = axis_names(cell)
        self.batch_first = bool(batch_first)
        known = Sizes(sizes)
        for p in cell.params:
            for d in param_dims(p):
                if not d.isdigit() and d not in known.values:
                    raise ValueError(f"sizes: missing {d!r} (the size of parameter "
                                     f"{p.name!r}); give it, e.g. {d}=8")
        for p in cell.params:
            if hasattr(self, p.name):
                raise ValueError(f"params: the name {p.name!r} is taken by torch.nn.Module; "
                                 "rename the parameter")
            shape = tuple(int(d) if d.isdigit() else known.values[d] for d in param_dims(p))
            self.register_parameter(p.name, torch.nn.Parameter(
                torch.empty(shape, dtype=dtype, device=device)))
        self._sizes = dict(known.values)
        self._last = None  # (shapes, sizes) of the last call that fit
        self.reset_parameters()

    def reset_parameters(self):
        """Uniform in (-k, k), k = 1/sqrt(size of the first state), as torch.nn.RNN."""
        first = self._cell.states[0].shape[0]
        n = int(first) if first.is_Integer else self._sizes.get(str(first), 1)
        k = 1.0 / math.sqrt(n)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)

    def extra_repr(self):
        keys = ", ".join(f"{p.name}: {tuple(getattr(self, p.name).shape)}"
                         for p in self._cell.params)
        return f"{self._cell.name}: {keys}" + (", batch_first=True" if self.batch_first else "")

    def forward(self, x, y, *starts, **named):
        cell = self._cell
        params = [getattr(self, p.name) for p in cell.params]
        ref = params[0]
        given = initial_states(cell, starts, named)
        xs = [(label, _tensor(label, v, ref)) for label, v in by_name("x", x, cell.inputs)]
        label, first = xs[0]
        time, batch = self._axes
        if first.ndim not in (2, 3):
            order = f"{batch}, {time}" if self.batch_first else f"{time}, {batch}"
            n = cell.inputs[0].shape[0]
            raise ValueError(f"{label}: expected shape ({order}, {n}) or ({time}, {n}), "
                             f"got {tuple(first.shape)}")
        batched = first.ndim == 3
        ys = []
        for label, v in by_name("y", y, cell.targets):
            is_labels = (cell.targets_are_distributions and _integers(v)
                         and v.ndim == first.ndim - 1)
            ys.append((label, _labels(label, v, ref) if is_labels else _tensor(label, v, ref),
                       is_labels))
        states = [None if v is None else _tensor(f"{s.name}0", v, ref)
                  for s, v in zip(cell.states, given)]
        sizes = self._fit(xs, ys, states, batched)
        sequences = []
        for v, (label, a, is_labels) in zip(cell.targets, ys):
            if is_labels:
                dim = str(v.shape[0])
                a = _one_hot(label, a, size_of(dim, sizes), dim).to(ref.dtype)
            sequences.append(a)
        sequences = [a for _, a in xs] + sequences
        if batched and self.batch_first:
            sequences = [a.transpose(0, 1) for a in sequences]
        if not batched:
            sequences = [a[:, None] for a in sequences]
        B = sequences[0].shape[1]
        initial = []
        for s, v in zip(cell.states, states):
            r = size_of(str(s.shape[0]), sizes)
            if v is None:
                v = torch.zeros((B, r), dtype=ref.dtype, device=ref.device)
            elif v.ndim == 1:
                v = v.expand(B, r)
            initial.append(v)
        return DerivedBPTT.apply(self._program, sizes, *sequences, *initial, *params)

    def _fit(self, xs, ys, states, batched):
        cell = self._cell
        shapes = ([tuple(getattr(self, p.name).shape) for p in cell.params],
                  [(label, tuple(a.shape)) for label, a in xs],
                  [(label, tuple(a.shape), is_labels) for label, a, is_labels in ys],
                  [None if s is None else tuple(s.shape) for s in states], self.batch_first)
        if self._last is not None and self._last[0] == shapes:
            return self._last[1]
        time, batch = self._axes
        lead = ((batch, time) if self.batch_first else (time, batch)) if batched else (time,)
        layout = {"seq": lambda dim: lead + (dim,), "labels": lead,
                  "state": lambda dim: [(dim,), (batch, dim)]}
        sizes = Sizes()
        if not batched:
            sizes.values[batch], sizes.origin[batch] = 1, xs[0][0]
        values = fit_call(cell, sizes, *shapes[:4], layout)
        self._last = (shapes, values)
        return values


def _tensor(name, value, ref):
    """``value`` as a floating tensor with ``ref``'s dtype, on ``ref``'s device."""
    _on_device(name, value, ref)
    if value.is_complex() or value.dtype == torch.bool:
        raise ValueError(f"{name}: expected real numbers, got {value.dtype}")
    return value.to(ref.dtype)


def _on_device(name, value, ref):
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got a {type(value).__name__}")
    if value.device != ref.device:
        raise ValueError(f"{name}: on {value.device}, but the parameters are on {ref.device}")


def _integers(value):
    """Whether ``value`` is a tensor of integers (class labels; not bool)."""
    return (isinstance(value, torch.Tensor) and not value.is_floating_point()
            and not value.is_complex() and value.dtype != torch.bool)


def _labels(name, value, ref):
    _on_device(name, value, ref)
    return value


# torch computes little on unsigned integers wider than a byte (no min, no >=):
# their bits read as the signed type of the same width, a label >= 2**63 (2**31,
# 2**15) is negative there, so refused like any label out of range
_SIGNED = {getattr(torch, u): getattr(torch, s) for u, s in
           (("uint16", "int16"), ("uint32", "int32"), ("uint64", "int64"))
           if hasattr(torch, u)}


def _one_hot(label, k, m, dim):
    """Integer labels (..., ) as one-hot rows (..., m), after checking every
    label against 0..m-1 (before any conversion, which could wrap one)."""
    signed = k.view(_SIGNED[k.dtype]) if k.dtype in _SIGNED else k
    bad = (signed < 0) | (signed >= m)
    if k.numel() and bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise label_error(label, k[where].item(), where, m, dim)
    return torch.nn.functional.one_hot(signed.long(), m)


def module(derivation, sizes=None, *, batch_first=False, dtype=None, device=None, **size_values):
    """``DerivedRNN`` of ``derivation``; the sizes of the parameters (D, N, M, ...)
    as a dict ``sizes`` or as keywords."""
    given = dict(sizes or {})
    for k, v in size_values.items():
        if k in given:
            raise ValueError(f"sizes: {k!r} given twice")
        given[k] = v
    known = {str(s) for p in derivation.cell.params for s in p.shape if not s.is_Integer}
    for k, v in given.items():
        if k not in known:
            raise ValueError(f"sizes: unknown size {k!r}; the parameters' sizes are "
                             + ", ".join(sorted(known)))
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"sizes: {k} must be a positive integer, got {v!r}")
    return DerivedRNN(derivation, given, batch_first=batch_first, dtype=dtype, device=device)
