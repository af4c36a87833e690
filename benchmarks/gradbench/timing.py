"""Interleaved timing: every implementation of a problem in one process, in
rounds whose order rotates; per-round samples, so that ratios can be paired
within a round. And the load other processes put on the machine meanwhile."""
import gc
import os
import resource
import time


def calibrate(call, target):
    """Calls per sample so that one sample takes about ``target`` seconds."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
        if best > target:
            break
    return max(1, min(1 << 16, round(target / best)))


def time_interleaved(impls, rounds, budget, target, min_rounds=5):
    """Seconds per call of each implementation, one sample per round; rounds
    rotate the order and stop after ``budget`` seconds (at least min_rounds)."""
    counts = [calibrate(i.call, target) for i in impls]
    samples = [[] for _ in impls]
    faults, calls = [0] * len(impls), [0] * len(impls)
    start = time.perf_counter()
    k = len(impls)
    gc_was = gc.isenabled()
    try:
        for r in range(rounds):
            gc.collect()
            gc.disable()
            for j in [(r + m) % k for m in range(k)]:
                call, n = impls[j].call, counts[j]
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                for _ in range(n):
                    call()
                samples[j].append((time.perf_counter() - t0) / n)
                faults[j] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
                calls[j] += n
            if gc_was:
                gc.enable()
            if r + 1 >= min_rounds and time.perf_counter() - start > budget:
                break
    finally:
        if gc_was:
            gc.enable()
    for impl, f, c in zip(impls, faults, calls):
        impl.faults = f / max(c, 1)
    return samples


def quantiles(values):
    """(first quartile, median, third quartile), linear interpolation."""
    v = sorted(values)

    def q(p):
        x = p * (len(v) - 1)
        lo = int(x)
        return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (x - lo)

    return q(0.25), q(0.5), q(0.75)


def paired_ratios(a, b):
    """Quartiles of the per-round ratios a[r] / b[r]."""
    return quantiles([x / y for x, y in zip(a, b)])


class OtherLoad:
    """CPU time that other processes used while a block ran, in cores (from
    /proc/stat, minus this process's own time): 0 on a quiet machine."""

    def __enter__(self):
        self.start = self._read()
        return self

    def __exit__(self, *exc):
        end = self._read()
        self.cores = None
        if self.start and end:
            (busy0, own0, wall0), (busy1, own1, wall1) = self.start, end
            self.cores = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as fh:
                fields = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, time.monotonic()
