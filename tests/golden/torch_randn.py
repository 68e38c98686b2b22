#!/usr/bin/env python3
"""Golden data for gmk's torch-compatible generators (tests/random_torch.cpp).

Writes torch_cpu_randn.txt (torch.randn / torch.rand on the CPU generator) and, where a CUDA
device is present, torch_cuda_randn.txt (the same on a CUDA generator), into --out.

    python3 tests/golden/torch_randn.py --out tests/golden            # CPU, and CUDA if present
    ATEN_CPU_CAPABILITY=avx2 python3 tests/golden/torch_randn.py --cpu-only --tag avx2 ...

Format (whitespace-separated, '#' lines are comments):
    case <op> <dtype> <seed> <n1,n2,...>      one generator, manual_seed(seed), one call per n
    call <k> <n> <count>                      call k drew n values; <count> of them follow
    <index> <bits>                            element index, IEEE bits in hex (8 or 16 digits)
Large CUDA draws keep a sample of their elements (both ends, every stride boundary of torch's
grid, and a sparse sweep), so the files stay small.
"""
import argparse
import struct

import torch

SEEDS = [0, 1, 42, 123456789, 2**32 + 5]
SIZES = [1, 5, 15, 16, 17, 100, 4099]
SPLITS = [[5, 5, 17], [16, 1, 15], [3, 100, 4099], [1, 1, 1, 1], [15, 15], [17, 16, 33]]
CUDA_LARGE = [270336, 270337, 1000003]
CUDA_SPLITS = [[5, 5, 17], [100000, 300000, 7], [1000003, 3]]


def bits(value, dtype):
    if dtype == torch.float32:
        return "%08x" % struct.unpack("<I", struct.pack("<f", value))[0]
    return "%016x" % struct.unpack("<Q", struct.pack("<d", value))[0]


def sample_indices(n, stride):
    if n <= 4099:
        return list(range(n))
    keep = set(range(256)) | set(range(n - 256, n)) | set(range(0, n, 1009))
    for b in range(stride, n, stride):
        keep |= set(range(max(0, b - 8), min(n, b + 8)))
    return sorted(keep)


def write_cases(f, device, stride, float_randn_only=False):
    gen_device = "cuda" if device == "cuda" else "cpu"
    sizes = [[n] for n in SIZES]
    if device == "cuda":
        sizes += [[n] for n in CUDA_LARGE] + CUDA_SPLITS
    sizes += SPLITS
    for op in ("randn",) if float_randn_only else ("randn", "rand"):
        dtypes = ((torch.float32, "float32"), (torch.float64, "float64"))
        for dtype, name in dtypes[:1] if float_randn_only else dtypes:
            for seed in SEEDS:
                for calls in sizes:
                    # long draws for two seeds only (and no long uniforms): keeps the files small
                    if sum(calls) > 100 and (seed not in (0, 2**32 + 5) or op == "rand"):
                        continue
                    g = torch.Generator(device=gen_device).manual_seed(seed)
                    f.write("case %s %s %d %s\n" % (op, name, seed, ",".join(map(str, calls))))
                    for k, n in enumerate(calls):
                        fn = torch.randn if op == "randn" else torch.rand
                        x = fn(n, generator=g, dtype=dtype, device=device).cpu().tolist()
                        idx = sample_indices(n, stride) if device == "cuda" else range(n)
                        idx = list(idx)
                        f.write("call %d %d %d\n" % (k, n, len(idx)))
                        f.write("\n".join("%d %s" % (i, bits(x[i], dtype)) for i in idx) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    suffix = ("_" + args.tag) if args.tag else ""
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    with open("%s/torch_cpu_randn%s.txt" % (args.out, suffix), "w") as f:
        f.write("# torch %s, CPU capability %s\n" % (torch.__version__, cap))
        write_cases(f, "cpu", 0, float_randn_only=bool(args.tag))
    if args.cpu_only or not torch.cuda.is_available():
        return
    p = torch.cuda.get_device_properties(0)
    sms = p.multi_processor_count
    per_sm = getattr(p, "max_threads_per_multi_processor", 2048)
    stride = sms * (per_sm // 256) * 256  # torch's grid-stride (block 256, grid capped by the SMs)
    with open("%s/torch_cuda_randn%s.txt" % (args.out, suffix), "w") as f:
        f.write("# torch %s, CUDA %s, %s\n" % (torch.__version__, torch.version.cuda, p.name))
        f.write("device %d %d\n" % (sms, per_sm))
        write_cases(f, "cuda", stride)


if __name__ == "__main__":
    main()
