"""Markdown tables of the benchmark: per cell, times and paired ratios with
their spread; the summaries in the form of issues 13 and 15; compile times;
peak memory."""
from .build import BASELINE, JAX_NAME, TORCH_NAME
from .timing import paired_ratios, quantiles

ORDER = ["symrnn", "symrnn (T,B,N) view", "symrnn kernel", "symrnn numba",
         "symrnn numba (T,B,N) view", "symrnn numba kernel", BASELINE, "NumPy per-step",
         TORCH_NAME, JAX_NAME, "symrnn forward", "symrnn forward kernel",
         "symrnn numba forward", "symrnn numba forward kernel"]


def size_label(size):
    return "(" + ", ".join(map(str, size)) + ")"


def ratio_cell(r):
    return "-" if r is None else f"{r[1]:.2f}× ({r[0]:.2f}–{r[2]:.2f})"


def ratio(results, name, other):
    if name not in results or other not in results:
        return None
    return paired_ratios(results[name], results[other])


def cell_tables(title, sizes, results, faults, loads, notes):
    """The full table of one cell: median µs per call and the paired ratio to
    the baseline (median and interquartile range over rounds)."""
    names = []
    for size in sizes:
        names += [n for n in results[size] if n not in names]
    names.sort(key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    head = "| implementation | " + " | ".join(size_label(s) for s in sizes) + " |"
    rule = "|" + " --- |" * (len(sizes) + 1)
    lines = [f"### {title}", "",
             "Median µs per call (loss and all gradients; forward rows: the loss alone); below "
             f"it, the median over rounds of the ratio to {BASELINE} timed in the same round, "
             "with its interquartile range; then the spread of the time (IQR / median) and the "
             "number of rounds. Sizes (D, N, M, T, B).", "", head, rule]
    for n in names:
        cells = []
        for s in sizes:
            if n not in results[s]:
                cells.append("-")
                continue
            q1, q2, q3 = quantiles(results[s][n])
            r = ratio(results[s], n, BASELINE) if n != BASELINE else None
            cells.append(f"{q2 * 1e6:,.0f}" + (f"<br>{ratio_cell(r)}" if r else "")
                         + f"<br>±{100 * (q3 - q1) / q2:.0f}% ({len(results[s][n])})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    for label, grad, fwd in [("symrnn gradient / forward", "symrnn", "symrnn forward"),
                             ("symrnn numba gradient / forward", "symrnn numba",
                              "symrnn numba forward")]:
        if any(grad in results[s] and fwd in results[s] for s in sizes):
            lines.append(f"| {label} | " + " | ".join(
                ratio_cell(ratio(results[s], grad, fwd)) for s in sizes) + " |")
    if any("symrnn kernel" in results[s] for s in sizes):
        cells = []
        for s in sizes:
            if "symrnn" in results[s] and "symrnn kernel" in results[s]:
                d = quantiles([(a - b) * 1e6 for a, b in zip(results[s]["symrnn"],
                                                             results[s]["symrnn kernel"])])
                cells.append(f"{d[1]:,.0f}")
            else:
                cells.append("-")
        lines.append("| symrnn − symrnn kernel (µs: the wrapper) | " + " | ".join(cells) + " |")
    if faults:
        lines += ["", "Minor page faults per call while timed (fresh memory touched by each "
                  "call's temporaries; see --malloc): " + "; ".join(
                      f"{size_label(s)}: " + ", ".join(f"{n} {faults[s][n]:,.0f}"
                                                       for n in names if faults[s].get(n, 0) >= 1)
                      for s in sizes if any(v >= 1 for v in faults[s].values())) or "none"]
    if any(v is not None for v in loads.values()):
        lines += ["", "CPU cores used by other processes while each size was timed "
                  "(0 = quiet machine): " + ", ".join(f"{size_label(s)} {loads[s]:.2f}"
                                                      for s in sizes if loads.get(s) is not None)]
    if notes:
        lines += [""] + [f"- {n}: {text}" for n, text in notes.items()]
    return lines + [""]


# the layout every implementation gets for a batch, (T, B, N): symrnn's public
# call takes it with this keyword, without a copy (symrnn_impls.public_rows)
TBN = " layout='TBN'"


def _same_arrays(res, name):
    """symrnn's public call on the benchmark's own arrays: with layout='TBN' for a
    batch when it was timed, else ``name`` (one sequence: no layout to choose)."""
    return name + TBN if name + TBN in res else name


def issue13_summary(title, sizes, results):
    """Issue 13's table: ratios to the baseline of the public calls and JAX, every
    one on the same (T, B, N) arrays (symrnn's with layout='TBN' for a batch)."""
    cols = [("symrnn NumPy", "symrnn"), ("symrnn Numba", "symrnn numba"),
            ("JAX jit scan", JAX_NAME), ("PyTorch eager", TORCH_NAME)]
    cols = [c for c in cols if any(c[1] in results[s] for s in sizes)]
    vs_jax = any("symrnn numba" in results[s] and JAX_NAME in results[s] for s in sizes)
    lines = [f"#### {title}: ratio to {BASELINE} (median over rounds, IQR)", "",
             "| (D,N,M,T,B) | " + " | ".join(c[0] for c in cols)
             + (" | symrnn Numba / JAX" if vs_jax else "") + " |",
             "|---|" + "---|" * (len(cols) + vs_jax)]
    for s in sizes:
        res = results[s]
        lines.append(f"| {','.join(map(str, s))} | " + " | ".join(
            ratio_cell(ratio(res, _same_arrays(res, name), BASELINE)) for _, name in cols)
            + (f" | {ratio_cell(ratio(res, _same_arrays(res, 'symrnn numba'), JAX_NAME))}"
               if vs_jax else "") + " |")
    if any(_same_arrays(results[s], "symrnn") != "symrnn" for s in sizes):
        lines += ["", "A batch (B > 1): symrnn's public calls with layout='TBN', the same "
                  "(T, B, N) arrays as every other implementation, without a copy (the "
                  "default layout (T, N, B) copies x and y into rows: see the full tables)."]
    return lines + [""]


def issue15_summary(rows, compile_times):
    """Issue 15's table, one row per (layers, size) of the stacked cell. The
    compile column: the probes' first call in a fresh process and in a second
    one; without probes, the first call in the timing process (marked *)."""
    lines = ["#### Stacked narrow LSTM (issue 15): ratios (median over rounds, IQR)", "",
             "Numba first compile: the first gradient call in a fresh process, then in a "
             "second fresh process (a disk cache would make it fast); * = no probes run, "
             "the first call in the benchmark's process.", "",
             "| layers l (states) | T | Numba first compile, 2nd process (s) | Numba / JAX | "
             "NumPy / JAX | hand-written / JAX | NumPy / hand-written | Numba / hand-written |",
             "|---|---|---|---|---|---|---|---|"]
    for layers, size, res, firsts in rows:
        c = compile_times.get(("stacked", layers))
        first = firsts.get("symrnn numba")
        comp = (compile_cell(c) if c is not None
                else "-" if first is None else f"{first:.1f}*")
        lines.append(
            f"| {layers} ({2 * layers}) | {size[3]} | {comp} | "
            f"{ratio_cell(ratio(res, 'symrnn numba', JAX_NAME))} | "
            f"{ratio_cell(ratio(res, 'symrnn', JAX_NAME))} | "
            f"{ratio_cell(ratio(res, BASELINE, JAX_NAME))} | "
            f"{ratio_cell(ratio(res, 'symrnn', BASELINE))} | "
            f"{ratio_cell(ratio(res, 'symrnn numba', BASELINE))} |")
    return lines + [""]


def compile_cell(pair):
    first, second = pair
    if "error" in first:
        return first["error"]
    return f"{first['first_call']:.1f}, {second.get('first_call', float('nan')):.1f}"


def compile_table(compile_times):
    lines = ["### Numba compile times (fresh processes)", "",
             "Two fresh processes in a row per cell, sharing one new, empty cache directory "
             "(NUMBA_CACHE_DIR, XDG_CACHE_HOME): the second shows whether a disk cache works. "
             "Seconds: imports, derive, lambdify(\"numba\"), the first gradient call (compiles), "
             "start to first gradient; then a call with read-only arrays (a recompile shows as "
             "seconds) and a batch passed as transposed views of (T, B, N) arrays.", "",
             "| cell | process | import | derive | lambdify | first call | to first gradient "
             "| read-only call | (T,B,N) view batch call |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (key, layers), pair in compile_times.items():
        label = key if key != "stacked" else f"stacked, {layers} layer{'s' * (layers > 1)}"
        for i, r in enumerate(pair, 1):
            if "error" in r:
                lines.append(f"| {label} | {i} | {r['error']} |" + " |" * 6)
                continue
            lines.append(f"| {label} | {i} | " + " | ".join(
                f"{r[k]:.2f}" for k in ("import", "derive", "lambdify", "first_call",
                                        "to_first_gradient", "readonly_call"))
                + f" | {r['view_batch_call']:.4f} |")
    return lines + [""]


def memory_table(memory):
    lines = ["### Peak memory of one call (fresh process per implementation)", "",
             "tracemalloc: peak of NumPy's allocations during the first call (Numba's, PyTorch's "
             "and XLA's own allocators are not seen); VmHWM: rise of the peak resident set "
             f"during that call (includes any compilation). Ratios to {BASELINE}.", "",
             "| cell, size | implementation | tracemalloc peak (MB) | ratio | VmHWM rise (MB) | "
             "ratio |", "|---|---|---|---|---|---|"]
    for (label, size), per_impl in memory.items():
        base = per_impl.get(BASELINE, {})
        for name, r in per_impl.items():
            if "error" in r:
                lines.append(f"| {label} {size_label(size)} | {name} | {r['error']} | | | |")
                continue
            t, h = r["tracemalloc_peak"], r.get("hwm_rise")
            if name in (TORCH_NAME, JAX_NAME):  # their allocators are invisible to tracemalloc
                t = None
            rt = t / base["tracemalloc_peak"] if t is not None and base.get("tracemalloc_peak") \
                else None
            rh = h / base["hwm_rise"] if h is not None and base.get("hwm_rise") else None
            lines.append(f"| {label} {size_label(size)} | {name} | "
                         f"{'-' if t is None else f'{t / 1e6:.1f}'} | "
                         f"{'-' if rt is None else f'{rt:.2f}'} | "
                         f"{'-' if h is None else f'{h / 1e6:.1f}'} | "
                         f"{'-' if rh is None else f'{rh:.2f}'} |")
    return lines + [""]
