"""Check a hand-written BPTT against the derived gradients, for pytest users.

``check_bptt(my_bptt, cell)`` runs ``my_bptt(params, x, y, h0) -> (loss, grads)`` on
random problems and compares its loss and gradients with the closed forms symrnn
derives for ``cell`` and with central finite differences of ``my_bptt``'s own loss;
on a mismatch the AssertionError names the first wrong value, the smallest T and
sizes at which it is wrong and, when the wrong values equal those of a classic
mistake made on purpose (a transpose, t for t-1, a cut recurrence, a mean for a sum;
see ``symrnn.mistakes``), that mistake. ``assert_gradients`` checks one problem,
``problems(cell)`` is a hypothesis strategy of them. The checks are in
``symrnn.checking.against``; this module adds the names of the mistakes.
"""
import functools

from .checking import against

__all__ = ["assert_gradients", "check_bptt", "problems"]

TOLERANCE = against.TOLERANCE
problems = against.problems


def likely_mistakes(*args):
    """``symrnn.mistakes.likely_mistakes`` (imported when a check fails: it needs SymPy)."""
    from .mistakes import likely_mistakes as explain
    return explain(*args)


@functools.wraps(against.check_bptt)
def check_bptt(fn, cell, seed=0, **options):
    __tracebackhide__ = True
    options.setdefault("explain", likely_mistakes)
    try:
        return against.check_bptt(fn, cell, seed, **options)
    except AssertionError as e:  # raised here: no frame of symrnn's in the traceback
        raise e.with_traceback(None) from e.__cause__


@functools.wraps(against.assert_gradients)
def assert_gradients(fn, cell, params, x, y, h0=None, **options):
    __tracebackhide__ = True
    options.setdefault("explain", likely_mistakes)
    try:
        return against.assert_gradients(fn, cell, params, x, y, h0, **options)
    except AssertionError as e:
        raise e.with_traceback(None) from e.__cause__
