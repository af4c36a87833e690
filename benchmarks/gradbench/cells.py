"""The benchmark's cells, their sizes and their problems.

A problem is (params, x, y, starts) in the benchmark's layout, which every
implementation gets: params in symrnn's shapes; x (T, N) and y (T, M) for one
sequence, (T, B, N) and (T, B, M) for a batch (y one-hot for B = 1, rows of
class probabilities for a batch); starts {"h0": (D,) or (B, D), ...}.
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .baselines_elman import elman_per_step, elman_stacked
from .baselines_gated import gru_stacked, lstm_stacked, stacked_narrow

STACKED_WIDTH = 14


def stacked_text(layers):
    """The stacked narrow LSTM (issue 15) as one text cell for symrnn.parse_cell:
    states h1 s1 ... hl sl of width D (14 in the benchmark); in layer k the
    gates f, g, q (sigmoid) and a (tanh) of  w_*k * prev(hk) + U_*k @ in_k + b_*k
    with element-wise ("diagonal") recurrent weight vectors w_*k, in_1 = x and
    in_k = h(k-1) of the same step; sk = fk * prev(sk) + gk * ak,
    hk = tanh(sk) * qk; a linear read-out o = V @ hl + c and the loss
    -y.T @ log_softmax(o)."""
    lines = [f"# stacked LSTM, {layers} layers, diagonal recurrent weights"]
    for k in range(1, layers + 1):
        width = "N" if k == 1 else "D"
        lines.append("params: " + " ".join(f"w_{g}{k}[D] U_{g}{k}[D,{width}] b_{g}{k}[D]"
                                           for g in "fgqa"))
    lines += ["params: V[M,D] c[M]", "input: x[N]", "target: y[M]",
              "state: " + " ".join(f"h{k}[D] s{k}[D]" for k in range(1, layers + 1))]
    for k in range(1, layers + 1):
        source = "x" if k == 1 else f"h{k - 1}"
        for g, act in (("f", "sigmoid"), ("g", "sigmoid"), ("q", "sigmoid"), ("a", "tanh")):
            lines.append(f"{g}{k} = {act}(w_{g}{k} * prev(h{k}) + U_{g}{k} @ {source} + b_{g}{k})")
        lines.append(f"s{k} = f{k} * prev(s{k}) + g{k} * a{k}")
        lines.append(f"h{k} = tanh(s{k}) * q{k}")
    lines += [f"o = V @ h{layers} + c", "loss = -y.T @ log_softmax(o)"]
    return "\n".join(lines) + "\n"


@dataclass
class BenchCell:
    key: str                       # elman, lstm, gru, stacked
    title: str
    layers: int                    # stacked only; 1 otherwise
    make: Callable                 # () -> symrnn.Cell (imports symrnn lazily)
    shapes: Callable               # (D, N, M) -> {param: shape}
    states: list                   # initial-state names
    baseline: Callable
    per_step: Callable = None      # the min-char-rnn style baseline (Elman)
    extra: dict = field(default_factory=dict)

    @property
    def label(self):
        return self.title


def _elman_shapes(D, N, M):
    return {"W": (D, D), "U": (D, N), "V": (M, D)}


def _lstm_shapes(D, N, M):
    out = {}
    for k in ("_f", "_g", "_q", ""):
        out.update({"W" + k: (D, D), "U" + k: (D, N), "b" + k: (D,)})
    out["V"] = (M, D)
    return out


def _gru_shapes(D, N, M):
    out = {}
    for k in ("_u", "_r", ""):
        out.update({"W" + k: (D, D), "U" + k: (D, N), "b" + k: (D,)})
    out["V"] = (M, D)
    return out


def _stacked_shapes(layers):
    def shapes(D, N, M):
        out = {}
        for k in range(1, layers + 1):
            for g in "fgqa":
                out.update({f"w_{g}{k}": (D,), f"U_{g}{k}": (D, N if k == 1 else D),
                            f"b_{g}{k}": (D,)})
        out.update({"V": (M, D), "c": (M,)})
        return out
    return shapes


def elman():
    import symrnn
    return BenchCell("elman", "Elman RNN (tanh, softmax cross-entropy)", 1,
                     lambda: symrnn.ElmanRNN(), _elman_shapes, ["h0"], elman_stacked,
                     per_step=elman_per_step)


def lstm():
    import symrnn
    return BenchCell("lstm", "LSTM (symrnn.LSTM())", 1, lambda: symrnn.LSTM(), _lstm_shapes,
                     ["h0", "s0"], lstm_stacked)


def gru():
    import symrnn
    return BenchCell("gru", "GRU (symrnn.GRU())", 1, lambda: symrnn.GRU(), _gru_shapes, ["h0"],
                     gru_stacked)


def stacked(layers):
    import symrnn
    title = f"stacked narrow LSTM, {layers} layer{'s' * (layers > 1)} ({2 * layers} states)"
    return BenchCell("stacked", title, layers,
                     lambda: symrnn.parse_cell(stacked_text(layers), name=f"stacked{layers}"),
                     _stacked_shapes(layers),
                     [f"{s}{k}0" for k in range(1, layers + 1) for s in "hs"], stacked_narrow)


def make_problem(cell, size, seed=0):
    """(params, x, y, starts) for ``cell`` at size (D, N, M, T, B), float64."""
    D, N, M, T, B = size
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in cell.shapes(D, N, M).items():
        if len(shape) == 1:        # biases and diagonal weights
            params[name] = (0.5 if name.startswith("w_") else 0.1) * rng.standard_normal(shape)
        else:
            gain = 0.9 if shape[0] == shape[1] and name.startswith("W") else 1.0
            params[name] = gain * rng.standard_normal(shape) / np.sqrt(shape[1])
    lead = () if B == 1 else (B,)
    x = rng.standard_normal((T,) + lead + (N,))
    if B == 1:
        y = np.eye(M)[rng.integers(0, M, T)]
    else:
        y = rng.dirichlet(np.ones(M), (T, B))
    starts = {s: 0.1 * rng.standard_normal(lead + (D,)) for s in cell.states}
    return params, x, y, starts


def bench_cells(keys, layers):
    """The BenchCells for the --cell words (stacked: one per --layers value)."""
    make = {"elman": elman, "lstm": lstm, "gru": gru}
    out = []
    for key in keys:
        out += [stacked(l) for l in layers] if key == "stacked" else [make[key]()]
    return out
