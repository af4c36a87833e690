"""Check a hand-written BPTT against the derived gradients, for pytest users.

``check_bptt(my_bptt, cell)`` runs ``my_bptt(params, x, y, h0) -> (loss, grads)`` on
random problems and compares its loss and gradients with the closed forms symrnn
derives for ``cell`` (``derive(cell).lambdify()``) and with central finite
differences of ``my_bptt``'s own loss. On a mismatch it raises ``AssertionError``
naming the first wrong gradient key, its relative error, and the smallest T and
sizes at which it goes wrong; it returns quietly when ``my_bptt`` is right.

``problems(cell)`` is a hypothesis strategy of ``(params, x, y, h0)`` and
``assert_gradients(my_bptt, cell, params, x, y, h0)`` checks one of them; hypothesis
is imported only when ``problems`` is called.
"""
import numpy as np

from .checking import Layout, evaluate, make_problem, relative_error
from .checking.metric import defect
from .checking.problems import valid_seed

__all__ = ["assert_gradients", "check_bptt", "problems"]

TOLERANCE = 1e-6                # against the derived gradients
FINITE_DIFFERENCE_TOLERANCE = 1e-5
FD_ENTRIES = 16                 # entries per array differentiated numerically

_DERIVED = {}                   # id(cell) -> (cell, derived function)


def _cell_and_derived(cell):
    """(Cell, derived function) for a Cell, a Derivation or cell text."""
    if isinstance(cell, str):
        from .model import parse_cell
        cell = parse_cell(cell)
    if hasattr(cell, "lambdify") and hasattr(cell, "cell"):  # a Derivation
        key = id(cell)
        if key not in _DERIVED:
            _DERIVED[key] = (cell, cell.lambdify())
        return cell.cell, _DERIVED[key][1]
    key = id(cell)
    if key not in _DERIVED:
        from .derivation import derive
        _DERIVED[key] = (cell, derive(cell).lambdify())
    return cell, _DERIVED[key][1]


def _name(fn):
    return getattr(fn, "__name__", None) or repr(fn)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return None if value is None else np.array(value, copy=True)


def _call(fn, problem):
    """``fn``'s (loss, grads) on ``problem``, or an AssertionError that says why not."""
    try:
        result = fn(_copy(problem.params), _copy(problem.x), _copy(problem.y),
                    **_copy(problem.initial))
    except Exception as e:
        raise AssertionError(f"{_name(fn)} raised {type(e).__name__}: {e} "
                             f"(on {_where(problem)})") from e
    if not (isinstance(result, tuple) and len(result) == 2 and hasattr(result[1], "get")):
        raise AssertionError(f"{_name(fn)} must return (loss, grads) with grads a dict, "
                             f"got {type(result).__name__}")
    return result


def _where(problem):
    sizes = [f"T = {problem.T}"] + [f"{k} = {v}" for k, v in problem.sizes.items()]
    if problem.batch is not None:
        sizes.append(f"B = {problem.batch}")
    return ", ".join(sizes)


def _wrong(fn, derived, problem, tolerance):
    """[(key, relative error or None, defect)] of ``fn`` against ``derived``, the loss
    first, then the gradients in the cell's order; empty when all agree."""
    loss, grads = _call(fn, problem)
    ref_loss, ref = derived(problem.params, problem.x, problem.y, **problem.initial)
    out = []
    why = None if np.ndim(loss) == 0 and np.isrealobj(loss) else f"not a real number: {loss!r}"
    err = None if why else relative_error(loss, ref_loss)
    if why or err > tolerance:
        out.append(("loss", err, why))
    for key, expected in ref.items():
        value = grads.get(key)
        if value is None and key in problem.state_sizes:
            continue  # the gradient of an initial state is optional
        why = defect(value, np.shape(expected))
        err = None if why else relative_error(value, expected)
        if why or err > tolerance:
            out.append((key, err, why))
    return out


def _fd_errors(fn, problem, seed):
    """Relative errors of ``fn``'s gradients against finite differences of its loss."""
    def on_copies(params, x, y, **initial):  # fn may work in place on its arguments
        return fn(_copy(params), _copy(x), _copy(y), **_copy(initial))

    errors = evaluate(on_copies, problem, None, FD_ENTRIES, seed)
    return {k: fd for k, (_, fd, _) in errors.items() if k != "loss" and fd is not None}


def _shrink(fn, derived, cell, problem, seed, tolerance):
    """The first problem with the same layout, in the order of the largest size and
    then T, on which ``fn`` goes wrong; ``problem`` itself when no smaller one does."""
    largest = max(problem.sizes.values(), default=1)
    for level in range(1, largest + 1):
        sizes = {k: min(v, level) for k, v in problem.sizes.items()}
        for T in range(1, problem.T + 1):
            if T == problem.T and sizes == problem.sizes:
                return problem, _wrong(fn, derived, problem, tolerance)
            small = make_problem(cell, seed, T=T, sizes=sizes, batch=problem.batch,
                                 layout=problem.layout)
            wrong = _wrong(fn, derived, small, tolerance)
            if wrong:
                return small, wrong
    return problem, _wrong(fn, derived, problem, tolerance)


def _message(fn, cell, problem, wrong, fd, tolerance, seed, fd_only=False):
    key, err, why = wrong[0]
    name = _name(fn)
    if fd_only:
        what = (f"{name}: gradient {key!r} is wrong: relative error {err:.1e} against "
                f"finite differences of {name}'s loss")
        tolerance = FINITE_DIFFERENCE_TOLERANCE
    elif key == "loss":
        what = (f"{name}: the loss is wrong: {why}" if why else
                f"{name}: the loss is wrong: relative error {err:.1e} against the loss of "
                f"{cell.name}")
    elif why:
        what = f"{name}: gradient {key!r} is wrong: {why}"
    else:
        what = (f"{name}: gradient {key!r} is wrong: relative error {err:.1e} against the "
                f"derived gradient")
        if key in fd:
            what += f" ({fd[key]:.1e} against finite differences of {name}'s loss)"
    lines = [what,
             f"  first wrong at {_where(problem)} ({problem.layout.describe(cell)})",
             f"  tolerance {tolerance:.0e}; relative error = max|a - b| / max(1, max|b|); "
             f"seed = {seed}"]
    others = [f"{k} ({'-' if e is None else f'{e:.1e}'})" for k, e, _ in wrong[1:]]
    if others:
        lines.insert(2, "  also wrong there: " + ", ".join(others))
    return "\n".join(lines)


def check_bptt(fn, cell, seed=0, *, trials=3, T=None, sizes=None, batch=None, labels=False,
               starts="shared", tolerance=TOLERANCE):
    """Raise AssertionError unless ``fn(params, x, y, h0) -> (loss, grads)`` computes the
    loss of ``cell`` and its gradients.

    ``cell`` is a Cell, a Derivation or cell text (``symrnn.parse_cell``). ``fn`` gets
    ``trials`` random problems drawn from ``seed``: one sequence x (T, N) unless
    ``batch`` is a number B (x (T, N, B)); y as rows (T, M) (one-hot for a softmax
    output) or, with ``labels=True``, integer labels (T,); the initial states as
    keywords ``h0=`` (``s0=``, ...) of shape (D,) (``starts="none"``: not passed,
    ``"per-sequence"``: (D, B)). T and ``sizes`` (``{"D": 4, ...}``) pin those values;
    the others are drawn from 1..6 and 1..7. ``grads`` needs every parameter's key;
    an initial state's key is checked when present.
    """
    valid_seed(seed)
    cell, derived = _cell_and_derived(cell)
    if labels and not cell.targets_are_distributions:
        raise ValueError(f"labels: the targets of {cell.name} are not class distributions, "
                         "so they cannot be integer labels")
    layout = Layout(batch=batch is not None, labels=bool(labels), starts=starts)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials: must be a positive integer, got {trials!r}")
    for trial in range(trials):
        problem = make_problem(cell, (seed, trial), T=T, sizes=sizes, batch=batch,
                               layout=layout)
        wrong = _wrong(fn, derived, problem, tolerance)
        fd = _fd_errors(fn, problem, (seed, trial))
        if not wrong:  # the derived gradients agree, but fn's own loss does not
            wrong = [(k, e, None) for k, e in fd.items() if e > FINITE_DIFFERENCE_TOLERANCE]
            if wrong:
                raise AssertionError(_message(fn, cell, problem, wrong, fd, tolerance, seed,
                                              fd_only=True))
        if wrong:
            small, wrong_small = _shrink(fn, derived, cell, problem, (seed, trial), tolerance)
            if wrong_small:
                fd = _fd_errors(fn, small, (seed, trial))
                problem, wrong = small, wrong_small
            raise AssertionError(_message(fn, cell, problem, wrong, fd, tolerance, seed))


def assert_gradients(fn, cell, params, x, y, h0=None, tolerance=TOLERANCE):
    """Raise AssertionError unless ``fn`` agrees with the derived gradients of ``cell``
    on this one problem (e.g. one drawn by ``problems(cell)``). ``h0`` is the initial
    state, a dict ``{"h0": ..., "s0": ...}`` for a cell with several states, or None."""
    from .checking.problems import Problem

    cell, derived = _cell_and_derived(cell)
    keys = [f"{s.name}0" for s in cell.states]
    initial = dict(h0) if isinstance(h0, dict) else {} if h0 is None else {keys[0]: h0}
    batch = np.shape(x)[2] if np.ndim(x) == 3 else None
    state_sizes = {f"{s.name}0": None for s in cell.states}
    problem = Problem(params, x, y, initial, {}, len(x), batch,
                      Layout(batch=batch is not None), None, state_sizes)
    wrong = _wrong(fn, derived, problem, tolerance)
    if wrong:
        key, err, why = wrong[0]
        detail = why or f"relative error {err:.1e} against the derived gradient"
        others = ", ".join(k for k, _, _ in wrong[1:])
        raise AssertionError(f"{_name(fn)}: {'the loss' if key == 'loss' else repr(key)} is "
                             f"wrong: {detail} (T = {len(x)}, x {np.shape(x)})"
                             + (f"; also wrong: {others}" if others else ""))


def problems(cell, *, max_T=6, max_size=5, batch=False, labels=False, starts="shared"):
    """A hypothesis strategy of ``(params, x, y, h0)`` for ``cell``: T in 1..max_T,
    every size in 1..max_size (shrinking towards 1), one sequence unless ``batch``.
    ``h0`` is the initial state's array (a dict for several states; None for
    ``starts="none"``). Needs hypothesis (``pip install hypothesis``)."""
    try:
        from hypothesis import strategies as st
    except ImportError:
        raise ImportError("symrnn.testing.problems needs hypothesis: "
                          "pip install hypothesis") from None
    cell, _ = _cell_and_derived(cell)
    names = [str(s) for s in cell.sizes]

    def build(T, sizes, B, seed):
        p = make_problem(cell, seed, T=T, sizes=sizes, batch=B,
                         layout=Layout(batch=B is not None, labels=labels, starts=starts))
        if not p.initial:
            h0 = None
        elif len(p.initial) == 1:
            h0 = next(iter(p.initial.values()))
        else:
            h0 = dict(p.initial)
        return p.params, p.x, p.y, h0

    return st.builds(build, st.integers(1, max_T),
                     st.fixed_dictionaries({n: st.integers(1, max_size) for n in names}),
                     st.integers(1, 4) if batch else st.none(),
                     st.integers(0, 2 ** 32 - 1))
