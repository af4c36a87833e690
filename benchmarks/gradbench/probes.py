"""Measurements that need a fresh process: Numba's compile time (and whether
a second process finds a disk cache), and the peak memory of one call.

Run by bench_gradients.py as ``python -m gradbench.probes KIND JSON`` with
benchmarks/ and the repository on PYTHONPATH; prints one JSON line.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # benchmarks/
REPO = os.path.dirname(HERE)


def run_probe(kind, spec, env=None, timeout=3600):
    """The probe's JSON result, or {"error": ...}."""
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = os.pathsep.join([REPO, HERE] + [p for p in
                                         full.get("PYTHONPATH", "").split(os.pathsep) if p])
    try:
        done = subprocess.run([sys.executable, "-m", "gradbench.probes", kind, json.dumps(spec)],
                              env=full, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def compile_pair(cell_key, layers, threads, timeout=3600):
    """Two fresh processes in a row, sharing a new empty cache directory
    (NUMBA_CACHE_DIR and XDG_CACHE_HOME): the first compiles from nothing, the
    second shows whether anything was cached on disk."""
    with tempfile.TemporaryDirectory(prefix="symrnn-bench-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, XDG_CACHE_HOME=cache)
        spec = {"cell": cell_key, "layers": layers, "threads": threads}
        first = run_probe("compile", spec, env, timeout)
        second = run_probe("compile", spec, env, timeout) if "error" not in first else first
    return first, second


def _cell(spec):
    from gradbench import cells
    return cells.bench_cells([spec["cell"]], [spec.get("layers", 1)])[0]


def probe_compile(spec):
    t_start = time.perf_counter()
    import numpy  # noqa: F401  (its import time counts)
    import symrnn
    from gradbench import cells
    t_import = time.perf_counter()
    cell = _cell(spec)
    d = symrnn.derive(cell.make())
    t_derive = time.perf_counter()
    f = d.lambdify("numba")
    t_lambdify = time.perf_counter()
    D = 14 if cell.key == "stacked" else 8
    params, x, y, starts = cells.make_problem(cell, (D, D, D, 16, 1))
    f(params, x, y, **starts)
    t_first = time.perf_counter()
    # read-only arrays: no recompile expected
    frozen = [params[k] for k in params] + [x, y] + list(starts.values())
    for a in frozen:
        a.setflags(write=False)
    t0 = time.perf_counter()
    f(params, x, y, **starts)
    t_readonly = time.perf_counter() - t0
    # a small batch given as transposed views of (T, B, N) arrays
    pb, xb, yb, sb = cells.make_problem(cell, (D, D, D, 16, 4))
    t0 = time.perf_counter()
    f(pb, xb.transpose(0, 2, 1), yb.transpose(0, 2, 1), **{k: v.T for k, v in sb.items()})
    t_view = time.perf_counter() - t0
    return {"import": t_import - t_start, "derive": t_derive - t_import,
            "lambdify": t_lambdify - t_derive, "first_call": t_first - t_lambdify,
            "to_first_gradient": t_first - t_start, "readonly_call": t_readonly,
            "view_batch_call": t_view}


def probe_memory(spec):
    """Peak memory of the first call of one implementation at one size:
    tracemalloc's peak (NumPy's allocations; not Numba's, PyTorch's or XLA's)
    and the rise of the peak resident set size (VmHWM) during the call."""
    import tracemalloc
    import symrnn
    from gradbench import build, cells
    cell = _cell(spec)
    problem = cells.make_problem(cell, tuple(spec["size"]))
    functions, torch, jax = {}, None, None
    name = spec["impl"]
    if name.startswith("symrnn numba"):
        functions["symrnn numba"] = symrnn.derive(cell.make()).lambdify("numba")
    elif name.startswith("symrnn"):
        functions["symrnn"] = symrnn.derive(cell.make()).lambdify()
    elif name == build.TORCH_NAME:
        import torch
    elif name == build.JAX_NAME:
        import jax
        jax.config.update("jax_enable_x64", True)
    impls, _ = build.implementations(cell, problem, functions, torch, jax)
    impl = next((i for i in impls if i.name == name), None)
    if impl is None:
        return {"error": f"no implementation {name!r} here"}
    import gc
    gc.collect()
    reset = _reset_peak()
    rss0, hwm0 = _status("VmRSS"), _status("VmHWM")
    tracemalloc.start()
    out = impl.call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm1 = _status("VmHWM")
    del out
    return {"tracemalloc_peak": peak, "rss_before": rss0, "hwm_before": hwm0, "reset": reset,
            "hwm_rise": None if hwm1 is None else max(0, hwm1 - max(hwm0, rss0))}


def _reset_peak():
    """Set VmHWM to the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status(key):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main(argv):
    kind, spec = argv[0], json.loads(argv[1])
    from gradbench.process import set_threads
    set_threads(spec.get("threads", 1))
    result = {"compile": probe_compile, "memory": probe_memory}[kind](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
