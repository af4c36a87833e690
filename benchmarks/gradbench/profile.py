"""--profile: where the time goes, statement by statement, in symrnn's
generated gradients kernel and in the baseline (a loop counts as one
statement), and the wrapper's own cost around a stub kernel."""
import ast
import inspect
import os
import sys
import textwrap
import time

from .symrnn_impls import kernel as kernel_impls
from .timing import calibrate


def instrument(source, name, namespace):
    """``name`` from ``source`` with a timer after each top-level statement of
    its body. Returns (function, labels, seconds)."""
    source = textwrap.dedent(source)
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    labels, body = [], [ast.parse("_t0 = _pc()").body[0]]
    for stmt in fn.body:
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
    return [f"    {tt / n * 1e6:9.1f} us  {calls // n:3d}x  {name} "
            f"({os.path.basename(file)}:{line})"
            for (file, line, name), (_, calls, tt, _, _) in rows]


def profile_size(cell, f, size, problem):
    params, x, y, starts = problem
    out = [f"\n#### Profile: {cell.title} at (D, N, M, T, B) = {size}\n", "```"]
    ns = getattr(f, "__globals__", {})
    impls = kernel_impls("kernel", f, params, x, y, starts)
    if impls and getattr(f, "source", None):
        names = [p for p, _ in ns["SPEC"]["params"]]
        states = [s + "0" for s, _ in ns["SPEC"]["states"]]
        rows = (lambda a: a) if x.ndim == 3 else (lambda a: a[:, None, :])
        kargs = ([params[p] for p in names] + [rows(x), rows(y)]
                 + [starts[s] if x.ndim == 3 else starts[s][None, :] for s in states])
        try:
            fn, labels, acc = instrument(f.source, "gradients", ns)
            total, lines = statement_profile(fn, kargs, labels, acc)
            out.append(f"symrnn kernel `gradients`: {total * 1e6:.1f} us per call "
                       "(statement timers included)")
            out += lines
        except (StopIteration, SyntaxError, TypeError) as e:
            out.append(f"symrnn kernel: not profiled ({type(e).__name__}: {e})")
        make = ns.get("gradient_function")
        if make is not None:
            result = ns["gradients"](*kargs)
            wrapped = make(lambda *a: result, ns["SPEC"])
            batched = x.ndim == 3
            xn = x.transpose(0, 2, 1).copy() if batched else x
            yn = y.transpose(0, 2, 1).copy() if batched else y
            sn = {k: v.T.copy() for k, v in starts.items()} if batched else starts
            call = lambda: wrapped(params, xn, yn, **sn)  # noqa: E731
            t_w = median_time(call)
            out.append(f"wrapper alone (stub kernel, (T, N, B) arrays): {t_w * 1e6:.1f} us per "
                       "call; its most expensive functions (cProfile, own time):")
            out += cprofile_lines(call, max(1, int(0.3 / t_w)))
    base = cell.baseline
    module = sys.modules[base.__module__]
    fn, labels, acc = instrument(inspect.getsource(module), base.__name__, vars(module))
    total, lines = statement_profile(fn, (params, x, y, starts), labels, acc)
    out.append(f"NumPy stacked `{base.__name__}`: {total * 1e6:.1f} us per call")
    out += lines
    out.append("```")
    return out
