"""Check a hand-written BPTT against the derived gradients, for pytest users.

``check_bptt(my_bptt, cell)`` runs ``my_bptt(params, x, y, h0) -> (loss, grads)`` on
random problems and compares its loss and gradients with the closed forms symrnn
derives for ``cell`` (``derive(cell).lambdify()``) and with central finite
differences of ``my_bptt``'s own loss. On a mismatch it raises ``AssertionError``
naming the first wrong gradient key, its relative error, the smallest T and sizes at
which it goes wrong and the likely mistakes that ``explain`` names (``symrnn.testing``,
the public face, passes ``symrnn.mistakes.likely_mistakes``: a transpose, t for t-1, a
cut recurrence, a mean for a sum); it returns quietly when ``my_bptt`` is right. A
loss that is not one real number, missing keys (listed with the keys received) and
an exception in ``my_bptt`` (chained, with its own frames) are failures too; under
pytest, symrnn's frames are hidden (``__tracebackhide__``).

``problems(cell)`` is a hypothesis strategy of ``(params, x, y, h0)`` and
``assert_gradients(my_bptt, cell, params, x, y, h0)`` checks one of them; hypothesis
is imported only when ``problems`` is called.
"""
import os

import numpy as np

from .compare import evaluate
from .metric import defect, loss_defect, relative_error
from .problems import Layout, Problem, make_problem, valid_seed

__all__ = ["assert_gradients", "check_bptt", "problems"]

TOLERANCE = 1e-6                # against the derived gradients
FINITE_DIFFERENCE_TOLERANCE = 1e-5
FD_ENTRIES = 16                 # entries per array differentiated numerically

_DERIVED = {}                   # id(cell) -> (cell, derivation, derived function)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # symrnn/


def _cell_and_derived(cell):
    """(Cell, Derivation, derived function) for a Cell, a Derivation or cell text."""
    if isinstance(cell, str):
        from ..model import parse_cell
        cell = parse_cell(cell)
    key = id(cell)
    if key not in _DERIVED:
        if hasattr(cell, "lambdify") and hasattr(cell, "cell"):  # a Derivation
            derivation = cell
        else:
            from ..derivation import derive
            derivation = derive(cell)
        _DERIVED[key] = (cell, derivation, derivation.lambdify())
    _, derivation, derived = _DERIVED[key]
    return derivation.cell, derivation, derived


def _name(fn):
    return getattr(fn, "__name__", None) or repr(fn)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return None if value is None else np.array(value, copy=True)


def _theirs(traceback):
    """``traceback`` from the first frame outside symrnn: the user's own frames."""
    while traceback is not None and os.path.abspath(
            traceback.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        traceback = traceback.tb_next
    return traceback


def _call(fn, params, x, y, initial, where):
    """``fn``'s (loss, grads) on copies of the arguments, or an AssertionError that
    says why not: chained to the exception ``fn`` raised, with ``fn``'s own frames."""
    try:
        result = fn(_copy(params), _copy(x), _copy(y), **_copy(initial))
    except SystemExit as e:  # sys.exit() ends the caller's run, not only fn's
        raise AssertionError(f"{_name(fn)} called sys.exit({e.code!r}) (on {where}); it must "
                             "return (loss, grads)") from None
    except Exception as e:
        raise AssertionError(f"{_name(fn)} raised {type(e).__name__}: {e} "
                             f"(on {where})") from e.with_traceback(_theirs(e.__traceback__))
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and hasattr(result[1], "get") and hasattr(result[1], "keys")):
        raise AssertionError(f"{_name(fn)} must return (loss, grads) with grads a dict, "
                             f"got {type(result).__name__}"
                             + (f" of length {len(result)}" if isinstance(result, (tuple, list))
                                else ""))
    return result


def _where(problem):
    sizes = [f"T = {problem.T}"] + [f"{k} = {v}" for k, v in problem.sizes.items()]
    if problem.batch is not None:
        sizes.append(f"B = {problem.batch}")
    return ", ".join(sizes)


class _Answers:
    """``fn``'s and the derivation's (loss, grads) on one problem, and what differs:
    ``wrong`` = [(key, relative error or None, defect)], the loss first, then the
    gradients in the cell's order."""

    def __init__(self, fn, derived, problem, tolerance):
        self.problem = problem
        self.given = _call(fn, problem.params, problem.x, problem.y, problem.initial,
                           _where(problem))
        self.right = derived(problem.params, problem.x, problem.y, **problem.initial)
        (loss, grads), (ref_loss, ref) = self.given, self.right
        self.loss_defect = loss_defect(loss)
        self.wrong = []
        err = None if self.loss_defect else relative_error(loss, ref_loss)
        if self.loss_defect or err > tolerance:
            self.wrong.append(("loss", err, self.loss_defect))
        for key, expected in ref.items():
            value = grads.get(key)
            if value is None and key in problem.state_sizes:
                continue  # the gradient of an initial state is optional
            why = defect(value, np.shape(expected))
            err = None if why else relative_error(value, expected)
            if why or err > tolerance:
                self.wrong.append((key, err, why))

    @property
    def missing(self):
        return [k for k, _, why in self.wrong if why == "missing"]


def _fd_errors(fn, problem, seed):
    """Relative errors of ``fn``'s gradients against finite differences of its loss
    (entries at a kink of the loss left out)."""
    where = _where(problem)

    def on_copies(params, x, y, **initial):  # fn may work in place on its arguments
        return _call(fn, params, x, y, initial, where)

    errors = evaluate(on_copies, problem, None, FD_ENTRIES, seed)
    return {k: fd for k, (_, fd, _) in errors.items() if k != "loss" and fd is not None}


def _shrink(fn, derived, cell, problem, seed, tolerance):
    """The first problem with the same layout, in the order of the largest size and
    then T, on which ``fn`` goes wrong, as _Answers; ``problem``'s when no smaller one
    does."""
    largest = max(problem.sizes.values(), default=1)
    for level in range(1, largest + 1):
        sizes = {k: min(v, level) for k, v in problem.sizes.items()}
        for T in range(1, problem.T + 1):
            if T == problem.T and sizes == problem.sizes:
                return _Answers(fn, derived, problem, tolerance)
            small = make_problem(cell, seed, T=T, sizes=sizes, batch=problem.batch,
                                 layout=problem.layout)
            answers = _Answers(fn, derived, small, tolerance)
            if answers.wrong:
                return answers
    return _Answers(fn, derived, problem, tolerance)


def _keys_message(fn, answers, cell):
    """The keys expected and the keys received, when some are missing."""
    _, grads = answers.given
    states = [f"{s.name}0" for s in cell.states]
    required = [k for k in answers.right[1] if k not in states]
    got = ", ".join(repr(k) for k in grads.keys()) or "none"
    missing = answers.missing
    optional = f" (and optionally {', '.join(repr(k) for k in states)})" if states else ""
    return (f"{_name(fn)}: grads has no key {', '.join(repr(k) for k in missing)}: the keys "
            f"are the names of the parameters, {', '.join(repr(k) for k in required)}"
            f"{optional}; got {got}")


def _loss_message(fn, answers):
    """Why the loss is not a loss, and what to return instead when its values show it."""
    loss, ref_loss = answers.given[0], answers.right[0]
    text = (f"{_name(fn)}: the loss is {answers.loss_defect}; it must be one real number "
            "(a float or a 0-d array)")
    a = np.asarray(loss) if not isinstance(loss, (str, bytes)) else None
    if a is not None and a.ndim and a.dtype.kind in "biuf" and np.isfinite(a).all():
        if a.size == 1 and relative_error(a.reshape(()), ref_loss) <= TOLERANCE:
            text += "; this one holds the right value: return float(loss) (or loss.item())"
        elif relative_error(a.sum(), ref_loss) <= TOLERANCE:
            text += ("; its entries add up to the right loss: return their sum (the loss is "
                     "the sum over the steps" + (" and the batch)" if answers.problem.batch
                                                 else ")"))
    return f"{text} (on {_where(answers.problem)})"


def _message(fn, cell, answers, fd, tolerance, seed, hints=(), fd_only=False):
    key, err, why = answers.wrong[0]
    name, problem = _name(fn), answers.problem
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
    lines = [what]
    lines += [f"  likely mistake: {hint}" for hint in hints]
    lines += [f"  first wrong at {_where(problem)} ({problem.layout.describe(cell)})",
              f"  tolerance {tolerance:.0e}; relative error = max|a - b| / max(1, max|b|); "
              f"seed = {seed}"]
    others = [f"{k} ({'-' if e is None else f'{e:.1e}'})" for k, e, _ in answers.wrong[1:]]
    if others:
        lines.insert(len(lines) - 1, "  also wrong there: " + ", ".join(others))
    return "\n".join(lines)


def _hints(explain, derivation, answers):
    """[(sentence, keys)] of the likely mistakes that ``explain`` names; none when it
    fails (a hint must never hide the failure it explains)."""
    if explain is None:
        return []
    try:
        return explain(derivation, answers.problem, answers.given, answers.right,
                       [k for k, _, _ in answers.wrong])
    except Exception:
        return []


def _check(fn, cell, seed, trials, T, sizes, batch, labels, starts, tolerance, explain):
    valid_seed(seed)
    cell, derivation, derived = _cell_and_derived(cell)
    if labels and not cell.targets_are_distributions:
        raise ValueError(f"labels: the targets of {cell.name} are not class distributions, "
                         "so they cannot be integer labels")
    layout = Layout(batch=batch is not None, labels=bool(labels), starts=starts)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials: must be a positive integer, got {trials!r}")
    for trial in range(trials):
        problem = make_problem(cell, (seed, trial), T=T, sizes=sizes, batch=batch,
                               layout=layout)
        answers = _Answers(fn, derived, problem, tolerance)
        if answers.loss_defect:
            raise AssertionError(_loss_message(fn, answers))
        if answers.missing:
            raise AssertionError(_keys_message(fn, answers, cell))
        fd = _fd_errors(fn, problem, (seed, trial))
        if not answers.wrong:  # the derived gradients agree, but fn's own loss does not
            answers.wrong = [(k, e, None) for k, e in fd.items()
                             if e > FINITE_DIFFERENCE_TOLERANCE]
            if answers.wrong:
                raise AssertionError(_message(fn, cell, answers, fd, tolerance, seed,
                                              fd_only=True))
        if answers.wrong:
            small = _shrink(fn, derived, cell, problem, (seed, trial), tolerance)
            if small.wrong and small.problem is not problem:
                fd = _fd_errors(fn, small.problem, (seed, trial))
            else:
                small = answers
            # the mistakes as the smallest problem shows them, then those that only the
            # first one shows (a mean over T is no mistake at T = 1)
            found = _hints(explain, derivation, small)
            if small is not answers:
                explained = set().union(*(keys for _, keys in found))
                said = {h for h, _ in found}
                found += [(h, keys) for h, keys in _hints(explain, derivation, answers)
                          if not keys <= explained and h not in said]
            hints = [h for h, _ in found]
            raise AssertionError(_message(fn, cell, small, fd, tolerance, seed, hints))


def check_bptt(fn, cell, seed=0, *, trials=3, T=None, sizes=None, batch=None, labels=False,
               starts="shared", tolerance=TOLERANCE, explain=None):
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

    The message names the first wrong value, the smallest T and sizes at which it is
    wrong and the mistakes that ``explain(derivation, problem, given, right, keys)``
    finds (``[(sentence, keys), ...]``). An exception in ``fn`` is chained to the
    AssertionError with ``fn``'s own frames; under pytest, symrnn's frames are hidden.
    """
    __tracebackhide__ = True
    try:
        _check(fn, cell, seed, trials, T, sizes, batch, labels, starts, tolerance, explain)
    except AssertionError as e:  # raised here: no frame of symrnn's in the traceback
        raise e.with_traceback(None) from e.__cause__


def assert_gradients(fn, cell, params, x, y, h0=None, tolerance=TOLERANCE, explain=None):
    """Raise AssertionError unless ``fn`` agrees with the derived gradients of ``cell``
    on this one problem (e.g. one drawn by ``problems(cell)``). ``h0`` is the initial
    state, a dict ``{"h0": ..., "s0": ...}`` for a cell with several states, or None."""
    __tracebackhide__ = True
    try:
        _assert_gradients(fn, cell, params, x, y, h0, tolerance, explain)
    except AssertionError as e:
        raise e.with_traceback(None) from e.__cause__


def _assert_gradients(fn, cell, params, x, y, h0, tolerance, explain):
    cell, derivation, derived = _cell_and_derived(cell)
    keys = [f"{s.name}0" for s in cell.states]
    initial = dict(h0) if isinstance(h0, dict) else {} if h0 is None else {keys[0]: h0}
    batch = np.shape(x)[2] if np.ndim(x) == 3 else None
    state_sizes = {f"{s.name}0": None for s in cell.states}
    problem = Problem(params, x, y, initial, {}, len(x), batch,
                      Layout(batch=batch is not None), None, state_sizes)
    answers = _Answers(fn, derived, problem, tolerance)
    if answers.loss_defect:
        raise AssertionError(_loss_message(fn, answers))
    if answers.missing:
        raise AssertionError(_keys_message(fn, answers, cell))
    if answers.wrong:
        key, err, why = answers.wrong[0]
        detail = why or f"relative error {err:.1e} against the derived gradient"
        others = ", ".join(k for k, _, _ in answers.wrong[1:])
        hints = "".join(f"; likely mistake: {h}" for h, _ in _hints(explain, derivation, answers))
        raise AssertionError(f"{_name(fn)}: {'the loss' if key == 'loss' else repr(key)} is "
                             f"wrong: {detail} (T = {len(x)}, x {np.shape(x)})"
                             + (f"; also wrong: {others}" if others else "") + hints)


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
    cell, _, _ = _cell_and_derived(cell)
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
