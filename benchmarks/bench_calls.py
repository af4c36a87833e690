"""What a call of the generated NumPy code costs beyond its work (issues 13 and 15).

Three measurements, each as medians of paired, interleaved per-round ratios in one
process (the machine may be busy: ratios, not absolute times):

  overhead  the checked public call ``f(params, x, y, **starts)`` around a kernel
            that returns its precomputed result at once (so: the checks and
            conversions alone), and the bare kernel ``gradients(*arrays)`` of the same
            module, at small sizes, for one-hot targets, integer labels and a batch
            in both layouts; ``--against FILE`` adds the same wrapper from another
            runtime.py (e.g. /work/main/symrnn/codegen/runtime.py: before/after in
            one run)
  memory    peak traced memory (tracemalloc) of one call at (64,64,64,1000,32) with
            the batch as (T, B, N) (``layout="TBN"``, no copy) and as (T, N, B),
            against the hand-written stacked Elman BPTT
  narrow    the stacked narrow LSTM of issue 15 (l layers, D = 14, no batch) against
            its hand-written NumPy BPTT, and the NumPy calls per step of the loops

The hand-written baselines come from benchmarks/gradbench (the benchmark helper's
package); ``--gradbench DIR`` points at another copy of it.

    python benchmarks/bench_calls.py                 # all three
    python benchmarks/bench_calls.py overhead --rounds 200
    python benchmarks/bench_calls.py overhead --against /work/main/symrnn/codegen/runtime.py
    python benchmarks/bench_calls.py narrow --layers 2 4 6 --T 1024
"""
import argparse
import ast
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _module(derivation, runtime_file=None):
    """The generated module's namespace (its kernel ``gradients`` and its public call);
    with ``runtime_file``, that runtime's code (a runtime.py, or a runtime_calls.py
    after this checkout's runtime.py) run over it and the public call made again."""
    from symrnn.codegen import lambdify
    source = lambdify.module_source(derivation)
    ns = {"__name__": "bench_calls_generated"}
    exec(compile(source, "<bench>", "exec"), ns)
    if runtime_file:
        with open(runtime_file) as fh:
            tree = ast.parse(fh.read())
        # without its imports of the runtime's other parts, as the generated module
        tree.body = [n for n in tree.body if not (isinstance(n, ast.ImportFrom) and n.level)]
        exec(compile(tree, runtime_file, "exec"), ns)
        ns["loss_and_gradients"] = ns["gradient_function"](ns["gradients"], ns["SPEC"])
        ns["loss"] = ns["forward_function"](ns["forward"], ns["SPEC"])
    return ns


def _paired(a, b, rounds, inner):
    """Medians of per-round time(a)/time(b) and of time(a)-time(b) per call (s)."""
    ratios, diffs = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            a()
        t1 = time.perf_counter()
        for _ in range(inner):
            b()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
        diffs.append(((t1 - t0) - (t2 - t1)) / inner)
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), (q[0], q[2]), statistics.median(diffs), (t2 - t1) / inner


def _problem(cell, size, seed=0):
    from gradbench.cells import make_problem
    return make_problem(cell, size, seed)


def _overhead_cases(bc, size):
    """(name, (params, x, y), keywords) of the calls timed at ``size``."""
    params, x, y, starts = _problem(bc, size)
    if size[4] == 1:
        return [("one-hot", (params, x, y), dict(starts)),
                ("labels", (params, x, y.argmax(-1)), dict(starts))]
    xn, yn = (np.ascontiguousarray(a.transpose(0, 2, 1)) for a in (x, y))
    return [("TBN", (params, x, y), dict(starts, layout="TBN")),
            ("TNB", (params, xn, yn), {k: np.ascontiguousarray(v.T) for k, v in starts.items()})]


def overhead(args):
    """The checks and conversions alone: the public wrapper around a kernel that
    returns its (precomputed) result at once, against the kernel itself."""
    import symrnn
    from gradbench.cells import elman, gru, lstm
    against = ["wrapper µs (IQR)"] + (["--against wrapper µs (IQR)"] if args.against else [])
    print("## Checked public call vs bare kernel (NumPy backend)\n")
    print(f"| cell | (D,N,M,T,B) | y | kernel µs | {' | '.join(against)} |")
    print("|---|---|---|---|" + "---|" * len(against))
    cells = {"elman": elman, "lstm": lstm, "gru": gru}
    for key in args.cells:
        bc = cells[key]()
        derivation = symrnn.derive(bc.make())
        spaces = [_module(derivation)] + ([_module(derivation, args.against)] if args.against
                                          else [])
        kern = spaces[0]["gradients"]
        for size in args.overhead_sizes:
            for name, call, kw in _overhead_cases(bc, tuple(size)):
                starts = {k: v for k, v in kw.items() if k != "layout"}
                prepare = spaces[0]["_preparer"](spaces[0]["SPEC"])
                arrays, _ = prepare(*call, (), dict(starts), kw.get("layout", "TNB"))
                result = kern(*arrays)
                wrappers = [ns["gradient_function"](lambda *a: result, ns["SPEC"])
                            for ns in spaces]
                for w in wrappers:
                    w(*call, **kw)
                times = [[] for _ in range(1 + len(wrappers))]
                for _ in range(args.rounds):  # interleaved: the same load for each
                    t0 = time.perf_counter()
                    for _ in range(args.inner):
                        kern(*arrays)
                    times[0].append((time.perf_counter() - t0) / args.inner)
                    for w, ts in zip(wrappers, times[1:]):
                        t0 = time.perf_counter()
                        for _ in range(args.inner):
                            w(*call, **kw)
                        ts.append((time.perf_counter() - t0) / args.inner)
                cols = []
                for ts in times[1:]:
                    q = statistics.quantiles(ts, n=4)
                    cols.append(f"{statistics.median(ts) * 1e6:.1f} "
                                f"({q[0] * 1e6:.1f}–{q[2] * 1e6:.1f})")
                print(f"| {bc.key} | {tuple(size)} | {name} | "
                      f"{statistics.median(times[0]) * 1e6:.1f} | {' | '.join(cols)} |",
                      flush=True)
    print()


def memory(args):
    import symrnn
    from gradbench.cells import elman
    bc = elman()
    size = tuple(args.mem_size)
    params, x, y, starts = _problem(bc, size)  # x (T, B, N), y (T, B, M), h0 (B, D)
    f = symrnn.derive(bc.make()).lambdify()

    def peak(call):
        call()
        tracemalloc.start()
        call()
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p
    xt, yt = np.ascontiguousarray(x.transpose(0, 2, 1)), np.ascontiguousarray(y.transpose(0, 2, 1))
    h0t = np.ascontiguousarray(starts["h0"].T)
    base = peak(lambda: bc.baseline(params, x, y, starts))
    tbn = peak(lambda: f(params, x, y, layout="TBN", **starts))
    tnb = peak(lambda: f(params, xt, yt, h0=h0t))
    print(f"## Peak traced memory of one call, Elman at {size}\n")
    print("| implementation | peak MB | / hand-written |")
    print("|---|---|---|")
    for name, p in [("hand-written stacked NumPy BPTT, (T, B, N)", base),
                    ("symrnn NumPy, layout='TBN' (native)", tbn),
                    ("symrnn NumPy, (T, N, B) (default)", tnb)]:
        print(f"| {name} | {p / 1e6:.1f} | {p / base:.3f} |")
    print()


class _Counter(ast.NodeVisitor):
    """NumPy-level calls in a loop body: calls of ``_np.*``, helpers (``_dot``,
    ``_sigmoid`` counted by the ufunc calls inside), and binary operators on arrays."""
    def __init__(self, helpers):
        self.n, self.helpers = 0, helpers

    def visit_Call(self, node):
        name = ast.unparse(node.func)
        self.n += self.helpers.get(name, 1) if not name.startswith("_list") else 0
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if not isinstance(node.op, (ast.Add, ast.Sub)) or not (
                isinstance(node.right, ast.Constant) and ast.unparse(node.left) == "_t"):
            self.n += 1
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self.n += 1
        self.generic_visit(node)


def calls_per_step(source):
    """NumPy calls per step in the loops of ``gradients`` (forward, backward)."""
    helpers = {"_sigmoid": 4, "_range": 0}
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "gradients")
    out = []
    for loop in [n for n in fn.body if isinstance(n, ast.For)]:
        c = _Counter(helpers)
        for stmt in loop.body:
            c.visit(stmt)
        out.append(c.n)
    return out


def narrow(args):
    import symrnn
    from gradbench.cells import stacked
    print(f"## Stacked narrow LSTM (issue 15), D = 14, T = {args.T}, no batch\n")
    print("| layers (states) | NumPy calls per step (fwd + bwd loops) | symrnn NumPy / "
          "hand-written NumPy (IQR) | hand-written ms |")
    print("|---|---|---|---|")
    for layers in args.layers:
        bc = stacked(layers)
        params, x, y, starts = _problem(bc, (14, 14, 14, args.T, 1))
        d = symrnn.derive(bc.make())
        f = d.lambdify()
        loss, g = f(params, x, y, **starts)
        ref_loss, ref = bc.baseline(params, x, y, starts)
        err = max(abs(loss - ref_loss), *(np.abs(g[k] - ref[k]).max() for k in ref))
        assert err < 1e-9, err
        per = calls_per_step(f.source)
        r, iqr, _, tb = _paired(lambda: f(params, x, y, **starts),
                                lambda: bc.baseline(params, x, y, starts),
                                args.narrow_rounds, 1)
        print(f"| {layers} ({2 * layers}) | {' + '.join(map(str, per))} | "
              f"{r:.2f} ({iqr[0]:.2f}–{iqr[1]:.2f}) | {tb * 1e3:.1f} |")
    print()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", nargs="*", default=["overhead", "memory", "narrow"],
                   choices=["overhead", "memory", "narrow"])
    p.add_argument("--rounds", type=int, default=101)
    p.add_argument("--inner", type=int, default=20)
    p.add_argument("--cells", nargs="+", default=["elman", "lstm", "gru"],
                   choices=["elman", "lstm", "gru"], help="cells of the overhead table")
    p.add_argument("--overhead-sizes", type=int, nargs=5, action="append",
                   metavar=("D", "N", "M", "T", "B"),
                   help="sizes of the overhead table (repeat the option; default "
                        "4 4 4 5 1, 8 8 8 10 1 and 8 8 8 10 4)")
    p.add_argument("--against", metavar="FILE",
                   help="overhead: also time the wrapper of this runtime.py")
    p.add_argument("--narrow-rounds", type=int, default=15)
    p.add_argument("--layers", type=int, nargs="+", default=[2, 4, 6])
    p.add_argument("--T", type=int, default=1024)
    p.add_argument("--mem-size", type=int, nargs=5, default=[64, 64, 64, 1000, 32])
    p.add_argument("--gradbench", default=HERE,
                   help="the directory that holds the gradbench package")
    args = p.parse_args(argv)
    args.overhead_sizes = args.overhead_sizes or [[4, 4, 4, 5, 1], [8, 8, 8, 10, 1],
                                                  [8, 8, 8, 10, 4]]
    sys.path.insert(0, args.gradbench)
    for what in args.what:
        globals()[what](args)


if __name__ == "__main__":
    main()
