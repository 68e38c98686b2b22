#!/usr/bin/env python3
"""Peers of gmk's masked discrete-diffusion sampler (issue 8): the per-step math that LLaDA's
generate.py and Dream's generation_utils.py run between two network calls, on PyTorch's CPU, one
thread, for batch 1, L = 256 positions and LLaDA's vocabulary V = 126464 (float32 logits
[1, 256, 126464], random normal with standard deviation 3; fixed seed). The sequence is a prompt
of 32 tokens followed by 224 masks (LLaDA's mask id 126336), one block covering all of it, and
every row commits k = 8 positions.

    /work/venv-ref/bin/python bench/peers/discrete.py [--repeat R]

Rows (the logic re-implemented from the published code, as in tests/golden/discrete.py):
    llada_step_T0             LLaDA, temperature 0, low_confidence: x0 = argmax(logits);
                              p = softmax(float64 logits); conf = p[x0], -inf past the block and
                              where not masked; x0 = x where not masked; topk(conf, k); commit.
    llada_step_T1             the same at temperature 1 with LLaDA's float64 Gumbel:
                              x0 = argmax(exp(float64 logits) / (-log(rand_like)) ** T).
    dream_step_T0             Dream _sample, alg maskgit_plus, temperature 0: the logits shifted
                              right by one position (torch.cat, as _sample does after every
                              call); probs = softmax(float32 logits of the masked rows);
                              conf, x0 = probs.max(-1); scatter into a -inf [1, L] confidence;
                              topk; write-back through a mask-filled copy of x.
    dream_step_T0.2_topp0.95  the same with sample_tokens at temperature 0.2, top_p 0.95 (sort,
                              cumsum of softmax, removal shifted right by one, masked_fill with
                              finfo.min), x0 ~ Categorical(probs), conf = probs[x0].
    torch_softmax_only        softmax over [256, 126464] float32 (a floor: every row above reads
                              the whole logits at least once and takes one softmax over them).

Each step is checked once (k new positions committed, all of them masks before; at temperature
0, the committed tokens are the argmax of the logits), then timed: one warm-up call, then the
median of R calls (time.perf_counter). Each call starts from the same x. Prints one line per row:

    <name> <seconds per step> s <items/s> items/s

with items = L * V = 32374784 logits per step.

With --gmk-json <file> (the --json output of bench/report.py, run with --filter discrete), each
line also gives the time of gmk's token statistics of the same step on one thread
(gmk_bench_discrete's discrete/token_stats/<setting>/threads:1, the row in GMK_ROWS) and the
ratio torch time / gmk time (> 1: gmk is faster), as report.py's "vs peer" column does:

    python3 bench/report.py --build-dir build/release --filter discrete --json discrete.json
    /work/venv-ref/bin/python bench/peers/discrete.py --gmk-json discrete.json

gmk's rows draw by inverse CDF (one uniform per row) where LLaDA's T1 step races V float64
Gumbel keys and Dream's samples torch.multinomial's way, and gmk's logits carry a few peaked
tokens per row: the ratio compares the cost of one step's statistics, not the same draws.

Needs torch (a virtual environment outside the repository, e.g. python3 -m venv /work/venv-ref &&
/work/venv-ref/bin/pip install torch).
"""
import argparse
import statistics
import sys
import time

L, V, PROMPT, K = 256, 126464, 32, 8
MASK_ID = 126336  # LLaDA's [MASK]

# The gmk_bench_discrete row (one thread) each peer row is compared with under --gmk-json.
GMK_ROWS = {
    "llada_step_T0": "T0",
    "llada_step_T1": "T1",
    "dream_step_T0": "T0",
    "dream_step_T0.2_topp0.95": "T0.2_topp0.95",
    "torch_softmax_only": "T0",
}


def llada_step(logits, x, temperature, block_end=L):
    import torch
    import torch.nn.functional as F
    x = x.clone()  # generate() updates x in place
    mask = x == MASK_ID
    if temperature == 0:
        noisy = logits  # add_gumbel_noise returns the logits unchanged
    else:
        logits64 = logits.to(torch.float64)
        gumbel = (-torch.log(torch.rand_like(logits64))) ** temperature
        noisy = logits64.exp() / gumbel
    x0 = torch.argmax(noisy, dim=-1)
    p = F.softmax(logits.to(torch.float64), dim=-1)
    x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
    x0_p[:, block_end:] = -float("inf")
    x0 = torch.where(mask, x0, x)
    confidence = torch.where(mask, x0_p, -float("inf"))
    transfer = torch.zeros_like(x0, dtype=torch.bool)
    for j in range(confidence.shape[0]):
        _, select = torch.topk(confidence[j], k=K)
        transfer[j, select] = True
    x[transfer] = x0[transfer]
    return x


def dream_top_p(logits, top_p):
    import torch
    import torch.nn.functional as F
    sorted_logits, sorted_index = torch.sort(logits, descending=True)
    cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cum > top_p
    remove[..., 1:] = remove[..., :-1].clone()  # keep the first token past the threshold
    remove[..., 0] = False
    drop = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_index, remove)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def dream_sample_tokens(logits, temperature, top_p):
    import torch
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = dream_top_p(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0:
        x0 = torch.distributions.Categorical(probs=probs).sample()
        confidence = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
    return confidence, x0


def dream_step(logits, x, temperature, top_p=None):
    import torch
    x = x.clone()
    mask = x == MASK_ID
    logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # token i is predicted at i - 1
    confidence, x0 = dream_sample_tokens(logits[mask], temperature, top_p)
    full_confidence = torch.full_like(x, -torch.inf, dtype=logits.dtype)
    full_confidence[mask] = confidence
    _, transfer = torch.topk(full_confidence, K)
    x_ = torch.zeros_like(x) + MASK_ID
    x_[mask] = x0.clone()
    rows = torch.arange(x.size(0)).unsqueeze(1).expand_as(transfer)
    x[rows, transfer] = x_[rows, transfer]
    return x


def check(name, x, out, argmax):
    changed = (out != x).nonzero()[:, 1]
    assert len(changed) == K and bool((x[0, changed] == MASK_ID).all()), (name, changed)
    if argmax is not None:
        assert bool((out[0, changed] == argmax[changed]).all()), (name, "not the argmax")


def median_call(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per row (the median is shown)")
    parser.add_argument("--gmk-json", help="bench/report.py --json output to compare with")
    args = parser.parse_args()
    gmk_times = {}
    if args.gmk_json:
        import json
        with open(args.gmk_json) as f:
            gmk_times = {r["benchmark"]: r["time_s"] for r in json.load(f)["rows"] if "time_s" in r}

    import torch
    torch.set_num_threads(1)
    print("# torch %s (CPU capability %s), logits [1, %d, %d] float32, %d masked, k = %d, one thread" %
          (torch.__version__, torch.backends.cpu.get_cpu_capability(), L, V, L - PROMPT, K))
    sys.stdout.flush()
    torch.manual_seed(0)
    logits = torch.randn(1, L, V) * 3
    x = torch.randint(0, MASK_ID, (1, L))
    x[:, PROMPT:] = MASK_ID
    argmax = logits[0].argmax(-1)
    shifted_argmax = torch.cat([argmax[:1], argmax[:-1]])

    rows = [
        ("llada_step_T0", lambda: llada_step(logits, x, 0.0), argmax),
        ("llada_step_T1", lambda: llada_step(logits, x, 1.0), None),
        ("dream_step_T0", lambda: dream_step(logits, x, 0.0), shifted_argmax),
        ("dream_step_T0.2_topp0.95", lambda: dream_step(logits, x, 0.2, 0.95), None),
        ("torch_softmax_only", lambda: torch.softmax(logits, dim=-1), None),
    ]
    for name, fn, want in rows:
        if name != "torch_softmax_only":
            check(name, x, fn(), want)
        t = median_call(fn, args.repeat)
        line = "%-52s %.3e s %.3e items/s" % ("peers/torch_discrete_f32/" + name, t, L * V / t)
        ours = gmk_times.get("discrete/token_stats/%s/threads:1" % GMK_ROWS[name])
        if ours is not None:
            line += "  gmk %s %.3e s: %.2fx" % (GMK_ROWS[name], ours, t / ours)
        print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
