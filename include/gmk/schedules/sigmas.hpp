// gmk: noise-level (sigma) grids. Each grid holds n levels, descending, plus a final one (0, or
// sigma_min for diffusers' final_sigmas_type="sigma_min"), so a sampler of n steps reads
// sigmas[i] -> sigmas[i + 1].
//
//   gmk::sigmas_karras(n, sigma_min, sigma_max, rho)          Karras et al. 2022, eq. 5
//   gmk::sigmas_exponential / sigmas_polyexponential / sigmas_vp   k-diffusion get_sigmas_*
//   gmk::sigmas_from_alphas_cumprod(abar)                      a discrete model's trained sigmas
//   gmk::sigma_at_timestep / gmk::timestep_at_sigma            interpolation over those
//   gmk::discrete_sigmas(abar, timesteps, spacing, final)      diffusers EulerDiscreteScheduler
#pragma once

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "betas.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace gmk {

/// The level after the last step: 0 (denoise fully) or the smallest trained sigma.
enum class final_sigma { zero, sigma_min };

/// How a discrete model's sigma is read at a fractional timestep: linearly in sigma (diffusers
/// EulerDiscrete, np.interp) or linearly in log sigma (k-diffusion DiscreteSchedule.t_to_sigma).
enum class sigma_interpolation { linear, log_linear };

namespace detail {

inline void check_sigma_range(const char* fn, std::size_t n, double sigma_min, double sigma_max) {
    check_argument(n >= 1, fn, "n", n, "must be >= 1");
    check_argument(sigma_min > 0 && std::isfinite(sigma_min), fn, "sigma_min", sigma_min, "must be finite and > 0");
    check_argument(sigma_max > sigma_min && std::isfinite(sigma_max), fn, "sigma_max", sigma_max,
                   "must be finite and > sigma_min");
}

// Sets the ends of a descending grid to sigma_max and sigma_min exactly and clamps the levels
// between into [sigma_min, sigma_max]: the formulas below reach the ends through exp and log,
// which leave them a few ulps off (|ln sigma| ulps for extreme sigmas).
inline void pin_ends(std::vector<double>& s, double sigma_min, double sigma_max) {
    for (double& x : s) x = std::min(std::max(x, sigma_min), sigma_max);
    s.front() = sigma_max;
    if (s.size() > 1) s.back() = sigma_min;
}

inline std::vector<double> karras(std::size_t n, double sigma_min, double sigma_max, double rho) {
    // Karras et al. 2022 ("Elucidating the Design Space ..."), eq. 5: equal steps in sigma^(1/rho),
    // sigma = (hi + r (lo - hi))^rho with hi = sigma_max^(1/rho), lo = sigma_min^(1/rho), r = 0 .. 1
    // (k-diffusion evaluates it so). Divided by sigma_max this is (1 + r (q - 1))^rho with
    // q = (sigma_min / sigma_max)^(1/rho), evaluated as exp(rho log1p(r expm1(ln(sigma_min /
    // sigma_max) / rho))): as accurate as k-diffusion's form (the level's conditioning in r
    // dominates both), and in range for every rho and sigma, where hi overflows for a small rho
    // and hi + (lo - hi) loses lo once hi / lo passes 2^53. Monotone in r.
    const std::vector<double> ramp = linspace(0, 1, n);
    const double lmax = std::log(sigma_max), qm1 = std::expm1((std::log(sigma_min) - lmax) / rho);
    const double ln_min_normal = std::log(std::numeric_limits<double>::min());
    std::vector<double> s(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double y = rho * std::log1p(ramp[i] * qm1);  // ln(sigma / sigma_max)
        s[i] = y > ln_min_normal ? sigma_max * std::exp(y) : std::exp(lmax + y);
    }
    pin_ends(s, sigma_min, sigma_max);
    return s;
}

inline std::vector<double> exponential(std::size_t n, double sigma_min, double sigma_max) {
    std::vector<double> s = linspace(std::log(sigma_max), std::log(sigma_min), n);
    for (double& x : s) x = std::exp(x);
    pin_ends(s, sigma_min, sigma_max);
    return s;
}

inline void check_trained(const char* fn, span<const double> trained) {
    check_argument(trained.size() >= 2, fn, "trained_sigmas.size()", trained.size(), "must be >= 2");
    for (std::size_t i = 0; i < trained.size(); ++i) {
        if (!(trained[i] > 0 && std::isfinite(trained[i])))
            fail_argument(fn, "trained_sigmas[i]", trained[i], "must be finite and > 0 (i = " + std::to_string(i) + ")");
        if (i > 0 && !(trained[i] >= trained[i - 1]))
            fail_argument(fn, "trained_sigmas[i]", trained[i],
                          "must not decrease with the timestep (i = " + std::to_string(i) + ")");
    }
}

// diffusers _sigma_to_t / k-diffusion DiscreteSchedule.sigma_to_t on ascending log-sigmas: the
// last trained level at or below log(sigma) (clamped to leave one above it), then the linear
// weight between the two, clamped to [0, 1]. diffusers floors sigma at 1e-10 before the log.
inline double timestep_at_log_sigma(const std::vector<double>& log_sigmas, double sigma) {
    const double ls = std::log(std::max(sigma, 1e-10));
    const std::size_t n = log_sigmas.size();
    std::size_t low = std::size_t(std::upper_bound(log_sigmas.begin(), log_sigmas.end(), ls) - log_sigmas.begin());
    low = low == 0 ? 0 : low - 1;
    low = std::min(low, n - 2);
    const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
    // Equal trained levels (lo == hi) only at the ends: below them timestep `low`, at or above
    // them the last of the run (as upper_bound picks it inside the range).
    const double w = lo == hi ? (ls >= hi ? 1.0 : 0.0) : std::min(std::max((lo - ls) / (lo - hi), 0.0), 1.0);
    return (1 - w) * double(low) + w * double(low + 1);
}

inline double sigma_at(span<const double> trained, double t, sigma_interpolation how) {
    const std::size_t n = trained.size();
    if (how == sigma_interpolation::linear) {
        // numpy.interp over x = 0, 1, ..., n - 1.
        if (t >= double(n - 1)) return trained[n - 1];
        const std::size_t j = std::size_t(std::floor(t));
        return (trained[j + 1] - trained[j]) * (t - double(j)) + trained[j];
    }
    const std::size_t lo = std::size_t(std::floor(t)), hi = std::size_t(std::ceil(t));
    const double w = t - double(lo), a = trained[lo], b = trained[hi];
    if (w == 0) return a;  // exp(log(a)) may be an ulp off a trained level
    return std::min(std::max(std::exp((1 - w) * std::log(a) + w * std::log(b)), a), b);
}

inline void check_timestep(const char* fn, double t, std::size_t n) {
    check_argument(t >= 0 && t <= double(n - 1), fn, "timestep", t,
                   "must be in [0, num_train_timesteps - 1 = " + std::to_string(n - 1) + "]");
}

}  // namespace detail

/// Karras et al. (2022) sigmas: n levels from sigma_max to sigma_min, equally spaced in
/// sigma^(1/rho), then 0 (k-diffusion get_sigmas_karras). rho > 0, 0 < sigma_min < sigma_max.
template <class T = double>
std::vector<T> sigmas_karras(std::size_t n, double sigma_min, double sigma_max, double rho = 7.0) {
    detail::check_sigma_range("sigmas_karras", n, sigma_min, sigma_max);
    check_argument(rho > 0 && std::isfinite(rho), "sigmas_karras", "rho", rho, "must be finite and > 0");
    std::vector<double> s = detail::karras(n, sigma_min, sigma_max, rho);
    s.push_back(0);
    return detail::converted<T>(s);
}

/// n levels equally spaced in log sigma from sigma_max to sigma_min, then 0
/// (k-diffusion get_sigmas_exponential).
template <class T = double>
std::vector<T> sigmas_exponential(std::size_t n, double sigma_min, double sigma_max) {
    detail::check_sigma_range("sigmas_exponential", n, sigma_min, sigma_max);
    std::vector<double> s = detail::exponential(n, sigma_min, sigma_max);
    s.push_back(0);
    return detail::converted<T>(s);
}

/// log sigma = ramp^rho * (ln sigma_max - ln sigma_min) + ln sigma_min, ramp = linspace(1, 0, n),
/// then 0 (k-diffusion get_sigmas_polyexponential; rho = 1 is sigmas_exponential).
template <class T = double>
std::vector<T> sigmas_polyexponential(std::size_t n, double sigma_min, double sigma_max, double rho = 1.0) {
    detail::check_sigma_range("sigmas_polyexponential", n, sigma_min, sigma_max);
    check_argument(rho > 0 && std::isfinite(rho), "sigmas_polyexponential", "rho", rho, "must be finite and > 0");
    std::vector<double> ramp = detail::linspace(1, 0, n);
    const double lmin = std::log(sigma_min), lmax = std::log(sigma_max);
    std::vector<double> s(n);
    for (std::size_t i = 0; i < n; ++i) s[i] = std::exp(std::pow(ramp[i], rho) * (lmax - lmin) + lmin);
    detail::pin_ends(s, sigma_min, sigma_max);
    s.push_back(0);
    return detail::converted<T>(s);
}

/// The continuous VP schedule of Song et al. 2021 as sigmas: sigma(t) = sqrt(exp(beta_d t^2 / 2 +
/// beta_min t) - 1) at t = linspace(1, eps_s, n), then 0 (k-diffusion get_sigmas_vp).
template <class T = double>
std::vector<T> sigmas_vp(std::size_t n, double beta_d = 19.9, double beta_min = 0.1, double eps_s = 1e-3) {
    constexpr const char* fn = "sigmas_vp";
    check_argument(n >= 1, fn, "n", n, "must be >= 1");
    check_argument(beta_d > 0 && std::isfinite(beta_d), fn, "beta_d", beta_d, "must be finite and > 0");
    check_argument(beta_min >= 0 && std::isfinite(beta_min), fn, "beta_min", beta_min, "must be finite and >= 0");
    check_argument(eps_s > 0 && eps_s < 1, fn, "eps_s", eps_s, "must be in (0, 1)");
    const std::vector<double> t = detail::linspace(1, eps_s, n);
    std::vector<double> s(n);
    // expm1 would be more accurate near t = 0, but k-diffusion subtracts 1 after exp; the
    // difference is within 1e-13 relative at eps_s = 1e-3. Where e^x overflows, e^(x/2)
    // sqrt(1 - e^-x) (the level itself is finite while x <= 2 ln(DBL_MAX)).
    const double ln_max = std::log(std::numeric_limits<double>::max());
    for (std::size_t i = 0; i < n; ++i) {
        const double x = beta_d * t[i] * t[i] / 2 + beta_min * t[i];
        s[i] = x <= ln_max ? std::sqrt(std::exp(x) - 1) : std::exp(x / 2) * std::sqrt(-std::expm1(-x));
    }
    check_argument(std::isfinite(s.front()), fn, "beta_d", beta_d,
                   "gives sigma(1) = sqrt(e^(beta_d / 2 + beta_min) - 1) beyond double (beta_min = " +
                       detail::value_text(beta_min) + ")");
    s.push_back(0);
    return detail::converted<T>(s);
}

/// A discrete model's trained sigmas, sigma_t = sqrt((1 - abar_t) / abar_t), ascending with t
/// (Stable Diffusion 1.x: 0.0291671582 ... 14.6146412293). abar must be in (0, 1] and non-increasing.
template <class T = double>
std::vector<T> sigmas_from_alphas_cumprod(span<const double> alphas_cumprod) {
    constexpr const char* fn = "sigmas_from_alphas_cumprod";
    check_argument(alphas_cumprod.size() >= 1, fn, "alphas_cumprod.size()", alphas_cumprod.size(), "must be >= 1");
    std::vector<double> s(alphas_cumprod.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const double a = alphas_cumprod[i];
        if (!(a > 0 && a <= 1))
            detail::fail_argument(fn, "alphas_cumprod[i]", a, "must be in (0, 1] (i = " + std::to_string(i) + ")");
        if (i > 0 && !(a <= alphas_cumprod[i - 1]))
            detail::fail_argument(fn, "alphas_cumprod[i]", a, "must not increase (i = " + std::to_string(i) + ")");
        const double r = (1 - a) / a;  // overflows for a < 1 / DBL_MAX, where the sigma does not
        s[i] = std::isfinite(r) ? std::sqrt(r) : std::sqrt(1 - a) / std::sqrt(a);
    }
    return detail::converted<T>(s);
}

/// The sigma of a discrete model at timestep t in [0, T - 1] (fractional allowed), from its
/// trained sigmas (ascending): linear (diffusers) or log-linear (k-diffusion t_to_sigma).
inline double sigma_at_timestep(span<const double> trained_sigmas, double t,
                                sigma_interpolation how = sigma_interpolation::linear) {
    detail::check_trained("sigma_at_timestep", trained_sigmas);
    detail::check_timestep("sigma_at_timestep", t, trained_sigmas.size());
    return detail::sigma_at(trained_sigmas, t, how);
}

/// The (fractional) timestep of sigma by log-linear interpolation over the trained log-sigmas,
/// clamped to [0, T - 1] (diffusers _sigma_to_t, k-diffusion DiscreteSchedule.sigma_to_t).
/// The inverse of sigma_at_timestep(..., log_linear) inside the trained range.
inline double timestep_at_sigma(span<const double> trained_sigmas, double sigma) {
    detail::check_trained("timestep_at_sigma", trained_sigmas);
    check_argument(sigma >= 0, "timestep_at_sigma", "sigma", sigma, "must be >= 0");
    std::vector<double> ls(trained_sigmas.size());
    for (std::size_t i = 0; i < ls.size(); ++i) ls[i] = std::log(trained_sigmas[i]);
    return detail::timestep_at_log_sigma(ls, sigma);
}

/// How discrete_sigmas places its n levels.
enum class sigma_spacing {
    timesteps,    ///< the model's sigma at each given timestep (diffusers' default)
    karras,       ///< Karras sigmas between the sigmas at the first and last timestep (use_karras_sigmas)
    exponential   ///< log-uniform between the same two (use_exponential_sigmas)
};

/// A discrete model's sampling grid: n + 1 sigmas and the n timesteps the model is called at.
template <class T>
struct discrete_grid {
    std::vector<T> sigmas;     ///< n levels, descending, then the final one
    std::vector<T> timesteps;  ///< model time of each of the n levels (fractional for karras/exponential)
};

/// diffusers EulerDiscreteScheduler.set_timesteps: the sigma at each of `timesteps` (from
/// gmk::timesteps_fractional; linear interpolation unless `how` says otherwise); with karras or
/// exponential spacing, n new levels between the first and last of those, mapped back to
/// timesteps by timestep_at_sigma; then the final level (0, or the smallest trained sigma).
/// Karras uses rho = 7, as diffusers does.
template <class T = double>
discrete_grid<T> discrete_sigmas(span<const double> alphas_cumprod, span<const double> timesteps,
                                 sigma_spacing spacing = sigma_spacing::timesteps,
                                 final_sigma final = final_sigma::zero,
                                 sigma_interpolation how = sigma_interpolation::linear, double rho = 7.0) {
    constexpr const char* fn = "discrete_sigmas";
    const std::vector<double> trained = sigmas_from_alphas_cumprod<double>(alphas_cumprod);
    detail::check_trained(fn, trained);
    const std::size_t n = timesteps.size();
    check_argument(n >= 1, fn, "timesteps.size()", n, "must be >= 1");
    for (std::size_t i = 0; i < n; ++i) {
        detail::check_timestep(fn, timesteps[i], trained.size());
        if (i > 0 && !(timesteps[i] < timesteps[i - 1]))
            detail::fail_argument(fn, "timesteps[i]", timesteps[i], "must decrease (i = " + std::to_string(i) + ")");
    }
    check_argument(rho > 0 && std::isfinite(rho), fn, "rho", rho, "must be finite and > 0");
    std::vector<double> s(n), t(timesteps.begin(), timesteps.end());
    for (std::size_t i = 0; i < n; ++i) s[i] = detail::sigma_at(trained, timesteps[i], how);
    if (spacing != sigma_spacing::timesteps) {
        const double smax = s.front(), smin = s.back();
        s = spacing == sigma_spacing::karras ? detail::karras(n, smin, smax, rho) : detail::exponential(n, smin, smax);
        std::vector<double> ls(trained.size());
        for (std::size_t i = 0; i < ls.size(); ++i) ls[i] = std::log(trained[i]);
        for (std::size_t i = 0; i < n; ++i) t[i] = detail::timestep_at_log_sigma(ls, s[i]);
    }
    s.push_back(final == final_sigma::zero ? 0.0 : trained.front());
    return {detail::converted<T>(s), detail::converted<T>(t)};
}

}  // namespace gmk
