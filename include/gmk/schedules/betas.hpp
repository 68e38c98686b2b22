// gmk: training noise schedules of discrete (VP/DDPM) diffusion models: betas, the cumulative
// products of alpha = 1 - beta, and the zero-terminal-SNR rescaling.
//
//   gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012)   Stable Diffusion 1.x
//   gmk::alphas_cumprod(betas)                                           abar_t = prod (1 - beta_i)
//   gmk::rescale_zero_terminal_snr(betas)                                Lin et al. 2023, Alg. 1
//
// Everything is computed in double and converted to T at the end (schedules are built once,
// never on a sampler's hot path). diffusers builds the same tables in float32 (torch's
// linspace/cumprod in DDPMScheduler.__init__ and its siblings); gmk's double tables are the
// exact values those float32 tables round.
#pragma once

#include "../core/error.hpp"
#include "../core/view.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace gmk {

/// The beta schedules of diffusers' DDPM-family schedulers (`beta_schedule=` in their configs).
enum class beta_schedule {
    linear,             ///< beta = linspace(beta_start, beta_end, T) (Ho et al. 2020)
    scaled_linear,      ///< beta = linspace(sqrt(beta_start), sqrt(beta_end), T)^2 (Stable Diffusion)
    squaredcos_cap_v2,  ///< the cosine abar of Nichol & Dhariwal 2021, betas capped at 0.999
    sigmoid             ///< beta = sigmoid(linspace(-6, 6, T)) * (beta_end - beta_start) + beta_start
};

/// The value diffusers' Euler and DPM-Solver schedulers give abar[T-1] after
/// rescale_zero_terminal_snr, so that sigma = sqrt((1 - abar) / abar) stays finite (2^-24).
inline constexpr double zero_terminal_snr_alphas_cumprod = 0x1p-24;

namespace detail {

/// torch.linspace's CPU formula: the first half counts up from start, the second half down from
/// end, so both ends are exact (numpy's differs by an ulp in the middle at most).
inline std::vector<double> linspace(double start, double end, std::size_t n) {
    std::vector<double> v(n);
    if (n == 1) {
        v[0] = start;
        return v;
    }
    const double step = (end - start) / double(n - 1);
    const std::size_t half = n / 2;
    for (std::size_t i = 0; i < n; ++i)
        v[i] = i < half ? start + step * double(i) : end - step * double(n - i - 1);
    return v;
}

template <class T>
std::vector<T> converted(const std::vector<double>& v) {
    if constexpr (std::is_same_v<T, double>) {
        return v;
    } else {
        return std::vector<T>(v.begin(), v.end());
    }
}

inline const char* beta_schedule_name(beta_schedule s) {
    switch (s) {
        case beta_schedule::linear: return "linear";
        case beta_schedule::scaled_linear: return "scaled_linear";
        case beta_schedule::squaredcos_cap_v2: return "squaredcos_cap_v2";
        case beta_schedule::sigmoid: return "sigmoid";
    }
    return "?";
}

}  // namespace detail

/// The T = num_train_timesteps betas of `schedule`. beta_start and beta_end are ignored by
/// squaredcos_cap_v2; otherwise 0 <= beta_start <= beta_end < 1. Throws std::invalid_argument.
template <class T = double>
std::vector<T> betas(beta_schedule schedule, std::size_t num_train_timesteps, double beta_start = 0.0001,
                     double beta_end = 0.02) {
    constexpr const char* fn = "betas";
    check_argument(num_train_timesteps >= 1, fn, "num_train_timesteps", num_train_timesteps, "must be >= 1");
    const bool uses_range = schedule != beta_schedule::squaredcos_cap_v2;
    if (uses_range) {
        check_argument(beta_start >= 0 && beta_start < 1, fn, "beta_start", beta_start, "must be in [0, 1)");
        check_argument(beta_end >= 0 && beta_end < 1, fn, "beta_end", beta_end, "must be in [0, 1)");
        check_argument(beta_end >= beta_start, fn, "beta_end", beta_end, "must be >= beta_start");
    }
    const std::size_t n = num_train_timesteps;
    std::vector<double> b;
    switch (schedule) {
        case beta_schedule::linear: b = detail::linspace(beta_start, beta_end, n); break;
        case beta_schedule::scaled_linear:
            b = detail::linspace(std::sqrt(beta_start), std::sqrt(beta_end), n);
            for (double& x : b) x *= x;
            break;
        case beta_schedule::squaredcos_cap_v2: {
            // diffusers betas_for_alpha_bar(..., "cosine"): abar(t) = cos^2((t + s) / (1 + s) * pi/2)
            // with s = 0.008 (Nichol & Dhariwal 2021, eq. 17), beta_i = 1 - abar((i+1)/T) / abar(i/T),
            // capped at 0.999 to avoid the singularity at t = 1.
            const double pi = 3.14159265358979323846;
            auto abar = [&](double t) {
                const double c = std::cos((t + 0.008) / 1.008 * pi / 2);
                return c * c;
            };
            b.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                const double t1 = double(i) / double(n), t2 = double(i + 1) / double(n);
                b[i] = std::min(1 - abar(t2) / abar(t1), 0.999);
            }
            break;
        }
        case beta_schedule::sigmoid:
            b = detail::linspace(-6, 6, n);
            for (double& x : b) x = 1 / (1 + std::exp(-x)) * (beta_end - beta_start) + beta_start;
            break;
        default:
            detail::fail_argument(fn, "schedule", int(schedule), "not a gmk::beta_schedule");
    }
    return detail::converted<T>(b);
}

/// abar_t = prod_{i <= t} (1 - beta_i), for any betas in [0, 1) (user-given ones included).
template <class T = double>
std::vector<T> alphas_cumprod(span<const double> betas) {
    check_argument(betas.size() >= 1, "alphas_cumprod", "betas.size()", betas.size(), "must be >= 1");
    std::vector<double> a(betas.size());
    double p = 1;
    for (std::size_t i = 0; i < betas.size(); ++i) {
        if (!(betas[i] >= 0 && betas[i] < 1))
            detail::fail_argument("alphas_cumprod", "betas[i]", betas[i],
                                  "must be in [0, 1) (i = " + std::to_string(i) + ")");
        p *= 1 - betas[i];
        a[i] = p;
    }
    return detail::converted<T>(a);
}

/// The betas rescaled so that the final abar is exactly 0 while abar_0 is kept: sqrt(abar) is
/// shifted by its last value and scaled back to its first (Lin et al., "Common Diffusion Noise
/// Schedules and Sample Steps are Flawed", 2023, Algorithm 1; diffusers rescale_zero_terminal_snr).
/// The last beta becomes 1; a sampler that needs a finite sigma there sets abar[T-1] to
/// zero_terminal_snr_alphas_cumprod (rescaled_alphas_cumprod does both).
template <class T = double>
std::vector<T> rescale_zero_terminal_snr(span<const double> betas) {
    constexpr const char* fn = "rescale_zero_terminal_snr";
    check_argument(betas.size() >= 2, fn, "betas.size()", betas.size(), "must be >= 2");
    const std::vector<double> abar = alphas_cumprod<double>(betas);
    const std::size_t n = abar.size();
    std::vector<double> s(n);
    for (std::size_t i = 0; i < n; ++i) s[i] = std::sqrt(abar[i]);
    const double s0 = s[0], sT = s[n - 1];
    check_argument(s0 > sT, fn, "betas", "(all zero)", "abar must decrease from first to last");
    for (double& x : s) x = (x - sT) * (s0 / (s0 - sT));
    // beta_i = 1 - abar_i / abar_{i-1}. Where the rescaled abar is already 0 before the end (abar
    // constant over its last levels), 0 / 0: those levels are at zero SNR too, so beta = 1.
    std::vector<double> b(n);
    b[0] = 1 - s[0] * s[0];
    for (std::size_t i = 1; i < n; ++i) {
        const double prev = s[i - 1] * s[i - 1];
        b[i] = prev > 0 ? 1 - (s[i] * s[i]) / prev : 1.0;
    }
    return detail::converted<T>(b);
}

/// alphas_cumprod of zero-terminal-SNR-rescaled betas with abar[T-1] = 2^-24, as diffusers'
/// EulerDiscrete and DPMSolverMultistep schedulers hold them (rescale_betas_zero_snr=True).
/// Levels whose rescaled abar falls below 2^-24 before the end are held at 2^-24, so that abar
/// never increases (diffusers keeps them, and its abar then rises at the last level: linear betas
/// 0.0001 .. 0.02 over T = 1000 rescale to abar[T-2] = 4.2e-9). Every value is in (0, 1].
template <class T = double>
std::vector<T> rescaled_alphas_cumprod(span<const double> betas) {
    const std::vector<double> b = rescale_zero_terminal_snr<double>(betas);
    std::vector<double> a(b.size());
    double p = 1;
    for (std::size_t i = 0; i < b.size(); ++i) {
        p *= 1 - std::min(std::max(b[i], 0.0), 1.0);  // the last beta is 1 up to rounding
        a[i] = std::max(p, zero_terminal_snr_alphas_cumprod);
    }
    a.back() = zero_terminal_snr_alphas_cumprod;
    return detail::converted<T>(a);
}

}  // namespace gmk
