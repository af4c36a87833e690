"""symrnn's functions as benchmark implementations, and their layouts.

The benchmark's arrays are (T, B, N) for a batch. symrnn's public function
takes (T, N, B) (its native layout, from the README) and copies x and y to
rows (T, B, N) inside the call; the kernels work on those rows. So symrnn is
timed three ways for a batch:

- "symrnn": its native (T, N, B) arrays, made contiguous before timing; the
  copies to rows happen inside the timed call, as they do for a user.
- "symrnn (T,B,N) view": the benchmark's (T, B, N) arrays passed as
  transposed views, shape (T, N, B); the wrapper's copy to rows then finds
  them already in row order and copies nothing.
- "symrnn kernel": the generated ``gradients`` alone (no argument checks) on
  the benchmark's rows.

If the public function accepts a layout keyword for (T, B, N) (``layout=``,
tried with a few spellings and kept only when its result is right), that call
replaces the view row.
"""
import numpy as np

LAYOUT_KEYWORDS = [("layout", "TBN"), ("layout", "tbn"), ("batch_axis", 1)]


class Impl:
    def __init__(self, name, call, to_numpy=None, note="", forward=False):
        self.name, self.call, self.note, self.forward = name, call, note, forward
        self.to_numpy = to_numpy or (lambda out: out)


def _starts_as_columns(starts):
    return {k: np.ascontiguousarray(v.T) for k, v in starts.items()}


def _back_to_rows(starts):
    def convert(out):
        loss, grads = out
        return float(loss), {k: v.T if k in starts else v for k, v in grads.items()}
    return convert


def public(name, f, params, x, y, starts, forward=None):
    """The public call in symrnn's native layout: (T, N) or contiguous (T, N, B)."""
    if x.ndim == 2:
        impls = [Impl(name, lambda: f(params, x, y, **starts))]
        if forward:
            impls.append(Impl(name + " forward", lambda: (f.loss(params, x, y, **starts), None),
                              forward=True))
        return impls
    xn, yn = np.ascontiguousarray(x.transpose(0, 2, 1)), np.ascontiguousarray(y.transpose(0, 2, 1))
    sn = _starts_as_columns(starts)
    impls = [Impl(name, lambda: f(params, xn, yn, **sn), _back_to_rows(starts),
                  note="(T, N, B) arrays; the wrapper copies x and y to rows (T, B, N)")]
    if forward:
        impls.append(Impl(name + " forward", lambda: (f.loss(params, xn, yn, **sn), None),
                          forward=True))
    return impls


def public_rows(name, f, params, x, y, starts, check):
    """The public call on the benchmark's own (T, B, N) arrays: with a layout
    keyword if the API has one, else as transposed views (no copy anywhere)."""
    if x.ndim == 2:
        return []
    for key, value in LAYOUT_KEYWORDS:
        try:
            out = f(params, x, y, **{key: value}, **starts)
        except (TypeError, ValueError):
            continue
        if check((out[0], out[1])):
            return [Impl(f"{name} {key}={value!r}",
                         lambda: f(params, x, y, **{key: value}, **starts),
                         note=f"(T, B, N) arrays, {key}={value!r}")]
    xv, yv = x.transpose(0, 2, 1), y.transpose(0, 2, 1)
    sv = {k: v.T for k, v in starts.items()}
    return [Impl(f"{name} (T,B,N) view", lambda: f(params, xv, yv, **sv), _back_to_rows(starts),
                 note="(T, B, N) arrays passed as transposed (T, N, B) views: no copy")]


def kernel(name, f, params, x, y, starts, forward=False):
    """The generated kernels alone on rows (T, B, n) made before timing; empty
    when the generated module does not expose them as expected."""
    ns = getattr(f, "__globals__", {})
    spec, grads_kernel, fwd_kernel = ns.get("SPEC"), ns.get("gradients"), ns.get("forward")
    if spec is None or grads_kernel is None:
        return []
    batched = x.ndim == 3
    rows = (lambda a: a) if batched else (lambda a: a[:, None, :])
    names = [p for p, _ in spec["params"]]
    state_names = [s + "0" for s, _ in spec["states"]]
    if len(spec.get("inputs", [0])) != 1 or len(spec.get("targets", [0])) != 1:
        return []
    args = ([params[p] for p in names] + [rows(x), rows(y)]
            + [starts[s] if batched else starts[s][None, :] for s in state_names])

    def grads(out):
        loss, g = out
        g = dict(zip(names + state_names, g))
        if not batched:
            for s in state_names:
                g[s] = g[s][0]
        return float(loss), g

    impls = [Impl(name, lambda: grads_kernel(*args), grads,
                  note="generated gradients(...) on rows (T, B, n), no argument checks")]
    if forward and fwd_kernel is not None:
        impls.append(Impl(name.replace("kernel", "forward kernel"),
                          lambda: (fwd_kernel(*args), None), forward=True))
    return impls
