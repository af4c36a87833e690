"""The one relative-error metric of every check, and what makes a value unusable.

``relative_error(a, b) = max|a - b| / max(1, max|b|)``, with ``b`` the yardstick:
relative for entries larger than 1, absolute for small ones (a gradient of 1e-9 that
finite differences give as 1.1e-9 is not an error of 10 %).
"""
import numpy as np

__all__ = ["defect", "loss_defect", "relative_error"]


def defect(value, shape):
    """Why ``value`` cannot be a gradient of ``shape`` (a short text), or None.

    Complex, non-numeric, non-finite values and wrong shapes are reported, never
    cast: a complex gradient whose real part is right is still a wrong gradient.
    """
    if value is None:
        return "missing"
    try:
        a = np.asarray(value)
    except Exception:  # ragged lists and the like
        return f"not an array ({type(value).__name__})"
    if a.dtype.kind == "c":
        return f"complex ({a.dtype})"
    if a.dtype.kind not in "biuf":
        return f"not real numbers ({a.dtype})"
    if a.shape != tuple(shape):
        return f"shape {a.shape}, expected {tuple(shape)}"
    if not np.isfinite(a).all():
        return "not finite"
    return None


def loss_defect(loss):
    """Why ``loss`` is not a loss: a real, finite scalar (a float, a NumPy scalar or a
    0-d array), as a short text; None when it is one."""
    if isinstance(loss, (str, bytes)):
        return f"a {type(loss).__name__} ({loss!r:.40}), not a number"
    try:
        a = np.asarray(loss)
    except Exception:
        return f"not a number ({type(loss).__name__})"
    if a.ndim:
        return f"not a scalar: an array of shape {a.shape}"
    if a.dtype.kind == "c":
        return f"complex ({loss!r})"
    if a.dtype.kind not in "biuf":
        return f"not a number ({type(loss).__name__})"
    if not np.isfinite(a):
        return f"not finite ({float(a)})"
    return None


def relative_error(a, b):
    """max|a - b| / max(1, max|b|); inf when the shapes differ or a value is
    complex or not finite (never a cast)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
        return float("inf")
    if a.size == 0:
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
