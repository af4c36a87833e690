#!/usr/bin/env python3
"""Loss + all BPTT gradients of the Elman RNN, the LSTM, the GRU and a stacked
narrow LSTM: symrnn's generated NumPy and Numba code against hand-written
stacked NumPy BPTT baselines, PyTorch eager and JAX jit(value_and_grad(scan)).

    python benchmarks/bench_gradients.py                  # everything (long: see README.md)
    python benchmarks/bench_gradients.py --quick          # a short run, under 3 minutes
    python benchmarks/bench_gradients.py --cell lstm gru --threads 2 --output report.md
    python benchmarks/bench_gradients.py --cell stacked --layers 2 4 6

Every implementation gets the same arrays, in the benchmark's layout: x (T, N)
and y (T, M) for one sequence, (T, B, N) and (T, B, M) for a batch, initial
states (D,) or (B, D). symrnn's public function takes a batch as (T, N, B): it
is timed on its native (T, N, B) arrays, made before timing (its wrapper then
copies x and y to rows inside the call), and on the same (T, B, N) arrays as
the others, passed as transposed views (no copy anywhere). Before anything is
timed, every result is compared with the baseline (max abs difference < 1e-8).
Implementations are interleaved in one process, in rounds whose order rotates;
ratios are medians over rounds of the ratio to the baseline timed in the same
round, with their interquartile range. Numba's compile time and the peak memory
of one call are measured in fresh processes (gradbench/probes.py).

One process per run, N threads (--threads, default 1) for BLAS, OpenMP, Numba,
PyTorch and XLA, pinned to N CPUs (--no-pin to skip). OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, which slow a current NumPy on some machines, are removed by
re-executing the script without them (--keep-openblas-env to keep them).
``--malloc keep`` tells glibc to keep freed memory (see README.md).
"""
import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for _path in (HERE, REPO):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from gradbench import process  # noqa: E402  (imports no NumPy)

CELL_KEYS = ["elman", "lstm", "gru", "stacked"]
ELMAN_SIZES = [(4, 4, 4, 5, 1), (8, 8, 8, 10, 1), (64, 64, 64, 100, 1), (256, 256, 256, 100, 1),
               (64, 64, 64, 100, 32), (64, 64, 64, 1000, 1), (8, 8, 8, 1000, 1),
               (8, 8, 8, 20000, 1)]
GATED_SIZES = [(64, 64, 64, 100, 1), (64, 64, 64, 100, 32), (8, 8, 8, 1000, 1),
               (8, 8, 8, 20000, 1)]
STACKED_SIZES = [(14, 14, 14, 1024, 1), (14, 14, 14, 8192, 1)]
DEFAULT_SIZES = {"elman": ELMAN_SIZES, "lstm": GATED_SIZES, "gru": GATED_SIZES,
                 "stacked": STACKED_SIZES}
QUICK_SIZES = {"elman": [(8, 8, 8, 10, 1), (64, 64, 64, 100, 32), (8, 8, 8, 1000, 1)],
               "lstm": [(64, 64, 64, 100, 1)], "gru": [(64, 64, 64, 100, 1)],
               "stacked": [(14, 14, 14, 1024, 1)]}
MEMORY_SIZE = (64, 64, 64, 1000, 32)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", nargs="+", choices=CELL_KEYS, metavar="CELL",
                   help="cells: elman lstm gru stacked (default all)")
    p.add_argument("--layers", nargs="+", type=int, metavar="L",
                   help="layers of the stacked cell (default 2 4 6; --quick: 2)")
    p.add_argument("--sizes", nargs="+", metavar="D,N,M,T,B",
                   help="sizes for every chosen cell (default: per cell, see README.md)")
    p.add_argument("--threads", type=int, default=1, help="threads for every library (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="fewer cells, sizes and rounds; no compile-time probes")
    p.add_argument("--rounds", type=int, help="rounds per size (default 41, --quick 7)")
    p.add_argument("--budget", type=float,
                   help="stop a size's rounds after this many seconds (default 60, --quick 6)")
    p.add_argument("--only", nargs="+", metavar="WORD",
                   help="time only implementations whose name contains a word (the baseline "
                        "is always kept)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-jax", action="store_true", help="leave JAX out")
    p.add_argument("--no-numba", action="store_true", help="leave symrnn's Numba backend out")
    p.add_argument("--numba-cells", nargs="+", choices=CELL_KEYS, metavar="CELL",
                   help="cells whose Numba backend is timed and compiled (default all chosen; "
                        "--quick: elman, since a gated cell compiles for 20 s to minutes)")
    p.add_argument("--no-forward", action="store_true",
                   help="leave out the loss-alone rows (timed for the Elman RNN)")
    p.add_argument("--compile-times", choices=["yes", "no"],
                   help="measure Numba's compile time in two fresh processes per cell "
                        "(default yes; --quick: no)")
    p.add_argument("--memory", choices=["yes", "no"],
                   help=f"peak memory of one call at {MEMORY_SIZE} in fresh processes "
                        "(default yes: Elman, LSTM, GRU; --quick: Elman only)")
    p.add_argument("--profile", action="store_true",
                   help="also print where time goes, statement by statement, in symrnn's "
                        "generated kernel, its wrapper and the baseline")
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="glibc malloc: as configured, or keep freed memory")
    p.add_argument("--output", metavar="FILE", help="also write the markdown report to FILE")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to CPUs")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE if they are set")
    args = p.parse_args(argv)
    try:
        args.sizes = ([tuple(int(v) for v in s.split(",")) for s in args.sizes]
                      if args.sizes else None)
    except ValueError:
        p.error("--sizes: each size is D,N,M,T,B, e.g. 64,64,64,100,32")
    if args.sizes and any(len(s) != 5 or min(s) < 1 for s in args.sizes):
        p.error("--sizes: each size is five positive integers D,N,M,T,B")
    if args.threads < 1:
        p.error("--threads: at least 1")
    if args.layers and min(args.layers) < 1:
        p.error("--layers: at least 1")
    args.cell = args.cell or CELL_KEYS
    args.numba_cells = args.numba_cells or (["elman"] if args.quick else CELL_KEYS)
    args.layers = args.layers or ([2] if args.quick else [2, 4, 6])
    args.rounds = args.rounds or (7 if args.quick else 41)
    args.budget = args.budget or (6.0 if args.quick else 60.0)
    args.compile_times = (args.compile_times or ("no" if args.quick else "yes")) == "yes"
    args.memory = (args.memory or "yes") == "yes"
    return args


def import_libraries(args, notes):
    torch = jax = None
    if not args.no_torch:
        try:
            import torch
            process.set_torch_threads(torch, args.threads)
        except Exception as e:  # ImportError, or a broken install
            notes.append(f"PyTorch not importable ({type(e).__name__}): left out")
            torch = None
    if not args.no_jax:
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            jax.config.update("jax_platforms", "cpu")
        except Exception as e:  # ImportError, or a jaxlib that does not fit
            notes.append(f"JAX not importable ({type(e).__name__}): left out")
            jax = None
    return torch, jax


def symrnn_functions(symrnn, cell, args, notes):
    t0 = time.perf_counter()
    derivation = symrnn.derive(cell.make())
    functions = {"symrnn": derivation.lambdify()}
    t1 = time.perf_counter()
    if not args.no_numba and cell.key not in args.numba_cells:
        notes.append(f"{cell.title}: symrnn's Numba backend not timed (--numba-cells)")
    elif not args.no_numba:
        try:
            functions["symrnn numba"] = derivation.lambdify("numba")
        except ImportError:
            args.no_numba = True
            notes.append("Numba not importable: symrnn's numba backend left out")
    return functions, t1 - t0


def run_cell(np, symrnn, cell, sizes, args, torch, jax, notes):
    from gradbench import build, cells, timing
    functions, t_derive = symrnn_functions(symrnn, cell, args, notes)
    print(f"{cell.title}: derive + lambdify {t_derive:.1f} s", flush=True)
    results, faults, loads, impl_notes = {}, {}, {}, {}
    firsts = {}
    for size in sizes:
        problem = cells.make_problem(cell, size)
        forward = cell.key == "elman" and not args.no_forward
        impls, reference = build.implementations(cell, problem, functions, torch, jax, forward)
        if args.only:
            impls = [i for i in impls if i.name == build.BASELINE
                     or any(w.lower() in i.name.lower() for w in args.only)]
        t0 = time.perf_counter()
        diffs = build.check_all(impls, reference)
        t_check = time.perf_counter() - t0
        firsts[size] = {i.name: i.first_call for i in impls}
        slow = ", ".join(f"{i.name} {i.first_call:.2f} s" for i in impls if i.first_call > 0.5)
        impl_notes[f"checked at {size}"] = (f"max abs difference to the baseline "
                                            f"{max(diffs.values()):.1e}; first calls (they "
                                            f"compile Numba and JAX) {t_check:.1f} s"
                                            + (f": {slow}" if slow else ""))
        for impl in impls:  # warm-up after the first (compiling) call
            impl.call()
        impl_notes.update({i.name: i.note for i in impls if i.note})
        with timing.OtherLoad() as load:
            samples = timing.time_interleaved(impls, args.rounds, args.budget,
                                              0.002 if args.quick else 0.01)
        results[size] = {i.name: s for i, s in zip(impls, samples)}
        faults[size] = {i.name: i.faults for i in impls}
        loads[size] = load.cores
        print(f"  {size}: {len(samples[0])} rounds, max abs diff vs baseline "
              f"{max(diffs.values()):.1e}, first calls (compiles) {t_check:.1f} s"
              + ("" if load.cores is None else f", other processes {load.cores:.2f} cores"),
              flush=True)
    profile = []
    if args.profile:
        from gradbench.profile import profile_size
        for size in sizes:
            profile += profile_size(cell, functions["symrnn"], size, cells.make_problem(cell, size))
    return results, faults, loads, impl_notes, profile, firsts


def main(argv=None):
    args = parse_args(argv)
    notes = process.prepare_process(args)
    import numpy as np
    import symrnn
    from gradbench import build, cells, probes, report as rep
    torch, jax = import_libraries(args, notes)
    start = time.perf_counter()

    header = [f"# symrnn gradient benchmark: float64, {args.threads} thread(s)", ""]
    env = [f"Python {platform.python_version()}, NumPy {np.__version__}, symrnn "
           f"{getattr(symrnn, '__version__', '?')}"
           + (f", PyTorch {torch.__version__}" if torch else "")
           + (f", JAX {jax.__version__}" if jax else ""),
           f"CPU: {process.cpu_model()}", f"BLAS: {process.blas_description(np)}",
           "command: python benchmarks/bench_gradients.py " + " ".join(sys.argv[1:])]
    bench_cells = cells.bench_cells(args.cell, args.layers)
    out = []
    stacked_rows, summaries = [], []
    for cell in bench_cells:
        sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)[cell.key]
        results, faults, loads, impl_notes, profile, firsts = run_cell(
            np, symrnn, cell, sizes, args, torch, jax, notes)
        out += rep.cell_tables(cell.title, sizes, results, faults, loads, impl_notes) + profile
        if cell.key == "stacked":
            stacked_rows += [(cell.layers, s, results[s], firsts[s]) for s in sizes]
        else:
            summaries += rep.issue13_summary(cell.title, sizes, results)
    if "numba" in sys.modules:
        env[0] += f", Numba {sys.modules['numba'].__version__}"

    compile_times = {}
    if args.compile_times and not args.no_numba:
        for cell in [c for c in bench_cells if c.key in args.numba_cells]:
            key = (cell.key, cell.layers)
            print(f"compile probe: {cell.title} (two fresh processes)", flush=True)
            compile_times[key] = probes.compile_pair(cell.key, cell.layers, args.threads)
    if stacked_rows:
        summaries += rep.issue15_summary(stacked_rows, compile_times)

    memory = {}
    if args.memory:
        keys = ["elman"] if args.quick else [k for k in args.cell if k != "stacked"]
        for cell in cells.bench_cells(keys, [1]):
            # symrnn's public call in its default layout (it copies the batch) and on the
            # benchmark's (T, B, N) arrays (layout='TBN', no copy)
            names = [build.BASELINE, "symrnn", "symrnn" + rep.TBN, "symrnn kernel"]
            names += [] if args.no_numba or cell.key not in args.numba_cells else [
                "symrnn numba", "symrnn numba" + rep.TBN]
            names += ([build.TORCH_NAME] if torch else []) + ([build.JAX_NAME] if jax else [])
            print(f"memory probes: {cell.title} at {MEMORY_SIZE}", flush=True)
            memory[(cell.key, MEMORY_SIZE)] = {
                name: probes.run_probe("memory", {"cell": cell.key, "size": MEMORY_SIZE,
                                                  "impl": name, "threads": args.threads})
                for name in names}

    elapsed = time.perf_counter() - start
    header += [f"- {line}" for line in env + notes] + [f"- run time: {elapsed / 60:.1f} min", ""]
    body = (["## Summary", ""] + summaries
            + (rep.compile_table(compile_times) if compile_times else [])
            + (rep.memory_table(memory) if memory else [])
            + ["## All implementations", ""] + out)
    text = "\n".join(header + body) + "\n"
    print("\n" + text, flush=True)
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
