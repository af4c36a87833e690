"""A PyTorch module whose backward pass is the derived BPTT.

``Derivation.torch(D=..., N=..., M=...)`` builds it; see ``DerivedRNN``.
"""
import math

import torch

from .arguments import Sizes, fit_call, initial_states, param_dims
from .namespaces import TorchNamespace
from .program import Program


def _matrix(value, p):
    """A parameter as the 2-D matrix of its symbol (a column (r,) as (r, 1))."""
    return value.reshape(value.shape[0], 1) if p.shape[1] == 1 else value


class DerivedBPTT(torch.autograd.Function):
    """loss = the summed loss of the cell; its backward is the derived closed form.

    apply(program, sizes, x, y, *initial, *params): x (T, B, N) and y (T, B, M)
    in row layout, each initial state (B, r), the parameters in the cell's order
    with the shapes the API takes (a column (r,))."""

    @staticmethod
    def forward(ctx, program, sizes, x, y, *tensors):
        cell = program.cell
        n = len(cell.states)
        initial, params = tensors[:n], tensors[n:]
        xp = TorchNamespace(torch, x.dtype, x.device)
        matrices = {p.name: _matrix(v, p) for p, v in zip(cell.params, params)}
        loss, env = program.forward(xp, sizes, matrices, x, y, list(initial))
        ctx.program, ctx.env = program, env
        ctx.shapes = [v.shape for v in params]
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        program, cell = ctx.program, ctx.program.cell
        inputs = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        # on a copy: a graph kept with retain_graph=True may run backward again
        grads, states, given = program.backward(dict(ctx.env), inputs=inputs)
        x_name, y_name = cell.inputs[0].name, cell.targets[0].name
        gx, gy = given.get(x_name), given.get(y_name)
        out = [None, None, None if gx is None else g * gx, None if gy is None else g * gy]
        out += [g * s for s in states]
        out += [g * grads[p.name].reshape(shape) for p, shape in zip(cell.params, ctx.shapes)]
        return tuple(out)


class DerivedRNN(torch.nn.Module):
    """A recurrent cell with the derived BPTT as its backward pass.

    One ``nn.Parameter`` per parameter of the cell, named by its key (``m.W``,
    ``m.U``, ...; a column such as a bias is 1-D). ``loss = m(x, y, h0=None)``:

        x    float (T, B, N), or (T, N) for one sequence; (B, T, N) with
             ``batch_first=True``
        y    integer class labels (T, B) or (T,) when the cell's targets are
             class distributions (softmax cross-entropy), else float targets
             (T, B, M) or (T, M); batch first like x
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
        x = _tensor("x", x, ref)
        if x.ndim not in (2, 3):
            order = "B, T" if self.batch_first else "T, B"
            raise ValueError(f"x: expected shape ({order}, {cell.inputs[0].shape[0]}) or "
                             f"(T, {cell.inputs[0].shape[0]}), got {tuple(x.shape)}")
        batched = x.ndim == 3
        labels = (cell.targets_are_distributions and isinstance(y, torch.Tensor)
                  and not y.is_floating_point() and not y.is_complex() and y.ndim == x.ndim - 1)
        y = y if labels else _tensor("y", y, ref)
        states = [None if v is None else _tensor(f"{s.name}0", v, ref)
                  for s, v in zip(cell.states, given)]
        sizes = self._fit(x, y, labels, states, batched)
        if batched and self.batch_first:
            x, y = x.transpose(0, 1), y.transpose(0, 1)
        if not batched:
            x, y = x[:, None], y[:, None]
        target = str(cell.targets[0].shape[0])
        m = int(target) if target.isdigit() else sizes[target]
        if labels:
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= m):
                bad = ((y < 0) | (y >= m)).nonzero()[0].tolist()
                raise ValueError(f"y: label {int(y[tuple(bad)])} is not a class in 0..{m - 1} "
                                 f"({target} = {m})")
            y = torch.nn.functional.one_hot(y.long(), m).to(ref.dtype)
        B = x.shape[1]
        initial = []
        for s, v in zip(cell.states, states):
            dim = str(s.shape[0])
            r = int(dim) if dim.isdigit() else sizes[dim]
            if v is None:
                v = torch.zeros((B, r), dtype=ref.dtype, device=ref.device)
            elif v.ndim == 1:
                v = v.expand(B, r)
            initial.append(v)
        return DerivedBPTT.apply(self._program, sizes, x, y, *initial, *params)

    def _fit(self, x, y, labels, states, batched):
        cell = self._cell
        shapes = ([tuple(getattr(self, p.name).shape) for p in cell.params], tuple(x.shape),
                  tuple(y.shape), labels, [None if s is None else tuple(s.shape) for s in states],
                  self.batch_first)
        if self._last is not None and self._last[0] == shapes:
            return self._last[1]
        N, M = str(cell.inputs[0].shape[0]), str(cell.targets[0].shape[0])
        lead = (("B", "T") if self.batch_first else ("T", "B")) if batched else ("T",)
        layout = {"x": lead + (N,), "y": lead + (M,), "labels": lead,
                  "state": lambda dim: [(dim,), ("B", dim)]}
        sizes = Sizes()
        if not batched:
            sizes.values["B"], sizes.origin["B"] = 1, "x"
        values = fit_call(cell, sizes, shapes[0], shapes[1], shapes[2], labels, shapes[4], layout)
        self._last = (shapes, values)
        return values


def _tensor(name, value, ref):
    """``value`` as a floating tensor with ``ref``'s dtype, on ``ref``'s device."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got a {type(value).__name__}")
    if value.device != ref.device:
        raise ValueError(f"{name}: on {value.device}, but the parameters are on {ref.device}")
    if value.is_complex() or value.dtype == torch.bool:
        raise ValueError(f"{name}: expected real numbers, got {value.dtype}")
    return value.to(ref.dtype)


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
