"""A JAX function whose vector-Jacobian product is the derived BPTT.

``Derivation.jax()`` builds it; see ``function``.
"""
import jax
import numpy
import jax.numpy as jnp
from jax import lax

from .arguments import Sizes, check_params, fit_call, initial_states
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
        x       (T, N), or a batch (T, N, B)
        y       (T, M) or (T, M, B); integer labels (T,) or (T, B) when the
                targets are class distributions
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
    x_name, y_name = cell.inputs[0].name, cell.targets[0].name

    def namespace(dtype):
        return JaxNamespace(jnp, lax, dtype, unroll)

    def run_forward(sizes, params, x, y, initial):
        xp = namespace(x.dtype)
        return program.forward(xp, dict(sizes), _matrices(cell, params), x, y, list(initial))

    stored_keys = []  # the keys of the stored values: residuals are arrays only

    def primal(sizes, params, x, y, initial):
        return run_forward(sizes, params, x, y, initial)[0]

    def forward(sizes, params, x, y, initial):
        loss, env = run_forward(sizes, params, x, y, initial)
        keys = [k for k, v in env.items() if isinstance(v, jax.Array)]
        stored_keys[:] = keys  # the same keys on every call: the program fixes them
        return loss, ([env[k] for k in keys], params)

    def backward(sizes, residual, g):
        stored, params = residual
        env = dict(zip(stored_keys, stored))
        T, B = env["zero"].shape[0], env["zero"].shape[1]
        env.update({"xp": namespace(env["zero"].dtype), "sizes": dict(sizes), "T": T,
                    "count": T * B})
        grads, states, given = program.backward(env, inputs=True)
        x, y = env[("v", x_name, 0)], env[("v", y_name, 0)]
        gx, gy = given[x_name], given[y_name]
        return ([g * grads[p.name].reshape(v.shape) for p, v in zip(cell.params, params)],
                jnp.zeros_like(x) if gx is None else g * gx,
                jnp.zeros_like(y) if gy is None else g * gy,
                [g * s for s in states])

    # the sizes (a tuple of pairs) are static: hashable, not differentiated
    core = jax.custom_vjp(primal, nondiff_argnums=(0,))
    core.defvjp(forward, backward)

    def loss(params, x, y, *starts, **named):
        values = check_params(cell, params)
        given = initial_states(cell, starts, named)
        values = [jnp.asarray(v) for v in values]
        dtype = jnp.result_type(*values, float)
        values = [v.astype(dtype) for v in values]
        x = _array("x", x, dtype)
        labels = False
        if cell.targets_are_distributions:
            k = jnp.asarray(y) if not isinstance(y, jax.Array) else y
            labels = jnp.issubdtype(k.dtype, jnp.integer) and k.ndim == x.ndim - 1
        y = jnp.asarray(y) if labels else _array("y", y, dtype)
        states = [None if v is None else _array(f"{s.name}0", v, dtype)
                  for s, v in zip(cell.states, given)]
        if x.ndim not in (2, 3):
            N = cell.inputs[0].shape[0]
            raise ValueError(f"x: expected shape (T, {N}) or (T, {N}, B), got {x.shape}")
        batched = x.ndim == 3
        N, M = str(cell.inputs[0].shape[0]), str(cell.targets[0].shape[0])
        layout = {"x": ("T", N, "B") if batched else ("T", N),
                  "y": ("T", M, "B") if batched else ("T", M),
                  "labels": ("T", "B") if batched else ("T",),
                  "state": lambda dim: [(dim,), (dim, "B")]}
        fit = Sizes()
        if not batched:
            fit.values["B"], fit.origin["B"] = 1, "x"
        sizes = fit_call(cell, fit, [v.shape for v in values], x.shape, y.shape, labels,
                         [None if s is None else s.shape for s in states], layout)
        m = int(M) if M.isdigit() else sizes[M]
        if labels:
            k = numpy.asarray(y) if _concrete(y) else None  # not checked when traced
            if k is not None and k.size and (k.min() < 0 or k.max() >= m):
                bad = int(k[(k < 0) | (k >= m)][0])
                raise ValueError(f"y: label {bad} is not a class in 0..{m - 1} ({M} = {m})")
            y = jax.nn.one_hot(y, m, dtype=dtype)
            y = y if batched else y[:, None]
        else:
            y = y.transpose(0, 2, 1) if batched else y[:, None]
        x = x.transpose(0, 2, 1) if batched else x[:, None]
        B = x.shape[1]
        initial = []
        for s, v in zip(cell.states, states):
            dim = str(s.shape[0])
            r = int(dim) if dim.isdigit() else sizes[dim]
            initial.append(jnp.zeros((B, r), dtype) if v is None
                           else jnp.broadcast_to(v, (B, r)) if v.ndim == 1 else v.T)
        return core(tuple(sorted(sizes.items())), values, x, y, initial)

    loss.__doc__ = f"The summed loss of {cell.name}, with the derived BPTT as its VJP."
    return loss


def _array(name, value, dtype):
    try:
        a = jnp.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of real numbers, "
                         f"got a {type(value).__name__}") from None
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
        raise ValueError(f"{name}: expected an array of real numbers, got {a.dtype} values")
    return a.astype(dtype)
