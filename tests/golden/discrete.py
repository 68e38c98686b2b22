#!/usr/bin/env python3
"""Golden data for gmk's masked discrete-diffusion sampler (include/gmk/discrete/, issue 8): the
LLaDA, Dream and Fast-dLLM decoding loops, re-implemented here from their published Python and
run with PyTorch on a deterministic toy model.

    /work/venv-ref/bin/python tests/golden/discrete.py --out tests/golden

Writes discrete.txt in the format of tests/support/golden.hpp (see golden_format.py): one case per
entry, seed column 0, one call holding every value:
    case <name> <dtype> 0 <n>
    call 0 <n> <n>
    <index> <IEEE bits in hex>
Integers (tokens, counts, configuration) are stored as float64 values.

REFERENCES (read through the code search; the logic below follows them, the text is ours)
  LLaDA      ML-GSAI/LLaDA generate.py (commit 41760b9): add_gumbel_noise, get_num_transfer_tokens,
             generate (semi-autoregressive blocks, CFG, low_confidence / random remasking).
  Dream      Dream-org/Dream-v0-Instruct-7B generation_utils.py (HF hub; the same code is vendored
             in many repositories): top_p_logits, top_k_logits, sample_tokens,
             DreamGenerationMixin._sample (origin, maskgit_plus, topk_margin, entropy; alg_temp).
  Fast-dLLM  NVlabs/Fast-dLLM llada/generate.py (commit f6b35ec): generate + get_transfer_index
             with `threshold` (no cache, no CFG).

THE TOY MODEL (the C++ test re-implements exactly this; all integer arithmetic, no libm)
  Parameters: V (vocabulary size), M (mask id, 0 <= M < V), model seed S.
  mix(z) is splitmix64's finaliser on uint64 (wrapping arithmetic):
      z += 0x9E3779B97F4A7C15; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31)
  s0 = mix(S); h(a, b, c, d) = mix(mix(mix(mix(s0 ^ a) ^ b) ^ c) ^ d)   (a..d non-negative integers)
  For a sequence x[0..L) (the model sees the whole sequence, mask tokens included), position i,
  vocabulary entry v, with prev = x[i-1] for i > 0 and prev = V for i = 0:
      kA   = (h(1, i, x[i], v) >> 44) - 2^19          (20-bit, in [-2^19, 2^19))
      kB   = (h(2, prev, v, 0) >> 46) - 2^17          (18-bit, in [-2^17, 2^17))
      pref = h(3, i, prev, 0) % V;  if pref == M: pref = (pref + 1) % V
      boost = h(4, i, 0, 0) % 8                       (0..7)
      k = kA + kB + (v == pref ? boost * 2^17 : 0) - (v == M ? 6 * 2^17 : 0)
      logit[i][v] = float32(k * 2^-17)                 (exact: |k| < 2^24)
  So logits lie in about [-10, 12) on a 2^-17 grid; each position has a preferred token whose
  boost (0..7) makes some positions confident (p > 0.9) and others not; the mask token is pushed
  down by 6 so that it is never the argmax in these runs (the references do not suppress it).
  The model's output is float32, shape [batch, L, V]; with CFG the batch is [x, un_x].

ALGORITHMS (id in config[8]) and what the reference does, step by step
  0 llada_low_confidence, 1 llada_random  (LLaDA generate):
    x = prompt | M * gen_length, L = P + gen_length; prompt_index = (x != M) at the start.
    num_blocks = gen_length / block_length; spb = steps / num_blocks (steps per block).
    Per block b: n = #masks in x[P + b*block_length, P + (b+1)*block_length) (= block_length
    here); counts[j] = n // spb + (j < n % spb ? 1 : 0), j = 0..spb-1 (int64).
    Per step j of the block (always exactly spb steps; no early stop):
      mask = (x == M);
      cfg > 0: un_x = x with prompt_index positions set to M; logits = model([x, un_x]);
               logits = un + (cfg + 1) * (cond - un), in float32 (cfg chosen exact in float32).
      T > 0: u = torch.rand_like(logits, float64) (one [1, L, V] draw, all positions);
             g = exp(float64(logits)) / (-log(u)) ** T; x0 = argmax_v g.  T = 0: x0 = argmax logits.
      low_confidence: conf = softmax(float64(logits))[x0] (float64; raw logits, no temperature).
      random: conf = torch.rand((1, L)) (float32), drawn AFTER the Gumbel draw when T > 0.
      conf[P + (b+1)*block_length:] = -inf; conf = -inf where not masked; x0 = x where not masked.
      commit torch.topk(conf, counts[j]) positions: x[sel] = x0[sel].
  2 dream_origin, 3 dream_maskgit_plus, 4 dream_topk_margin, 5 dream_entropy  (Dream _sample):
    x = prompt | M * gen_length; no blocks (block_length = gen_length in the config).
    ts = torch.linspace(1, eps, steps + 1) in float32 (recorded: entry "timesteps").
    Per step i (exactly `steps` steps):
      mask = (x == M); logits = model(x); SHIFT: logits[:, i] = logits[:, i-1] for i >= 1,
      position 0 keeps its own (torch.cat([l[:, :1], l[:, :-1]], 1)). t = ts[i], s = ts[i+1].
      sample_tokens(rows of the masked positions, in position order):
        T > 0: l = l / T; top_p < 1: top_p_logits; top_k: top_k_logits; probs = softmax(l)
        (all float32). T > 0: x0 ~ Categorical(probs) (see DRAWS), conf = probs[x0];
        T = 0: conf, x0 = probs.max(-1) (argmax of the float32 softmax).
        topk_margin: conf = p(1) - p(2) (sorted probs); entropy: conf = sum p * log(p + 1e-10)
        (float32; negative entropy, the most peaked position wins).
        top_p_logits: sort descending, cum = cumsum(softmax(sorted)); remove where cum > top_p
        (top_p compared in float32), shifted right by one, the first always kept; removed
        logits = finfo(float32).min. top_k_logits: remove l < (k-th largest); ties kept.
      origin: p_t = 1 - s/t (float32) or 1 at the last step; r = torch.rand(n_masked) (float32,
        one per masked position in position order); positions with r < p_t get x0 from
        sample_tokens over just those rows (in order); the others stay M.
      others: n = int(float32(#masks / batch) * float32(1 - s/t)) (truncation of a float32
        product), or #masks at the last step. If n > 0: alg_temp = 0: commit torch.topk(conf
        over all L positions, -inf where unmasked, n); alg_temp > 0: w = softmax(conf / alg_temp)
        (float32, 0 where unmasked), positions = torch.multinomial(w, n, replacement=False).
  6 fastdllm_threshold  (Fast-dLLM generate with threshold=tau, T = 0, low_confidence, no CFG):
    blocks as LLaDA, but each block runs until it has no mask left (a variable number of steps):
      mask = (x == M), mask[P + (b+1)*block_length:] = false; x0 = argmax logits;
      conf = softmax(float64(logits))[x0], -inf where not mask; k = #mask;
      sel = torch.topk(conf, k) (descending); commit sel[0] always, and sel[m] (m >= 1) unless
      conf[sel[m]] < tau (so: every candidate with conf >= tau, and at least the top one).

DRAWS (the exact random numbers the reference consumed, in order; torch.manual_seed(config[15])
  just before the loop; torch.rand / torch.rand_like are wrapped to record them)
  "gumbel_u"  float64: LLaDA T > 0, each step's [1, L, V] uniforms (row-major, position-major);
              with CFG the draw is over the combined [1, L, V] logits (one draw per step).
  "rand_u"    float32: LLaDA random remasking, each step's L uniforms (all positions); Dream
              origin, each step's n_masked uniforms.
  "exp_q"     float32: Dream T > 0 sampling and alg_temp > 0 position sampling. torch's
              Categorical(probs).sample() normalises probs (P = probs / probs.sum(-1)) and calls
              torch.multinomial(P, 1, True), which for one sample draws q = Exp(1) of P's shape
              ([rows, V], rows = the masked rows sampled, row-major) and returns argmax(P / q).
              multinomial(w, n, False) draws q of w's shape ([1, L]) and returns topk(w / q, n).
              This script checks that replica against the real call (same tokens, same generator
              state afterwards) on every draw, and records q. Per step the order is: origin's
              rand_u, then exp_q for the sampled rows; maskgit & co: exp_q for the token rows,
              then exp_q ([1, L]) for the positions.
  Entries are present (possibly with 0 values) only for the kinds a case uses.

WHAT THE REFERENCES DO (points a re-implementation can trip on; seen in these runs)
  - torch.topk does not break ties by index. dream.entropy.sampled: top_p/top_k at T = 0.5 leave
    one token in some rows, so probs is exactly 1 and the negative entropy exactly 0 at several
    positions; at step 2 (0-based) topk(k = 2) met tied positions {11, 12, 20} and took {11, 20}.
    Its "ties" entry is [1, 0]; every other case has [0, 0] (no tie at any boundary). A "lower
    index first" C++ selection matches every case up to that step and may diverge after it.
  - LLaDA runs exactly steps / num_blocks steps per block, calling the model even when the count is
    0 (llada.lowconf.steps_gt_len: counts 1 x 8 then 0 x 4 per block). Fast-dLLM's threshold loop
    ignores `steps` and runs each block until it has no mask (fastdllm.tau0.9: 30 steps).
  - Dream's count is a float32 product truncated: 16 masks at steps 16 gives int(16 * 0.06244)
    = 0 at step 0 (dream.entropy), so the first model call commits nothing.
  - LLaDA's Gumbel draw covers every position and every token, prompt and later blocks included,
    float64 ([1, L, V] per step, once on the guided logits under CFG); random remasking draws L
    float32 uniforms after it. low_confidence's confidence is the untempered float64 softmax of
    the (float32, guided) logits at the sampled token.
  - Dream at T = 0 takes the argmax of the float32 softmax, not of the logits; at T > 0
    Categorical renormalises probs and the exponential race consumes V draws per sampled row,
    filtered-out tokens included. origin draws one uniform per masked position on every step, the
    last (p_t = 1) included.
  - Fast-dLLM keeps a candidate unless conf < tau (conf == tau is kept); tau = 1 commits exactly one
    token per step. Its generate() has no CFG.
  - None of the references suppresses the mask token; the toy model keeps it out of reach.

CASES (name: algorithm; V, M; P; gen_length, block_length, steps; cfg; T; other)
"""
# The case table is appended to the docstring at import (see CASES below), then ENTRIES.
import argparse
import math
import textwrap

import numpy as np
import torch
import torch.distributions as dists
import torch.nn.functional as F

from golden_format import write_entries

torch.set_num_threads(1)

U64 = (1 << 64) - 1
ALG = {"llada_low_confidence": 0, "llada_random": 1, "dream_origin": 2, "dream_maskgit_plus": 3,
       "dream_topk_margin": 4, "dream_entropy": 5, "fastdllm_threshold": 6}


# ---- the toy model ------------------------------------------------------------------------------

def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & U64
    return z ^ (z >> 31)


class ToyModel:
    """logits[b, i, v] from integer hashes of (i, x[i], x[i-1], v), exact in float32."""

    def __init__(self, V, M, seed):
        self.V, self.M, self.seed = V, M, seed
        self.s0 = mix(seed)
        self.cache = {}
        self.calls = 0

    def h(self, a, b, c, d):
        return mix(mix(mix(mix(self.s0 ^ a) ^ b) ^ c) ^ d)

    def row(self, i, cur, prev):
        key = (i, cur, prev)
        if key not in self.cache:
            V, M = self.V, self.M
            pref = self.h(3, i, prev, 0) % V
            if pref == M:
                pref = (pref + 1) % V
            boost = self.h(4, i, 0, 0) % 8
            ks = []
            for v in range(V):
                k = (self.h(1, i, cur, v) >> 44) - (1 << 19)
                k += (self.h(2, prev, v, 0) >> 46) - (1 << 17)
                if v == pref:
                    k += boost << 17
                if v == M:
                    k -= 6 << 17
                assert abs(k) < (1 << 24)
                ks.append(k)
            self.cache[key] = np.array(ks, dtype=np.float64) * 2.0 ** -17
        return self.cache[key]

    def __call__(self, x):
        self.calls += 1
        B, L = x.shape
        out = np.empty((B, L, self.V), dtype=np.float64)
        xs = x.tolist()
        for b in range(B):
            for i in range(L):
                prev = xs[b][i - 1] if i > 0 else self.V
                out[b, i] = self.row(i, xs[b][i], prev)
        t = torch.from_numpy(out).to(torch.float32)
        assert torch.equal(t.to(torch.float64), torch.from_numpy(out))  # exact in float32
        return t


# ---- recording the draws ------------------------------------------------------------------------

class Recorder:
    """Wraps torch.rand / torch.rand_like, keeping every value drawn."""

    def __init__(self, fn, sink):
        self.fn, self.sink = fn, sink

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        self.sink.append(out.detach().reshape(-1).clone())
        return out


class Draws:
    def __init__(self):
        self.rand, self.rand_like, self.exp_q = [], [], []

    def __enter__(self):
        self.saved = (torch.rand, torch.rand_like)
        torch.rand = Recorder(self.saved[0], self.rand)
        torch.rand_like = Recorder(self.saved[1], self.rand_like)
        return self

    def __exit__(self, *exc):
        torch.rand, torch.rand_like = self.saved


DRAWS = None  # the active Draws, for the replica checks of multinomial


def checked_exponential_argmax(P, n, replacement, call):
    """Runs `call()` (the reference's Categorical / multinomial) and checks it against the
    exponential-race replica of torch.multinomial's single-sample / no-replacement path, recording
    the Exp(1) draws q."""
    state = torch.get_rng_state()
    q = torch.empty_like(P).exponential_(1)
    r = P / q
    rep = r.argmax(-1) if n is None else torch.topk(r, n).indices
    after_rep = torch.get_rng_state()
    torch.set_rng_state(state)
    got = call()
    assert torch.equal(torch.get_rng_state(), after_rep), "multinomial drew differently"
    if n is None:
        assert torch.equal(got, rep), (got, rep)
    else:
        assert torch.equal(torch.sort(got.reshape(-1)).values, torch.sort(rep.reshape(-1)).values)
    DRAWS.exp_q.append(q.reshape(-1).clone())
    return got


# ---- LLaDA (ML-GSAI/LLaDA generate.py) ------------------------------------------------------------

def llada_gumbel(logits, temperature):
    # add_gumbel_noise: float64 logits and uniforms; exp(l) / (-log u)^T
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    gumbel_noise = (-torch.log(noise)) ** temperature
    return logits.exp() / gumbel_noise


def llada_counts(block_mask_index, steps):
    # get_num_transfer_tokens: base per step, the remainder front-loaded
    mask_num = block_mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    counts = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for b in range(mask_num.size(0)):
        counts[b, :remainder[b]] += 1
    return counts


def llada_generate(model, prompt, steps, gen_length, block_length, temperature, cfg_scale,
                   remasking, mask_id, log):
    P = prompt.shape[1]
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[:, :P] = prompt.clone()
    prompt_index = x != mask_id
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    spb = steps // num_blocks
    for nb in range(num_blocks):
        lo, hi = P + nb * block_length, P + (nb + 1) * block_length
        counts = llada_counts(x[:, lo:hi] == mask_id, spb)
        for i in range(spb):
            mask_index = x == mask_id
            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                both = model(torch.cat([x, un_x], dim=0))
                cond, un = torch.chunk(both, 2, dim=0)
                logits = un + (cfg_scale + 1) * (cond - un)
            else:
                logits = model(x)
            if temperature == 0:
                x0 = torch.argmax(logits, dim=-1)
                assert_unique_max(logits[0][mask_index[0]])
            else:
                x0 = torch.argmax(llada_gumbel(logits, temperature), dim=-1)
            if remasking == "low_confidence":
                p = F.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                x0_p = torch.rand((x0.shape[0], x0.shape[1]))
            else:
                raise NotImplementedError(remasking)
            x0_p[:, hi:] = -np.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -np.inf)
            k = int(counts[0, i])
            check_topk(confidence[0], k)
            _, sel = torch.topk(confidence[0], k=k)
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            transfer[0, sel] = True
            x[transfer] = x0[transfer]
            log(x, k, confidence[0].to(torch.float64), logits)
    return x


def fastdllm_generate(model, prompt, gen_length, block_length, threshold, mask_id, log):
    # NVlabs/Fast-dLLM llada/generate.py generate(..., threshold) with get_transfer_index; T = 0.
    P = prompt.shape[1]
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[:, :P] = prompt.clone()
    num_blocks = gen_length // block_length
    for nb in range(num_blocks):
        lo, hi = P + nb * block_length, P + (nb + 1) * block_length
        while True:
            mask_index = x == mask_id
            logits = model(x)
            mask_index[:, hi:] = 0
            x0 = torch.argmax(logits, dim=-1)
            assert_unique_max(logits[0][mask_index[0]])
            p = F.softmax(logits.to(torch.float64), dim=-1)
            x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -np.inf)
            k = int(mask_index.sum())
            check_topk(confidence[0], k)
            _, sel = torch.topk(confidence[0], k=k)
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            transfer[0, sel] = True
            for m in range(1, k):
                if confidence[0, sel[m]] < threshold:
                    transfer[0, sel[m]] = False
            x[transfer] = x0[transfer]
            log(x, int(transfer.sum()), confidence[0].to(torch.float64), logits)
            if (x[:, lo:hi] == mask_id).sum() == 0:
                break
    return x


def assert_unique_max(rows):
    srt = torch.sort(rows, dim=-1, descending=True).values
    assert bool((srt[:, 0] > srt[:, 1]).all()), "tie at the argmax"


TIES = []  # per selection with a tie at the top-k boundary: whether torch's pick = lower index first


def check_topk(conf, k):
    """Notes whether the top-k selection meets a tie at its boundary (then the result depends on
    how torch.topk orders equal values) and whether torch picked the lower indices there."""
    v = torch.sort(conf, descending=True).values
    if 0 < k < v.numel() and math.isfinite(float(v[k - 1])) and float(v[k - 1]) == float(v[k]):
        got = set(torch.topk(conf, k).indices.tolist())
        order = sorted(range(conf.numel()), key=lambda j: (-float(conf[j]), j))
        TIES.append(got == set(order[:k]))


# ---- Dream (Dream-org generation_utils.py) --------------------------------------------------------

def dream_top_p(logits, top_p):
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cum > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = 0
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_indices, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def dream_top_k(logits, top_k):
    top_k = min(top_k, logits.size(-1))
    remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
    return logits.masked_fill(remove, torch.finfo(logits.dtype).min)


def dream_sample_tokens(logits, temperature, top_p, top_k, margin=False, neg_entropy=False):
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = dream_top_p(logits, top_p)
    if top_k is not None:
        logits = dream_top_k(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0:
        cat = dists.Categorical(probs=probs)
        x0 = checked_exponential_argmax(cat.probs, None, True, lambda: cat.sample())
        confidence = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
        assert_unique_max(probs)
    if margin:
        sp = torch.sort(probs, dim=-1, descending=True).values
        confidence = sp[:, 0] - sp[:, 1]
    if neg_entropy:
        confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    return confidence, x0


def dream_generate(model, prompt, steps, gen_length, alg, alg_temp, temperature, top_p, top_k, eps,
                   mask_id, log, timesteps_out):
    P = prompt.shape[1]
    x = torch.nn.functional.pad(prompt, (0, gen_length), value=mask_id)
    timesteps = torch.linspace(1, eps, steps + 1)
    timesteps_out.extend(timesteps.tolist())
    for i in range(steps):
        mask_index = x == mask_id
        logits = model(x)
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        mask_logits = logits[mask_index]
        t, s = timesteps[i], timesteps[i + 1]
        full_confidence = torch.full_like(x, -torch.inf, dtype=logits.dtype)
        if alg == "dream_origin":
            p_transfer = 1 - s / t if i < steps - 1 else 1
            x0 = torch.zeros_like(x[mask_index], dtype=torch.long) + mask_id
            sel = torch.rand(*x0.shape) < p_transfer
            _, x0[sel] = dream_sample_tokens(mask_logits[sel], temperature, top_p, top_k)
            x[mask_index] = x0.clone()
            n = int(sel.sum())
        else:
            kw = dict(margin=alg == "dream_topk_margin", neg_entropy=alg == "dream_entropy")
            confidence, x0 = dream_sample_tokens(mask_logits, temperature, top_p, top_k, **kw)
            num_mask_token = mask_index.sum() / mask_index.shape[0]
            n = int(num_mask_token * (1 - s / t)) if i < steps - 1 else int(num_mask_token)
            full_confidence[mask_index] = confidence
            if n > 0:
                if alg_temp is None or alg_temp == 0:
                    check_topk(full_confidence[0], n)
                    _, transfer_index = torch.topk(full_confidence, n)
                else:
                    w = F.softmax(full_confidence / alg_temp, dim=-1)
                    transfer_index = checked_exponential_argmax(
                        w, n, False, lambda: torch.multinomial(w, num_samples=n))
                x_ = torch.zeros_like(x, dtype=torch.long) + mask_id
                x_[mask_index] = x0.clone()
                rows = torch.arange(x.size(0)).unsqueeze(1).expand_as(transfer_index)
                x[rows, transfer_index] = x_[rows, transfer_index]
        log(x, n, full_confidence[0], logits)
    return x


# ---- cases --------------------------------------------------------------------------------------

# name, algorithm, V, M, P, gen_length, block_length, steps, cfg, T, extras
CASES = [
    ("llada.lowconf.noblock", "llada_low_confidence", 50, 47, 6, 16, 16, 8, 0.0, 0.0, {}),
    ("llada.lowconf.blocks", "llada_low_confidence", 50, 47, 5, 32, 8, 16, 0.0, 0.0, {}),
    ("llada.lowconf.blocks.cfg", "llada_low_confidence", 50, 47, 6, 24, 8, 12, 1.5, 0.0, {}),
    ("llada.lowconf.noblock.cfg", "llada_low_confidence", 50, 47, 4, 16, 16, 16, 0.5, 0.0, {}),
    ("llada.lowconf.steps_gt_len", "llada_low_confidence", 50, 47, 5, 16, 8, 24, 0.0, 0.0, {}),
    ("llada.lowconf.v37", "llada_low_confidence", 37, 5, 8, 24, 12, 12, 1.0, 0.0, {}),
    ("llada.random.noblock", "llada_random", 50, 47, 4, 16, 16, 16, 0.0, 0.0, {}),
    ("llada.random.blocks", "llada_random", 50, 47, 6, 24, 8, 12, 0.0, 0.0, {}),
    ("llada.random.blocks.cfg", "llada_random", 50, 47, 7, 32, 16, 8, 0.5, 0.0, {}),
    ("llada.lowconf.gumbel", "llada_low_confidence", 50, 47, 5, 16, 8, 8, 0.0, 0.8, {}),
    ("llada.random.gumbel.cfg", "llada_random", 50, 47, 4, 16, 16, 8, 1.0, 1.0, {}),
    ("dream.origin", "dream_origin", 50, 47, 6, 16, 16, 8, 0.0, 0.0, {}),
    ("dream.maskgit_plus", "dream_maskgit_plus", 50, 47, 5, 24, 24, 10, 0.0, 0.0, {}),
    ("dream.topk_margin", "dream_topk_margin", 50, 47, 6, 20, 20, 7, 0.0, 0.0, {}),
    ("dream.entropy", "dream_entropy", 50, 47, 4, 16, 16, 16, 0.0, 0.0, {}),
    ("dream.maskgit_plus.v37", "dream_maskgit_plus", 37, 5, 8, 24, 24, 8, 0.0, 0.0, {}),
    ("dream.entropy.sampled", "dream_entropy", 50, 47, 5, 16, 16, 8, 0.0, 0.5,
     {"top_p": 0.9, "top_k": 12}),
    ("dream.origin.sampled", "dream_origin", 50, 47, 6, 16, 16, 8, 0.0, 0.7, {"top_p": 0.95}),
    ("dream.maskgit_plus.algtemp", "dream_maskgit_plus", 50, 47, 5, 16, 16, 8, 0.0, 0.0,
     {"alg_temp": 0.5}),
    ("fastdllm.tau0.9", "fastdllm_threshold", 50, 47, 6, 32, 8, 32, 0.0, 0.0, {"tau": 0.9}),
    ("fastdllm.tau1", "fastdllm_threshold", 50, 47, 5, 16, 8, 16, 0.0, 0.0, {"tau": 1.0}),
    ("fastdllm.tau0.5.v37", "fastdllm_threshold", 37, 5, 7, 24, 12, 24, 0.0, 0.0, {"tau": 0.5}),
]

CONFIG_FIELDS = ["V", "mask_id", "prompt_len", "gen_length", "block_length", "steps", "cfg_scale",
                 "temperature", "algorithm", "tau (0: none)", "top_p (0: none)", "top_k (0: none)",
                 "alg_temp (0: none)", "eps", "model_seed", "torch_seed"]

__doc__ += "".join(
    f"  {n:28s} {alg} ({ALG[alg]}); V {V}, M {M}; P {P}; {g}, {bl}, {st}; cfg {cfg:g}; T {T:g}"
    + "".join(f"; {k} {v:g}" for k, v in ex.items()) + "\n"
    for n, alg, V, M, P, g, bl, st, cfg, T, ex in CASES)
__doc__ += """  Model seed S = 1000 + case index, torch seed = 2000 + case index (0-based, in this order);
  the prompt: P tokens, prompt[j] = h(5, j, 0, 0) % V, bumped to (M + 1) % V where it hits M.
  Dream's eps = 1e-3 throughout.

ENTRIES, per case <c>: "<c>.<field>"
  config     (float64, 16) """ + textwrap.fill(", ".join(f"[{i}] {f}" for i, f in enumerate(CONFIG_FIELDS)),
                                     width=98, subsequent_indent=" " * 13) + """
  prompt     (float64, P)
  tokens     (float64, n_steps * L) x after every step (row per step), L = P + gen_length
  transfer   (float64, n_steps) per step: LLaDA counts[j] (get_num_transfer_tokens), Dream's
             number_transfer_tokens (origin: how many r < p_t), Fast-dLLM the number committed
  confidence (n_steps * L) per step, the full confidence vector the selection saw: float64 for
             LLaDA / Fast-dLLM (-inf outside the candidates; random: the float32 uniforms
             widened), float32 for Dream (-inf where unmasked; origin: all -inf)
  nfe        (float64, 1) model evaluations (a CFG step counts one, with batch 2)
  n_steps    (float64, 1)
  final      (float64, L) the returned sequence
  timesteps  (float32, steps + 1) Dream only: torch.linspace(1, eps, steps + 1) in float32
  gumbel_u   (float64) / rand_u (float32) / exp_q (float32): see DRAWS, where used
  ties       (float64, 2) [a, b]: a = the top-k selections (torch.topk over the confidences)
             that met a tie at their boundary, b = how many of those torch resolved as "lower
             index first" (the other a - b picked a higher index over a lower one)
  logits0    (float32, L * V) the (guided, for CFG) logits of step 0 (Dream: after the shift), a
             check of the toy model re-implementation
"""


def run_case(idx, case):
    global DRAWS
    name, alg, V, M, P, gen_length, block_length, steps, cfg, T, ex = case
    model = ToyModel(V, M, 1000 + idx)
    prompt = []
    for j in range(P):
        tok = model.h(5, j, 0, 0) % V
        prompt.append((M + 1) % V if tok == M else tok)
    prompt_t = torch.tensor([prompt], dtype=torch.long)
    L = P + gen_length
    tokens, transfer, confs, logits0 = [], [], [], []

    def log(x, n, conf, logits):
        if not logits0:
            logits0.append(logits[0].reshape(-1).clone())
        tokens.extend(x[0].tolist())
        transfer.append(n)
        confs.append(conf.clone())

    timesteps = []
    TIES.clear()
    torch.manual_seed(2000 + idx)
    with Draws() as d:
        DRAWS = d
        if alg.startswith("llada"):
            out = llada_generate(model, prompt_t, steps, gen_length, block_length, T, cfg,
                                 "low_confidence" if alg == "llada_low_confidence" else "random", M, log)
        elif alg.startswith("dream"):
            out = dream_generate(model, prompt_t, steps, gen_length, alg, ex.get("alg_temp"), T,
                                 ex.get("top_p"), ex.get("top_k"), 1e-3, M, log, timesteps)
        else:
            out = fastdllm_generate(model, prompt_t, gen_length, block_length, ex["tau"], M, log)
        DRAWS = None
    n_steps = len(transfer)
    assert not (out == M).any(), f"{name}: masks left"
    config = [V, M, P, gen_length, block_length, steps, cfg, T, ALG[alg], ex.get("tau", 0),
              ex.get("top_p", 0), ex.get("top_k", 0), ex.get("alg_temp", 0), 1e-3 if alg.startswith("dream") else 0,
              1000 + idx, 2000 + idx]
    conf_dtype = "float32" if alg.startswith("dream") else "float64"
    e = [(f"{name}.config", "float64", config),
         (f"{name}.prompt", "float64", prompt),
         (f"{name}.tokens", "float64", tokens),
         (f"{name}.transfer", "float64", transfer),
         (f"{name}.confidence", conf_dtype, torch.cat(confs).tolist()),
         (f"{name}.nfe", "float64", [model.calls]),
         (f"{name}.n_steps", "float64", [n_steps]),
         (f"{name}.final", "float64", out[0].tolist()),
         (f"{name}.ties", "float64", [len(TIES), sum(TIES)]),
         (f"{name}.logits0", "float32", logits0[0].tolist())]
    if timesteps:
        e.append((f"{name}.timesteps", "float32", timesteps))
    gum = [t for t in d.rand_like]
    if gum:
        assert all(t.dtype == torch.float64 for t in gum)
        e.append((f"{name}.gumbel_u", "float64", torch.cat(gum).tolist()))
    if d.rand:
        assert all(t.dtype == torch.float32 for t in d.rand)
        e.append((f"{name}.rand_u", "float32", torch.cat(d.rand).tolist()))
    if d.exp_q:
        assert all(t.dtype == torch.float32 for t in d.exp_q)
        e.append((f"{name}.exp_q", "float32", torch.cat(d.exp_q).tolist()))
    summary = (f"{name}: steps {n_steps}, nfe {model.calls}, transfer {transfer}, "
               f"draws rand {sum(t.numel() for t in d.rand)} gumbel {sum(t.numel() for t in gum)} "
               f"exp {sum(t.numel() for t in d.exp_q)}")
    return e, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    entries = []
    for idx, case in enumerate(CASES):
        e, summary = run_case(idx, case)
        entries += e
        if args.verbose:
            print(summary, "ties", len(TIES), sum(TIES))
    write_entries(f"{args.out}/discrete.txt",
                  f"# torch {torch.__version__}; written by tests/golden/discrete.py\n", entries)


if __name__ == "__main__":
    main()
