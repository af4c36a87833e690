#!/usr/bin/env python3
"""Forward + backward of symrnn's PyTorch module (d.torch(), the derived BPTT as
its backward) against PyTorch eager autograd of the same cell, on the CPU.

    python benchmarks/bench_frameworks.py            # 3 cells x 5 sizes, several minutes
    python benchmarks/bench_frameworks.py --quick    # fewer rounds
    python benchmarks/bench_frameworks.py --cells rate --sizes 64,64,64,100,32
    python benchmarks/bench_frameworks.py --dtype float64
    python benchmarks/bench_frameworks.py --device cuda   # where a GPU is present

The baseline, timed against symrnn in the same rounds, on the same tensors:

  eager     the cell written by hand in torch, step by step, as a user would
            (the input projection of every gate computed for all steps at once,
            the output layer and the loss over all steps after the loop), then
            loss.backward(): autograd records every operation and runs their
            derivatives

and symrnn twice: its default kernels (``kernels="auto"``: on the CPU the Numba
kernels, compiled before the timing, in float64; on a GPU torch operations) and
its torch kernels (``kernels="torch"``: the same schedule in torch operations,
in the timed dtype).

The cells: "rate", a custom text-syntax cell (a learned scalar rate k mixes the
old state and a candidate), the Elman RNN (tanh, softmax cross-entropy) and
the LSTM. Every implementation is first checked in float64 against symrnn
(loss and gradients within 1e-9); timing is in float32 unless --dtype float64,
one thread (torch.set_num_threads(1)). Each round times every implementation on
the same inputs, in an order rotated per round; a time is the best of the rounds
(the machine's other work only ever adds time), a ratio eager's best / symrnn's
best: above 1, symrnn is faster. The median ratio of the rounds, paired per round,
is printed beside it.
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

# D, N, M, T, B: small; larger; larger with a batch; long and narrow, alone and batched
SIZES = [(8, 8, 8, 10, 1), (64, 64, 64, 100, 1), (64, 64, 64, 100, 32),
         (16, 16, 16, 1000, 1), (16, 16, 16, 1000, 16)]

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
KERNELS = {"symrnn": "auto", "symrnn torch": "torch"}


def problem(name, D, N, M, T, B, dtype, device="cpu"):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=gen, dtype=dtype).to(device)
    y = torch.randint(0, M, (T, B), generator=gen).to(device)
    modules = {}
    for label, kernels in KERNELS.items():
        torch.manual_seed(0)  # the same parameters in each
        modules[label] = derivations[name].torch(D=D, N=N, M=M, dtype=dtype, device=device,
                                                 kernels=kernels)
    return modules, x, y


def implementations(name, modules):
    def ours(m):
        return lambda x, y: m(x, y)
    impls = {label: ours(m) for label, m in modules.items()}
    params = dict(modules["symrnn"].named_parameters())
    impls["eager"] = lambda x, y: CELLS[name][1](params, x, y)
    return impls


def check(name, size, device):
    modules, x, y = problem(name, *size, torch.float64, device)
    results = {}
    for label, f in implementations(name, modules).items():
        m = modules.get(label, modules["symrnn"])
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


def time_size(name, size, rounds, budget, device, dtype):
    modules, x, y = problem(name, *size, dtype, device)
    impls = implementations(name, modules)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)

    def run(label):
        m = modules.get(label, modules["symrnn"])
        m.zero_grad(set_to_none=True)
        impls[label](x, y).backward()
        sync()

    for label in impls:  # warm up (Numba compiles here), and the calls per timing
        run(label)
        run(label)
    start = time.perf_counter()
    run("eager")
    reps = max(1, int(0.05 / max(time.perf_counter() - start, 1e-6)))
    times = {k: [] for k in impls}
    labels = list(impls)
    t_end = time.perf_counter() + budget
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for label in order:
            start = time.perf_counter()
            for _ in range(reps):
                run(label)
            times[label].append((time.perf_counter() - start) / reps)
        if time.perf_counter() > t_end and r >= 2:
            break
    best = {k: min(v) * 1e6 for k, v in times.items()}
    ratios = {k: best["eager"] / best[k] for k in KERNELS}
    paired = {k: statistics.median(a / b for a, b in zip(times["eager"], times[k]))
              for k in KERNELS}
    return best, ratios, paired


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 rounds, 3 s per size")
    p.add_argument("--rounds", type=int)
    p.add_argument("--budget", type=float, help="seconds per cell and size")
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    p.add_argument("--sizes", nargs="+", metavar="D,N,M,T,B")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda, when one is present")
    args = p.parse_args(argv)
    if args.device != "cpu" and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: no CUDA device here")
    rounds = args.rounds or (5 if args.quick else 15)
    budget = args.budget or (3.0 if args.quick else 15.0)
    sizes = ([tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes
             else SIZES)
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(1)
    global derivations
    derivations = {name: symrnn.derive(CELLS[name][0]()) for name in args.cells}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {args.dtype}, "
          f"{args.device}; forward + backward, microseconds per call (best of the rounds)\n")
    print("| cell | D,N,M,T,B | eager autograd | symrnn | eager / symrnn (paired) | "
          "symrnn, torch kernels | eager / that (paired) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cells:
        for size in sizes:
            check(name, size, args.device)
            best, ratios, paired = time_size(name, size, rounds, budget, args.device, dtype)
            print(f"| {name} | {','.join(map(str, size))} | {best['eager']:.0f} | "
                  f"{best['symrnn']:.0f} | {ratios['symrnn']:.2f}x ({paired['symrnn']:.2f}x) | "
                  f"{best['symrnn torch']:.0f} | {ratios['symrnn torch']:.2f}x "
                  f"({paired['symrnn torch']:.2f}x) |", flush=True)
    print("\nratios: eager's best time / symrnn's best time (in parentheses the median over "
          "rounds of the paired ratios); every implementation agreed with symrnn in float64 "
          "within 1e-9 first")


if __name__ == "__main__":
    main()
