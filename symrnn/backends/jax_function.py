"""A JAX function whose vector-Jacobian product is the derived BPTT.

``Derivation.jax()`` builds it; see ``function``.
"""
import jax
import jax.numpy as jnp
import numpy

from .arguments import (Sizes, axis_names, by_name, check_params, fit_call, initial_states,
                        label_error, size_of, spec)
from .kernels import Program
from .namespaces import JaxNamespace

LAYOUTS = ("TNB", "TBN")
REDUCTIONS = ("sum", "mean")


def _concrete(a):
    return not isinstance(a, jax.core.Tracer)


def function(derivation, unroll=False, layout="TNB", outputs=False, reduction="sum"):
    """``f(params, x, y, h0=None) -> loss`` (the NumPy function's arguments and the
    loss alone), or with ``outputs`` ``f(params, x, h0=None) -> (out, states)``,
    with a ``jax.custom_vjp`` whose backward pass is the derived closed form.

        params  dict of the parameter keys: matrices, a column (r,)
        x       (T, N, B) with ``layout="TNB"`` (the NumPy function's), (T, B, N)
                with ``layout="TBN"`` (the layout of a batch in JAX and PyTorch), or
                (T, N) for one sequence; with several inputs, a dict of those by
                the inputs' names (all batched or none)
        y       the targets, laid out like x (M for N); integer labels (T,) or
                (T, B) when the targets are class distributions; with several
                targets, a dict by their names
        h0      None (zeros), (D,) for every sequence, or (D, B) ("TNB") or (B, D)
                ("TBN"); a cell with several states takes each by name (``s0=...``)
                or in order

    The loss is summed over the steps and the sequences (``reduction="sum"``) or
    averaged over them (``"mean"``: divided by T B). ``outputs=True`` (or the names
    of the values, as ``d.torch(outputs=...)``): ``out`` is a dict of the cell's
    values over all steps, laid out like x, ``states`` a dict of the states at the
    last step ((D, B), (B, D) or (D,)); a loss of one's own from them has the
    derived BPTT as its VJP (the cell of ``symrnn/backends/upstream.py``).

    ``jax.grad(f)(params, x, y)`` is a dict of the parameter keys; gradients of x,
    of float targets y and of the initial states are derived too. The loops over
    the steps are ``lax.fori_loop`` (traced once whatever T; with ``unroll=True``
    unrolled, which compiles more slowly). Works under ``jax.jit``; for float64
    enable ``jax.config.update("jax_enable_x64", True)``. Labels are checked
    against the number of classes only when they are concrete (not under
    ``jax.jit``).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected 'TNB' or 'TBN', got {layout!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    if outputs is not False and outputs is not True and (
            isinstance(outputs, str) or not hasattr(outputs, "__iter__")):
        raise ValueError(f"outputs: expected True, False or names of the cell's values, "
                         f"got {outputs!r}")
    cell = derivation.cell
    form = "loss" if outputs is False else "outputs"
    program = Program(derivation, form, None if outputs in (True, False) else tuple(outputs))
    checks = spec(cell)
    time, batch = axis_names(checks)
    n_params, n_states = len(cell.params), len(cell.states)

    def kernel(name, *arrays):
        xp = JaxNamespace(arrays[n_params].dtype, unroll)
        return program.kernels("arrays", name == "gradients")[name](xp, *arrays)

    def scale(sequences):
        return 1.0 if reduction == "sum" else 1.0 / (sequences[0].shape[0]
                                                    * sequences[0].shape[1])

    def targets(sequences, upstream):
        """The outputs form's targets: the upstream gradients (dL/ds^(T) at the last step)."""
        steps, batch_size = sequences[0].shape[:2]
        values, finals = upstream
        final = dict(zip(program.states, finals))
        out = []
        for name, g in zip(program.outputs, values):
            out.append(g.at[-1].add(final[name]) if name in final else g)
        for state in program.seeds:
            g = final[state]
            out.append(jnp.zeros((steps,) + g.shape, g.dtype).at[-1].set(g))
        return out

    def primal(params, sequences, initial):
        if form == "loss":
            return kernel("forward", *params, *sequences, *initial) * scale(sequences)
        steps, batch_size = sequences[0].shape[:2]
        shapes = program.target_shapes(_sizes(cell, params, sequences, initial), steps,
                                       batch_size)
        values, finals = kernel("outputs", *params, *sequences,
                                *[jnp.zeros(s, sequences[0].dtype) for s in shapes], *initial)
        return tuple(values), tuple(finals)

    def forward(params, sequences, initial):
        return primal(params, sequences, initial), (params, sequences, initial)

    def backward(residual, g):
        params, sequences, initial = residual
        if form == "loss":
            _, grads = kernel("gradients", *params, *sequences, *initial)
            factor = g * scale(sequences)
            grads = [factor * v for v in grads]
            seq_grads = grads[n_params + n_states:]
        else:
            _, grads = kernel("gradients", *params, *sequences, *targets(sequences, g),
                              *initial)
            seq_grads = list(grads[n_params + n_states:])
        param_grads = [v.reshape(p.shape) for v, p in zip(grads, params)]
        return (param_grads, list(seq_grads), list(grads[n_params:n_params + n_states]))

    core = jax.custom_vjp(primal)
    core.defvjp(forward, backward)

    def prepare(params, x, y, starts, named):
        values = check_params(checks, params)
        given = initial_states(checks, starts, named)
        values = [_array(f"params[{name!r}]", v, None)
                  for (name, _), v in zip(checks["params"], values)]
        dtype = jnp.result_type(*values, float)
        values = [v.astype(dtype) for v in values]
        xs = [(label, _array(label, v, dtype))
              for label, v in by_name("x", x, checks["inputs"])]
        label, first = xs[0]
        seq = (lambda n: f"({time}, {n}, {batch})") if layout == "TNB" else (
            lambda n: f"({time}, {batch}, {n})")
        if first.ndim not in (2, 3):
            n = checks["inputs"][0][1]
            raise ValueError(f"{label}: expected shape ({time}, {n}) or {seq(n)}, "
                             f"got {first.shape}")
        batched = first.ndim == 3
        ys = []
        for label, v in (by_name("y", y, checks["targets"]) if form == "loss" else ()):
            k = _integers(v) if checks["labels"] else None
            if k is not None and k.ndim == first.ndim - 1:
                ys.append((label, k, True))
            else:
                ys.append((label, _array(label, v, dtype), False))
        states = [None if v is None else _array(f"{name}0", v, dtype)
                  for (name, _), v in zip(checks["states"], given)]
        lead = (time, batch) if batched else (time,)

        def per_step(dim):
            if not batched:
                return (time, dim)
            return (time, dim, batch) if layout == "TNB" else (time, batch, dim)
        layouts = {"seq": per_step, "labels": lead,
                   "state": lambda dim: [(dim,), (dim, batch) if layout == "TNB"
                                         else (batch, dim)]}
        fit = Sizes()
        if not batched:
            fit.values[batch], fit.origin[batch] = 1, xs[0][0]
        sizes = fit_call(checks, fit, [v.shape for v in values],
                         [(label, a.shape) for label, a in xs],
                         [(label, a.shape, is_labels) for label, a, is_labels in ys],
                         [None if s is None else s.shape for s in states], layouts)

        def rows(a):  # (T, B, n), the kernels' layout
            if not batched:
                return a[:, None]
            return a.transpose(0, 2, 1) if layout == "TNB" else a
        sequences = [rows(a) for _, a in xs]
        for (_, dim), (label, a, is_labels) in zip(checks["targets"], ys):
            if is_labels:
                a = _one_hot(label, a, size_of(dim, sizes), dim, dtype)
                sequences.append(a if batched else a[:, None])
            else:
                sequences.append(rows(a))
        B = sequences[0].shape[1]
        initial = []
        for (_, dim), v in zip(checks["states"], states):
            r = size_of(dim, sizes)
            initial.append(jnp.zeros((B, r), dtype) if v is None
                           else jnp.broadcast_to(v, (B, r)) if v.ndim == 1
                           else v.T if layout == "TNB" else v)
        return values, sequences, initial, batched

    def loss(params, x, y, *starts, **named):
        values, sequences, initial, _ = prepare(params, x, y, starts, named)
        return core(values, sequences, initial)

    def values(params, x, *starts, **named):
        arrays, sequences, initial, batched = prepare(params, x, None, starts, named)
        out, finals = core(arrays, sequences, initial)
        if not batched:
            out, finals = [v[:, 0] for v in out], [v[0] for v in finals]
        elif layout == "TNB":
            out, finals = [v.transpose(0, 2, 1) for v in out], [v.T for v in finals]
        return (dict(zip(program.outputs, out)),
                dict(zip(program.states, finals)))

    if form == "loss":
        loss.__doc__ = f"The loss of {cell.name}, with the derived BPTT as its VJP."
        return loss
    values.__doc__ = (f"The values {', '.join(program.outputs)} of {cell.name} over all "
                      "steps and its states at the last step, with the derived BPTT as "
                      "their VJP.")
    values.outputs = program.outputs
    return values


def _sizes(cell, params, sequences, initial):
    """The cell's sizes (by name) read from the kernels' arguments."""
    sizes = {}
    for p, v in zip(cell.params, params):
        dims = p.shape[:1] if p.shape[1] == 1 else p.shape
        sizes.update({str(d): n for d, n in zip(dims, v.shape)})
    for s, v in zip(cell.inputs, sequences):
        sizes[str(s.shape[0])] = v.shape[-1]
    for s, v in zip(cell.states, initial):
        sizes[str(s.shape[0])] = v.shape[-1]
    return sizes


def _array(name, value, dtype):
    """``value`` as a JAX array of real numbers (of ``dtype`` when given)."""
    if isinstance(value, numpy.ma.MaskedArray):
        raise ValueError(f"{name}: a masked array; its mask would be ignored: pass "
                         f"{name}.filled(...) or the data you mean")
    try:
        a = jnp.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: expected an array of real numbers, "
                         f"got a {type(value).__name__}") from None
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
        raise ValueError(f"{name}: expected an array of real numbers, got {a.dtype} values")
    return a if dtype is None else a.astype(dtype)


def _integers(y):
    """``y`` as integer labels, or None when it holds other numbers: a JAX array
    as it is, anything else as a NumPy array, not yet converted (JAX's
    conversion to 32-bit integers would wrap a label >= 2**32 to a class)."""
    if isinstance(y, jax.Array):
        return y if jnp.issubdtype(y.dtype, jnp.integer) else None
    if isinstance(y, numpy.ma.MaskedArray):
        return None  # refused by _array
    try:
        k = numpy.asarray(y)
    except (TypeError, ValueError):
        return None
    return k if k.dtype.kind in "iu" else None


def _one_hot(label, k, m, dim, dtype):
    """Labels (T,) or (T, B) as one-hot rows (T, m) or (T, B, m), after checking
    each label against 0..m-1 where they are known (not under ``jax.jit``)."""
    if _concrete(k):
        values = numpy.asarray(k)
        if values.size and (values.min() < 0 or values.max() >= m):
            where = tuple(int(i) for i in numpy.argwhere((values < 0) | (values >= m))[0])
            raise label_error(label, values[where], where, m, dim)
        k = jnp.asarray(values)  # after the check: every label now fits any integer type
    return jax.nn.one_hot(k, m, dtype=dtype)
