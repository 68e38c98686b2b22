#!/usr/bin/env python3
"""Golden data for gmk's diffusion samplers, from diffusers' schedulers and k-diffusion's samplers
run on an analytic model.

    /path/to/venv/bin/python tests/golden/samplers.py --out tests/golden

Writes samplers.txt in the format of tests/support/golden.hpp (see golden_format.py): one case
per entry, seed column 0, one call holding every value:
    case <name> <dtype> 0 <n>
    call 0 <n> <n>
    <index> <IEEE bits in hex>

THE DATA MODEL (the C++ test re-implements exactly this)
  Latent: shape [2, 3, 4, 4] (batch 2, 48 elements per sample, n = 96), C-contiguous, flat index i.
  Data: x0[i] ~ N(mu[i], s_d^2) independently, mu[i] = 0.3 * sin(0.7 * i) + 0.1, s_d = 0.6.
  Level (alpha, sigma): x = alpha * x0 + sigma * eps. The exact denoiser there is
      k = alpha * s_d^2 / (alpha^2 * s_d^2 + sigma^2),   D(x) = mu + k * (x - alpha * mu),
  evaluated in float64 (x converted to float64 first; these operations in this order).
  Model outputs, all from the float64 D and x, then rounded to the sample's dtype:
      epsilon       eps = (x - alpha * D) / sigma
      sample        D
      v_prediction  alpha * eps - sigma * D
      flow          eps - D              (velocity, at alpha = 1 - sigma)
      learned_range (DDPM only) output [2, 6, 4, 4]: channels 0..2 the epsilon above, channels
                    3..5 = 0.8 * tanh(x) of element (batch, channel - 3, h, w) of the model input.
  Where the model is evaluated (its "native" coordinates; every call's (alpha, sigma, model_time)
  is one of the `levels` triples below, except the k-diffusion churn calls, which are at
  (1, sigma_hat, sigma_hat), sigma_hat = sigma_i * (1 + gamma) computed in the sample's dtype):
    k-diffusion          VE: alpha = 1, sigma = the sigma passed to the model; output: sample (D).
    DDPM / DDIM          the sample itself at alpha = sqrt(abar[t]), sigma = sqrt(1 - abar[t]).
    Euler / EulerAncestral / Heun (diffusers, VE samples): the input is scale_model_input(x, t) =
                         x / sqrt(s^2 + 1) at alpha = 1 / sqrt(1 + s^2), sigma = s / sqrt(1 + s^2),
                         s = scheduler.sigmas[step_index] at the time of the call (Heun's
                         corrector calls: s = the step's target sigma).
    DPMSolverMultistep   the (VP) sample at alpha_t = 1 / sqrt(s^2 + 1), sigma_t = s * alpha_t.
    FlowMatch Euler/Heun the sample at alpha = 1 - s, sigma = s (s the flow sigma), output flow.
  All these alpha/sigma are computed in float64 from the float64 value of the scheduler's sigma
  or alphas_cumprod (which diffusers builds in float32).

NOISE
  x_init = z * c0, z = numpy.random.default_rng(seed).standard_normal(96) (float64) rounded to the
  dtype, c0 = the reference pipeline's scale: k-diffusion sigmas[0]; diffusers
  scheduler.init_noise_sigma (1 for DDPM/DDIM/DPM, sigmas.max() for the Euler family with
  linspace spacing); flow schedulers have none (SD3's pipeline does not scale): 1. The product is
  taken in the dtype (a dtype tensor times a dtype scalar).
  Every Gaussian draw the sampler makes after that is recorded, in order, as drawn:
    k-diffusion: torch.manual_seed(seed) just before sampling; torch.randn_like is wrapped;
                 ancestral/SDE samplers get noise_sampler = lambda s, sn: torch.randn_like(x)
                 (not the Brownian tree).
    diffusers:   generator = torch.Generator().manual_seed(seed) passed to step() where accepted;
                 the `randn_tensor` name in the scheduler's module is wrapped.
  Each draw has 96 values, whether or not the sampler then uses it (k-diffusion's Euler/Heun
  draw on every step even when gamma = 0; see the draw counts below).

FLOAT64 RUNS
  diffusers builds its grids in float32. For the float64 cases every floating tensor attribute of
  the scheduler (alphas_cumprod, sigmas, timesteps, final_alpha_cumprod, one, alpha_t, ...) is
  converted to float64 after set_timesteps, so the grid values are the float32 ones and all the
  stepping arithmetic is float64. Several step() functions "upcast" the sample with
  sample.to(torch.float32) (Euler, EulerAncestral, DPMSolverMultistep, FlowMatch Euler/Heun) and
  DPM's SDE draws noise with dtype=torch.float32; in the float64 runs the scheduler module's
  `torch` name is swapped, for the loop only, for a proxy whose float32 is float64, so those
  become float64 too (and DPM's SDE noise is drawn in float64). k-diffusion float64 runs build
  their grids with torch's default dtype set to float64. Outputs are asserted to be float64.

CASES (each in float32 and float64; 10 steps unless named)
  k-diffusion, grid "karras10": get_sigmas_karras(10, 0.0291675, 14.614642, rho 7) then 0;
  grid "edm18": get_sigmas_karras(18, 0.002, 80, rho 7) then 0.
    kd.euler                 sample_euler (s_churn 0)                                  karras10
    kd.euler_churn           sample_euler s_churn 2, s_tmin 0.05, s_tmax 10, s_noise 1.003  karras10
    kd.euler_ancestral       sample_euler_ancestral eta 1, s_noise 1                   karras10
    kd.euler_ancestral_eta0.5  sample_euler_ancestral eta 0.5, s_noise 1               karras10
    kd.heun                  sample_heun (s_churn 0)                                   karras10
    kd.heun_edm              sample_heun s_churn 40, s_tmin 0.05, s_tmax 50, s_noise 1.003  edm18
    kd.dpmpp_2m              sample_dpmpp_2m                                           karras10
    kd.dpmpp_2m_sde          sample_dpmpp_2m_sde eta 1, s_noise 1, midpoint            karras10
    kd.dpmpp_2m_sde_heun     sample_dpmpp_2m_sde eta 1, s_noise 1, solver_type heun    karras10
    kd.dpmpp_2m_sde_eta0.5   sample_dpmpp_2m_sde eta 0.5, s_noise 1, midpoint          karras10
  diffusers; "SD" = beta_start 0.00085, beta_end 0.012, scaled_linear, 1000 train steps.
    df.ddpm_fixed_small      DDPMScheduler() defaults: linear 1e-4..0.02, fixed_small, epsilon,
                             clip_sample True, leading spacing, steps_offset 0
    df.ddpm_fixed_large_v    DDPMScheduler(variance fixed_large, v_prediction, clip_sample False)
    df.ddpm_learned_range    DDPMScheduler(variance learned_range, epsilon, clip_sample True)
    df.ddpm_threshold        DDPMScheduler(prediction sample, thresholding, ratio 0.995,
                             sample_max_value 1.5, clip_sample False)
    df.ddim_eta0             DDIM, SD, epsilon, leading, steps_offset 1, set_alpha_to_one False,
                             clip False, eta 0
    df.ddim_eta0.5_v         DDIM, SD, v_prediction, trailing, set_alpha_to_one False, clip False,
                             eta 0.5
    df.ddim_eta1_clip        DDIM, SD, epsilon, leading, steps_offset 1, set_alpha_to_one True,
                             clip_sample True, eta 1
    df.euler                 EulerDiscrete, SD, epsilon, linspace spacing
    df.euler_karras_v        EulerDiscrete, SD, use_karras_sigmas, v_prediction
    df.euler_ancestral       EulerAncestralDiscrete, SD, epsilon
    df.heun                  HeunDiscrete, SD, epsilon
    df.dpmpp_2m              DPMSolverMultistep, SD, dpmsolver++, order 2, midpoint,
                             final_sigmas_type zero, epsilon (lower_order_final True, default)
    df.dpmpp_2m_heun         same, solver_type heun
    df.dpmpp_2m_v_karras     same as dpmpp_2m, v_prediction, use_karras_sigmas
    df.dpmpp_2m_sde          same as dpmpp_2m, algorithm_type sde-dpmsolver++
    df.dpmpp_2m_sigma_min    same as dpmpp_2m, final_sigmas_type sigma_min
    df.dpmpp_2m_sigma_min_20 same, 20 steps
    df.dpmpp_2m_euler_at_final  same, 20 steps, euler_at_final True
    df.flow_euler            FlowMatchEulerDiscrete(shift 3)
    df.flow_euler_stochastic FlowMatchEulerDiscrete(shift 3, stochastic_sampling True)
    df.flow_heun             FlowMatchHeunDiscrete(shift 3)
  The diffusers loop: for t in timesteps: m = scale_model_input(x, t) (where the scheduler has
  one); out = model(m); x = step(out, t, x, generator=g [, eta]).prev_sample.

WHAT THE REFERENCES DO (draws k, model calls nfe; checked by this script's run)
  kd.euler, kd.heun: one draw per step although gamma = 0 and none is used (k = 10).
  kd.euler_churn: k = 10; gamma = min(2/10, sqrt 2 - 1) = 0.2 only where 0.05 <= sigma_i <= 10
    (steps 1..8 of karras10); the model is called at sigma_hat.
  kd.heun_edm: k = 18, gamma = sqrt 2 - 1 where 0.05 <= sigma_i <= 50; the last step (to 0) is
    Euler: nfe = 2 N - 1 = 35. kd.heun: nfe 19.
  kd.euler_ancestral*: no draw on the last step (sigma_next = 0): k = 9.
  kd.dpmpp_2m: first step and the step to 0 first order (the latter gives x = D).
  kd.dpmpp_2m_sde*: the step to 0 is x = D with no draw: k = 9; h_last is the previous step's h.
  df.ddpm_*: timesteps 900, 800, ..., 0 (leading, offset 0); a draw on every step but t = 0: k = 9.
  df.ddim_*: prev timestep = t - 1000 // N; eta > 0 draws on every step, the last included
    (k = 10; with set_alpha_to_one its std is 0 there); pred_epsilon is not recomputed from the
    clipped x0 (use_clipped_model_output False).
  df.euler*: no draw (diffusers draws only when gamma > 0); init_noise_sigma = sigma_max, not
    sqrt(sigma_max^2 + 1) (linspace spacing). v_prediction: x0 = out * (-s / sqrt(s^2 + 1)) +
    x / (s^2 + 1) in VE coordinates.
  df.euler_ancestral: a draw on every step, the last included where sigma_up = 0: k = 10.
  df.heun: grid [s0, s1, s1, ..., s9, s9, 0], 19 calls; the last step (s9 -> 0) is a lone Euler
    step, the scheduler left waiting for a corrector that never comes: nfe = 19.
  df.dpmpp_2m*: the first step is first order; the last is first order when final_sigmas_type is
    zero, or lower_order_final with fewer than 15 steps, or euler_at_final; so
    df.dpmpp_2m_sigma_min_20's last step (to sigma_min) is second order. Karras: the timesteps are
    rounded (999, 916, 815, 687, 523, 327, 146, 41, 7, 0) while the sigmas stay the Karras ones.
    df.dpmpp_2m_sde: a draw on every step, the last included (times sigma_t = 0): k = 10.
  df.flow_euler_stochastic: x = (1 - s') * (x - s v) + s' z, a draw on every step, the last
    included (s' = 0): k = 10. df.flow_heun: nfe 19 as df.heun. The flow grid ends at 0.008929
    (diffusers shifts sigma_min twice), then 0.

ENTRIES, per case <c> and dtype <d> in {float32, float64}: "<c>.<d>.<field>"
  levels  (float64, 3 * (N + 1)) the grid the sampler walks, as (alpha, sigma, model_time) triples
          in the model's native coordinates:
            k-diffusion: (1, sigma_i, sigma_i), the last one (1, 0, 0).
            DDPM/DDIM: (sqrt(abar[t]), sqrt(1 - abar[t]), t) per timestep, then
              (sqrt(abar_final), sqrt(1 - abar_final), -1): abar_final = 1 (DDPM; DDIM with
              set_alpha_to_one) or alphas_cumprod[0] (DDIM, set_alpha_to_one False).
            Euler/EulerAncestral/Heun: (1/sqrt(1+s^2), s/sqrt(1+s^2), timestep) for the N distinct
              sigmas (Heun's doubled grid undone), then (1, 0, 0).
            DPM: (alpha_t, sigma_t, timestep) per sigma, then the final sigma's with model_time 0
              (never passed to a model; with final_sigmas_type zero it is (1, 0, 0)).
            Flow: (1 - s, s, timestep = 1000 s), then (1, 0, 0).
  x_scale (float64, 1) c with x_native = c * x_init at level 0: 1/sqrt(1 + sigma_0^2) for
          df.euler*, df.euler_ancestral, df.heun (their sample is VE); 1 otherwise.
  x_init  (<d>, 96) the reference's initial sample, in its own coordinates.
  noise   (<d>, 96 k) every recorded draw, concatenated in order (0 values when k = 0).
  draws   (float64, 1) k.
  nfe     (float64, 1) the number of model evaluations.
  final   (<d>, 96) the reference's final sample.
  seed    (float64, 1) the seed (torch and numpy) of the case; the same for both dtypes.
  Guidance: "cfg.rescale.<d>.{uncond,text,cfg,rescaled}" (<d>, 512 each): uncond and text are
  torch.randn([2, 4, 8, 8], float64, Generator seed 7 and 8) rounded to <d>; cfg = uncond + 7.5 *
  (text - uncond) in <d>; rescaled = diffusers' rescale_noise_cfg(cfg, text, guidance_rescale 0.7)
  (std unbiased, over all non-batch dims).
"""
import argparse
import importlib.metadata
import inspect
import math
import sys

import numpy as np
import torch

import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler,
                       HeunDiscreteScheduler)
from diffusers.guiders.guider_utils import rescale_noise_cfg
from k_diffusion import sampling as ks
from golden_format import write_entries

SHAPE = (2, 3, 4, 4)
N_EL = 96
MU = torch.tensor(0.3 * np.sin(0.7 * np.arange(N_EL)) + 0.1, dtype=torch.float64).reshape(SHAPE)
S_D = 0.6
DTYPES = [("float32", torch.float32), ("float64", torch.float64)]
SD = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")

entries = []


# ---- the analytic model ---------------------------------------------------------------------------

class Model:
    """The exact denoiser of the data model, counting and recording its calls."""

    def __init__(self, output, learned_range=False):
        self.output, self.learned_range = output, learned_range
        self.calls = []

    def __call__(self, x, alpha, sigma, model_time):
        alpha, sigma = float(alpha), float(sigma)
        self.calls.append((alpha, sigma, float(model_time)))
        x64 = x.to(torch.float64)
        k = alpha * S_D**2 / (alpha**2 * S_D**2 + sigma**2)
        d = MU + k * (x64 - alpha * MU)
        if self.output == "sample":
            out = d
        else:
            eps = (x64 - alpha * d) / sigma
            out = {"epsilon": eps, "v_prediction": alpha * eps - sigma * d, "flow": eps - d}[self.output]
        if self.learned_range:
            out = torch.cat([out, torch.tanh(x64) * 0.8], dim=1)
        return out.to(x.dtype)


def initial_noise(seed, tdt):
    z = np.random.default_rng(seed).standard_normal(N_EL)
    return torch.from_numpy(z).to(tdt).reshape(SHAPE)


class Recorder:
    """Wraps a function returning Gaussian draws and keeps a copy of each."""

    def __init__(self, fn):
        self.fn, self.draws = fn, []

    def __call__(self, *args, **kwargs):
        r = self.fn(*args, **kwargs)
        self.draws.append(r.detach().clone())
        return r


class _Float64Torch:
    """`torch` as seen by a scheduler module during a float64 run: float32 means float64."""
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


def add_case(name, dtype, levels, x_scale, x_init, noise, nfe, final, seed):
    tdt = dict(DTYPES)[dtype]
    assert x_init.dtype == tdt and final.dtype == tdt, (name, x_init.dtype, final.dtype)
    assert all(d.dtype == tdt and d.numel() == N_EL for d in noise), name
    assert final.shape == SHAPE and torch.isfinite(final).all(), name
    assert float(final.abs().max()) < 10, (name, float(final.abs().max()))
    p = f"{name}.{dtype}."
    entries.append((p + "levels", "float64", [float(v) for trip in levels for v in trip]))
    entries.append((p + "x_scale", "float64", [float(x_scale)]))
    entries.append((p + "x_init", dtype, x_init.reshape(-1).tolist()))
    entries.append((p + "noise", dtype, [v for d in noise for v in d.reshape(-1).tolist()]))
    entries.append((p + "draws", "float64", [float(len(noise))]))
    entries.append((p + "nfe", "float64", [float(nfe)]))
    entries.append((p + "final", dtype, final.reshape(-1).tolist()))
    entries.append((p + "seed", "float64", [float(seed)]))


# ---- k-diffusion ----------------------------------------------------------------------------------

GRIDS = {"karras10": (10, 0.0291675, 14.614642), "edm18": (18, 0.002, 80.0)}

KD_CASES = [
    # name, sampler, grid, kwargs, gets noise_sampler, stochastic
    ("kd.euler", ks.sample_euler, "karras10", {}, False, False),
    ("kd.euler_churn", ks.sample_euler, "karras10",
     dict(s_churn=2.0, s_tmin=0.05, s_tmax=10.0, s_noise=1.003), False, True),
    ("kd.euler_ancestral", ks.sample_euler_ancestral, "karras10", dict(eta=1.0, s_noise=1.0), True, True),
    ("kd.euler_ancestral_eta0.5", ks.sample_euler_ancestral, "karras10", dict(eta=0.5, s_noise=1.0), True, True),
    ("kd.heun", ks.sample_heun, "karras10", {}, False, False),
    ("kd.heun_edm", ks.sample_heun, "edm18", dict(s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003), False, True),
    ("kd.dpmpp_2m", ks.sample_dpmpp_2m, "karras10", {}, False, False),
    ("kd.dpmpp_2m_sde", ks.sample_dpmpp_2m_sde, "karras10",
     dict(eta=1.0, s_noise=1.0, solver_type="midpoint"), True, True),
    ("kd.dpmpp_2m_sde_heun", ks.sample_dpmpp_2m_sde, "karras10",
     dict(eta=1.0, s_noise=1.0, solver_type="heun"), True, True),
    ("kd.dpmpp_2m_sde_eta0.5", ks.sample_dpmpp_2m_sde, "karras10",
     dict(eta=0.5, s_noise=1.0, solver_type="midpoint"), True, True),
]


def run_kd(name, sampler, grid, kwargs, noise_sampler, dtype, tdt, seed):
    n, smin, smax = GRIDS[grid]
    old = torch.get_default_dtype()
    torch.set_default_dtype(tdt)
    try:
        sigmas = ks.get_sigmas_karras(n, smin, smax, rho=7.0)
    finally:
        torch.set_default_dtype(old)
    assert sigmas.dtype == tdt
    x = initial_noise(seed, tdt) * sigmas[0]
    x_init = x.clone()
    model = Model("sample")

    def denoiser(xx, s):
        assert xx.dtype == tdt and s.dtype == tdt
        assert bool((s == s[0]).all())
        return model(xx, 1.0, float(s[0]), float(s[0]))

    kw = dict(kwargs)
    if noise_sampler:
        kw["noise_sampler"] = lambda s, sn: torch.randn_like(x)
    rec = Recorder(torch.randn_like)
    torch.randn_like = rec
    try:
        torch.manual_seed(seed)
        final = sampler(denoiser, x, sigmas, disable=True, **kw)
    finally:
        torch.randn_like = rec.fn
    levels = [(1.0, float(s), float(s)) for s in sigmas]
    if not kwargs.get("s_churn"):
        grid_set = set(levels)
        assert all(c in grid_set for c in model.calls), name
    add_case(name, dtype, levels, 1.0, x_init, rec.draws, len(model.calls), final, seed)
    return final, rec.draws, model.calls, sigmas


# ---- diffusers ------------------------------------------------------------------------------------

DF_CASES = [
    # name, scheduler class, config, steps, step kwargs, stochastic
    ("df.ddpm_fixed_small", DDPMScheduler, {}, 10, {}, True),
    ("df.ddpm_fixed_large_v", DDPMScheduler,
     dict(variance_type="fixed_large", prediction_type="v_prediction", clip_sample=False), 10, {}, True),
    ("df.ddpm_learned_range", DDPMScheduler,
     dict(variance_type="learned_range", prediction_type="epsilon", clip_sample=True), 10, {}, True),
    ("df.ddpm_threshold", DDPMScheduler,
     dict(prediction_type="sample", thresholding=True, dynamic_thresholding_ratio=0.995, sample_max_value=1.5,
          clip_sample=False), 10, {}, True),
    ("df.ddim_eta0", DDIMScheduler,
     dict(SD, prediction_type="epsilon", timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False,
          clip_sample=False), 10, dict(eta=0.0), False),
    ("df.ddim_eta0.5_v", DDIMScheduler,
     dict(SD, prediction_type="v_prediction", timestep_spacing="trailing", set_alpha_to_one=False,
          clip_sample=False), 10, dict(eta=0.5), True),
    ("df.ddim_eta1_clip", DDIMScheduler,
     dict(SD, prediction_type="epsilon", timestep_spacing="leading", steps_offset=1, set_alpha_to_one=True,
          clip_sample=True), 10, dict(eta=1.0), True),
    ("df.euler", EulerDiscreteScheduler, dict(SD, prediction_type="epsilon", timestep_spacing="linspace"), 10, {},
     False),
    ("df.euler_karras_v", EulerDiscreteScheduler, dict(SD, prediction_type="v_prediction", use_karras_sigmas=True),
     10, {}, False),
    ("df.euler_ancestral", EulerAncestralDiscreteScheduler, dict(SD, prediction_type="epsilon"), 10, {}, True),
    ("df.heun", HeunDiscreteScheduler, dict(SD, prediction_type="epsilon"), 10, {}, False),
    ("df.dpmpp_2m", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="zero",
          prediction_type="epsilon"), 10, {}, False),
    ("df.dpmpp_2m_heun", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="heun", final_sigmas_type="zero",
          prediction_type="epsilon"), 10, {}, False),
    ("df.dpmpp_2m_v_karras", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="zero",
          prediction_type="v_prediction", use_karras_sigmas=True), 10, {}, False),
    ("df.dpmpp_2m_sde", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="sde-dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="zero",
          prediction_type="epsilon"), 10, {}, True),
    ("df.dpmpp_2m_sigma_min", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="sigma_min",
          lower_order_final=True, prediction_type="epsilon"), 10, {}, False),
    ("df.dpmpp_2m_sigma_min_20", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="sigma_min",
          lower_order_final=True, prediction_type="epsilon"), 20, {}, False),
    ("df.dpmpp_2m_euler_at_final", DPMSolverMultistepScheduler,
     dict(SD, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="sigma_min",
          euler_at_final=True, prediction_type="epsilon"), 20, {}, False),
    ("df.flow_euler", FlowMatchEulerDiscreteScheduler, dict(shift=3.0), 10, {}, False),
    ("df.flow_euler_stochastic", FlowMatchEulerDiscreteScheduler, dict(shift=3.0, stochastic_sampling=True), 10, {},
     True),
    ("df.flow_heun", FlowMatchHeunDiscreteScheduler, dict(shift=3.0), 10, {}, False),
]


def family(sched):
    if isinstance(sched, (DDPMScheduler, DDIMScheduler)):
        return "vp"
    if isinstance(sched, (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, HeunDiscreteScheduler)):
        return "ve"
    if isinstance(sched, DPMSolverMultistepScheduler):
        return "dpm"
    if isinstance(sched, (FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler)):
        return "flow"
    raise TypeError(type(sched))


def ve_level(s):
    q = math.sqrt(1.0 + s * s)
    return 1.0 / q, s / q


def dpm_level(sched, s):
    a, sg = sched._sigma_to_alpha_sigma_t(torch.tensor(float(s), dtype=torch.float64))
    return float(a), float(sg)


def model_level(sched, fam, t):
    """(alpha, sigma) the model is at when called with timestep t (after scale_model_input)."""
    if fam == "vp":
        abar = float(sched.alphas_cumprod[int(t)])
        return math.sqrt(abar), math.sqrt(1.0 - abar)
    if sched.step_index is None:  # what step() would do first
        sched._init_step_index(t)
    s = float(sched.sigmas[sched.step_index])
    if fam == "ve":
        return ve_level(s)
    if fam == "dpm":
        return dpm_level(sched, s)
    return 1.0 - s, s


def grid_levels(sched, fam):
    ts = [float(t) for t in sched.timesteps]
    if fam == "vp":
        levels = []
        for t in ts:
            abar = float(sched.alphas_cumprod[int(t)])
            levels.append((math.sqrt(abar), math.sqrt(1.0 - abar), t))
        if isinstance(sched, DDPMScheduler):
            abar = float(sched.one)
        else:
            abar = float(sched.final_alpha_cumprod)
        levels.append((math.sqrt(abar), math.sqrt(1.0 - abar), -1.0))
        return levels
    sig = [float(s) for s in sched.sigmas]
    if hasattr(sched, "state_in_first_order"):  # Heun: [s0, s1, s1, ..., s_{N-1}, s_{N-1}, 0]
        sig, ts = sig[0::2] + sig[-1:], ts[0::2]
    assert len(sig) == len(ts) + 1
    if fam == "ve":
        return [ve_level(s) + (t,) for s, t in zip(sig, ts)] + [(1.0, 0.0, 0.0)]
    if fam == "dpm":
        return [dpm_level(sched, s) + (t,) for s, t in zip(sig, ts)] + [dpm_level(sched, sig[-1]) + (0.0,)]
    assert sig[-1] == 0.0
    return [(1.0 - s, s, t) for s, t in zip(sig, ts)] + [(1.0, 0.0, 0.0)]


def run_df(name, cls, config, steps, step_kwargs, dtype, tdt, seed):
    sched = cls(**config)
    sched.set_timesteps(steps)
    if tdt == torch.float64:
        for k, v in list(vars(sched).items()):
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                setattr(sched, k, v.to(torch.float64))
    fam = family(sched)
    levels = grid_levels(sched, fam)
    out_kind = "flow" if fam == "flow" else sched.config.prediction_type
    model = Model(out_kind, learned_range=getattr(sched.config, "variance_type", None) == "learned_range")
    init_sigma = getattr(sched, "init_noise_sigma", 1.0)
    x = initial_noise(seed, tdt) * init_sigma
    assert x.dtype == tdt
    x_init = x.clone()
    x_scale = levels[0][0] if fam == "ve" else 1.0

    module = sys.modules[cls.__module__]
    rec = Recorder(module.randn_tensor) if hasattr(module, "randn_tensor") else None
    old_torch = module.torch
    if rec is not None:
        module.randn_tensor = rec
    if tdt == torch.float64:
        module.torch = _Float64Torch()
    g = torch.Generator().manual_seed(seed)
    kw = dict(step_kwargs)
    if "generator" in inspect.signature(sched.step).parameters:
        kw["generator"] = g
    try:
        for t in sched.timesteps:
            m = sched.scale_model_input(x, t) if hasattr(sched, "scale_model_input") else x
            assert m.dtype == tdt
            alpha, sigma = model_level(sched, fam, t)
            out = model(m, alpha, sigma, float(t))
            x = sched.step(out, t, x, **kw).prev_sample
            assert x.dtype == tdt, (name, x.dtype)
    finally:
        module.torch = old_torch
        if rec is not None:
            module.randn_tensor = rec.fn
    grid_set = set(levels)
    assert all(c in grid_set for c in model.calls), name
    draws = rec.draws if rec is not None else []
    add_case(name, dtype, levels, x_scale, x_init, draws, len(model.calls), x, seed)
    return x, draws, model.calls, sched


# ---- guidance -------------------------------------------------------------------------------------

def check_rescale_source():
    """The guider's rescale_noise_cfg is the Stable Diffusion pipeline's (which needs transformers
    to import): compare the function text."""
    import diffusers.pipelines.stable_diffusion as sd_pkg
    path = sd_pkg.__path__[0] + "/pipeline_stable_diffusion.py"
    text = open(path).read()
    start = text.index("def rescale_noise_cfg(")
    end = text.index("\ndef ", start + 1)
    body = lambda s: [ln.strip() for ln in s.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert body(text[start:end]) == body(inspect.getsource(rescale_noise_cfg)), "rescale_noise_cfg differs"


def add_cfg():
    check_rescale_source()
    for dtype, tdt in DTYPES:
        u = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(tdt)
        c = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(8), dtype=torch.float64).to(tdt)
        cfg = u + 7.5 * (c - u)
        r = rescale_noise_cfg(cfg, c, guidance_rescale=0.7)
        assert r.dtype == tdt
        for field, v in (("uncond", u), ("text", c), ("cfg", cfg), ("rescaled", r)):
            entries.append((f"cfg.rescale.{dtype}.{field}", dtype, v.reshape(-1).tolist()))


# ---- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    results = {}
    seed = 0
    for name, sampler, grid, kwargs, noise_sampler, stochastic in KD_CASES:
        seed += 1
        for dtype, tdt in DTYPES:
            results[name, dtype] = run_kd(name, sampler, grid, kwargs, noise_sampler, dtype, tdt, seed)[:3]
        results[name] = stochastic
    for name, cls, config, steps, step_kwargs, stochastic in DF_CASES:
        seed += 1
        for dtype, tdt in DTYPES:
            results[name, dtype] = run_df(name, cls, config, steps, step_kwargs, dtype, tdt, seed)[:3]
        results[name] = stochastic
    add_cfg()

    # float32 and float64 agree where no draw is used (the dtypes draw different noise).
    for name in [c[0] for c in KD_CASES + DF_CASES]:
        f32, d32, c32 = results[name, "float32"]
        f64, d64, c64 = results[name, "float64"]
        assert len(d32) == len(d64) and len(c32) == len(c64), name
        err = float((f32.double() - f64).abs().max())
        if not results[name]:
            assert err < 1e-4, (name, err)
        if args.verbose:
            print(f"{name:28s} draws {len(d64):2d} nfe {len(c64):2d} |f32-f64| {err:.2e} "
                  f"max|final| {float(f64.abs().max()):.3f} mean final {float(f64.mean()):+.3f} "
                  f"(mean mu {float(MU.mean()):+.3f})")

    write_entries(f"{args.out}/samplers.txt",
                  f"# diffusers {diffusers.__version__}, k-diffusion {importlib.metadata.version('k-diffusion')}, "
                  f"torch {torch.__version__}, numpy {np.__version__}; written by tests/golden/samplers.py\n",
                  entries)


if __name__ == "__main__":
    main()
