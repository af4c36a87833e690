"""The operations' kernels as the generated code calls them (``symrnn/ops.py``)."""
from ..ops import OPERATIONS
from . import ir


def kernel(op):
    """The IR function of an operation's NumPy kernel: a NumPy ufunc (``"numpy.tanh"``
    in the registry) or a helper copied from symrnn/ops.py (``_sigmoid``)."""
    k = op.kernels["numpy"]
    if isinstance(k, str):
        module, attr = k.split(".")
        if module != "numpy":
            raise ValueError(f"{op.__name__}: the NumPy kernel {k!r} is not a NumPy function")
        return ir.NumPy(attr)
    return ir.Helper(k.__name__[1:])  # the helper's name after its prefix _


def numpy_kernels():
    """``{IR function: the kernel}`` of the operations' NumPy kernels that are functions."""
    out = {}
    for op in OPERATIONS.values():
        k = op.kernels.get("numpy")
        if callable(k):
            out.setdefault(kernel(op), k)
    return out


def scalar_kernels():
    """``{IR function of an operation's NumPy kernel: its scalar Numba kernel}``."""
    return {kernel(op): op.kernels["numba"] for op in OPERATIONS.values()
            if callable(op.kernels.get("numba"))}


def scalar_names():
    """``{IR function of an operation's NumPy kernel: the name of its scalar kernel}``."""
    return {func: scalar.__name__ for func, scalar in scalar_kernels().items()}


def elementwise_helpers():
    """The names of the helpers that work element by element (those with a scalar
    kernel for Numba)."""
    return {kernel(op).name for op in OPERATIONS.values()
            if op.kernels.get("numba") is not None and isinstance(kernel(op), ir.Helper)}
