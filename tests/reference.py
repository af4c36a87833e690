"""The yardsticks of the tests: the hand-written NumPy BPTT, finite differences and
the relative error, all from the one checking stack in ``symrnn.checking``."""
from symrnn.checking import finite_differences, relative_error as rel_err
from symrnn.checking.references import KERNELS as ACT, elman_bptt, elman_bptt_batched

__all__ = ["ACT", "elman_bptt", "elman_bptt_batched", "finite_differences", "rel_err"]
