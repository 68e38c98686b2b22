#!/usr/bin/env python3
"""Peers of gmk's sampler-step benchmark: k-diffusion's samplers (k_diffusion.sampling) and, where
diffusers is installed, its DDIMScheduler.step and EulerDiscreteScheduler.step, on PyTorch's CPU,
one thread, over a latent of shape [1, 4, 128, 128] float32 (65536 elements) and a Karras grid of
20 steps (sigma 0.0292 .. 14.6146, rho 7, then 0: k_diffusion.sampling.get_sigmas_karras).

The denoiser is trivial so that the figure is the sampler's own per-step overhead (its tensor
arithmetic, noise draws and Python): model(x, sigma) = x * (1 / (1 + sigma**2)), one latent-sized
elementwise multiply (plus three one-element tensor ops on sigma). It is the exact denoiser
E[x0 | x0 + sigma * n] for unit-normal data, so every sampler does a real sampling: the output is
checked to have a standard deviation near 1. The diffusers rows use the same cheap model in their
parameterisation (epsilon prediction, one multiply by a per-step Python float); the Euler row also
runs scale_model_input each step, as a pipeline does. The peers/trivial_denoiser_f32 row times the
model alone (per call), to subtract if wanted.

Each row times the whole sampler call (best of repeated calls, timeit) and divides it by the
number of steps (heun_eval: by the number of model evaluations, 2 per step but the last).
Prints one line per row:

    <name> <seconds per step> s <items/s> items/s

with items = 65536 latent elements per step. Notes on what a step draws (k-diffusion 0.1.1):
sample_euler and sample_heun draw torch.randn_like(x) every step even with s_churn = 0 (and only
use it when s_churn > 0); sample_dpmpp_2m_sde's default noise sampler is a torchsde Brownian tree
built once per call (its construction is in the figure, a small part of it: the per-step tree
queries dominate; torchsde's warning that the float32 sigma_max lies past the tree's end is
silenced); the plain dpmpp_2m_sde row passes noise_sampler=lambda s, sn: torch.randn_like(x)
instead.

Needs torch, k-diffusion (whose sampling module imports torchsde, torchdiffeq and scipy; its
package import needs setuptools < 70) and optionally diffusers, in a virtual environment outside
the repository, e.g. python3 -m venv /work/venv-ref && /work/venv-ref/bin/pip install torch
k-diffusion==0.1.1.post1 "setuptools<70" diffusers.
"""
import sys
import timeit
import warnings

SHAPE = (1, 4, 128, 128)
N = 1 * 4 * 128 * 128  # elements per step
STEPS = 20
SIGMA_MIN, SIGMA_MAX = 0.0292, 14.6146


def best_call(fn, setup=None, budget=1.0, min_repeat=7):
    """Seconds of the fastest of repeated single calls of fn; setup (untimed) runs before each."""
    timer = timeit.Timer(fn, setup=setup if setup is not None else "pass")
    one = min(timer.repeat(number=1, repeat=2))  # the first also warms up
    return min(timer.repeat(number=1, repeat=max(min_repeat, int(budget / max(one, 1e-6)))))


def row(name, seconds, per):
    t = seconds / per
    print("%-48s %.3e s %.3e items/s" % (name, t, N / t))
    sys.stdout.flush()


def check(name, out, evals, want_evals):
    std = float(out.std())
    assert 0.8 < std < 1.2, (name, "output std", std)
    assert evals == want_evals, (name, "model evaluations", evals, want_evals)


def main():
    import importlib.metadata as md
    warnings.filterwarnings("ignore", message="Should have tb<=t1")  # torchsde, float32 sigma_max
    import torch
    torch.set_num_threads(1)
    import k_diffusion.sampling as K

    def version(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    print("# k-diffusion %s, torch %s (CPU capability %s), torchsde %s, diffusers %s; latent %s float32, "
          "%d Karras steps sigma %g..%g, denoiser x / (1 + sigma^2), one thread" %
          (version("k-diffusion"), torch.__version__, torch.backends.cpu.get_cpu_capability(),
           version("torchsde"), version("diffusers"), list(SHAPE), STEPS, SIGMA_MIN, SIGMA_MAX))
    sys.stdout.flush()

    torch.manual_seed(0)
    sigmas = K.get_sigmas_karras(STEPS, SIGMA_MIN, SIGMA_MAX)
    x = torch.randn(SHAPE) * sigmas[0]
    evals = [0]

    def model(x, sigma):
        return x * (1 / (1 + sigma ** 2))

    def counting(x, sigma):
        evals[0] += 1
        return model(x, sigma)

    s = torch.full([1], 3.0)
    row("peers/trivial_denoiser_f32", best_call(lambda: model(x, s)), 1)

    heun_evals = sum(2 if float(sigmas[i + 1]) > 0 else 1 for i in range(STEPS))
    randn_noise = lambda s, sn: torch.randn_like(x)  # noqa: E731
    cases = [
        # name, sampler, keyword arguments, divisors
        ("euler", K.sample_euler, {}, [("step", STEPS)]),
        ("euler_churn", K.sample_euler, {"s_churn": 1.0}, [("step", STEPS)]),
        ("euler_ancestral", K.sample_euler_ancestral, {}, [("step", STEPS)]),
        ("heun", K.sample_heun, {}, [("eval", heun_evals), ("step", STEPS)]),
        ("dpmpp_2m", K.sample_dpmpp_2m, {}, [("step", STEPS)]),
        ("dpmpp_2m_sde", K.sample_dpmpp_2m_sde, {"noise_sampler": randn_noise}, [("step", STEPS)]),
        ("dpmpp_2m_sde_brownian", K.sample_dpmpp_2m_sde, {}, [("step", STEPS)]),
    ]
    for name, sampler, kwargs, divisors in cases:
        if name.endswith("_brownian") and version("torchsde") == "not installed":
            print("# peers/kdiffusion_%s_step_f32 skipped: torchsde is not installed" % name)
            continue
        evals[0] = 0
        check(name, sampler(counting, x, sigmas, disable=True, **kwargs), evals[0], divisors[0][1])
        t = best_call(lambda: sampler(model, x, sigmas, disable=True, **kwargs))
        for what, per in divisors:
            row("peers/kdiffusion_%s_%s_f32" % (name, what), t, per)

    try:
        from diffusers import DDIMScheduler, EulerDiscreteScheduler
    except ImportError:
        print("# diffusers rows skipped: diffusers is not installed")
        return
    sd = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")

    # DDIM (eta = 0), epsilon prediction: for unit-normal data E[eps | x_t] = sqrt(1 - abar_t) x_t.
    ddim = DDIMScheduler(**sd, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    ddim.set_timesteps(STEPS)
    ddim_c = [float((1 - ddim.alphas_cumprod[int(t)]).sqrt()) for t in ddim.timesteps]
    x_vp = torch.randn(SHAPE)

    def ddim_call():
        y = x_vp
        for c, t in zip(ddim_c, ddim.timesteps):
            y = ddim.step(y * c, t, y).prev_sample
        return y

    check("ddim", ddim_call(), len(ddim_c), STEPS)
    row("peers/diffusers_ddim_step_f32", best_call(ddim_call), STEPS)

    # Euler on Karras sigmas, epsilon prediction on the scaled input x / sqrt(1 + sigma^2):
    # E[eps | x] = sigma / (1 + sigma^2) x = sigma / sqrt(1 + sigma^2) * scaled input.
    euler = EulerDiscreteScheduler(**sd, use_karras_sigmas=True)
    euler.set_timesteps(STEPS)
    euler_c = [float(s / (1 + s * s).sqrt()) for s in euler.sigmas[:-1]]
    x_ve = torch.randn(SHAPE) * euler.init_noise_sigma

    def euler_call():
        y = x_ve
        for c, t in zip(euler_c, euler.timesteps):
            y = euler.step(euler.scale_model_input(y, t) * c, t, y).prev_sample
        return y

    reset = lambda: euler.set_timesteps(STEPS)  # noqa: E731  (the step index lives in the scheduler)
    reset()
    check("euler_discrete", euler_call(), len(euler_c), STEPS)
    row("peers/diffusers_euler_step_f32", best_call(euler_call, setup=reset), STEPS)


if __name__ == "__main__":
    main()
