#!/usr/bin/env python3
"""Peers of gmk's sliding-window maximum (bench/window.cpp): bottleneck.move_max and
scipy.ndimage.maximum_filter1d on the same data size (float32, n = 10^7) and windows.

    python3 bench/peers/window.py [--n N] [--repeat R]

Needs numpy, scipy and bottleneck (a virtual environment outside the repository will do:
python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy bottleneck). Before timing,
it checks that the peers compute what gmk computes: it compiles gmk's sliding_max into a small
shared library (g++, -march=native) and asserts equality with
  - bottleneck.move_max(x, k, min_count=1): gmk's trailing windows, NaN ignored
    (window_mode::trailing, nan_policy::ignore), NaN included in the test arrays;
  - scipy.ndimage.maximum_filter1d(x, k, origin=-(k // 2))[: n - k + 1]: gmk's 'valid' windows.
Then times each peer and window (best of R calls, time.perf_counter) and prints one line per
row, in the format of the other peers scripts (bench/report.py --peers-python reads them):

    <name> <seconds per call> s <items/s> items/s

named peers/bottleneck_move_max_f32/<k> and peers/scipy_maximum_filter1d_f32/<k> (items: the n
input elements), and peers/gmk_ctypes_sliding_max_f32/<k>: gmk's sliding_max called through the
same ctypes shim (-O2), a check that the Python side adds nothing to the peers' figures.
"""

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time

import bottleneck
import numpy as np
import scipy
import scipy.ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WINDOWS = [3, 16, 64, 256, 1024, 4096]

SHIM = r"""
#include <gmk/window/sliding_extremum.hpp>
extern "C" void gmk_sliding_max_f32(const float* x, std::size_t n, std::size_t k, float* out,
                                    int trailing, int ignore_nan) {
    gmk::sliding_max(x, n, k, out, n, trailing ? gmk::window_mode::trailing : gmk::window_mode::valid,
                     ignore_nan ? gmk::nan_policy::ignore : gmk::nan_policy::propagate);
}
"""


def build_gmk(tmp):
    src = os.path.join(tmp, "shim.cpp")
    lib = os.path.join(tmp, "libgmkwindow.so")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run(["g++", "-std=c++17", "-O2", "-march=native", "-shared", "-fPIC",
                    "-I" + os.path.join(ROOT, "include"), src, "-o", lib], check=True)
    so = ctypes.CDLL(lib)
    fn = so.gmk_sliding_max_f32
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    fn.restype = None

    def sliding_max(x, k, trailing, ignore_nan):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(x.size, dtype=np.float32)
        fn(x.ctypes.data, x.size, k, out.ctypes.data, int(trailing), int(ignore_nan))
        return out if trailing else out[: x.size - k + 1]
    return sliding_max


def check_equivalence(gmk_max):
    rng = np.random.default_rng(1)
    for n in (1, 7, 100, 1000, 4099):
        for k in sorted({1, 2, 3, 16, 17, 64, n // 2 or 1, n}):
            if k > n:
                continue
            x = rng.integers(-5, 5, size=n).astype(np.float32)  # ties
            y = x.copy()
            y[rng.random(n) < 0.1] = np.nan
            y[:: 97] = np.inf
            for data in (x, y):
                ours = gmk_max(data, k, trailing=True, ignore_nan=True)
                theirs = bottleneck.move_max(data, k, min_count=1)
                assert np.array_equal(ours, theirs, equal_nan=True), ("bottleneck", n, k)
            ours = gmk_max(x, k, trailing=False, ignore_nan=False)
            theirs = scipy.ndimage.maximum_filter1d(x, k, origin=-(k // 2))[: n - k + 1]
            assert np.array_equal(ours, theirs), ("scipy", n, k)


def best_time(f, repeat):
    """Seconds of the fastest of `repeat` calls of f."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        gmk_max = build_gmk(tmp)
        check_equivalence(gmk_max)
        print("# equivalence: gmk trailing/ignore == bottleneck.move_max(min_count=1), "
              "gmk valid == scipy maximum_filter1d(origin=-(k//2)): ok")
        x = np.random.default_rng(0).uniform(-1, 1, args.n).astype(np.float32)
        print("# numpy %s, scipy %s, bottleneck %s; float32, n = %d, best of %d calls" %
              (np.__version__, scipy.__version__, bottleneck.__version__, args.n, args.repeat))
        sys.stdout.flush()
        for k in WINDOWS:
            rows = [
                ("bottleneck_move_max_f32", lambda: bottleneck.move_max(x, k, min_count=1)),
                ("scipy_maximum_filter1d_f32", lambda: scipy.ndimage.maximum_filter1d(x, k, origin=-(k // 2))),
                ("gmk_ctypes_sliding_max_f32", lambda: gmk_max(x, k, trailing=False, ignore_nan=False)),
            ]
            for name, fn in rows:
                t = best_time(fn, args.repeat)
                print("%-48s %.3e s %.3e items/s" % ("peers/%s/%d" % (name, k), t, args.n / t))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
