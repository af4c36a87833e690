#!/usr/bin/env python3
"""Loss + all BPTT gradients of an Elman RNN: symrnn's generated NumPy against
hand-written NumPy (per-step and stacked), PyTorch eager autograd and JAX.

    python benchmarks/bench_gradients.py            # all sizes, about 3-6 minutes
    python benchmarks/bench_gradients.py --quick    # fewer rounds
    python benchmarks/bench_gradients.py --sizes 8,8,8,10,1 64,64,64,100,32 --profile

The model (row layout, B sequences in parallel): z = h_prev W^T + x U^T,
h = tanh(z), o = h V^T, loss = -sum y . log_softmax(o), over t = 1..T.
Every implementation gets the arguments of symrnn's public function,
``f(params, x, y, h0=h0)``: params = {"W": (D, D), "U": (D, N), "V": (M, D)},
x (T, N) or (T, N, B), y (T, M) or (T, M, B), h0 (D,) or (D, B), and returns
the loss and the gradients in the same shapes. Before anything is timed the
results are compared (max abs difference < 1e-8 against the stacked NumPy
baseline). Implementations are interleaved in one process, in an order rotated
each round; the table gives medians of many rounds, in microseconds per call.

One thread: OMP/OPENBLAS/MKL_NUM_THREADS=1 are set before NumPy is imported,
torch.set_num_threads(1), XLA is asked for one thread, and the process is
pinned to one CPU (--no-pin to skip). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE,
which some machines set and which slow a current NumPy, are removed together
by re-executing the script without them (--keep-openblas-env to keep them).

``--malloc keep`` tells glibc to keep freed memory (mallopt M_TRIM_THRESHOLD,
M_MMAP_THRESHOLD), so that the temporaries of one call reuse the pages of the
previous call instead of page-faulting fresh ones: on a VM where a page fault
is expensive this changes the batched numbers a lot (see README.md).
"""
import argparse
import ast
import gc
import inspect
import os
import platform
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

DEFAULT_SIZES = [(8, 8, 8, 10, 1), (64, 64, 64, 100, 1), (256, 256, 256, 100, 1),
                 (64, 64, 64, 100, 32), (64, 64, 64, 1000, 1)]
TOLERANCE = 1e-8
BASELINE = "NumPy stacked"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", metavar="D,N,M,T,B",
                   help="sizes to run (default: " + " ".join(",".join(map(str, s))
                                                             for s in DEFAULT_SIZES) + ")")
    p.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    p.add_argument("--rounds", type=int, help="rounds per size (default 61, --quick 7)")
    p.add_argument("--budget", type=float,
                   help="stop a size's rounds after this many seconds (default 75, --quick 10)")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="time only implementations whose name contains one of these words")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-jax", action="store_true", help="leave JAX out")
    p.add_argument("--no-numba", action="store_true",
                   help="leave out symrnn's Numba backend (timed when Numba is importable)")
    p.add_argument("--profile", action="store_true",
                   help="also print where time goes, statement by statement, in symrnn's "
                        "generated kernel, its wrapper and the stacked baseline")
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="glibc malloc: as configured, or keep freed memory (no page faults "
                        "for each call's temporaries)")
    p.add_argument("--output", metavar="FILE", help="also write the markdown report to FILE")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE if they are set")
    args = p.parse_args(argv)
    try:
        args.sizes = ([tuple(int(v) for v in s.replace("x", ",").split(",")) for s in args.sizes]
                      if args.sizes else DEFAULT_SIZES)
    except ValueError:
        p.error("--sizes: each size is D,N,M,T,B, e.g. 64,64,64,100,32")
    if any(len(s) != 5 or min(s) < 1 for s in args.sizes):
        p.error("--sizes: each size is five positive integers D,N,M,T,B")
    args.rounds = args.rounds or (7 if args.quick else 61)
    args.budget = args.budget or (10.0 if args.quick else 75.0)
    return args


# -- the process: one thread, BLAS environment, malloc ------------------------------

def prepare_process(args):
    """Everything that must happen before NumPy is imported. Returns notes."""
    notes = []
    bad = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    if bad and not args.keep_openblas_env:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env["SYMRNN_BENCH_REEXEC"] = ",".join(f"{k}={os.environ[k]}" for k in bad)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    if os.environ.get("SYMRNN_BENCH_REEXEC"):
        notes.append("re-executed without " + os.environ["SYMRNN_BENCH_REEXEC"])
    elif bad:
        notes.append("kept " + ", ".join(f"{k}={os.environ[k]}" for k in bad))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"
    flags = os.environ.get("XLA_FLAGS", "")
    if "multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        notes.append(f"pinned to CPU {cpus[-1]} (of {len(cpus)})")
    if args.malloc == "keep":
        notes.append(set_malloc_keep())
    return notes


def set_malloc_keep():
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = (libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
              and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        ok = False
    return ("malloc: keep freed memory (mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=1 GiB)"
            if ok else "malloc: --malloc keep requested but mallopt is not available")


def blas_description(np):
    try:
        from threadpoolctl import threadpool_info
        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return "; ".join(f"{i.get('internal_api')} {i.get('version')} "
                             f"(kernel {i.get('architecture')}, {i.get('num_threads')} thread(s), "
                             f"{os.path.basename(i.get('filepath', ''))})" for i in infos)
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return (f"{blas.get('name')} {blas.get('version')} "
                f"({' '.join(str(blas.get('openblas configuration', '')).split())}; "
                "install threadpoolctl for the kernel in use)")
    except Exception:  # older NumPy: no dict mode
        return "unknown (install threadpoolctl)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the problem --------------------------------------------------------------------

def make_problem(np, D, N, M, T, B, seed=0):
    """Float64 parameters, inputs, targets (one-hot for B = 1, probabilities
    for batches) and an initial state, in symrnn's argument layout."""
    rng = np.random.default_rng(seed)
    params = {"W": 0.9 * rng.standard_normal((D, D)) / np.sqrt(D),
              "U": rng.standard_normal((D, N)) / np.sqrt(N),
              "V": rng.standard_normal((M, D)) / np.sqrt(D)}
    if B == 1:
        x = rng.standard_normal((T, N))
        y = np.eye(M)[rng.integers(0, M, T)]
        h0 = 0.1 * rng.standard_normal(D)
    else:
        x = rng.standard_normal((T, N, B))
        y = np.ascontiguousarray(rng.dirichlet(np.ones(M), (T, B)).transpose(0, 2, 1))
        h0 = 0.1 * rng.standard_normal((D, B))
    return params, x, y, h0


# -- hand-written NumPy ------------------------------------------------------------

def numpy_per_step(params, x, y, h0):
    """min-char-rnn style: column vectors, one step at a time, the weight
    gradients accumulated as a sum of outer products in the backward loop."""
    import numpy as np
    W, U, V = params["W"], params["U"], params["V"]
    batched = x.ndim == 3
    xs = x if batched else x[:, :, None]          # (T, N, B)
    ys = y if batched else y[:, :, None]          # (T, M, B)
    hs = {-1: h0 if batched else h0[:, None]}     # (D, B)
    ps, loss = {}, 0.0
    for t in range(len(xs)):
        hs[t] = np.tanh(U @ xs[t] + W @ hs[t - 1])
        o = V @ hs[t]
        e = np.exp(o - o.max(0))
        ps[t] = e / e.sum(0)
        loss += -np.sum(ys[t] * np.log(ps[t]))
    dW, dU, dV = np.zeros_like(W), np.zeros_like(U), np.zeros_like(V)
    dh_next = np.zeros_like(hs[-1])
    for t in reversed(range(len(xs))):
        do = ps[t] - ys[t]                        # targets sum to 1 over the classes
        dV += do @ hs[t].T
        dh = V.T @ do + dh_next
        dz = (1 - hs[t] * hs[t]) * dh
        dU += dz @ xs[t].T
        dW += dz @ hs[t - 1].T
        dh_next = W.T @ dz
    return float(loss), {"W": dW, "U": dU, "V": dV, "h0": dh_next if batched else dh_next[:, 0]}


def numpy_stacked(params, x, y, h0):
    """The baseline: only the two recurrences run step by step; the input
    projection, the output layer, the softmax, the loss and each weight gradient
    are one vectorised operation or one matrix product over all steps."""
    W, U, V = params["W"], params["U"], params["V"]
    if x.ndim == 2:
        return _stacked_single(W, U, V, x, y, h0)
    return _stacked_batch(W, U, V, x, y, h0)


def _stacked_single(W, U, V, x, y, h0):
    # B = 1: states are 1-D rows, the step is a matrix-vector product
    import numpy as np
    dot, tanh = np.dot, np.tanh
    T, D = x.shape[0], W.shape[0]
    H = np.empty((T + 1, D))                      # h^(0..T), one row per step
    H[0] = h0
    dot(x, U.T, out=H[1:])                        # x U^T for all steps at once
    rows = list(H)                                # views, cheaper than H[t] in the loop
    for t in range(T):
        r = rows[t + 1]
        r += dot(W, rows[t])
        tanh(r, out=r)
    Hs = H[1:]
    O = dot(Hs, V.T)                              # every output at once, then in place:
    O -= O.max(1, keepdims=True)                  # shifted logits
    loss = -np.vdot(y, O)
    np.exp(O, out=O)
    Z = O.sum(1, keepdims=True)
    loss += np.log(Z).sum()                       # rows of y sum to 1
    O /= Z
    O -= y                                        # dL/do = softmax(o) - y
    G = dot(O, V)                                 # dL/dh through the output, all steps
    S = Hs * Hs
    np.subtract(1.0, S, out=S)                    # tanh' = 1 - h^2
    g, s = list(G), list(S)
    d = g[T - 1]                                  # G becomes dL/dz in place
    d *= s[T - 1]
    for t in range(T - 2, -1, -1):
        nd = g[t]
        nd += dot(d, W)
        nd *= s[t]
        d = nd
    return float(loss), {"W": dot(G.T, H[:T]), "U": dot(G.T, x), "V": dot(O.T, Hs),
                         "h0": dot(d, W)}


def _stacked_batch(W, U, V, x, y, h0):
    # B > 1: rows (B, D) per step; x and y copied once to (T*B, .) rows so that
    # every product over all steps is one contiguous GEMM
    import numpy as np
    mm, tanh = np.matmul, np.tanh
    T, N, B = x.shape
    D = W.shape[0]
    X = np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(T * B, N)
    Y = np.ascontiguousarray(y.transpose(0, 2, 1)).reshape(T * B, -1)
    H = np.empty((T + 1, B, D))
    H[0] = h0.T
    mm(X, U.T, out=H[1:].reshape(T * B, D))
    rows = list(H)
    WT = W.T
    tmp = np.empty((B, D))
    for t in range(T):
        r = rows[t + 1]
        mm(rows[t], WT, out=tmp)
        r += tmp
        tanh(r, out=r)
    Hs = H[1:].reshape(T * B, D)
    O = mm(Hs, V.T)
    O -= O.max(1, keepdims=True)
    loss = -np.vdot(Y, O)
    np.exp(O, out=O)
    Z = O.sum(1, keepdims=True)
    loss += np.log(Z).sum()
    O /= Z
    O -= Y
    G = mm(O, V)
    S = Hs * Hs
    np.subtract(1.0, S, out=S)
    g, s = list(G.reshape(T, B, D)), list(S.reshape(T, B, D))
    d = g[T - 1]
    d *= s[T - 1]
    for t in range(T - 2, -1, -1):
        nd = g[t]
        mm(d, W, out=tmp)
        nd += tmp
        nd *= s[t]
        d = nd
    return float(loss), {"W": mm(G.T, H[:T].reshape(T * B, D)), "U": mm(G.T, X),
                         "V": mm(O.T, Hs), "h0": mm(d, W).T}


# -- the implementations, each as call() and a conversion for the check ----------

class Impl:
    def __init__(self, name, call, to_numpy=None, note=""):
        self.name, self.call, self.note = name, call, note
        self.to_numpy = to_numpy or (lambda out: out)


def symrnn_impls(np, f, params, x, y, h0):
    """symrnn's public function and its forward, and the raw generated kernels
    (taken from the generated module's namespace) on arguments laid out as the
    wrapper lays them out: the difference is the wrapper's cost."""
    impls = [Impl("symrnn", lambda: f(params, x, y, h0=h0)),
             Impl("symrnn forward", lambda: (f.loss(params, x, y, h0=h0), None))]
    ns = getattr(f, "__globals__", {})
    kernel, forward = ns.get("gradients"), ns.get("forward")
    if kernel is None or forward is None:
        return impls
    batched = x.ndim == 3
    rows = (lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))) if batched else \
        (lambda a: a[:, None, :])
    args = (params["W"], params["U"], params["V"], rows(x), rows(y),
            h0.T if batched else h0[None, :])
    names = [p for p, _ in ns.get("SPEC", {}).get("params", [])] or ["W", "U", "V"]

    def grads(out):
        loss, g = out
        g = dict(zip(names + ["h0"], g))
        g["h0"] = g["h0"].T if batched else g["h0"][0]
        return float(loss), g

    impls += [Impl("symrnn kernel", lambda: kernel(*args), grads),
              Impl("symrnn forward kernel", lambda: (forward(*args), None))]
    return impls


def torch_impl(torch, np, params, x, y, h0):
    tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    th0 = torch.from_numpy(h0.copy()).requires_grad_()
    batched = x.ndim == 3
    T = x.shape[0]
    W, U, V = tp["W"], tp["U"], tp["V"]

    def call():
        if batched:
            X, Y, h = tx.permute(0, 2, 1), ty.permute(0, 2, 1), th0.T
        else:
            X, Y, h = tx.unsqueeze(1), ty.unsqueeze(1), th0.unsqueeze(0)
        XU = X @ U.T
        WT = W.T
        hs = []
        for t in range(T):
            h = torch.tanh(torch.addmm(XU[t], h, WT))
            hs.append(h)
        O = torch.stack(hs) @ V.T
        loss = -(Y * torch.log_softmax(O, -1)).sum()
        return loss, torch.autograd.grad(loss, (W, U, V, th0))

    def to_numpy(out):
        loss, g = out
        return float(loss.detach()), dict(zip(["W", "U", "V", "h0"], (a.numpy() for a in g)))

    return Impl("PyTorch eager", call, to_numpy)


def jax_impl(jax, np, params, x, y, h0):
    jnp, lax = jax.numpy, jax.lax
    batched = x.ndim == 3

    def loss_fn(W, U, V, h0, x, y):
        if batched:
            X, Y, h = jnp.transpose(x, (0, 2, 1)), jnp.transpose(y, (0, 2, 1)), h0.T
        else:
            X, Y, h = x[:, None, :], y[:, None, :], h0[None, :]

        def step(h, xu):
            h = jnp.tanh(xu + h @ W.T)
            return h, h

        _, H = lax.scan(step, h, X @ U.T)
        return -(Y * jax.nn.log_softmax(H @ V.T, axis=-1)).sum()

    vg = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1, 2, 3)))
    args = [jax.device_put(a) for a in (params["W"], params["U"], params["V"], h0, x, y)]

    def call():
        return jax.block_until_ready(vg(*args))

    def to_numpy(out):
        loss, g = out
        return float(loss), dict(zip(["W", "U", "V", "h0"], (np.asarray(a) for a in g)))

    return Impl("JAX jit(grad(scan))", call, to_numpy)


# -- checking and timing --------------------------------------------------------------

def max_abs_diff(np, a, b):
    (la, ga), (lb, gb) = a, b
    if set(ga) != set(gb):
        return float("inf")
    diffs = [abs(la - lb)]
    for k in gb:
        if np.shape(ga[k]) != np.shape(gb[k]):
            return float("inf")
        diffs.append(float(np.max(np.abs(np.asarray(ga[k]) - gb[k]))))
    return max(diffs)


def calibrate(call, target):
    """Calls per sample so that one sample takes about ``target`` seconds."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return max(1, min(1 << 16, round(target / best)))


def time_interleaved(impls, rounds, budget, target):
    """Median seconds per call of each implementation; rounds rotate the order."""
    import resource
    counts = [calibrate(i.call, target) for i in impls]
    samples = [[] for _ in impls]
    faults = [0] * len(impls)
    calls = [0] * len(impls)
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
            if r >= 4 and time.perf_counter() - start > budget:
                break
    finally:
        if gc_was:
            gc.enable()
    for impl, f, c in zip(impls, faults, calls):
        impl.faults = f / max(c, 1)
    return samples


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
        return busy, t.user + t.system, time.monotonic()


def quantiles(values):
    v = sorted(values)

    def q(p):
        x = p * (len(v) - 1)
        lo = int(x)
        return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (x - lo)

    return q(0.25), q(0.5), q(0.75)


# -- statement-level profile -------------------------------------------------------

def instrument(source, name, namespace):
    """``name`` from ``source`` with a timer after each top-level statement of
    its body (a loop counts as one statement). Returns (function, labels, seconds)."""
    source = textwrap.dedent(source)
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    labels, body = [], [ast.parse("_t0 = _pc()").body[0]]
    for i, stmt in enumerate(fn.body):
        if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant):
            continue  # docstring
        lines = ast.get_source_segment(source, stmt).splitlines()
        labels.append(lines[0] + (f"  ... ({len(lines)} lines)" if len(lines) > 1 else ""))
        tick = ast.parse(f"_t1 = _pc(); _acc[{len(labels) - 1}] += _t1 - _t0; _t0 = _t1").body
        if isinstance(stmt, ast.Return):
            keep = ast.parse("_ret = None").body[0]
            keep.value = stmt.value
            body += [keep] + tick + [ast.parse("return _ret").body[0]]
        else:
            body += [stmt] + tick
    fn.body = body
    fn.decorator_list = []
    acc = [0.0] * len(labels)
    ns = dict(namespace, _pc=time.perf_counter, _acc=acc)
    exec(compile(ast.fix_missing_locations(ast.Module([fn], [])), f"<profiled {name}>", "exec"),
         ns)
    return ns[name], labels, acc


def statement_profile(fn, args, labels, acc, seconds=1.0, top=12):
    fn(*args)
    n = calibrate(lambda: fn(*args), seconds / 4)
    best = None
    for _ in range(4):  # the fastest of four passes
        acc[:] = [0.0] * len(acc)
        for _ in range(n):
            fn(*args)
        if best is None or sum(acc) < sum(best):
            best = acc[:]
    total = sum(best)
    order = sorted(range(len(labels)), key=lambda i: -best[i])
    lines = [f"    {best[i] / n * 1e6:9.1f} us {100 * best[i] / total:5.1f}%  {labels[i][:90]}"
             for i in order[:top]]
    rest = sum(best[i] for i in order[top:])
    if rest:
        lines.append(f"    {rest / n * 1e6:9.1f} us {100 * rest / total:5.1f}%  "
                     f"({len(order) - top} other statements)")
    return total / n, lines


def profile_size(np, f, size, params, x, y, h0):
    D, N, M, T, B = size
    out = [f"\n### Profile at (D, N, M, T, B) = {size}\n", "```"]
    ns = f.__globals__
    batched = x.ndim == 3
    rows = (lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))) if batched else \
        (lambda a: a[:, None, :])
    kargs = (params["W"], params["U"], params["V"], rows(x), rows(y),
             h0.T if batched else h0[None, :])
    src = f.source
    pieces = [("symrnn kernel `gradients`", src, "gradients", ns, kargs),
              ("symrnn kernel `forward`", src, "forward", ns, kargs)]
    base_name = "_stacked_batch" if batched else "_stacked_single"
    pieces.append((f"NumPy stacked `{base_name}`", inspect.getsource(sys.modules[__name__]),
                   base_name, globals(), (params["W"], params["U"], params["V"], x, y, h0)))
    for title, source, name, namespace, args in pieces:
        fn, labels, acc = instrument(source, name, namespace)
        total, lines = statement_profile(fn, args, labels, acc)
        out.append(f"{title}: {total * 1e6:.1f} us per call (statement timers included)")
        out += lines

    # the wrapper alone: the generated module's own gradient_function around a
    # stub kernel that returns a result computed beforehand
    kernel, make = ns["gradients"], ns.get("gradient_function")
    if make is not None and "SPEC" in ns:
        result = kernel(*kargs)
        wrapped = make(lambda *a: result, ns["SPEC"])
        call = lambda: wrapped(params, x, y, h0=h0)
        t_w = median_time(call)
        out.append(f"wrapper alone (stub kernel): {t_w * 1e6:.1f} us per call; "
                   "its most expensive functions (cProfile, own time):")
        out += cprofile_lines(call, max(1, int(0.3 / t_w)))
    # the elementwise floor of this size
    a, b = np.random.default_rng(1).standard_normal((2, T * B * max(D, M)))
    t_tanh = median_time(lambda: np.tanh(a[:T * B * D], out=b[:T * B * D]))
    t_exp = median_time(lambda: np.exp(a[:T * B * M], out=b[:T * B * M]))
    out.append(f"floor: numpy.tanh of T*B*D = {T * B * D} values {t_tanh * 1e6:.0f} us, "
               f"numpy.exp of T*B*M = {T * B * M} values {t_exp * 1e6:.0f} us (in place)")
    out.append("```")
    return out


def median_time(call, rounds=15):
    n = calibrate(call, 0.01)
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        ts.append((time.perf_counter() - t0) / n)
    return sorted(ts)[len(ts) // 2]


def cprofile_lines(call, n, top=6):
    import cProfile
    import pstats
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        call()
    prof.disable()
    stats = pstats.Stats(prof).stats
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    return [f"    {tt / n * 1e6:9.1f} us  {calls // n:3d}x  {name} ({os.path.basename(file)}:{line})"
            for (file, line, name), (_, calls, tt, _, _) in rows]


# -- main ------------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    notes = prepare_process(args)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import numpy as np
    import symrnn

    torch = jax = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(1)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
        except ImportError:
            notes.append("PyTorch not importable: left out")
    if not args.no_jax:
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            jax.config.update("jax_platforms", "cpu")
        except ImportError:
            notes.append("JAX not importable: left out")
            jax = None

    derivation = symrnn.derive(symrnn.ElmanRNN())
    f = derivation.lambdify()
    compiled = None
    if not args.no_numba:
        try:
            compiled = derivation.lambdify("numba")
        except ImportError:
            notes.append("Numba not importable: symrnn's numba backend left out")

    report = ["# symrnn gradient benchmark: Elman RNN (tanh, softmax cross-entropy), float64, "
              "one thread", ""]
    env = [f"Python {platform.python_version()}, NumPy {np.__version__}, symrnn "
           f"{getattr(symrnn, '__version__', '?')}"
           + (f", PyTorch {torch.__version__}" if torch else "")
           + (f", JAX {jax.__version__}" if jax else "")
           + (f", Numba {sys.modules['numba'].__version__}" if compiled else ""),
           f"CPU: {cpu_model()}",
           f"BLAS: {blas_description(np)}"] + notes
    report += [f"- {line}" for line in env]
    print("\n".join(report), flush=True)

    results, loads, faults = {}, {}, {}
    for size in args.sizes:
        D, N, M, T, B = size
        params, x, y, h0 = make_problem(np, *size)
        impls = symrnn_impls(np, f, params, x, y, h0)
        if compiled is not None:
            impls += [Impl("symrnn numba", lambda: compiled(params, x, y, h0=h0)),
                      Impl("symrnn numba forward",
                           lambda: (compiled.loss(params, x, y, h0=h0), None))]
        impls += [Impl("NumPy per-step", lambda: numpy_per_step(params, x, y, h0)),
                  Impl(BASELINE, lambda: numpy_stacked(params, x, y, h0))]
        if torch is not None:
            impls.append(torch_impl(torch, np, params, x, y, h0))
        if jax is not None:
            impls.append(jax_impl(jax, np, params, x, y, h0))
        if args.only:
            impls = [i for i in impls if i.name == BASELINE
                     or any(w.lower() in i.name.lower() for w in args.only)]

        # the check: every gradient implementation against the baseline
        reference = numpy_stacked(params, x, y, h0)
        t0 = time.perf_counter()
        for impl in impls:
            out = impl.to_numpy(impl.call())
            if out[1] is None:  # a forward: the loss alone
                diff = abs(out[0] - reference[0])
            else:
                diff = max_abs_diff(np, out, reference)
            if not diff < TOLERANCE:
                sys.exit(f"{impl.name} disagrees with {BASELINE} at {size}: "
                         f"max abs difference {diff:.3g} (tolerance {TOLERANCE:g})")
            impl.diff = diff
        warm = time.perf_counter() - t0
        for impl in impls:  # warm-up (JAX compiles on the first call above)
            impl.call()
        target = 0.002 if args.quick else 0.01
        with OtherLoad() as load:
            samples = time_interleaved(impls, args.rounds, args.budget, target)
        results[size] = {i.name: s for i, s in zip(impls, samples)}
        faults[size] = {i.name: i.faults for i in impls}
        loads[size] = load.cores
        print(f"  {size}: {len(samples[0])} rounds, max abs diff vs baseline "
              f"{max(i.diff for i in impls):.1e} (compile/check {warm:.1f}s)"
              + ("" if load.cores is None else
                 f"; other processes used {load.cores:.2f} CPU cores meanwhile"), flush=True)

    table = markdown_table(results, args.sizes, faults)
    if any(v is not None for v in loads.values()):
        table += ["", "CPU cores used by other processes while each size was timed (0 = quiet "
                  "machine): " + ", ".join(f"{s}: {loads[s]:.2f}" for s in args.sizes
                                           if loads[s] is not None)]
    print("\n" + "\n".join(table), flush=True)
    report += [""] + table
    if args.profile:
        prof = ["", "## Where the time goes (--profile)"]
        for size in args.sizes:
            params, x, y, h0 = make_problem(np, *size)
            prof += profile_size(np, f, size, params, x, y, h0)
        print("\n".join(prof), flush=True)
        report += prof
    if args.output:
        with open(args.output, "w") as fh:
            fh.write("\n".join(report) + "\n")


def paired(results, size, name, other, op):
    """Median over rounds of op(sample of name, sample of other in the same round)."""
    if name not in results[size] or other not in results[size]:
        return None
    return quantiles([op(a, b) for a, b in zip(results[size][name], results[size][other])])


def markdown_table(results, sizes, faults):
    names = []
    for size in sizes:
        for n in results[size]:
            if n not in names:
                names.append(n)
    order = ["symrnn", "symrnn kernel", "symrnn numba", BASELINE, "NumPy per-step",
             "PyTorch eager", "JAX jit(grad(scan))", "symrnn forward", "symrnn forward kernel",
             "symrnn numba forward"]
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    head = "| implementation | " + " | ".join(f"({', '.join(map(str, s))})" for s in sizes) + " |"
    rule = "|" + " --- |" * (len(sizes) + 1)
    ratio = lambda a, b: a / b
    lines = ["Median microseconds per call (loss and all gradients; the forward rows: the loss "
             f"alone) and, in brackets, the median over rounds of the ratio to {BASELINE} "
             "timed in the same round. Sizes are (D, N, M, T, B).", "", head, rule]
    for n in names:
        cells = []
        for s in sizes:
            if n not in results[s]:
                cells.append("-")
                continue
            us = quantiles(results[s][n])[1] * 1e6
            r = paired(results, s, n, BASELINE, ratio)
            cells.append(f"{us:,.0f} ({r[1]:.2f}x)" if r else f"{us:,.0f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    for label, grad, fwd in [("symrnn gradient / forward", "symrnn", "symrnn forward"),
                             ("symrnn kernel gradient / forward", "symrnn kernel",
                              "symrnn forward kernel"),
                             ("symrnn numba gradient / forward", "symrnn numba",
                              "symrnn numba forward")]:
        cells = []
        for s in sizes:
            r = paired(results, s, grad, fwd, ratio)
            cells.append(f"{r[1]:.2f}" if r else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for s in sizes:
        d = paired(results, s, "symrnn", "symrnn kernel", lambda a, b: (a - b) * 1e6)
        cells.append(f"{d[1]:,.0f}" if d else "-")
    lines.append("| symrnn - symrnn kernel (us, the wrapper) | " + " | ".join(cells) + " |")
    lines += ["", "Spread over rounds: interquartile range / median of the time, and of the "
              f"ratio to {BASELINE}, in percent; then the number of rounds.", "", head, rule]
    for n in names:
        cells = []
        for s in sizes:
            if n not in results[s]:
                cells.append("-")
                continue
            q1, q2, q3 = quantiles(results[s][n])
            r = paired(results, s, n, BASELINE, ratio)
            rs = f", {100 * (r[2] - r[0]) / r[1]:.0f}%" if r and n != BASELINE else ""
            cells.append(f"{100 * (q3 - q1) / q2:.0f}%{rs} ({len(results[s][n])})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Minor page faults per call during the timed rounds (fresh memory touched "
              "by each call's temporaries; see --malloc).", "", head, rule]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(
            f"{faults[s][n]:,.0f}" if n in faults[s] else "-" for s in sizes) + " |")
    return lines


if __name__ == "__main__":
    main()
