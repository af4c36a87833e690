"""Run a user's code in a child process, for ``symrnn check --against``.

The user's function may never return, call ``sys.exit`` or ``os._exit``, or crash
the interpreter; none of that may end or hang the command with a success. The work
runs in a forked child that reports its result through a pipe; the parent stops it
when one watched call (``with watch():`` around each call of the user's code) lasts
longer than its limit, and reports a child that ended without a result.

Where ``fork`` is not available the work runs in this process: ``sys.exit`` in the
user's code is still a failure (see ``symrnn.testing``), but a hang is not stopped.
"""
import contextlib
import multiprocessing
import os
import signal
import time

__all__ = ["Stopped", "run"]

POLL = 0.05  # seconds between two looks at the child


class Stopped(Exception):
    """The child gave no result: it ran out of time (``timed_out``), exited or was
    killed."""

    def __init__(self, message, timed_out=False):
        super().__init__(message)
        self.timed_out = timed_out


def _watch_in(clock):
    @contextlib.contextmanager
    def watch(limit, importing=False):
        clock[1], clock[2] = limit, float(importing)
        clock[0] = time.monotonic()  # read by the parent, last: the others are set
        try:
            yield
        finally:
            clock[0] = 0.0
    return watch


def _child(connection, clock, work):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the child
    try:
        result = ("returned", work(_watch_in(clock)))
    except BaseException as e:  # noqa: B036 -- whatever it is, the parent reports it
        result = ("raised", f"{type(e).__name__}: {e}")
    connection.send(result)
    connection.close()


def _in_process(work):
    @contextlib.contextmanager
    def watch(limit, importing=False):
        yield
    return work(watch)


def _ended(code):
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited (exit code {code})"


def run(work, what="the code"):
    """``work(watch)`` in a child process; returns what it returns (it must pickle).

    ``watch(limit, importing=False)`` is a context manager for each call of the user's
    code (or the import of it): when one lasts longer than ``limit`` seconds the child
    is killed and ``Stopped`` raised.
    An exception in ``work`` that escapes it is ``RuntimeError("Name: text")``; a
    child that ends without a result is ``Stopped``. ``what`` names the user's code
    in those messages."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return _in_process(work)
    context = multiprocessing.get_context("fork")
    clock = context.Array("d", [0.0, 0.0, 0.0], lock=False)  # a call's start, its limit,
                                                              # 1.0 for an import
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, clock, work), daemon=True)
    child.start()
    send.close()
    try:
        while not receive.poll(POLL):
            started, limit, importing = clock[0], clock[1], clock[2]
            if started and time.monotonic() - started > limit:
                if importing:
                    raise Stopped(f"the import of {what} did not finish within {limit:g} s "
                                  "and was stopped")
                raise Stopped(f"{what} did not return within {limit:g} s and was stopped",
                              timed_out=True)
            if not child.is_alive() and not receive.poll():
                child.join()
                raise Stopped(f"{what} {_ended(child.exitcode)} instead of returning")
        try:
            kind, value = receive.recv()
        except EOFError:  # ended while sending
            child.join()
            raise Stopped(f"{what} {_ended(child.exitcode)} instead of returning") from None
    finally:
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join()
        receive.close()
    if kind == "raised":
        raise RuntimeError(value)
    return value
