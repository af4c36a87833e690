"""The array namespaces ``xp`` of the libraries: what symrnn/ops.py's "array"
kernels use (tanh, sigmoid, exp, log, sqrt, abs, rowmax, rowsum) and what the program
needs besides (zeros, ones, eye, concat, addmm = acc + a @ b in one call where
the library has one, and a scan over the steps). Each
namespace makes new arrays with the dtype (and device) of the call."""


class TorchNamespace:
    def __init__(self, torch, dtype, device):
        self.torch, self.dtype, self.device = torch, dtype, device
        self.tanh, self.exp, self.log = torch.tanh, torch.exp, torch.log
        self.sigmoid = torch.sigmoid  # one call, where 0.5 + 0.5 tanh(x/2) is four
        self.sqrt, self.abs = torch.sqrt, torch.abs

    def rowmax(self, x):
        return x.amax(-1, keepdim=True)

    def rowsum(self, x):
        return x.sum(-1, keepdim=True)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.dtype, device=self.device)

    def ones(self, shape):
        return self.torch.ones(shape, dtype=self.dtype, device=self.device)

    def eye(self, n):
        return self.torch.eye(n, dtype=self.dtype, device=self.device)

    def concat(self, arrays):
        return self.torch.cat(arrays, 0)

    def addmm(self, acc, a, b):
        """acc + a @ b, one call for a 2-D a."""
        return self.torch.addmm(acc, a, b) if a.dim() == 2 else acc + a @ b

    def scan(self, step, carry, xs, length, reverse):
        """A Python loop over the steps: ``step(carry, [x[t] ...]) -> (carry, [y ...])``;
        the ys stacked along a new first axis."""
        rows = [x.unbind(0) for x in xs]
        out = []
        for i in (range(length - 1, -1, -1) if reverse else range(length)):
            carry, ys = step(carry, [r[i] for r in rows])
            out.append(ys)
        if reverse:
            out.reverse()
        return carry, [self.torch.stack(column) for column in zip(*out)]


class JaxNamespace:
    def __init__(self, jnp, lax, dtype, unroll=False):
        self.jnp, self.lax, self.dtype, self.unroll = jnp, lax, dtype, unroll
        self.tanh, self.exp, self.log = jnp.tanh, jnp.exp, jnp.log
        self.sqrt, self.abs = jnp.sqrt, jnp.abs

    def sigmoid(self, x):
        return 0.5 + 0.5 * self.jnp.tanh(0.5 * x)  # XLA fuses it into one kernel

    def rowmax(self, x):
        return x.max(-1, keepdims=True)

    def rowsum(self, x):
        return x.sum(-1, keepdims=True)

    def zeros(self, shape):
        return self.jnp.zeros(shape, self.dtype)

    def ones(self, shape):
        return self.jnp.ones(shape, self.dtype)

    def eye(self, n):
        return self.jnp.eye(n, dtype=self.dtype)

    def concat(self, arrays):
        return self.jnp.concatenate(arrays, 0)

    def addmm(self, acc, a, b):
        return acc + a @ b

    def scan(self, step, carry, xs, length, reverse):
        """``lax.scan``: the step is traced once, whatever T (and unrolled when
        the function was made with ``unroll=True``)."""
        return self.lax.scan(step, carry, xs, length=length, reverse=reverse,
                             unroll=bool(self.unroll))
