// gmk: the continuous samplers, each one step on a noise_grid, written once in the alpha/sigma
// form x = alpha x0 + sigma eps (see noise_levels.hpp).
//
// Notation for step i: level (a, s) = grid[i], next level (a', s') = grid[i + 1], r = s / a the
// noise-to-signal ratio (k-diffusion's sigma), D the denoised estimate x0_hat the model gives at
// the level it is evaluated, z a standard normal from the noise source. Every sampler step is a
// few coefficients computed in double and one fused pass over the data (simd::map): the
// network output is turned into D inside that pass, D is written out once (it is the
// `denoised` a progress callback sees, and the history of the multistep solvers), and x is
// overwritten in place. Nothing is allocated: the buffers come from a sampler_workspace.
//
// The samplers and the references they reproduce:
//   ddpm              posterior sampling q(x' | x, D) (Ho et al. 2020; diffusers DDPMScheduler)
//   ddim              x' = a' D + sqrt(s'^2 - std^2) eps + std z (Song et al. 2021; diffusers
//                     DDIMScheduler); eta = 0 is the first-order step every ODE sampler shares
//   euler             k-diffusion sample_euler: first-order step after EDM's churn
//   euler_ancestral   k-diffusion sample_euler_ancestral (the ancestral split of the step)
//   heun              k-diffusion sample_heun = EDM's Algorithm 2 (Karras et al. 2022): the
//                     trapezoid correction, Euler on the last step into sigma = 0 (NFE 2N - 1)
//   flow_euler        diffusers FlowMatchEulerDiscreteScheduler, optionally stochastic
//   flow_heun         diffusers FlowMatchHeunDiscreteScheduler (Heun in the flow time t)
//   dpmpp_2m          DPM-Solver++(2M) (Lu et al. 2022), k-diffusion / diffusers dpmsolver++
//   dpmpp_2m_sde      DPM-Solver++(2M) SDE, k-diffusion / diffusers sde-dpmsolver++
//   euler_maruyama    Euler-Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6)
//   probability_flow_euler   Euler on the probability-flow ODE (Song et al. 2021, eq. 13)
//
// All of them run on any valid grid (VP, VE, flow or general), with the following exceptions,
// reported by std::invalid_argument before the first step: euler's churn and ancestral noise
// need the VE ratio r, so churn is skipped at alpha = 0; heun in sigma coordinates, and the SDE
// samplers, need alpha > 0 at every level they start a step from.
//
// First-order steps are the same in every coordinate system (DDIM = Euler on the VE ODE =
// rectified-flow Euler: x' = (s'/s) x + (a' - a s'/s) D). The second-order Heun step is not:
// k-diffusion and diffusers' Heun integrate dy/dr = (y - D) / r with y = x / a (sigma
// coordinates); diffusers' FlowMatchHeun integrates dy/dt = (y - D) / t with y = x / (a + s),
// t = s / (a + s) (flow coordinates; on a flow grid y = x and t = sigma). heun::coordinates
// picks one; the default follows the grid's process.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <tuple>

#include "../core/error.hpp"
#include "../simd/ops.hpp"
#include "noise_levels.hpp"
#include "parameterization.hpp"
#include "thresholding.hpp"

namespace gmk {

/// What is done to the denoised estimate before a DDPM or DDIM step (diffusers clip_sample /
/// thresholding).
struct x0_threshold {
    enum class mode { none, clip, dynamic };
    mode kind = mode::none;
    double range = 1.0;             ///< clip: clamp to [-range, range] (clip_sample_range)
    double ratio = 0.995;           ///< dynamic: the quantile of |x0| per sample
    double sample_max_value = 1.0;  ///< dynamic: the largest threshold

    static x0_threshold none() noexcept { return {}; }
    static x0_threshold clip(double range = 1.0) noexcept { return {mode::clip, range}; }
    static x0_threshold dynamic(double ratio = 0.995, double sample_max_value = 1.0) noexcept {
        return {mode::dynamic, 1.0, ratio, sample_max_value};
    }
};

/// DDPM posterior variance (diffusers variance_type).
enum class ddpm_variance { fixed_small, fixed_large, learned_range };

/// Ancestral sampling from the DDPM posterior q(x' | x, x0 = D). With alpha_ts = a / a',
/// sigma_ts^2 = s^2 - alpha_ts^2 s'^2 (beta_t on a VP grid):
///   x' = alpha_ts s'^2 / s^2 x + a' sigma_ts^2 / s^2 D + std z
/// fixed_small: std^2 = max(sigma_ts^2 s'^2 / s^2, 1e-20); fixed_large: std^2 = sigma_ts^2;
/// learned_range: log std^2 = f log sigma_ts^2 + (1 - f) log fixed_small, f = (v + 1) / 2 with
/// v the model's variance channel (model_call::learned_variance). No noise is drawn on a step
/// into sigma = 0. Defaults are diffusers': fixed_small, clip_sample to [-1, 1].
struct ddpm {
    ddpm_variance variance = ddpm_variance::fixed_small;
    x0_threshold threshold = x0_threshold::clip(1.0);

    static constexpr const char* name = "ddpm";
    bool learned_variance() const noexcept { return variance == ddpm_variance::learned_range; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// DDIM (Song et al. 2021, eq. 12): x' = a' D + sqrt(s'^2 - std^2) eps + std z with eps =
/// (x - a D) / s and std = eta sqrt(sigma_ts^2 s'^2 / s^2) (eta = 1: the DDPM posterior's
/// fixed_small variance). eta in [0, 1]; noise is drawn at every step when eta > 0, as
/// diffusers does. A threshold applies to the D of the first term only: eps stays the model's
/// (diffusers). Default threshold: diffusers' clip_sample = true.
struct ddim {
    double eta = 0;
    x0_threshold threshold = x0_threshold::clip(1.0);

    static constexpr const char* name = "ddim";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// EDM's stochastic churn (Karras et al. 2022, Algorithm 2, lines 4-6): at a level with
/// s_tmin <= r <= s_tmax, raise r to r_hat = r (1 + gamma), gamma = min(s_churn / N,
/// sqrt(2) - 1), adding noise of variance r_hat^2 - r^2 (times s_noise^2) in the VE scale.
/// k-diffusion's sample_euler and sample_heun, and EDM's own sampler, draw that noise at every
/// step even where gamma = 0: draw_unused_noise = true consumes the noise source the same way,
/// so that a seeded generator gives the reference's numbers.
struct churn {
    double s_churn = 0;
    double s_tmin = 0;
    double s_tmax = std::numeric_limits<double>::infinity();
    double s_noise = 1;
    bool draw_unused_noise = false;
};

/// k-diffusion sample_euler: churn, then x' = (r'/r_hat) x + (1 - r'/r_hat) D in the VE scale
/// (the first-order step of every ODE sampler).
struct euler : churn {
    static constexpr const char* name = "euler";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// k-diffusion sample_euler_ancestral: r_up = min(r', eta sqrt(r'^2 (r^2 - r'^2) / r^2)),
/// r_down = sqrt(r'^2 - r_up^2); first-order step to r_down, then + s_noise r_up z (in the VE
/// scale) when r' > 0.
struct euler_ancestral {
    double eta = 1;
    double s_noise = 1;

    static constexpr const char* name = "euler_ancestral";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// The ODE variables of a second-order step (see the top of this file).
enum class ode_coordinates { automatic, sigma, flow };

/// Heun's method = EDM's Algorithm 2 with churn: Euler predictor to level i + 1, trapezoid
/// corrector with a second model call there; a step into sigma = 0 is plain Euler (NFE 2N - 1
/// on a grid ending at 0). In sigma coordinates a first step from very high r (a VP cosine or
/// zero-terminal-SNR grid, r ~ 1e4) scales D2 - D1 by about r0 / (2 r1), which few steps do
/// not survive (as in k-diffusion); flow coordinates stay bounded there. For EDM's sampler use a Karras grid (sigmas_karras, 0.002 .. 80,
/// rho 7) and set draw_unused_noise, as EDM draws its churn noise at every step.
struct heun : churn {
    ode_coordinates coordinates = ode_coordinates::automatic;

    static constexpr const char* name = "heun";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// Heun in flow coordinates (diffusers FlowMatchHeunDiscreteScheduler).
struct flow_heun : heun {
    flow_heun() noexcept { coordinates = ode_coordinates::flow; }
    static constexpr const char* name = "flow_heun";
};

/// Rectified-flow Euler: x' = x + (t' - t) v on a flow grid (the first-order step). stochastic:
/// x' = a' D + s' z, a fresh draw at every step into s' > 0 (diffusers stochastic_sampling).
/// Note: the stochastic form re-noises the posterior mean D, so the spread of x0 given x is lost
/// at every step however small: it is the multistep sampler of consistency models (right for a
/// model whose output is a sample), and on an ordinary flow model it shrinks the data's modes
/// (to about half their variance on a Gaussian mixture, at any step count). For a stochastic
/// sampler of the data on a flow grid use ddim (eta), euler_ancestral or dpmpp_2m_sde.
struct flow_euler {
    bool stochastic = false;

    static constexpr const char* name = "flow_euler";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return stochastic ? 1 : 0; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// The correction of DPM-Solver++'s second-order multistep update (diffusers solver_type).
enum class dpm_solver_type { midpoint, heun };

/// DPM-Solver++(2M) SDE (k-diffusion sample_dpmpp_2m_sde; diffusers sde-dpmsolver++ is eta = 1).
/// With lambda = log(a / s), h = lambda' - lambda, D1 = (D - D_prev) / r, r = h_prev / h:
///   x' = (s'/s) e^(-eta h) x + a' (1 - e^(-(1 + eta) h)) D + a' c D1 + s' sqrt(1 - e^(-2 eta h)) s_noise z
/// with e = 1 - e^(-(1 + eta) h): c = e / 2 (midpoint) or 1 - e / ((1 + eta) h) (heun; k-diffusion
/// spells it -expm1(-h - eta h) / (-h - eta h) + 1). The first step, a step
/// into sigma = 0 (x' = a' D), and the final step when euler_at_final or (lower_order_final and
/// N < 15) are first order (diffusers' rules). eta = 0 is DPM-Solver++(2M).
struct dpmpp_2m_sde {
    double eta = 1;
    double s_noise = 1;
    dpm_solver_type solver = dpm_solver_type::midpoint;
    bool lower_order_final = true;
    bool euler_at_final = false;

    static constexpr const char* name = "dpmpp_2m_sde";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 2; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// DPM-Solver++(2M) (k-diffusion sample_dpmpp_2m; diffusers dpmsolver++ with solver_order 2):
/// dpmpp_2m_sde with eta = 0.
struct dpmpp_2m : dpmpp_2m_sde {
    dpmpp_2m() noexcept { eta = 0; }
    static constexpr const char* name = "dpmpp_2m";
};

/// The reverse-time SDE dx = [f x - g^2 score] dt + g dW (Song et al. 2021) for x = a x0 + s eps,
/// with f dt and g^2 dt taken exactly over the step: f dt = log(a'/a) = L, g^2 |dt| = G =
/// s^2 - s'^2 + 2 s^2 L, score = -(x - a D) / s^2. Euler-Maruyama:
///   x' = (1 + L) x + G score + sqrt(G) z.
/// On VE grids (a = 1) this is the SMLD reverse-diffusion step x' = x + (s^2 - s'^2) score +
/// sqrt(s^2 - s'^2) z; on VP grids, with L ~ beta dt / 2 and G ~ beta dt, the VP one. The
/// step into sigma = 0 is the denoising step x' = a' D. Needs a > 0 and a' >= a.
struct euler_maruyama {
    static constexpr const char* name = "euler_maruyama";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 1; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

/// Euler on the probability-flow ODE dx = [f x - g^2 score / 2] dt of the same SDE:
/// x' = (1 + L) x + G score / 2; the step into sigma = 0 is x' = a' D.
struct probability_flow_euler {
    static constexpr const char* name = "probability_flow_euler";
    bool learned_variance() const noexcept { return false; }
    std::size_t buffers() const noexcept { return 0; }
    void check(const noise_grid&, std::size_t) const;
    template <class C>
    void step(C& c, std::size_t i) const;
};

namespace detail {

// b0 x + b1 y as fma(b0, x, b1 * y), the rounding of to_x0_eps.
template <class V>
GMK_INLINE V lin(const V& b0, const V& x, const V& b1, const V& y) noexcept {
    return simd::fma(b0, x, b1 * y);
}

inline void check_threshold(const char* fn, const x0_threshold& t) {
    if (t.kind == x0_threshold::mode::clip)
        check_argument(t.range > 0 && std::isfinite(t.range), fn, "threshold.range", t.range, "must be finite and > 0");
    if (t.kind == x0_threshold::mode::dynamic) {
        check_argument(t.ratio >= 0 && t.ratio <= 1, fn, "threshold.ratio", t.ratio, "must be in [0, 1]");
        check_argument(t.sample_max_value > 0 && std::isfinite(t.sample_max_value), fn, "threshold.sample_max_value",
                       t.sample_max_value, "must be finite and > 0");
    }
}

inline void check_churn(const char* fn, const churn& ch) {
    check_argument(ch.s_churn >= 0 && std::isfinite(ch.s_churn), fn, "s_churn", ch.s_churn, "must be finite and >= 0");
    check_argument(ch.s_tmin >= 0, fn, "s_tmin", ch.s_tmin, "must be >= 0");
    check_argument(ch.s_tmax >= ch.s_tmin, fn, "s_tmax", ch.s_tmax, "must be >= s_tmin");
    check_argument(ch.s_noise >= 0 && std::isfinite(ch.s_noise), fn, "s_noise", ch.s_noise, "must be finite and >= 0");
}

// alpha > 0 at every level a step starts from (first .. N - 1).
inline void check_alpha_positive(const char* fn, const noise_grid& g, std::size_t first, const char* why) {
    for (std::size_t i = first; i < g.steps(); ++i)
        if (!(g[i].alpha > 0))
            fail_argument(fn, "grid[i].alpha", g[i].alpha,
                          std::string("must be > 0 at level ") + std::to_string(i) + " (" + why + ")");
}

// The first-order step from x at `from` (where D was evaluated) to `to`, D = p x + q out:
//   x' = (s_to / s_from) x + (a_to - a_from s_to / s_from) D.
// x' = cx x + cd D with D = p x + q out.
template <class C>
void linear_step(C& c, const x0_eps_coefficients& k, double cx_, double cd_) {
    using T = typename C::value_type;
    const T p = T(k.x0_x), q = T(k.x0_out), cx = T(cx_), cd = T(cd_);
    c.map(c.n, simd::out(c.x, c.den), simd::in(static_cast<const T*>(c.x), static_cast<const T*>(c.out)),
          [=](const auto& xv, const auto& ov) {
              using V = std::decay_t<decltype(xv)>;
              const V d = lin(V(p), xv, V(q), ov);
              return std::make_tuple(lin(V(cx), xv, V(cd), d), d);
          });
}

// The first-order step from x at `from` (where D was evaluated) to `to`:
//   x' = (s_to / s_from) x + (a_to - a_from s_to / s_from) D.
template <class C>
void first_order(C& c, const noise_level& from, const noise_level& to, const x0_eps_coefficients& k) {
    const double ratio = to.sigma / from.sigma;
    linear_step(c, k, ratio, to.alpha - from.alpha * ratio);
}

// x' = cx x + cd D + cz z with z the noise of step i (always drawn, as the references do, even
// when cz = 0; `z` is where a whole-array draw goes).
template <class C>
void noisy_step(C& c, const x0_eps_coefficients& k, double cx_, double cd_, double cz_, std::size_t i,
                typename C::value_type* z) {
    using T = typename C::value_type;
    if (cz_ == 0) {
        c.skip_noise(i, z);
        return linear_step(c, k, cx_, cd_);
    }
    const T p = T(k.x0_x), q = T(k.x0_out), cx = T(cx_), cd = T(cd_), cz = T(cz_);
    c.with_noise(i, z, [&](std::size_t at, std::size_t count, const T* zc) {
        c.map(count, simd::out(c.x + at, c.den + at), simd::in(static_cast<const T*>(c.x + at), static_cast<const T*>(c.out + at), zc),
              [=](const auto& xv, const auto& ov, const auto& zv) {
                  using V = std::decay_t<decltype(xv)>;
                  const V d = lin(V(p), xv, V(q), ov);
                  return std::make_tuple(simd::fma(V(cz), zv, lin(V(cx), xv, V(cd), d)), d);
              });
    });
}

// EDM's churn at step i: possibly draws z into `z`, raises x to r_hat in place, and returns the
// level x is then at.
template <class C>
noise_level apply_churn(C& c, const churn& ch, std::size_t i, typename C::value_type* z) {
    using T = typename C::value_type;
    const noise_level& l = c.grid[i];
    const double r = c.grid.ratio(i);
    const double gamma = (l.alpha > 0 && ch.s_tmin <= r && r <= ch.s_tmax)
                             ? std::min(ch.s_churn / double(c.steps), std::sqrt(2.0) - 1)
                             : 0.0;
    if (!(gamma > 0)) {
        if (ch.draw_unused_noise) c.skip_noise(i, z);
        return l;
    }
    const double r_hat = r * (1 + gamma);
    const noise_level hat = c.grid.level_at(r_hat);
    // x_hat / a_hat = x / a + s_noise sqrt(r_hat^2 - r^2) z
    const T cx = T(hat.alpha / l.alpha), cz = T(hat.alpha * ch.s_noise * std::sqrt(r_hat * r_hat - r * r));
    c.with_noise(i, z, [&](std::size_t at, std::size_t count, const T* zc) {
        c.map(count, simd::out(c.x + at), simd::in(static_cast<const T*>(c.x + at), zc), [=](const auto& x, const auto& zv) {
            using V = std::decay_t<decltype(x)>;
            return simd::fma(V(cz), zv, V(cx) * x);
        });
    });
    return hat;
}

// The DDPM / DDIM update x' = cx x + cu D + cc Dt + std z, with D = p x + q out the model's
// estimate and Dt the thresholded one (clipped, or dynamic: computed into den first). `learned`
// gives the learned_range std per element from the variance channel (ddpm); else std is `sd`.
template <class C>
void posterior_step(C& c, const x0_threshold& th, const x0_eps_coefficients& k, double cx_, double cu_, double cc_,
                    double sd, const typename C::value_type* z, bool learned, double log_small, double log_large) {
    using T = typename C::value_type;
    const T p = T(k.x0_x), q = T(k.x0_out), cx = T(cx_), cu = T(cu_), cc = T(cc_);
    const bool dynamic = th.kind == x0_threshold::mode::dynamic;
    const T hi = T(th.kind == x0_threshold::mode::clip ? th.range : std::numeric_limits<double>::infinity());
    const std::size_t ss = c.sample_size, os = learned ? 2 * ss : ss;
    if (dynamic) {
        for (std::size_t b = 0; b < c.batch; ++b)
            c.map(ss, simd::out(c.den + b * ss), simd::in(static_cast<const T*>(c.x + b * ss), c.out + b * os),
                  [=](const auto& xv, const auto& ov) {
                      using V = std::decay_t<decltype(xv)>;
                      return lin(V(p), xv, V(q), ov);
                  });
        dynamic_threshold<typename C::backend>(c.den, c.batch, ss, c.scratch, th.ratio, th.sample_max_value);
    }
    const T ls = T(log_small), ll = T(log_large), s = T(sd), zero = T(0);
    for (std::size_t b = 0; b < c.batch; ++b) {
        T* xb = c.x + b * ss;
        T* db = c.den + b * ss;
        const T* ob = c.out + b * os;
        // Lane values of the update from x, the output, the thresholded D (when dynamic) and z.
        const auto update = [=](const auto& xv, const auto& ov, const auto& dtv, const auto& zv, const auto& sdv) {
            using V = std::decay_t<decltype(xv)>;
            const V d = lin(V(p), xv, V(q), ov);
            const V dt = dynamic ? dtv : simd::min(simd::max(d, V(-hi)), V(hi));
            return std::make_tuple(simd::fma(sdv, zv, simd::fma(V(cc), dt, lin(V(cx), xv, V(cu), d))), dt);
        };
        // Inputs a step does not use read x again (no extra memory traffic): z without noise, the
        // thresholded D unless dynamic.
        const T* zb = z ? z + b * ss : static_cast<const T*>(xb);
        const T* dtb = dynamic ? static_cast<const T*>(db) : static_cast<const T*>(xb);
        const T ssd = z ? s : zero;
        if (learned && z) {
            c.map(ss, simd::out(xb, db), simd::in(static_cast<const T*>(xb), ob, ob + ss, zb, dtb),
                  [=](const auto& xv, const auto& ov, const auto& vv, const auto& zv, const auto& dtv) {
                      using V = std::decay_t<decltype(xv)>;
                      const V f = (vv + V(T(1))) * V(T(0.5));
                      return update(xv, ov, dtv, zv, simd::exp(V(T(0.5)) * lin(f, V(ll), V(T(1)) - f, V(ls))));
                  });
        } else {
            c.map(ss, simd::out(xb, db), simd::in(static_cast<const T*>(xb), ob, zb, dtb),
                  [=](const auto& xv, const auto& ov, const auto& zv, const auto& dtv) {
                      using V = std::decay_t<decltype(xv)>;
                      return update(xv, ov, dtv, zv, V(ssd));
                  });
        }
    }
}

// sigma_ts^2 = s^2 - (a / a')^2 s'^2, the variance of x given x' (beta_t on a VP grid).
inline double transition_variance(const noise_level& l, const noise_level& n) {
    const double at = l.alpha / n.alpha;
    return std::max(l.sigma * l.sigma - at * at * n.sigma * n.sigma, 0.0);
}

}  // namespace detail

// ---- ddpm ------------------------------------------------------------------------------------

inline void ddpm::check(const noise_grid&, std::size_t) const { detail::check_threshold("ddpm", threshold); }

template <class C>
void ddpm::step(C& c, std::size_t i) const {
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    const double at = l.alpha / n.alpha, bt = detail::transition_variance(l, n);
    const double s2 = l.sigma * l.sigma;
    const double cx = at * n.sigma * n.sigma / s2, cd = n.alpha * bt / s2;
    const double small = std::max(bt * n.sigma * n.sigma / s2, 1e-20);
    const bool noisy = n.sigma > 0;
    const double var = variance == ddpm_variance::fixed_large ? bt : small;
    if (threshold.kind == x0_threshold::mode::none && !learned_variance()) {
        if (noisy) return detail::noisy_step(c, k, cx, cd, std::sqrt(var), i, c.buffer(0));
        return detail::linear_step(c, k, cx, cd);
    }
    typename C::value_type* z = noisy ? c.buffer(0) : nullptr;
    if (noisy) c.draw(z, i);
    detail::posterior_step(c, threshold, k, cx, 0, cd, std::sqrt(var), z, learned_variance(), std::log(small),
                           std::log(std::max(bt, 1e-20)));
}

// ---- ddim ------------------------------------------------------------------------------------

inline void ddim::check(const noise_grid&, std::size_t) const {
    check_argument(eta >= 0 && eta <= 1, "ddim", "eta", eta, "must be in [0, 1]");
    detail::check_threshold("ddim", threshold);
}

template <class C>
void ddim::step(C& c, std::size_t i) const {
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    const double var = detail::transition_variance(l, n) * n.sigma * n.sigma / (l.sigma * l.sigma);
    const double sd = eta * std::sqrt(var);
    const double sp = std::sqrt(std::max(n.sigma * n.sigma - sd * sd, 0.0));  // coefficient of eps
    // eps = (x - a D) / s is the model's, from D before thresholding (as diffusers keeps it).
    const double cx = sp / l.sigma, cu = -l.alpha * sp / l.sigma;
    if (threshold.kind == x0_threshold::mode::none) {
        if (eta > 0) return detail::noisy_step(c, k, cx, cu + n.alpha, sd, i, c.buffer(0));
        return detail::linear_step(c, k, cx, cu + n.alpha);
    }
    typename C::value_type* z = eta > 0 ? c.buffer(0) : nullptr;
    if (z) c.draw(z, i);
    detail::posterior_step(c, threshold, k, cx, cu, n.alpha, sd, z, false, 0, 0);
}

// ---- euler, euler_ancestral, heun ----------------------------------------------------------

inline void euler::check(const noise_grid&, std::size_t) const { detail::check_churn("euler", *this); }

template <class C>
void euler::step(C& c, std::size_t i) const {
    const noise_level l = detail::apply_churn(c, *this, i, c.buffer(0));
    detail::first_order(c, l, c.grid[i + 1], c.evaluate(c.x, l, i));
}

inline void euler_ancestral::check(const noise_grid&, std::size_t) const {
    check_argument(eta >= 0 && std::isfinite(eta), "euler_ancestral", "eta", eta, "must be finite and >= 0");
    check_argument(s_noise >= 0 && std::isfinite(s_noise), "euler_ancestral", "s_noise", s_noise,
                   "must be finite and >= 0");
}

template <class C>
void euler_ancestral::step(C& c, std::size_t i) const {
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    // In the VE scale: r' / r = (s' a) / (a' s) stays finite at a = 0 (where r = inf).
    const double rn = n.sigma / n.alpha, q = (n.sigma * l.alpha) / (n.alpha * l.sigma);
    const double up = std::min(rn, eta * rn * std::sqrt(std::max(1 - q * q, 0.0)));
    const double down = std::sqrt(std::max(rn * rn - up * up, 0.0));
    // x' = a' (down / r) x / a + a' (1 - down / r) D + a' s_noise up z, with (down / r) / a = down / s.
    const double cx = n.alpha * down / l.sigma, cd = n.alpha - n.alpha * down * l.alpha / l.sigma;
    if (rn > 0) return detail::noisy_step(c, k, cx, cd, n.alpha * s_noise * up, i, c.buffer(0));
    detail::linear_step(c, k, cx, cd);
}

inline void heun::check(const noise_grid& g, std::size_t first) const {
    detail::check_churn(name, *this);
    const bool flow = coordinates == ode_coordinates::flow ||
                      (coordinates == ode_coordinates::automatic && g.kind() == noise_grid::process::flow);
    if (!flow) detail::check_alpha_positive(name, g, first, "Heun in sigma coordinates; use ode_coordinates::flow");
}

template <class C>
void heun::step(C& c, std::size_t i) const {
    using T = typename C::value_type;
    const noise_level l = detail::apply_churn(c, *this, i, c.buffer(0));
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k1 = c.evaluate(c.x, l, i);
    if (!(n.sigma > 0)) return detail::first_order(c, l, n, k1);
    const bool flow = coordinates == ode_coordinates::flow ||
                      (coordinates == ode_coordinates::automatic && c.grid.kind() == noise_grid::process::flow);
    // y = x / scale, tau = s / scale: scale = a (sigma coordinates) or a + s (flow coordinates).
    const double c0 = flow ? l.alpha + l.sigma : l.alpha, c1 = flow ? n.alpha + n.sigma : n.alpha;
    const double t0 = l.sigma / c0, t1 = n.sigma / c1, dt = t1 - t0;
    // Predictor: x2 = c1 [(t1/t0) y + (1 - t1/t0) D1] (the first-order step).
    {
        const T p = T(k1.x0_x), q = T(k1.x0_out), cx = T(c1 * t1 / (t0 * c0)), cd = T(c1 * (1 - t1 / t0));
        c.map(c.n, simd::out(c.buffer(0), c.den), simd::in(static_cast<const T*>(c.x), static_cast<const T*>(c.out)),
              [=](const auto& x, const auto& o) {
                  using V = std::decay_t<decltype(x)>;
                  const V d = detail::lin(V(p), x, V(q), o);
                  return std::make_tuple(detail::lin(V(cx), x, V(cd), d), d);
              });
    }
    const x0_eps_coefficients k2 = c.evaluate(c.buffer(0), n, i);
    // Corrector: y' = y + dt/2 [(y - D1)/t0 + (y2 - D2)/t1], x' = c1 y'.
    const T p = T(k2.x0_x), q = T(k2.x0_out);
    const T ax = T(c1 * (1 + dt / (2 * t0)) / c0), ad1 = T(-c1 * dt / (2 * t0));
    const T ax2 = T(dt / (2 * t1)), ad2 = T(-c1 * dt / (2 * t1));
    c.map(c.n, simd::out(c.x),
          simd::in(static_cast<const T*>(c.x), static_cast<const T*>(c.den), static_cast<const T*>(c.buffer(0)),
                   static_cast<const T*>(c.out)),
          [=](const auto& x, const auto& d1, const auto& x2, const auto& o) {
              using V = std::decay_t<decltype(x)>;
              const V d2 = detail::lin(V(p), x2, V(q), o);
              return simd::fma(V(ax2), x2, simd::fma(V(ad2), d2, detail::lin(V(ax), x, V(ad1), d1)));
          });
}

// ---- flow_euler ------------------------------------------------------------------------------

inline void flow_euler::check(const noise_grid&, std::size_t) const {}

template <class C>
void flow_euler::step(C& c, std::size_t i) const {
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    if (!stochastic) return detail::first_order(c, l, n, k);
    if (n.sigma > 0) return detail::noisy_step(c, k, 0, n.alpha, n.sigma, i, c.buffer(0));
    detail::linear_step(c, k, 0, n.alpha);
}

// ---- dpmpp_2m_sde ----------------------------------------------------------------------------

inline void dpmpp_2m_sde::check(const noise_grid&, std::size_t) const {
    check_argument(eta >= 0 && std::isfinite(eta), name, "eta", eta, "must be finite and >= 0");
    check_argument(s_noise >= 0 && std::isfinite(s_noise), name, "s_noise", s_noise, "must be finite and >= 0");
}

template <class C>
void dpmpp_2m_sde::step(C& c, std::size_t i) const {
    using T = typename C::value_type;
    // den of the previous step is this step's history: swap it into buffer(0).
    c.swap_den(0);
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    if (!(n.sigma > 0)) return detail::linear_step(c, k, 0, n.alpha);  // x' = a' D
    const double lam = std::log(l.alpha) - std::log(l.sigma), lam_n = std::log(n.alpha) - std::log(n.sigma);
    // h = +inf from a level with alpha = 0: the first-order step is then x' = (s'/s) x + a' D
    // (DDIM's), and eta h must stay 0 for eta = 0 (0 * inf is NaN).
    const double h = lam_n - lam, eh = eta > 0 ? eta * h : 0.0;
    const double cx = n.sigma / l.sigma * std::exp(-eh), e = -std::expm1(-h - eh);
    const double cd = n.alpha * e;
    const bool last = i + 1 == c.steps;
    const bool second = i > c.first && !(last && (euler_at_final || (lower_order_final && c.steps < 15)));
    double ch = 0;  // coefficient of D - D_prev
    if (second) {
        const noise_level& p = c.grid[i - 1];
        const double h_prev = lam - (std::log(p.alpha) - std::log(p.sigma));
        const double inv_r = h / h_prev;  // 1 / r; 0 when the previous level had alpha = 0
        // midpoint: e / 2; heun: -expm1(-h - eta h) / (-h - eta h) + 1 = 1 - e / (h + eta h).
        ch = n.alpha * inv_r * (solver == dpm_solver_type::midpoint ? 0.5 * e : 1 - e / (h + eh));
    }
    const double cz = eta > 0 ? n.sigma * std::sqrt(-std::expm1(-2 * eh)) * s_noise : 0.0;
    if (!second) {
        if (eta > 0) return detail::noisy_step(c, k, cx, cd, cz, i, c.buffer(1));
        return detail::linear_step(c, k, cx, cd);
    }
    const T p = T(k.x0_x), q = T(k.x0_out), tx = T(cx), td = T(cd), th = T(ch), tz = T(cz);
    const T* prev = c.buffer(0);
    if (cz > 0) {
        c.with_noise(i, c.buffer(1), [&](std::size_t at, std::size_t count, const T* zc) {
            c.map(count, simd::out(c.x + at, c.den + at),
                  simd::in(static_cast<const T*>(c.x + at), static_cast<const T*>(c.out + at), prev + at, zc),
                  [=](const auto& xv, const auto& ov, const auto& pv, const auto& zv) {
                      using V = std::decay_t<decltype(xv)>;
                      const V d = detail::lin(V(p), xv, V(q), ov);
                      return std::make_tuple(simd::fma(V(tz), zv, simd::fma(V(th), d - pv, detail::lin(V(tx), xv, V(td), d))), d);
                  });
        });
        return;
    }
    if (eta > 0) c.skip_noise(i, c.buffer(1));
    c.map(c.n, simd::out(c.x, c.den), simd::in(static_cast<const T*>(c.x), static_cast<const T*>(c.out), prev),
          [=](const auto& xv, const auto& ov, const auto& pv) {
              using V = std::decay_t<decltype(xv)>;
              const V d = detail::lin(V(p), xv, V(q), ov);
              return std::make_tuple(simd::fma(V(th), d - pv, detail::lin(V(tx), xv, V(td), d)), d);
          });
}

// ---- euler_maruyama, probability_flow_euler --------------------------------------------------

namespace detail {

template <class C>
void sde_step(C& c, std::size_t i, bool ode) {
    const noise_level& l = c.grid[i];
    const noise_level& n = c.grid[i + 1];
    const x0_eps_coefficients k = c.evaluate(c.x, l, i);
    if (!(n.sigma > 0)) return linear_step(c, k, 0, n.alpha);  // denoising step
    const double L = std::log(n.alpha / l.alpha), s2 = l.sigma * l.sigma;
    const double G = std::max(s2 - n.sigma * n.sigma + 2 * s2 * L, 0.0);
    const double g = ode ? G / 2 : G;  // weight of the score
    // x' = (1 + L) x - g (x - a D) / s^2 + sqrt(G) z
    if (ode) return linear_step(c, k, 1 + L - g / s2, g * l.alpha / s2);
    noisy_step(c, k, 1 + L - g / s2, g * l.alpha / s2, std::sqrt(G), i, c.buffer(0));
}

inline void check_sde(const char* fn, const noise_grid& g, std::size_t first) {
    check_alpha_positive(fn, g, first, "the SDE's drift log(a'/a)");
    for (std::size_t i = first; i < g.steps(); ++i)
        if (!(g[i + 1].alpha >= g[i].alpha))
            fail_argument(fn, "grid[i + 1].alpha", g[i + 1].alpha,
                          "must be >= grid[i].alpha (alpha non-decreasing along the grid; i = " + std::to_string(i) + ")");
}

}  // namespace detail

inline void euler_maruyama::check(const noise_grid& g, std::size_t first) const { detail::check_sde(name, g, first); }
template <class C>
void euler_maruyama::step(C& c, std::size_t i) const {
    detail::sde_step(c, i, false);
}

inline void probability_flow_euler::check(const noise_grid& g, std::size_t first) const {
    detail::check_sde(name, g, first);
}
template <class C>
void probability_flow_euler::step(C& c, std::size_t i) const {
    detail::sde_step(c, i, true);
}

}  // namespace gmk
