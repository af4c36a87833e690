"""One function against the yardsticks on one problem: its gradients against the
hand-written BPTT (when there is one) and against central finite differences of its
own loss, each as a relative error, after checking that every gradient is a real,
finite array of the right shape."""
import numpy as np

from .finite_differences import finite_differences
from .metric import defect, loss_defect, relative_error
from .references import over_batch

__all__ = ["evaluate"]


def _float64(value):
    if isinstance(value, dict):
        return {k: _float64(v) for k, v in value.items()}
    return np.asarray(value, dtype=np.float64)


def _entries(array_shape, rng, limit):
    """Indices to differentiate: all, or ``limit`` of them drawn at random."""
    size = int(np.prod(array_shape))
    if limit is None or size <= limit:
        return list(np.ndindex(array_shape))
    flat = rng.choice(size, size=limit, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, array_shape)) for k in sorted(flat)]


def _loss_function(function):
    loss = getattr(function, "loss", None)
    return loss if loss is not None else (lambda *a, **k: function(*a, **k)[0])


def evaluate(function, problem, reference=None, fd_entries=None, seed=0, eps=1e-6, kinks=None):
    """Errors of ``function`` on ``problem``: ``{name: (vs reference, vs finite
    differences, defect)}`` with ``"loss"`` for the loss (None where not compared).

    An entry at a kink of the loss (see finite_differences.py) has no derivative to
    compare with and is left out; ``kinks``, a dict, receives ``{name: [index, ...]}``
    of those entries (a gradient none of whose entries is compared gets None)."""
    loss, grads = function(problem.params, problem.x, problem.y, **problem.initial)
    shapes = problem.gradient_shapes()
    out = {}
    for name, shape in shapes.items():
        out[name] = [None, None, defect(grads.get(name) if hasattr(grads, "get") else None,
                                        shape)]
    out["loss"] = [None, None, loss_defect(loss)]

    params = _float64(problem.params)
    starts = problem.initial_arrays()
    if reference is not None:
        given = {k: (None if problem.initial.get(k) is None else starts[k])
                 for k in problem.state_sizes}
        ref_loss, ref = over_batch(reference, params, _float64(problem.x), problem.y,
                                   classes=problem.classes, **given)
        for name in shapes:
            if out[name][2] is None:
                out[name][0] = relative_error(grads[name], ref[name])
        if out["loss"][2] is None:
            out["loss"][0] = relative_error(loss, ref_loss)

    if out["loss"][2] is not None:  # no slope to measure: the defect says why
        return {k: tuple(v) for k, v in out.items()}

    forward = _loss_function(function)

    def loss_of(arrays):
        return forward({k: arrays[k] for k in params}, problem.x, problem.y,
                       **{k: arrays[k] for k in starts})

    rng = np.random.default_rng(seed)
    arrays = {**params, **starts}
    picked = {k: _entries(v.shape, rng, fd_entries) for k, v in arrays.items()}
    found = {}
    numeric = finite_differences(loss_of, arrays, eps, entries=picked, kinks=found)
    for name, indices in picked.items():
        if out[name][2] is not None:
            continue
        at_kink = set(found.get(name, ()))
        smooth = [ix for ix in indices if ix not in at_kink]
        if smooth:
            rows = tuple(np.array(ix) for ix in zip(*smooth))
            out[name][1] = relative_error(np.asarray(grads[name])[rows], numeric[name][rows])
        elif not indices:
            out[name][1] = 0.0
        if kinks is not None and name in found:
            kinks[name] = found[name]
    return {k: tuple(v) for k, v in out.items()}
