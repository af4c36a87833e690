"""Modules of benchmarks/bench_gradients.py: the benchmark cells and their
problems, hand-written NumPy BPTT baselines, PyTorch and JAX versions of the
same cells, the symrnn adapters, timing, probes in fresh processes, reports.

The baselines share no code with symrnn: tests/test_benchmark_baselines.py
checks them against symrnn's generated gradients."""
