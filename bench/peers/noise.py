#!/usr/bin/env python3
"""Peers of bench/random.cpp (named noise.py: a random.py would shadow the standard module): torch.randn / torch.rand on the CPU and NumPy's standard_normal,
one thread, on the same sizes as gmk_bench_random. Prints one line per row:

    <name> <seconds per call> <items/s>

Needs torch and numpy (a virtual environment outside the repository, e.g.
python3 -m venv /work/venv-ref && /work/venv-ref/bin/pip install torch numpy).
"""
import sys
import timeit

N = 1 << 20


def rate(name, fn, repeat=7):
    fn()  # warm up
    number = max(1, int(0.2 / max(1e-6, timeit.timeit(fn, number=1))))
    best = min(timeit.repeat(fn, number=number, repeat=repeat)) / number
    print("%-40s %.3e s %.3e items/s" % (name, best, N / best))
    sys.stdout.flush()


def main():
    import numpy as np
    import torch
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(42)
    out32 = torch.empty(N, dtype=torch.float32)
    out64 = torch.empty(N, dtype=torch.float64)
    print("# torch %s (CPU capability %s), numpy %s, n = %d, one thread" %
          (torch.__version__, torch.backends.cpu.get_cpu_capability(), np.__version__, N))
    rate("peers/torch_randn_f32_cpu", lambda: torch.randn(N, generator=g, out=out32))
    rate("peers/torch_randn_f64_cpu", lambda: torch.randn(N, generator=g, out=out64))
    rate("peers/torch_rand_f32_cpu", lambda: torch.rand(N, generator=g, out=out32))
    rng = np.random.default_rng(42)
    o32 = np.empty(N, dtype=np.float32)
    o64 = np.empty(N, dtype=np.float64)
    rate("peers/numpy_standard_normal_f32", lambda: rng.standard_normal(N, dtype=np.float32, out=o32))
    rate("peers/numpy_standard_normal_f64", lambda: rng.standard_normal(N, dtype=np.float64, out=o64))
    legacy = np.random.RandomState(42)
    rate("peers/numpy_randn_legacy_f64", lambda: legacy.standard_normal(N))


if __name__ == "__main__":
    main()
