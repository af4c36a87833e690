"""A PyTorch module whose backward pass is the derived BPTT.

``Derivation.torch(D=..., N=..., M=...)`` builds it; see ``DerivedRNN``.
"""
import math

import torch

from .arguments import (Sizes, axis_names, by_name, fit_call, initial_states, label_error,
                        size_of, spec)
from .kernels import Program
from .torch_function import (KERNELS, REDUCTIONS, DerivedBPTT, Runner, apply,
                             numba_available, register)
from .upstream import default_outputs


class DerivedRNN(torch.nn.Module):
    """A recurrent cell with the derived BPTT as its backward pass.

    One ``nn.Parameter`` per parameter of the cell, named by its key (``m.W``,
    ``m.U``, ...; a column such as a bias is 1-D). Two calls:

    ``loss = m(x, y, h0=None)``: the cell's loss, summed over the steps and the
    sequences (``reduction="sum"``) or averaged over them (``"mean"``: the sum
    divided by T B, as ``cross_entropy`` averages; for a cell whose loss is
    ``0.5 * (o - y).T @ (o - y)``, M/2 times ``mse_loss``'s mean).

    ``out, states = m(x, h0=None)``: ``out`` a dict of the cell's values over all
    steps by name, (T, B, n) each (by default every value that is neither a state
    nor the loss and reads no target: ``z``, ``o``, ``yhat``, ...; the option
    ``outputs`` names others, states too), ``states`` a dict of the states at the
    last step, (B, n) each. A loss of the user's own from them back-propagates
    through the derived BPTT (the gradients of the cell of
    ``symrnn/backends/upstream.py``); passing ``states`` on as the initial states of
    the next chunk (``h0=states["h"].detach()``) is truncated BPTT.

        x    float (T, B, N), or (T, N) for one sequence; (B, T, N) with
             ``batch_first=True``; with several inputs, a dict of those by
             the inputs' names (all batched or none)
        y    integer class labels (T, B) or (T,) when the cell's targets are
             class distributions (softmax cross-entropy), else float targets
             (T, B, M) or (T, M); batch first like x; with several targets, a
             dict by their names
        h0   None (zeros), (D,) for every sequence, or (B, D); a cell with
             several states takes each by name (``s0=...``) or in order

    ``loss.backward()`` runs the derived closed form, and also gives the gradients
    of x, of float targets y and of the initial states when they require them. On
    the CPU the kernels are Numba's when it is installed (``kernels="auto"``;
    compiled on the first call, seconds, then kept on disk; float32 is computed
    in float64), else (``kernels="torch"``, or another device) torch operations
    on the tensors' device. x and y are converted to the parameters' dtype; every
    tensor must be on the parameters' device. Labels are checked against the
    number of classes except under ``torch.compile``.

    The module pickles (``torch.save``; ``torch.load(..., weights_only=False)``),
    works under ``torch.func.grad``, ``vmap`` and ``functional_call`` and under
    ``torch.compile(m, fullgraph=True)``; it is first-order: a double backward
    raises.
    """

    def __init__(self, derivation, sizes, batch_first=False, dtype=None, device=None,
                 reduction="sum", outputs=None, kernels="auto"):
        super().__init__()
        cell = derivation.cell
        self._cell = cell
        self._spec = spec(cell)  # what the checks read (plain data: torch.compile traces them)
        self._axes = axis_names(self._spec)
        self.batch_first = bool(batch_first)
        self.reduction = reduction
        known = Sizes(sizes)
        for name, dims in self._spec["params"]:
            for d in dims:
                if not d.isdigit() and d not in known.values:
                    raise ValueError(f"sizes: missing {d!r} (the size of parameter "
                                     f"{name!r}); give it, e.g. {d}=8")
        for name, dims in self._spec["params"]:
            if hasattr(self, name):
                raise ValueError(f"params: the name {name!r} is taken by torch.nn.Module; "
                                 "rename the parameter")
            shape = tuple(int(d) if d.isdigit() else known.values[d] for d in dims)
            self.register_parameter(name, torch.nn.Parameter(
                torch.empty(shape, dtype=dtype, device=device)))
        self._sizes = dict(known.values)
        self._last = None  # (shapes, sizes) of the last call that fit
        loss = Runner(Program(derivation), reduction, kernels)
        try:  # the outputs form: refused at the call when the cell has none
            self._outputs = Runner(Program(derivation, "outputs", outputs), "sum", kernels)
        except ValueError as e:
            if outputs is not None:
                raise
            self._outputs = str(e)
        self._runners = {"loss": loss, "outputs": self._outputs}
        self._output_names = (self._outputs.program.outputs
                              if isinstance(self._outputs, Runner) else ())
        self._keys = {}
        self._register()
        self.reset_parameters()

    def _register(self):
        """The keys under which the functions find this module's runners, by mode."""
        self._keys = {}
        for runner in self._runners.values():
            if isinstance(runner, Runner):
                self._keys.update(register(runner))

    def __setstate__(self, state):  # unpickled, or copied: new keys
        super().__setstate__(state)
        self._register()

    @property
    def outputs(self):
        """The names of the values that ``m(x)`` returns over all steps."""
        return self._output_names

    def reset_parameters(self):
        """Uniform in (-k, k), k = 1/sqrt(size of the first state), as torch.nn.RNN."""
        first = self._cell.states[0].shape[0]
        n = int(first) if first.is_Integer else self._sizes.get(str(first), 1)
        k = 1.0 / math.sqrt(n)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)

    def extra_repr(self):
        keys = ", ".join(f"{name}: {tuple(getattr(self, name).shape)}"
                         for name, _ in self._spec["params"])
        options = ", batch_first=True" if self.batch_first else ""
        options += f", reduction={self.reduction!r}" if self.reduction != "sum" else ""
        return f"{self._cell.name}: {keys}{options}"

    def forward(self, x, y=None, *starts, **named):
        spec = self._spec
        params = [getattr(self, name) for name, _ in spec["params"]]
        ref = params[0]
        given = initial_states(spec, starts, named)
        xs = [(label, _tensor(label, v, ref)) for label, v in by_name("x", x, spec["inputs"])]
        label, first = xs[0]
        time, batch = self._axes
        if first.ndim not in (2, 3):
            order = f"{batch}, {time}" if self.batch_first else f"{time}, {batch}"
            n = spec["inputs"][0][1]
            raise ValueError(f"{label}: expected shape ({order}, {n}) or ({time}, {n}), "
                             f"got {tuple(first.shape)}")
        batched = first.ndim == 3
        ys = []
        for label, v in (by_name("y", y, spec["targets"]) if y is not None else ()):
            is_labels = spec["labels"] and _integers(v) and v.ndim == first.ndim - 1
            ys.append((label, _labels(label, v, ref) if is_labels else _tensor(label, v, ref),
                       is_labels))
        states = [None if v is None else _tensor(f"{name}0", v, ref)
                  for (name, _), v in zip(spec["states"], given)]
        sizes = self._fit(xs, ys, states, batched)
        sequences = [a for _, a in xs]
        for (_, dim), (label, a, is_labels) in zip(spec["targets"], ys):
            if is_labels:
                a = _one_hot(label, a, size_of(dim, sizes), dim, ref.dtype)
            sequences.append(a)
        if batched and self.batch_first:
            sequences = [a.transpose(0, 1) for a in sequences]
        if not batched:
            sequences = [a[:, None] for a in sequences]
        B = sequences[0].shape[1]
        initial = []
        for (_, dim), v in zip(spec["states"], states):
            r = size_of(dim, sizes)
            if v is None:
                v = torch.zeros((B, r), dtype=ref.dtype, device=ref.device)
            elif v.ndim == 1:
                v = v.expand(B, r)
            initial.append(v)
        if y is not None:
            mode = "loss"
            if torch.is_grad_enabled():  # a backward pass will follow: the gradients now
                if any(t.requires_grad for t in sequences):
                    mode = "gradients+sequences"
                elif any(t.requires_grad for t in params + initial):
                    mode = "gradients"
            return apply(DerivedBPTT, self._keys[mode], *params, *sequences, *initial)[0]
        if "outputs" not in self._keys:
            raise ValueError(f"y: needed: {self._outputs}")
        results = apply(DerivedBPTT, self._keys["outputs"], *params, *sequences, *initial)
        names = self._output_names
        values = results[:len(names)]
        if not batched:
            values = [v[:, 0] for v in values]
        elif self.batch_first:
            values = [v.transpose(0, 1) for v in values]
        finals = [v if batched else v[0] for v in results[len(names):]]
        return dict(zip(names, values)), dict(zip([n for n, _ in spec["states"]], finals))

    def _fit(self, xs, ys, states, batched):
        shapes = ([tuple(getattr(self, name).shape) for name, _ in self._spec["params"]],
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
        values = fit_call(self._spec, sizes, *shapes[:4], layout)
        if not torch.compiler.is_compiling():  # (a compiled graph keeps no state)
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


def _one_hot(label, k, m, dim, dtype):
    """Integer labels (..., ) as one-hot rows (..., m) of ``dtype``, after checking
    every label against 0..m-1 (before any conversion, which could wrap one); under
    torch.compile unchecked (a label out of range is a row of zeros)."""
    signed = k.view(_SIGNED[k.dtype]) if k.dtype in _SIGNED else k
    if torch.compiler.is_compiling():
        return (signed.long()[..., None] == torch.arange(m, device=k.device)).to(dtype)
    bad = (signed < 0) | (signed >= m)
    if k.numel() and bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise label_error(label, k[where].item(), where, m, dim)
    rows = torch.zeros(k.shape + (m,), dtype=dtype, device=k.device)
    return rows.scatter_(-1, signed.long()[..., None], 1.0)


def module(derivation, sizes=None, *, batch_first=False, dtype=None, device=None,
           reduction="sum", outputs=None, kernels="auto", **size_values):
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
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    if kernels not in KERNELS:
        raise ValueError(f"kernels: expected one of {', '.join(map(repr, KERNELS))}, "
                         f"got {kernels!r}")
    if kernels == "numba" and not numba_available():
        raise ImportError("kernels='numba' needs Numba and SciPy: pip install 'symrnn[numba]'")
    if outputs is not None:
        outputs = tuple(outputs) if not isinstance(outputs, str) else outputs
    return DerivedRNN(derivation, given, batch_first=batch_first, dtype=dtype, device=device,
                      reduction=reduction, outputs=outputs, kernels=kernels)


__all__ = ["DerivedRNN", "default_outputs", "module"]
