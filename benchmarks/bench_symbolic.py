#!/usr/bin/env python3
"""How long symrnn's symbolic side takes: ``symrnn.derive(cell)`` for the
Elman RNN, the LSTM and the GRU, and the independent check ``d.verify(T)`` for
T = 1..12, with the per-step cost growth (time(T)/T and a least-squares line).

    python benchmarks/bench_symbolic.py           # about a minute
    python benchmarks/bench_symbolic.py --quick   # one run per point
    python benchmarks/bench_symbolic.py --max-T 20 --cells lstm

SymPy caches results across calls; by default its cache is cleared before each
timed run, so every number is a cold run (``--warm`` keeps the cache).
"""
import argparse
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CELLS = {"elman": "ElmanRNN", "lstm": "LSTM", "gru": "GRU"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one run per point")
    p.add_argument("--runs", type=int, help="runs per point, the median is reported "
                                             "(default 5; --quick 1)")
    p.add_argument("--max-T", type=int, default=12, help="verify T = 1..MAX_T (default 12)")
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS),
                   help="cells to time (default: all)")
    p.add_argument("--warm", action="store_true", help="keep SymPy's cache between runs")
    p.add_argument("--output", metavar="FILE", help="also write the markdown report to FILE")
    args = p.parse_args(argv)
    if args.max_T < 2:
        p.error("--max-T: at least 2")
    return args


def timed(call, runs, cold):
    from sympy.core.cache import clear_cache
    times, result = [], None
    for _ in range(runs):
        if cold:
            clear_cache()
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def cpu_state():
    """(busy seconds of all CPUs, this process's CPU seconds, wall time), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    t = os.times()
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    return busy, t.user + t.system, time.monotonic()


def line_fit(xs, ys):
    """Least squares y = a + b x; returns a, b and R^2."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    if not sxx:
        return float("nan"), float("nan"), float("nan")
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


def main(argv=None):
    args = parse_args(argv)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import sympy
    import symrnn

    runs_derive = args.runs or (1 if args.quick else 5)
    runs_verify = args.runs or (1 if args.quick else 5)
    cold = not args.warm
    import platform
    report = ["# symrnn symbolic benchmark: derive and the independent verify", "",
              f"- Python {platform.python_version()}, SymPy {sympy.__version__}, symrnn "
              f"{getattr(symrnn, '__version__', '?')}",
              f"- median of {runs_derive} run(s) for derive, {runs_verify} for verify; "
              + ("SymPy cache cleared before each run (cold)" if cold else "SymPy cache kept (warm)"),
              ""]
    print("\n".join(report), flush=True)

    start = cpu_state()
    cells = [(key, getattr(symrnn, CELLS[key])()) for key in args.cells]
    for _, cell in cells:  # imports and first-use setup outside the timings
        symrnn.derive(cell).verify(1)
    derivations, derive_rows = {}, []
    for key, cell in cells:
        t, d = timed(lambda: symrnn.derive(cell), runs_derive, cold)
        derivations[key] = d
        derive_rows.append(f"| {cell.name} | {len(cell.params)} | {len(d.step)} | "
                           f"{t * 1e3:,.0f} |")
        print(f"  derive {cell.name}: {t * 1e3:.0f} ms", flush=True)
    table = ["## derive(cell)", "", "| cell | parameters | step equations | derive (ms) |",
             "| --- | --- | --- | --- |"] + derive_rows

    Ts = list(range(1, args.max_T + 1))
    times, terms = {}, {}
    for key, cell in cells:
        d = derivations[key]
        times[key], terms[key] = [], []
        for T in Ts:
            t, v = timed(lambda: d.verify(T), runs_verify, cold)
            times[key].append(t)
            terms[key].append(getattr(v, "chain_rule_terms", None))
        print(f"  verify {cell.name}: " + ", ".join(f"{t * 1e3:.0f}" for t in times[key])
              + " ms", flush=True)

    names = [cell.name for _, cell in cells]
    table += ["", f"## verify(T), T = 1..{args.max_T}: milliseconds (ms per step = time/T; "
              "scalar partial derivatives the independent route multiplies)", "",
              "| T | " + " | ".join(f"{n}: ms | ms/T | terms" for n in names) + " |",
              "| --- |" + " --- | --- | --- |" * len(names)]
    for i, T in enumerate(Ts):
        cells_ = []
        for key, _ in cells:
            t = times[key][i] * 1e3
            cells_.append(f"{t:,.0f} | {t / T:.1f} | {terms[key][i] if terms[key][i] else '-'}")
        table.append(f"| {T} | " + " | ".join(cells_) + " |")

    table += ["", "## Growth", "",
              "Least-squares line time = a + b T over T = 1..max, the exponent k of "
              "time ~ T^k fitted on log-log over T >= 2 (k = 1: linear), and "
              "time(max)/time(max/2) (2 for linear growth).", "",
              "| cell | a (ms) | b (ms per step) | R^2 | k | "
              f"time({args.max_T})/time({args.max_T // 2}) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for key, cell in cells:
        ms = [t * 1e3 for t in times[key]]
        a, b, r2 = line_fit(Ts, ms)
        logT = [math.log(T) for T in Ts[1:]]
        logt = [math.log(t) for t in ms[1:]]
        _, k, _ = line_fit(logT, logt)
        half = ms[Ts.index(args.max_T // 2)]
        table.append(f"| {cell.name} | {a:,.1f} | {b:,.1f} | {r2:.3f} | {k:.2f} | "
                     f"{ms[-1] / half:.2f} |")
    end = cpu_state()
    if start and end:
        others = max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / (end[2] - start[2]))
        table += ["", f"CPU cores used by other processes during the run: {others:.2f} "
                  "(0 = quiet machine)"]
    print("\n" + "\n".join(table), flush=True)
    report += table
    if args.output:
        with open(args.output, "w") as fh:
            fh.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
