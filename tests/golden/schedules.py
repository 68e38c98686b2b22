#!/usr/bin/env python3
"""Golden data for gmk's schedules (tests/schedules.cpp), from diffusers and k-diffusion.

    /path/to/venv/bin/python tests/golden/schedules.py --out tests/golden

Writes schedules.txt in the format of tests/support/golden.hpp: one case per entry,
    case <name> <dtype> 0 <n>
    call 0 <n> <n>
    <index> <IEEE bits in hex>
with seed 0 and one call holding every element.

Each entry comes in up to two dtypes:
  float32  what the reference itself returns. diffusers builds its betas, alphas_cumprod and
           sigmas in float32 (torch.linspace(..., dtype=torch.float32), torch.cumprod, and a final
           .astype(np.float32)); k-diffusion's get_sigmas_* use torch's default dtype (float32).
  float64  the same formula evaluated in float64: k-diffusion run with
           torch.set_default_dtype(torch.float64); diffusers' own dtype-generic functions
           (rescale_zero_terminal_snr) on float64 tensors; elsewhere a float64 transcription of
           the scheduler's code, which this script checks against the scheduler's float32 output
           before writing (check_close), so the transcription cannot drift from the reference.
Integer timesteps are written as float64.
"""
import argparse
import math

import numpy as np
import torch

import diffusers
import k_diffusion
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       FlowMatchEulerDiscreteScheduler)
from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr
from k_diffusion import sampling as ks
from k_diffusion.external import DiscreteSchedule
from golden_format import write_entries

T = 1000
PARAMS = {"ddpm": (0.0001, 0.02), "sd": (0.00085, 0.012)}
STEPS = [1, 10, 25, 50, 61, 999, 1000]

entries = []


def calculate_shift(image_seq_len, base_seq_len=256, max_seq_len=4096, base_shift=0.5, max_shift=1.15):
    """diffusers.pipelines.flux.pipeline_flux.calculate_shift (that module needs transformers)."""
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


def add(name, dtype, values):
    values = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    entries.append((name, dtype, values))


def check_close(name, ref32, mine64, tol, floor=1e-30):
    """The float64 transcription agrees with the reference's float32 output (relative to
    max(|value|, floor))."""
    a = np.asarray(ref32, dtype=np.float64).reshape(-1)
    b = np.asarray(mine64, dtype=np.float64).reshape(-1)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    err = np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)) if a.size else 0.0
    assert err <= tol, (name, err)


def betas64(schedule, start, end):
    if schedule == "linear":
        return torch.linspace(start, end, T, dtype=torch.float64)
    if schedule == "scaled_linear":
        return torch.linspace(start**0.5, end**0.5, T, dtype=torch.float64) ** 2
    if schedule == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float64)
    if schedule == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (end - start) + start
    raise ValueError(schedule)


def sd_alphas_cumprod64(zero_snr=False):
    b = betas64("scaled_linear", *PARAMS["sd"])
    if zero_snr:
        b = rescale_zero_terminal_snr(b)
    ac = torch.cumprod(1.0 - b, dim=0)
    if zero_snr:
        ac[-1] = 2**-24
    return ac.numpy()


def spacing64(spacing, n, offset, integer):
    """diffusers' timestep spacings in float64 (DDIM's rounding for integer=True, Euler's otherwise)."""
    if spacing == "linspace":
        t = np.linspace(0, T - 1, n)
        t = (t.round() if integer else t)[::-1]
    elif spacing == "leading":
        t = (np.arange(0, n) * (T // n)).round()[::-1].astype(np.float64) + offset
    else:
        t = np.round(np.arange(T, 0, -T / n))[:n] - 1  # gmk keeps exactly n (see timesteps.hpp)
    return t.copy()


def sigma_to_t64(sigma, log_sigmas):
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, None]
    low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    w = np.clip((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1]), 0, 1)
    return (1 - w) * low + w * (low + 1)


def euler64(ac, spacing, n, offset, kind, final):
    sig = np.sqrt((1 - ac) / ac)
    ts = spacing64(spacing, n, offset, integer=False)
    s = np.interp(ts, np.arange(0, len(sig)), sig)
    if kind != "plain":
        smin, smax = s[-1], s[0]
        if kind == "karras":
            ramp = np.linspace(0, 1, n)
            s = (smax ** (1 / 7) + ramp * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7
        else:
            s = np.exp(np.linspace(math.log(smax), math.log(smin), n))
        ts = sigma_to_t64(s, np.log(sig))
    last = sig[0] if final == "sigma_min" else 0.0
    return np.concatenate([s, [last]]), ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden")
    out = ap.parse_args().out

    # ---- betas and alphas_cumprod -------------------------------------------------------------
    for schedule in ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]:
        for tag, (b0, b1) in PARAMS.items():
            if schedule == "squaredcos_cap_v2" and tag != "ddpm":
                continue
            s = DDPMScheduler(num_train_timesteps=T, beta_start=b0, beta_end=b1, beta_schedule=schedule)
            b64 = betas64(schedule, b0, b1)
            ac64 = torch.cumprod(1.0 - b64, dim=0)
            check_close("betas " + schedule, s.betas, b64, 1e-6)
            check_close("alphas_cumprod " + schedule, s.alphas_cumprod, ac64, 1e-4)
            add(f"betas.{schedule}.{tag}", "float32", s.betas)
            add(f"betas.{schedule}.{tag}", "float64", b64)
            add(f"alphas_cumprod.{schedule}.{tag}", "float32", s.alphas_cumprod)
            add(f"alphas_cumprod.{schedule}.{tag}", "float64", ac64)
    s = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", rescale_betas_zero_snr=True)
    z64 = rescale_zero_terminal_snr(betas64("scaled_linear", *PARAMS["sd"]))
    add("betas_zero_snr.scaled_linear.sd", "float32", s.betas)
    add("betas_zero_snr.scaled_linear.sd", "float64", z64)
    e = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                               rescale_betas_zero_snr=True)
    add("alphas_cumprod_zero_snr.scaled_linear.sd", "float32", e.alphas_cumprod)
    add("alphas_cumprod_zero_snr.scaled_linear.sd", "float64", sd_alphas_cumprod64(zero_snr=True))

    # ---- timesteps ----------------------------------------------------------------------------
    for spacing in ["linspace", "leading", "trailing"]:
        for n in STEPS:
            for offset in [0, 1]:
                d = DDIMScheduler(timestep_spacing=spacing, steps_offset=offset)
                d.set_timesteps(n)
                add(f"timesteps.ddim.{spacing}.{n}.{offset}", "float64", d.timesteps.numpy())
                p = DDPMScheduler(timestep_spacing=spacing, steps_offset=offset)
                p.set_timesteps(n)
                assert np.array_equal(p.timesteps.numpy(), d.timesteps.numpy())
                e = EulerDiscreteScheduler(timestep_spacing=spacing, steps_offset=offset)
                e.set_timesteps(n)
                add(f"timesteps.euler.{spacing}.{n}.{offset}", "float32", e.timesteps.numpy())
                t64 = spacing64(spacing, n, offset, integer=False)
                check_close(f"euler timesteps {spacing} {n}", e.timesteps.numpy()[:n], t64, 1e-7)
                add(f"timesteps.euler.{spacing}.{n}.{offset}", "float64", t64)

    # ---- DDIM: alphas_cumprod at the timesteps (SD 1.x: leading, offset 1) -------------------
    d = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                      set_alpha_to_one=False)
    d.set_timesteps(50)
    add("ddim.sd.alphas.leading.50.1", "float32", d.alphas_cumprod[d.timesteps])
    add("ddim.sd.alphas.leading.50.1", "float64", sd_alphas_cumprod64()[d.timesteps.numpy()])

    # ---- EulerDiscrete (SD 1.x) ---------------------------------------------------------------
    euler_cases = [
        ("linspace", 10, 0, "plain", "zero", False), ("linspace", 25, 0, "plain", "zero", False),
        ("linspace", 50, 0, "plain", "zero", False), ("leading", 25, 1, "plain", "zero", False),
        ("linspace", 10, 0, "karras", "zero", False), ("linspace", 25, 0, "karras", "zero", False),
        ("linspace", 10, 0, "exponential", "zero", False), ("linspace", 25, 0, "exponential", "zero", False),
        ("leading", 25, 1, "karras", "sigma_min", False), ("linspace", 25, 0, "plain", "sigma_min", False),
        ("trailing", 25, 0, "plain", "zero", True), ("trailing", 10, 0, "karras", "zero", True),
    ]
    for spacing, n, offset, kind, final, zsnr in euler_cases:
        e = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   timestep_spacing=spacing, steps_offset=offset, final_sigmas_type=final,
                                   use_karras_sigmas=kind == "karras", use_exponential_sigmas=kind == "exponential",
                                   rescale_betas_zero_snr=zsnr)
        e.set_timesteps(n)
        s64, t64 = euler64(sd_alphas_cumprod64(zsnr), spacing, n, offset, kind, final)
        name = f"euler.sd.{spacing}.{n}.{offset}.{kind}.{final}.{'zsnr' if zsnr else 'plain'}"
        # diffusers' sigmas come from its float32 alphas_cumprod: 1 - abar near abar = 0.99915
        # cancels, so its small sigmas carry relative errors of ~1e-5.
        check_close(name, e.sigmas, s64, 1e-4)
        check_close(name + " t", e.timesteps, t64, 1e-4, floor=1.0)  # timesteps: absolute near 0
        add(name + ".sigmas", "float32", e.sigmas)
        add(name + ".sigmas", "float64", s64)
        add(name + ".timesteps", "float32", e.timesteps)
        add(name + ".timesteps", "float64", t64)

    # ---- DPMSolverMultistep (SD 1.x) ----------------------------------------------------------
    for spacing, n, zsnr in [("linspace", 20, False), ("trailing", 20, True), ("trailing", 25, True)]:
        m = DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        timestep_spacing=spacing, rescale_betas_zero_snr=zsnr)
        m.set_timesteps(n)
        ac = sd_alphas_cumprod64(zsnr)
        sig = np.sqrt((1 - ac) / ac)
        ts = m.timesteps.numpy()
        s64 = np.concatenate([sig[ts], [0.0]])
        name = f"dpm.sd.{spacing}.{n}.{'zsnr' if zsnr else 'plain'}"
        check_close(name, m.sigmas, s64, 1e-4)
        add(name + ".timesteps", "float64", ts)
        add(name + ".sigmas", "float32", m.sigmas)
        add(name + ".sigmas", "float64", s64)

    # ---- FlowMatchEulerDiscrete ---------------------------------------------------------------
    def flow64(sigmas, shift, mu, form, terminal):
        s = np.asarray(sigmas, dtype=np.float64)
        if mu is None:
            s = shift * s / (1 + (shift - 1) * s)
        elif form == "exponential":
            s = math.exp(mu) / (math.exp(mu) + (1 / s - 1))
        else:
            s = mu / (mu + (1 / s - 1))
        if terminal:
            s = 1 - (1 - s) / ((1 - s[-1]) / (1 - terminal))
        return np.concatenate([s, [0.0]])

    for n in [1, 28, 50]:  # SD3: shift 3.0, the scheduler's own linspace
        for shift, terminal in [(3.0, None), (1.0, None), (3.0, 0.02)]:
            if terminal and n == 1:
                continue  # one level at t = 1 cannot be stretched: diffusers gives NaN, gmk throws
            f = FlowMatchEulerDiscreteScheduler(shift=shift, shift_terminal=terminal)
            f.set_timesteps(n)
            tmin = shift * (1 / T) / (1 + (shift - 1) * (1 / T))
            s64 = flow64(np.linspace(1.0 * T, tmin * T, n) / T, shift, None, None, terminal)
            name = f"flow.static.{n}.{shift}.{terminal or 0}"
            check_close(name, f.sigmas, s64, 1e-6)
            add(name, "float32", f.sigmas)
            add(name, "float64", s64)
    mu = calculate_shift(4096, 256, 4096, 0.5, 1.15)  # Flux at 1024x1024
    add("flow.mu.4096", "float64", [mu])
    add("flow.mu.1024", "float64", [calculate_shift(1024, 256, 4096, 0.5, 1.15)])
    for n in [1, 28, 50]:
        for form, m_, terminal in [("exponential", mu, None), ("linear", mu, None), ("exponential", mu, 0.02)]:
            if terminal and n == 1:
                continue
            f = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096,
                                                time_shift_type=form, shift_terminal=terminal)
            user = np.linspace(1.0, 1 / n, n)  # the Flux pipeline's sigmas
            f.set_timesteps(sigmas=user, mu=m_)
            s64 = flow64(user, None, m_, form, terminal)
            name = f"flow.dynamic.{n}.{form}.{terminal or 0}"
            # set_timesteps casts the given sigmas to float32 and shifts them in float32.
            check_close(name, f.sigmas, s64, 1e-5)
            add(name, "float32", f.sigmas)
            add(name, "float64", s64)

    # ---- k-diffusion --------------------------------------------------------------------------
    for dtype, torch_dtype in [("float32", torch.float32), ("float64", torch.float64)]:
        torch.set_default_dtype(torch_dtype)
        for n in [1, 2, 10, 25]:
            add(f"k.karras.{n}.7", dtype, ks.get_sigmas_karras(n, 0.0291675, 14.614642))
            add(f"k.karras.{n}.3", dtype, ks.get_sigmas_karras(n, 0.002, 80.0, rho=3.0))
            add(f"k.exponential.{n}", dtype, ks.get_sigmas_exponential(n, 0.0291675, 14.614642))
            add(f"k.polyexponential.{n}.1", dtype, ks.get_sigmas_polyexponential(n, 0.0291675, 14.614642))
            add(f"k.polyexponential.{n}.2", dtype, ks.get_sigmas_polyexponential(n, 0.002, 80.0, rho=2.0))
            add(f"k.vp.{n}", dtype, ks.get_sigmas_vp(n))
        torch.set_default_dtype(torch.float32)
    sched = DiscreteSchedule(torch.tensor(np.sqrt((1 - sd_alphas_cumprod64()) / sd_alphas_cumprod64())), False)
    probe_sigmas = torch.tensor([0.0291671582, 0.03, 0.1, 0.5, 1.0, 5.0, 14.0, 14.6146412293], dtype=torch.float64)
    probe_t = torch.tensor([0.0, 0.5, 10.25, 500.75, 998.5, 999.0], dtype=torch.float64)
    add("k.discrete.sigma_to_t.in", "float64", probe_sigmas)
    add("k.discrete.sigma_to_t", "float64", sched.sigma_to_t(probe_sigmas))
    add("k.discrete.t_to_sigma.in", "float64", probe_t)
    add("k.discrete.t_to_sigma", "float64", sched.t_to_sigma(probe_t))

    write_entries(f"{out}/schedules.txt",
                  f"# diffusers {diffusers.__version__}, k-diffusion {getattr(k_diffusion, '__version__', '?')}, "
                  f"torch {torch.__version__}, numpy {np.__version__}; written by tests/golden/schedules.py\n",
                  entries)


if __name__ == "__main__":
    main()
