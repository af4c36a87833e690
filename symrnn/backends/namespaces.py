"""The array namespaces ``_xp`` that the kernels of ``codegen/arrays.py`` run on.

A kernel calls only ``_xp.<name>``: the NumPy functions the lowering uses
(``empty``, ``zeros``, ``full``, ``eye``, ``square``, ``stack``, ``concatenate``),
the runtime helpers (``dot``, ``vdot``, ``flat``, ``rowsum``, ``T``,
``log_softmax_and_softmax``; ``rows(a)``, what a step loop indexes by step, and
``row(a, rows, t)`` and ``set_row(a, rows, t, value)``, a step read and written
by a loop that changes ``a``), each operation's kernel ``op_<its class>`` (the
``array`` kernel of ``symrnn/ops.py``, called with this namespace) and three
that make the code functional: ``set(a, index, value)`` returns ``a`` with
``a[index] = value``, ``fill(a, value)`` returns ``value`` broadcast to ``a``'s
shape, ``loop(start, stop, step, body, carry)`` runs ``carry = body(t, carry)``
for t in ``range(start, stop, step)``. The ``array`` kernels use ``tanh``,
``sigmoid``, ``exp``, ``log``, ``sqrt``, ``abs``, ``sign``, ``rowmax`` and
``rowsum``. New arrays get the namespace's dtype (and device).
"""
import functools
import operator

from ..ops import OPERATIONS


class _Namespace:
    dot = staticmethod(operator.matmul)

    def _operations(self):
        for op in OPERATIONS.values():
            setattr(self, "op_" + op.__name__, functools.partial(op.kernels["array"], self))

    @staticmethod
    def vdot(a, b):
        return (a * b).sum()

    @staticmethod
    def flat(a):
        return a.reshape(-1, a.shape[-1])

    @staticmethod
    def square(a):
        return a * a

    def log_softmax_and_softmax(self, x):
        return self.op_LogSoftmax(x), self.op_Softmax(x)


class TorchNamespace(_Namespace):
    """PyTorch: arrays set in place, loops in Python."""

    def __init__(self, dtype, device):
        import torch
        self.torch, self.dtype, self.device = torch, dtype, device
        self.tanh, self.sigmoid, self.exp, self.log = (torch.tanh, torch.sigmoid, torch.exp,
                                                       torch.log)
        self.sqrt, self.abs, self.sign = torch.sqrt, torch.abs, torch.sign
        self.stack = torch.stack
        self._operations()

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.dtype, device=self.device)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.dtype, device=self.device)

    def full(self, shape, value):
        return self.torch.full(shape, value, dtype=self.dtype, device=self.device)

    def eye(self, n):
        return self.torch.eye(n, dtype=self.dtype, device=self.device)

    def concatenate(self, arrays, axis=0):
        return self.torch.cat(arrays, axis)

    def log_softmax_and_softmax(self, x):
        # torch's own log-softmax, one pass (the loss needs it, the gradient its exp)
        s = self.torch.log_softmax(x, -1)
        return s, s.exp()

    @staticmethod
    def T(a):
        return a.T if a.dim() == 2 else a

    @staticmethod
    def rowmax(x):
        return x.amax(-1, keepdim=True)

    @staticmethod
    def rowsum(x):
        return x.sum(-1, keepdim=True)

    @staticmethod
    def rows(a):
        return a.unbind(0)  # a tuple of views of a's memory, made once

    @staticmethod
    def row(a, rows, t):
        return rows[t]

    @staticmethod
    def set_row(a, rows, t, value):
        rows[t].copy_(value)
        return a

    @staticmethod
    def set(a, index, value):
        a[index] = value
        return a

    @staticmethod
    def fill(a, value):
        if isinstance(value, (int, float)):
            return a.fill_(value)
        return a.copy_(value.broadcast_to(a.shape))

    @staticmethod
    def loop(start, stop, step, body, carry):
        for t in range(start, stop, step):
            carry = body(t, carry)
        return carry


class JaxNamespace(_Namespace):
    """JAX: new arrays for set ones, loops as ``lax.fori_loop`` (unrolled with ``unroll``)."""

    def __init__(self, dtype, unroll=False):
        import jax
        import jax.numpy as jnp
        self.jnp, self.lax, self.dtype, self.unroll = jnp, jax.lax, dtype, bool(unroll)
        self.tanh, self.sigmoid, self.exp, self.log = (jnp.tanh, jax.nn.sigmoid, jnp.exp,
                                                       jnp.log)
        self.sqrt, self.abs, self.sign = jnp.sqrt, jnp.abs, jnp.sign
        self.stack = jnp.stack
        self._operations()

    def empty(self, shape):
        return self.jnp.zeros(shape, self.dtype)

    zeros = empty

    def full(self, shape, value):
        return self.jnp.full(shape, value, self.dtype)

    def eye(self, n):
        return self.jnp.eye(n, dtype=self.dtype)

    def concatenate(self, arrays, axis=0):
        return self.jnp.concatenate(arrays, axis)

    @staticmethod
    def T(a):
        return a.T

    @staticmethod
    def rowmax(x):
        return x.max(-1, keepdims=True)

    @staticmethod
    def rowsum(x):
        return x.sum(-1, keepdims=True)

    @staticmethod
    def rows(a):
        return a

    @staticmethod
    def row(a, rows, t):
        return a[t]

    @staticmethod
    def set_row(a, rows, t, value):
        return a.at[t].set(value)

    @staticmethod
    def set(a, index, value):
        return a.at[index].set(value)

    def fill(self, a, value):
        return self.jnp.broadcast_to(self.jnp.asarray(value, a.dtype), a.shape)

    def loop(self, start, stop, step, body, carry):
        """``lax.fori_loop`` over the steps (traced once whatever their number)."""
        n = len(range(start, stop, step))
        if n == 0:
            return carry
        return self.lax.fori_loop(0, n, lambda i, c: body(start + step * i, c), carry,
                                  unroll=n if self.unroll else 1)
