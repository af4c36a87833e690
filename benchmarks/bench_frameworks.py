#!/usr/bin/env python3
"""Forward + backward of symrnn's PyTorch module (d.torch(), the derived BPTT as
its backward) against PyTorch eager autograd of the same cell, on the CPU.

    python benchmarks/bench_frameworks.py            # 3 cells x 3 sizes, a few minutes
    python benchmarks/bench_frameworks.py --quick    # fewer rounds, about a minute
    python benchmarks/bench_frameworks.py --cells rate --sizes 64,64,64,100,32
    python benchmarks/bench_frameworks.py --device cuda   # where a GPU is present

Two baselines, each timed against symrnn in the same round, on the same tensors:

  eager     the cell written by hand in torch, step by step, as a user would
            (the input projection of every gate computed for all steps at once,
            the output layer and the loss over all steps after the loop), then
            loss.backward()
  autograd  symrnn's own forward program (the same operations as d.torch()'s
            forward) run with autograd recording, then loss.backward(): the
            difference to symrnn is only the backward pass

The cells: "rate", a custom text-syntax cell (a learned scalar rate k mixes the
old state and a candidate), the Elman RNN (tanh, softmax cross-entropy) and
the LSTM. Every implementation is first checked in float64 against symrnn
(loss and gradients within 1e-9); timing is in float32, one thread
(torch.set_num_threads(1)). Each round times every implementation on the same
inputs, in an order rotated per round; the ratio column is the median over the
rounds of eager time / symrnn time (paired per round).
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import symrnn  # noqa: E402
from symrnn.backends.namespaces import TorchNamespace  # noqa: E402

SIZES = [(8, 8, 8, 10, 1), (64, 64, 64, 100, 1), (64, 64, 64, 100, 32)]

RATE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "examples", "rate.cell")


# -- the cells by hand, in eager torch: x (T, B, N), labels y (T, B) --------------
def _ce(hs, V, y):
    o = torch.stack(hs) @ V.T
    return torch.nn.functional.cross_entropy(o.reshape(-1, o.shape[-1]), y.reshape(-1),
                                             reduction="sum")


def rate_eager(p, x, y):
    pre = x @ p["U"].T + p["b"]
    h, hs = x.new_zeros(x.shape[1], p["W"].shape[0]), []
    for t in range(x.shape[0]):
        k = torch.sigmoid(h @ p["w"].T)
        a = torch.tanh(h @ p["W"].T + pre[t])
        h = h + k * (a - h)
        hs.append(h)
    return _ce(hs, p["V"], y)


def elman_eager(p, x, y):
    pre = x @ p["U"].T
    h, hs = x.new_zeros(x.shape[1], p["W"].shape[0]), []
    for t in range(x.shape[0]):
        h = torch.tanh(h @ p["W"].T + pre[t])
        hs.append(h)
    return _ce(hs, p["V"], y)


def lstm_eager(p, x, y):
    gates = ("_f", "_g", "_q", "")
    W = torch.cat([p["W" + k] for k in gates])
    pre = x @ torch.cat([p["U" + k] for k in gates]).T + torch.cat([p["b" + k] for k in gates])
    D = p["W"].shape[0]
    h = s = x.new_zeros(x.shape[1], D)
    hs = []
    for t in range(x.shape[0]):
        z = h @ W.T + pre[t]
        f, g, q = torch.sigmoid(z[:, :3 * D]).split(D, 1)
        s = f * s + g * torch.tanh(z[:, 3 * D:])
        h = torch.tanh(s) * q
        hs.append(h)
    return _ce(hs, p["V"], y)


def rate_cell():
    with open(RATE_FILE) as f:
        return symrnn.parse_cell(f.read(), name="rate cell (text)")


CELLS = {"rate": (rate_cell, rate_eager),
         "elman": (symrnn.ElmanRNN, elman_eager),
         "lstm": (symrnn.LSTM, lstm_eager)}


def same_program(m):
    """symrnn's forward program, run with autograd recording."""
    program, cell = m._program, m._cell

    def loss(p, x, y):
        xp = TorchNamespace(torch, x.dtype, x.device)
        mats = {c.name: p[c.name].reshape(p[c.name].shape[0], 1) if c.shape[1] == 1
                else p[c.name] for c in cell.params}
        onehot = torch.nn.functional.one_hot(y, m._sizes["M"]).to(x.dtype)
        initial = [x.new_zeros(x.shape[1], m._sizes["D"]) for _ in cell.states]
        sequences = {cell.inputs[0].name: x, cell.targets[0].name: onehot}
        return program.forward(xp, m._sizes | {"B": x.shape[1]}, mats, sequences, initial)[0]
    return loss


def problem(name, D, N, M, T, B, dtype, device="cpu"):
    torch.manual_seed(0)
    m = derivations[name].torch(D=D, N=N, M=M, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=gen, dtype=dtype).to(device)
    y = torch.randint(0, M, (T, B), generator=gen).to(device)
    return m, x, y


def implementations(name, m):
    params = dict(m.named_parameters())

    def ours(x, y):
        return m(x, y)

    def eager(x, y):
        return CELLS[name][1](params, x, y)

    program = same_program(m)

    def autograd(x, y):
        return program(params, x, y)
    return {"symrnn": ours, "eager": eager, "autograd": autograd}


def check(name, size, device):
    m, x, y = problem(name, *size, torch.float64, device)
    results = {}
    for label, f in implementations(name, m).items():
        m.zero_grad(set_to_none=True)
        loss = f(x, y)
        loss.backward()
        results[label] = (loss.item(), {k: p.grad.clone() for k, p in m.named_parameters()})
    ref_loss, ref = results["symrnn"]
    worst = 0.0
    for label, (loss, grads) in results.items():
        worst = max(worst, abs(loss - ref_loss) / max(1.0, abs(ref_loss)))
        for k in ref:
            worst = max(worst, float((grads[k] - ref[k]).abs().max()))
    if worst > 1e-9:
        sys.exit(f"{name} {size}: the implementations disagree by {worst:.1e}")
    return worst


def time_size(name, size, rounds, budget, device):
    m, x, y = problem(name, *size, torch.float32, device)
    impls = implementations(name, m)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)

    def run(f):
        m.zero_grad(set_to_none=True)
        f(x, y).backward()
        sync()

    for f in impls.values():  # warm up, and the number of calls per timing
        run(f)
    start = time.perf_counter()
    run(impls["symrnn"])
    reps = max(1, int(0.02 / max(time.perf_counter() - start, 1e-6)))
    times = {k: [] for k in impls}
    labels = list(impls)
    t_end = time.perf_counter() + budget
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for label in order:
            f = impls[label]
            start = time.perf_counter()
            for _ in range(reps):
                run(f)
            times[label].append((time.perf_counter() - start) / reps)
        if time.perf_counter() > t_end and r >= 2:
            break
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    ratios = {k: statistics.median(a / b for a, b in zip(times[k], times["symrnn"]))
              for k in ("eager", "autograd")}
    return med, ratios, len(times["symrnn"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 rounds, 3 s per size")
    p.add_argument("--rounds", type=int)
    p.add_argument("--budget", type=float, help="seconds per cell and size")
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    p.add_argument("--sizes", nargs="+", metavar="D,N,M,T,B")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda, when one is present")
    args = p.parse_args(argv)
    if args.device != "cpu" and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: no CUDA device here")
    rounds = args.rounds or (5 if args.quick else 21)
    budget = args.budget or (3.0 if args.quick else 20.0)
    sizes = ([tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes
             else SIZES)
    torch.set_num_threads(1)
    global derivations
    derivations = {name: symrnn.derive(CELLS[name][0]()) for name in args.cells}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, float32, "
          f"{args.device}; "
          "forward + backward, microseconds per call (median)\n")
    print("| cell | D,N,M,T,B | symrnn | eager autograd | eager / symrnn | "
          "autograd of symrnn's forward | that / symrnn |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cells:
        for size in sizes:
            check(name, size, args.device)
            med, ratios, n = time_size(name, size, rounds, budget, args.device)
            print(f"| {name} | {','.join(map(str, size))} | {med['symrnn']:.0f} | "
                  f"{med['eager']:.0f} | {ratios['eager']:.2f}x | {med['autograd']:.0f} | "
                  f"{ratios['autograd']:.2f}x |", flush=True)
    print("\nratios: median over rounds of (baseline time / symrnn time), paired per round; "
          "every implementation agreed with symrnn in float64 within 1e-9 first")


if __name__ == "__main__":
    main()
