#!/usr/bin/env python3
"""Golden data for gmk's dynamic thresholding (tests/diffusion_parameterization.cpp), from
diffusers' DDPMScheduler._threshold_sample.

    /path/to/venv/bin/python tests/golden/thresholding.py --out tests/golden

Writes thresholding.txt in the format of tests/support/golden.hpp, seed 0 and one call per entry:
    case threshold.<k>.<batch>x<sample_size>.r<ratio>.m<sample_max_value>.in  <dtype> 0 <n>
    case threshold.<k>.<batch>x<sample_size>.r<ratio>.m<sample_max_value>.out <dtype> 0 <n>
`in` is a seeded torch.randn tensor of shape (batch, C, H, W) times a scale (so that some
samples' 99.5% quantile of |x| is above 1 and some below), `out` what _threshold_sample returns
for it, in float32 and float64 (diffusers keeps both dtypes; it upcasts only half types).
"""
import argparse

import torch

import diffusers
from diffusers import DDPMScheduler
from golden_format import write_entries

# (shape, scale, dynamic_thresholding_ratio, sample_max_value)
CASES = [
    ((2, 4, 16, 16), 2.0, 0.995, 1.5),
    ((3, 3, 5, 7), 1.2, 0.995, 3.0),
    ((1, 4, 64, 64), 3.0, 0.995, 10.0),
    ((4, 1, 1, 201), 2.0, 0.995, 2.5),
    ((2, 4, 8, 8), 0.3, 0.995, 1.5),   # quantile below 1: clamped up to 1
    ((2, 4, 8, 8), 2.0, 0.9, 0.8),     # sample_max_value below 1: torch.clamp's max wins
    ((2, 1, 1, 1), 2.0, 0.995, 5.0),   # one element per sample
    ((3, 2, 3, 3), 4.0, 0.5, 1e6),     # the median
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden")
    out = ap.parse_args().out
    entries = []
    for k, (shape, scale, ratio, smv) in enumerate(CASES):
        for dtype, tdt in (("float32", torch.float32), ("float64", torch.float64)):
            g = torch.Generator().manual_seed(1000 + k)
            x = torch.randn(shape, generator=g, dtype=torch.float64).to(tdt) * scale
            s = DDPMScheduler(thresholding=True, dynamic_thresholding_ratio=ratio, sample_max_value=smv)
            y = s._threshold_sample(x.clone())
            assert y.dtype == tdt
            size = 1
            for d in shape[1:]:
                size *= d
            name = f"threshold.{k}.{shape[0]}x{size}.r{ratio:g}.m{smv:g}"
            entries.append((name + ".in", dtype, x.reshape(-1).tolist()))
            entries.append((name + ".out", dtype, y.reshape(-1).tolist()))
    write_entries(f"{out}/thresholding.txt",
                  f"# diffusers {diffusers.__version__}, torch {torch.__version__}; "
                  f"written by tests/golden/thresholding.py\n", entries)


if __name__ == "__main__":
    main()
