"""The benchmark process: threads, pinning, the BLAS environment, malloc, and
what the header says about the machine. prepare_process runs before NumPy is
imported."""
import os
import platform
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")


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
    set_threads(args.threads)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        mine = cpus[-args.threads:] if args.threads <= len(cpus) else cpus
        os.sched_setaffinity(0, set(mine))
        notes.append(f"pinned to CPU(s) {','.join(map(str, mine))} (of {len(cpus)})")
    if args.malloc == "keep":
        notes.append(set_malloc_keep())
    return notes


def set_threads(n):
    """n threads for every library: BLAS, OpenMP, Numba, XLA (torch: set_torch_threads)."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()


def set_torch_threads(torch, n):
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass


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
