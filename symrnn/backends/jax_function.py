"""A JAX function whose vector-Jacobian product is the derived BPTT.

``Derivation.jax()`` builds it; see ``function``.
"""
import jax
import numpy
import jax.numpy as jnp
from jax import lax

from .arguments import (Sizes, axis_names, by_name, check_params, fit_call,
                        initial_states, label_error, size_of)
from .namespaces import JaxNamespace
from .program import Program


def _matrices(cell, params):
    return {p.name: v.reshape(v.shape[0], 1) if p.shape[1] == 1 else v
            for p, v in zip(cell.params, params)}


def _concrete(a):
    return not isinstance(a, jax.core.Tracer)


def function(derivation, unroll=False):
    """``f(params, x, y, h0=None) -> loss``, the NumPy function's arguments
    (``Derivation.lambdify``) and the loss alone, with a ``jax.custom_vjp``
    whose backward pass is the derived closed form.

        params  dict of the parameter keys: matrices, a column (r,)
        x       (T, N), or a batch (T, N, B); with several inputs, a dict of
                those by the inputs' names (all batched or none)
        y       (T, M) or (T, M, B); integer labels (T,) or (T, B) when the
                targets are class distributions; with several targets, a
                dict by their names
        h0      None (zeros), (D,) for every sequence, or (D, B); a cell with
                several states takes each by name (``s0=...``) or in order

    ``jax.grad(f)(params, x, y)`` is a dict of the parameter keys; gradients
    of x, of float targets y and of the initial states are derived too. The
    loops over the steps are ``lax.scan`` (traced once whatever T; with
    ``unroll=True`` scan unrolls them, which compiles more slowly). Works under
    ``jax.jit``; for float64 enable ``jax.config.update("jax_enable_x64", True)``.
    Labels are checked against the number of classes only when they are
    concrete (not under ``jax.jit``).
    """
    program = Program(derivation)
    cell = derivation.cell
    time, batch = axis_names(cell)

    def namespace(dtype):
        return JaxNamespace(jnp, lax, dtype, unroll)

    def run_forward(sizes, params, sequences, initial):
        xp = namespace(sequences[0].dtype)
        return program.forward(xp, dict(sizes), _matrices(cell, params),
                               dict(zip(program.sequences, sequences)), list(initial))

    stored_keys = []  # the keys of the stored values: residuals are arrays only

    def primal(sizes, params, sequences, initial):
        return run_forward(sizes, params, sequences, initial)[0]

    def forward(sizes, params, sequences, initial):
        loss, env = run_forward(sizes, params, sequences, initial)
        keys = [k for k, v in env.items() if isinstance(v, jax.Array)]
        stored_keys[:] = keys  # the same keys on every call: the program fixes them
        return loss, ([env[k] for k in keys], params)

    def backward(sizes, residual, g):
        stored, params = residual
        values = dict(zip(stored_keys, stored))
        env = program.environment(namespace(values["_zero"].dtype), dict(sizes), values)
        grads, states, given = program.backward(env, inputs=True)
        sequences = []
        for name in program.sequences:
            v = given[name]
            sequences.append(jnp.zeros_like(env[("v", name, 0)]) if v is None else g * v)
        return ([g * grads[p.name].reshape(v.shape) for p, v in zip(cell.params, params)],
                sequences, [g * s for s in states])

    # the sizes (a tuple of pairs) are static: hashable, not differentiated
    core = jax.custom_vjp(primal, nondiff_argnums=(0,))
    core.defvjp(forward, backward)

    def loss(params, x, y, *starts, **named):
        values = check_params(cell, params)
        given = initial_states(cell, starts, named)
        values = [_array(f"params[{p.name!r}]", v, None) for p, v in zip(cell.params, values)]
        dtype = jnp.result_type(*values, float)
        values = [v.astype(dtype) for v in values]
        xs = [(label, _array(label, v, dtype)) for label, v in by_name("x", x, cell.inputs)]
        label, first = xs[0]
        if first.ndim not in (2, 3):
            n = cell.inputs[0].shape[0]
            raise ValueError(f"{label}: expected shape ({time}, {n}) or ({time}, {n}, {batch}), "
                             f"got {first.shape}")
        batched = first.ndim == 3
        ys = []
        for label, v in by_name("y", y, cell.targets):
            k = _integers(v) if cell.targets_are_distributions else None
            if k is not None and k.ndim == first.ndim - 1:
                ys.append((label, k, True))
            else:
                ys.append((label, _array(label, v, dtype), False))
        states = [None if v is None else _array(f"{s.name}0", v, dtype)
                  for s, v in zip(cell.states, given)]
        lead = (time, batch) if batched else (time,)
        layout = {"seq": lambda dim: (time, dim, batch) if batched else (time, dim),
                  "labels": lead, "state": lambda dim: [(dim,), (dim, batch)]}
        fit = Sizes()
        if not batched:
            fit.values[batch], fit.origin[batch] = 1, xs[0][0]
        sizes = fit_call(cell, fit, [v.shape for v in values],
                         [(label, a.shape) for label, a in xs],
                         [(label, a.shape, is_labels) for label, a, is_labels in ys],
                         [None if s is None else s.shape for s in states], layout)
        sequences = [a.transpose(0, 2, 1) if batched else a[:, None] for _, a in xs]
        for v, (label, a, is_labels) in zip(cell.targets, ys):
            if is_labels:
                dim = str(v.shape[0])
                a = _one_hot(label, a, size_of(dim, sizes), dim, dtype)
                sequences.append(a if batched else a[:, None])
            else:
                sequences.append(a.transpose(0, 2, 1) if batched else a[:, None])
        B = sequences[0].shape[1]
        initial = []
        for s, v in zip(cell.states, states):
            r = size_of(str(s.shape[0]), sizes)
            initial.append(jnp.zeros((B, r), dtype) if v is None
                           else jnp.broadcast_to(v, (B, r)) if v.ndim == 1 else v.T)
        return core(tuple(sorted(sizes.items())), values, sequences, initial)

    loss.__doc__ = f"The summed loss of {cell.name}, with the derived BPTT as its VJP."
    return loss


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
