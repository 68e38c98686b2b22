#!/usr/bin/env python3
"""Peer of bench/attention.cpp: torch.nn.functional.scaled_dot_product_attention on PyTorch's CPU,
float32, one thread (--threads to change), on the shapes of gmk_bench_attention:

    prefill  batch 1, one head, seq_q = seq_k in {1024, 4096}, head_dim in {64, 128},
             non-causal and causal (is_causal=True: top-left aligned, the same mask as gmk's
             bottom-right one when seq_q = seq_k)
    decode   seq_q = 1, head_dim 128: 32 query heads over 8 K/V heads (enable_gqa=True) at
             seq_k 4096 and 32768, one head at seq_k 32768

Tensors are [batch, heads, seq, head_dim], contiguous, random normal; scale 1/sqrt(head_dim) (the
default). FLOPs as in bench/attention.cpp: 4 * seq_q * seq_k * head_dim per query head, half when
causal; decode rows also give bytes/s (K and V read once, Q read, O written). Before timing, each
shape's output is checked against softmax(Q K^T / sqrt(d)) V computed in float64. Prints one line
per row, named like gmk's rows so the two tables line up:

    <name> <seconds per call> s <FLOP/s> FLOP/s [<bytes/s> bytes/s]

With --gmk-json <file> (the --json output of bench/report.py, run with --filter attention), each
line also gives gmk's time for the same shape and thread count and the ratio torch time / gmk
time (> 1: gmk is faster), as report.py's "vs peer" column does:

    python3 bench/report.py --build-dir build/release --filter attention --json attention.json
    /work/venv-ref/bin/python bench/peers/attention.py --gmk-json attention.json

Needs torch (a virtual environment outside the repository, e.g. python3 -m venv /work/venv-ref &&
/work/venv-ref/bin/pip install torch).
"""
import argparse
import math
import sys
import timeit


def shapes():
    """(tag, heads_q, heads_kv, seq_q, seq_k, head_dim, causal) in bench/attention.cpp's order."""
    for seq in (1024, 4096):
        for d in (64, 128):
            for causal in (False, True):
                yield ("s%d_d%d%s" % (seq, d, "_causal" if causal else ""), 1, 1, seq, seq, d, causal)
    for hq, hkv, sk in ((32, 8, 4096), (1, 1, 32768), (32, 8, 32768)):
        yield ("decode_h%d%s_k%d_d128" % (hq, "kv%d" % hkv if hkv != hq else "", sk), hq, hkv, 1, sk, 128, False)


def best_call(fn, budget, repeat=5):
    """Seconds of the fastest call of fn (timeit, calls batched to ~budget / repeat seconds)."""
    fn()  # warm up
    one = min(timeit.repeat(fn, number=1, repeat=2))
    number = max(1, int(budget / repeat / max(one, 1e-6)))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def reference(q, k, v, causal, rows):
    """softmax(Q K^T / sqrt(d)) V in float64 for the query rows `rows`, K/V heads repeated for GQA,
    the causal mask bottom-right aligned (row i sees keys j <= i + seq_k - seq_q)."""
    import torch
    sq, sk = q.shape[-2], k.shape[-2]
    group = q.shape[1] // k.shape[1]
    q = q[:, :, rows].double()
    k = k.double().repeat_interleave(group, dim=1)
    v = v.double().repeat_interleave(group, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        i = torch.arange(sq)[rows].unsqueeze(1)
        j = torch.arange(sk).unsqueeze(0)
        s = s.masked_fill(j > i + (sk - sq), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per row")
    parser.add_argument("--filter", default="", help="only rows whose tag contains this")
    parser.add_argument("--gmk-json", help="bench/report.py --json output to compare with")
    args = parser.parse_args()
    gmk_times = {}
    if args.gmk_json:
        import json
        with open(args.gmk_json) as f:
            gmk_times = {r["benchmark"]: r["time_s"] for r in json.load(f)["rows"] if "time_s" in r}

    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    print("# torch %s (CPU capability %s), float32, %d thread(s)" %
          (torch.__version__, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()))
    g = torch.Generator().manual_seed(11)
    for tag, hq, hkv, sq, sk, d, causal in shapes():
        if args.filter not in tag:
            continue
        q = torch.randn(1, hq, sq, d, generator=g)
        k = torch.randn(1, hkv, sk, d, generator=g)
        v = torch.randn(1, hkv, sk, d, generator=g)
        kwargs = {"is_causal": causal}
        if hkv != hq:
            kwargs["enable_gqa"] = True

        def call():
            return F.scaled_dot_product_attention(q, k, v, **kwargs)

        # The check on 16 query rows of every head (all of them for decode).
        rows = slice(None) if sq <= 16 else slice(sq // 32, sq, sq // 16)
        want = reference(q, k, v, causal, rows)
        err = (call()[:, :, rows].double() - want).abs().max().item()
        assert err < 2e-4, (tag, "max error", err)

        seconds = best_call(call, args.budget)
        flops = 4.0 * hq * sq * sk * d * (0.5 if causal else 1.0)
        line = "%-52s %.3e s %.3e FLOP/s" % ("peers/torch_sdpa_f32/" + tag, seconds, flops / seconds)
        if sq == 1:
            nbytes = 4.0 * (2 * hkv * sk * d + 2 * hq * sq * d)
            line += " %.3e bytes/s" % (nbytes / seconds)
        line += "  (max_err %.1e)" % err
        ours = gmk_times.get("attention/flash_f32/%s/threads:%d" % (tag, args.threads))
        if ours is not None:
            line += "  gmk %.3e s: %.2fx" % (ours, seconds / ours)
        print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
