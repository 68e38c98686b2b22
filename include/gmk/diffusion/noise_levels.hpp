// gmk: noise levels and the grid of levels a continuous sampler walks.
//
// Every continuous process is x_t = alpha_t x0 + sigma_t eps (Karras et al. 2022, "Elucidating
// the Design Space of Diffusion-Based Generative Models", eq. 1 with s = alpha):
//   VP / DDPM        alpha = sqrt(abar), sigma = sqrt(1 - abar)
//   VE / EDM         alpha = 1
//   rectified flow   alpha = 1 - t, sigma = t
// A noise_grid holds the N + 1 levels of an N-step sampler: the model is called at levels
// 0 .. N - 1, and level N is where sampling ends. Grids are built once, in double, from the
// schedules of <gmk/schedules/...>; building one is never on a sampler's hot path.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"

namespace gmk {

/// One noise level: x = alpha x0 + sigma eps, and the time the network is conditioned on there
/// (a discrete timestep, a sigma, c_noise, or t * num_train_timesteps).
struct noise_level {
    double alpha = 1;
    double sigma = 0;
    double model_time = 0;

    /// lambda = log(alpha / sigma), half the log signal-to-noise ratio (DPM-Solver's lambda_t).
    /// +inf at sigma = 0, -inf at alpha = 0.
    double lambda() const noexcept { return std::log(alpha) - std::log(sigma); }
    /// log SNR = log(alpha^2 / sigma^2) = 2 lambda.
    double log_snr() const noexcept { return 2 * lambda(); }
};

/// The N + 1 noise levels of an N-step sampler, N >= 1. Valid by construction: every alpha and
/// sigma finite and >= 0, never both 0; alpha = 0 only at level 0 and sigma = 0 only at level N;
/// the noise-to-signal ratio sigma / alpha does not increase from one level to the next; model
/// times finite. Otherwise the constructor throws std::invalid_argument naming the setting.
class noise_grid {
public:
    /// The largest noise-to-signal ratio of a VP level (vp_sigmas, level_at): 2^1022, where alpha =
    /// 1 / sqrt(1 + r^2) = 2^-1022 is the smallest normal double; beyond it alpha loses bits.
    static constexpr double max_vp_ratio = 0x1p1022;

    /// Which process a grid is on, and so what the level at an arbitrary noise-to-signal ratio
    /// r = sigma / alpha is (level_at): vp alpha = 1 / sqrt(1 + r^2); ve alpha = 1; flow
    /// alpha = 1 / (1 + r); general: none (level_at throws).
    enum class process { vp, ve, flow, general };

    /// Checks `levels` (see above). The process is recognised from the levels (every alpha 1:
    /// ve; alpha^2 + sigma^2 = 1 to 1e-12: vp; alpha + sigma = 1 to 1e-12: flow; else general).
    explicit noise_grid(std::vector<noise_level> levels) : levels_(std::move(levels)) {
        validate("noise_grid");
        process_ = recognise();
    }

    /// From a VP (DDPM-family) model: level i at training timestep timesteps[i] (descending,
    /// integers in [0, T); diffusers DDPM/DDIM set_timesteps, gmk::timesteps), alpha =
    /// sqrt(abar[t]), sigma = sqrt(1 - abar[t]), model_time = t. The final level has abar =
    /// final_alpha_cumprod: 1 (sigma 0; DDPM, and DDIM with set_alpha_to_one = true) or
    /// alphas_cumprod[0] (DDIM with set_alpha_to_one = false); its model_time is -1 (not a time
    /// the model is called at). Note: diffusers' DDIM steps from t to t - T / N, which is the next
    /// timestep for leading and trailing spacing; for linspace spacing it is not, and this grid
    /// takes the next timestep (the level the loop actually visits next).
    static noise_grid vp(span<const double> alphas_cumprod, span<const double> timesteps,
                         double final_alpha_cumprod = 1.0) {
        constexpr const char* fn = "noise_grid::vp";
        const std::size_t T = alphas_cumprod.size();
        check_argument(T >= 1, fn, "alphas_cumprod.size()", T, "must be >= 1");
        check_argument(timesteps.size() >= 1, fn, "timesteps.size()", timesteps.size(), "must be >= 1");
        check_argument(final_alpha_cumprod > 0 && final_alpha_cumprod <= 1, fn, "final_alpha_cumprod",
                       final_alpha_cumprod, "must be in (0, 1]");
        std::vector<noise_level> levels;
        levels.reserve(timesteps.size() + 1);
        for (std::size_t i = 0; i < timesteps.size(); ++i) {
            const double t = timesteps[i];
            if (!(t >= 0 && t <= double(T - 1) && t == std::floor(t)))
                detail::fail_argument(fn, "timesteps[i]", t,
                                      "must be an integer in [0, " + std::to_string(T - 1) + "] (i = " +
                                          std::to_string(i) + ")");
            levels.push_back(vp_level(fn, alphas_cumprod[std::size_t(t)], t));
        }
        levels.push_back(vp_level(fn, final_alpha_cumprod, -1.0));
        return noise_grid(std::move(levels), fn, process::vp);
    }

    /// A VP (DDPM-family) model on a grid of VE sigmas, as diffusers' Euler, Heun and DPM-Solver
    /// schedulers and k-diffusion's discrete wrappers run it: level i has alpha = 1 / sqrt(1 +
    /// sigmas[i]^2), sigma = sigmas[i] alpha (so sigma / alpha = sigmas[i]), model_time =
    /// model_times[i] (N or N + 1 of them; a final one not given is 0). The model sees x in its
    /// own VP scale, which is what those references feed it (x_ve / sqrt(sigma^2 + 1)).
    static noise_grid vp_sigmas(span<const double> sigmas, span<const double> model_times) {
        constexpr const char* fn = "noise_grid::vp_sigmas";
        const std::size_t n = check_sigmas_and_times(fn, sigmas, model_times);
        std::vector<noise_level> levels(n);
        for (std::size_t i = 0; i < n; ++i) {
            const double r = sigmas[i];
            if (!(r >= 0 && r <= max_vp_ratio))
                detail::fail_argument(fn, "sigmas[i]", r, "must be in [0, 2^1022] (i = " + std::to_string(i) + ")");
            const auto [a, sg] = vp_alpha_sigma(r);
            levels[i] = {a, sg, i < model_times.size() ? model_times[i] : 0.0};
        }
        return noise_grid(std::move(levels), fn, process::vp);
    }

    /// As above, with the integer timesteps of gmk::timesteps.
    static noise_grid vp(span<const double> alphas_cumprod, span<const std::int64_t> timesteps,
                         double final_alpha_cumprod = 1.0) {
        std::vector<double> t(timesteps.begin(), timesteps.end());
        for (std::size_t i = 0; i < t.size(); ++i)
            if (timesteps[i] < 0)
                detail::fail_argument("noise_grid::vp", "timesteps[i]", timesteps[i],
                                      "must be >= 0 (i = " + std::to_string(i) + ")");
        return vp(alphas_cumprod, span<const double>(t), final_alpha_cumprod);
    }

    /// From a VE / EDM sigma grid of N + 1 levels (descending, the last usually 0; gmk::sigmas_karras,
    /// discrete_sigmas(...).sigmas, ...): alpha = 1, sigma = sigmas[i], model_time = sigmas[i].
    static noise_grid ve(span<const double> sigmas) {
        noise_grid g = ve_with("noise_grid::ve", sigmas, [](double s) { return s; });
        g.model_time_of_ = [](double s) { return s; };
        return g;
    }

    /// As ve(sigmas), with model_time = to_model_time(sigma) at levels 0 .. N - 1 (EDM's c_noise =
    /// ln(sigma) / 4, or a discrete model's gmk::timestep_at_sigma). The final level's model_time
    /// is never passed to a model: 0 when sigma_N = 0 (to_model_time is not called there), else
    /// to_model_time(sigma_N) when that is finite, else 0.
    template <class F, std::enable_if_t<std::is_invocable_r_v<double, F&, double>, int> = 0>
    static noise_grid ve(span<const double> sigmas, F&& to_model_time) {
        noise_grid g = ve_with("noise_grid::ve", sigmas, to_model_time);
        g.model_time_of_ = std::function<double(double)>(std::forward<F>(to_model_time));
        return g;
    }

    /// As ve(sigmas), with the model times given (N of them, e.g. discrete_sigmas(...).timesteps,
    /// or N + 1). A final model time not given is 0.
    static noise_grid ve(span<const double> sigmas, span<const double> model_times) {
        constexpr const char* fn = "noise_grid::ve";
        const std::size_t n = check_sigmas_and_times(fn, sigmas, model_times);
        std::vector<noise_level> levels(n);
        for (std::size_t i = 0; i < n; ++i)
            levels[i] = {1.0, sigmas[i], i < model_times.size() ? model_times[i] : 0.0};
        return noise_grid(std::move(levels), fn, process::ve);
    }

    /// From a flow-matching t-grid of N + 1 levels in [0, 1], descending (gmk::sigmas_flow):
    /// alpha = 1 - t, sigma = t, model_time = t * num_train_timesteps (diffusers'
    /// FlowMatchEulerDiscreteScheduler timesteps; pass 1 for models conditioned on t itself).
    static noise_grid flow(span<const double> ts, double num_train_timesteps = 1000) {
        constexpr const char* fn = "noise_grid::flow";
        check_argument(ts.size() >= 2, fn, "ts.size()", ts.size(), "must be >= 2 (N steps need N + 1 levels)");
        check_argument(num_train_timesteps > 0 && std::isfinite(num_train_timesteps), fn, "num_train_timesteps",
                       num_train_timesteps, "must be finite and > 0");
        std::vector<noise_level> levels(ts.size());
        for (std::size_t i = 0; i < ts.size(); ++i) {
            const double t = ts[i];
            if (!(t >= 0 && t <= 1))
                detail::fail_argument(fn, "ts[i]", t, "must be in [0, 1] (i = " + std::to_string(i) + ")");
            levels[i] = {1 - t, t, t * num_train_timesteps};
        }
        noise_grid g(std::move(levels), fn, process::flow);
        g.model_time_of_ = [num_train_timesteps](double r) { return r / (1 + r) * num_train_timesteps; };
        return g;
    }

    /// N: the number of steps (model calls of a first-order sampler).
    std::size_t steps() const noexcept { return levels_.size() - 1; }
    /// N + 1: the number of levels.
    std::size_t size() const noexcept { return levels_.size(); }
    const noise_level& operator[](std::size_t i) const noexcept { return levels_[i]; }
    const noise_level& front() const noexcept { return levels_.front(); }
    const noise_level& back() const noexcept { return levels_.back(); }
    const noise_level* begin() const noexcept { return levels_.data(); }
    const noise_level* end() const noexcept { return levels_.data() + levels_.size(); }
    const noise_level* data() const noexcept { return levels_.data(); }
    process kind() const noexcept { return process_; }

    /// sigma_i / alpha_i, the noise-to-signal ratio of level i (k-diffusion's sigma; +inf where
    /// alpha = 0).
    double ratio(std::size_t i) const noexcept {
        const noise_level& l = levels_[i];
        return l.alpha > 0 ? l.sigma / l.alpha : std::numeric_limits<double>::infinity();
    }

    /// The level of this grid's process at noise-to-signal ratio r >= 0, off the grid (EDM's
    /// churn raises the level before a step). Its model_time comes from the grid's map: the
    /// to_model_time given to ve(), sigma itself for ve(sigmas), t * T for flow(), else linear
    /// interpolation in log r between the grid's own levels (extrapolated linearly past the
    /// ends; k-diffusion interpolates a discrete model's time the same way over its trained
    /// levels). Throws std::invalid_argument on a general grid, for r < 0 or not finite, and for
    /// r > max_vp_ratio on a vp grid.
    noise_level level_at(double r) const {
        constexpr const char* fn = "noise_grid::level_at";
        check_argument(r >= 0 && std::isfinite(r), fn, "r", r, "must be finite and >= 0");
        double a = 1, sg = r;
        switch (process_) {
            case process::ve: break;
            case process::vp:
                check_argument(r <= max_vp_ratio, fn, "r", r, "must be <= 2^1022 on a vp grid");
                std::tie(a, sg) = vp_alpha_sigma(r);
                break;
            case process::flow: a = 1 / (1 + r), sg = r * a; break;
            case process::general:
                detail::fail_argument(fn, "grid", "general", "must be a vp, ve or flow grid to place a level off it");
        }
        return {a, sg, model_time_of_ ? model_time_of_(r) : interpolated_model_time(r)};
    }

private:
    std::vector<noise_level> levels_;
    process process_ = process::general;
    std::function<double(double)> model_time_of_;  // empty: interpolate over the levels

    noise_grid(std::vector<noise_level> levels, const char* fn, process p) : levels_(std::move(levels)), process_(p) {
        validate(fn);
    }

    // The VP level at noise-to-signal ratio r: alpha = 1 / sqrt(1 + r^2), sigma = r alpha. Past
    // r = 2^32, 1 + r^2 rounds to r^2, and r^2 overflows from 1.3e154 on: there alpha = 1 / r and
    // sigma = 1 to the last bit.
    static std::pair<double, double> vp_alpha_sigma(double r) noexcept {
        if (r >= 0x1p32) return {1 / r, 1.0};
        const double a = 1 / std::sqrt(1 + r * r);
        return {a, r * a};
    }

    // sigma1 / alpha1 <= sigma0 / alpha0 for levels with finite, non-negative parts, compared as
    // sigma1 alpha0 <= sigma0 alpha1 with each product split into mantissa and exponent, so that
    // neither overflows nor underflows (in double they can both round to 0 and pass).
    static bool ratio_not_above(const noise_level& l1, const noise_level& l0) noexcept {
        const auto product = [](double u, double v, int& e) {
            int eu = 0, ev = 0;
            const double m = std::frexp(u, &eu) * std::frexp(v, &ev);  // in [1/4, 1), or 0
            e = eu + ev;
            return m;
        };
        int el = 0, er = 0;
        const double l = product(l1.sigma, l0.alpha, el), r = product(l0.sigma, l1.alpha, er);
        if (l == 0 || r == 0) return l <= r;
        return el <= er ? std::ldexp(l, el - er) <= r : l <= std::ldexp(r, er - el);
    }

    process recognise() const noexcept {
        bool ve = true, vp = true, flow = true;
        for (const noise_level& l : levels_) {
            ve = ve && l.alpha == 1;
            vp = vp && std::abs(l.alpha * l.alpha + l.sigma * l.sigma - 1) <= 1e-12;
            flow = flow && std::abs(l.alpha + l.sigma - 1) <= 1e-12;
        }
        return ve ? process::ve : vp ? process::vp : flow ? process::flow : process::general;
    }

    // Piecewise linear in log r through the levels with 0 < r < inf, extended linearly. r is
    // non-increasing along a valid grid, infinite only at level 0 and zero only at level N, so
    // those levels are [lo, hi] and the segment is found by bisection.
    double interpolated_model_time(double r) const {
        const std::size_t N = levels_.size() - 1;
        const std::size_t lo = std::isfinite(ratio(0)) ? 0 : 1, hi = ratio(N) > 0 ? N : N - 1;
        if (hi <= lo || r <= 0) return levels_[hi < lo ? lo : (r <= 0 ? hi : lo)].model_time;
        std::size_t j = lo, k = hi;  // ratio(j) >= r >= ratio(k), or r is outside [ratio(hi), ratio(lo)]
        while (k - j > 1) {
            const std::size_t m = j + (k - j) / 2;
            (ratio(m) >= r ? j : k) = m;
        }
        const double x = std::log(r), x0 = std::log(ratio(j)), x1 = std::log(ratio(k));
        const double m0 = levels_[j].model_time, m1 = levels_[k].model_time;
        return x0 == x1 ? m0 : m0 + (x - x0) / (x1 - x0) * (m1 - m0);
    }

    // N + 1 >= 2 sigmas and N or N + 1 model times; returns N + 1.
    static std::size_t check_sigmas_and_times(const char* fn, span<const double> sigmas, span<const double> model_times) {
        const std::size_t n = sigmas.size();
        check_argument(n >= 2, fn, "sigmas.size()", n, "must be >= 2 (N steps need N + 1 levels)");
        check_argument(model_times.size() == n - 1 || model_times.size() == n, fn, "model_times.size()",
                       model_times.size(), "must be sigmas.size() - 1 or sigmas.size()");
        return n;
    }

    static noise_level vp_level(const char* fn, double abar, double t) {
        if (!(abar >= 0 && abar <= 1))
            detail::fail_argument(fn, "alphas_cumprod[t]", abar, "must be in [0, 1] (t = " + detail::value_text(t) + ")");
        return {std::sqrt(abar), std::sqrt(1 - abar), t};
    }

    template <class F>
    static noise_grid ve_with(const char* fn, span<const double> sigmas, F&& to_model_time) {
        const std::size_t n = sigmas.size();
        check_argument(n >= 2, fn, "sigmas.size()", n, "must be >= 2 (N steps need N + 1 levels)");
        std::vector<noise_level> levels(n);
        for (std::size_t i = 0; i < n; ++i) {
            const bool last = i + 1 == n;
            double m = last && sigmas[i] == 0 ? 0.0 : double(to_model_time(sigmas[i]));
            if (last && !std::isfinite(m)) m = 0;
            levels[i] = {1.0, sigmas[i], m};
        }
        return noise_grid(std::move(levels), fn, process::ve);
    }

    void validate(const char* fn) const {
        const std::size_t n = levels_.size();
        check_argument(n >= 2, fn, "levels", n, "must hold N + 1 >= 2 levels");
        for (std::size_t i = 0; i < n; ++i) {
            const noise_level& l = levels_[i];
            const std::string at = " (level " + std::to_string(i) + " of " + std::to_string(n) + ")";
            if (!(std::isfinite(l.alpha) && l.alpha >= 0))
                detail::fail_argument(fn, "alpha", l.alpha, "must be finite and >= 0" + at);
            if (!(std::isfinite(l.sigma) && l.sigma >= 0))
                detail::fail_argument(fn, "sigma", l.sigma, "must be finite and >= 0" + at);
            if (!std::isfinite(l.model_time))
                detail::fail_argument(fn, "model_time", l.model_time, "must be finite" + at);
            if (l.alpha == 0 && i != 0)
                detail::fail_argument(fn, "alpha", l.alpha, "may be 0 only at the first level" + at);
            if (l.sigma == 0 && i + 1 != n)
                detail::fail_argument(fn, "sigma", l.sigma, "may be 0 only at the final level" + at);
            // sigma_i / alpha_i >= sigma_{i+1} / alpha_{i+1}, cross-multiplied so that alpha = 0
            // (infinite ratio) needs no special case.
            if (i > 0 && !ratio_not_above(l, levels_[i - 1]))
                detail::fail_argument(fn, "sigma", l.sigma,
                                      "sigma / alpha must not increase from one level to the next" + at);
        }
    }
};

}  // namespace gmk
