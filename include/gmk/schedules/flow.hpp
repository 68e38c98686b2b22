// gmk: noise levels of rectified-flow / flow-matching models (x_t = (1 - t) x0 + t eps, so the
// level t is both sigma and the model time / T), with the resolution shifts of SD3 and Flux.
//
//   gmk::flow_shift(t, 3.0)                            SD3 static shift, s t / (1 + (s - 1) t)
//   gmk::flow_mu(image_seq_len)                        Flux: mu linear in the token count
//   gmk::flow_time_shift(t, mu, time_shift::exponential)  e^mu / (e^mu + (1/t - 1))
//   gmk::sigmas_flow(n, options)                       diffusers FlowMatchEulerDiscreteScheduler
//   gmk::sigmas_flow(user_sigmas, options)             the same from given levels (Flux pipeline)
#pragma once

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "betas.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace gmk {

/// The two forms of diffusers' time_shift (time_shift_type).
enum class time_shift {
    exponential,  ///< e^mu / (e^mu + (1/t - 1)^sigma)  (Flux, SD3 dynamic shifting)
    linear        ///< mu / (mu + (1/t - 1)^sigma)
};

namespace detail {

// s t / (1 + (s - 1) t) evaluated as 1 / (1 + (1 - t) / (s t)): every operation is monotone in
// t, so the shifted grid stays monotone, and t = 1 maps to 1 exactly, t = 0 to 0 (the direct form
// cancels in 1 + (s - 1) for s < 1 and can exceed 1 there).
inline double shifted(double t, double shift) { return 1 / (1 + (1 - t) / (shift * t)); }

}  // namespace detail

/// Static shift of Esser et al. 2024 (SD3), eq. 23: s t / (1 + (s - 1) t) for t in [0, 1]; s > 0.
inline double flow_shift(double t, double shift) {
    check_argument(shift > 0 && std::isfinite(shift), "flow_shift", "shift", shift, "must be finite and > 0");
    check_argument(t >= 0 && t <= 1, "flow_shift", "t", t, "must be in [0, 1]");
    return detail::shifted(t, shift);
}

/// mu for the dynamic shift: linear in the image's token count, from base_shift at
/// base_seq_len to max_shift at max_seq_len (diffusers calculate_shift; Flux defaults;
/// 1024x1024 Flux is image_seq_len = 4096, mu = 1.15).
inline double flow_mu(double image_seq_len, double base_seq_len = 256, double max_seq_len = 4096,
                      double base_shift = 0.5, double max_shift = 1.15) {
    check_argument(max_seq_len != base_seq_len, "flow_mu", "max_seq_len", max_seq_len, "must differ from base_seq_len");
    const double m = (max_shift - base_shift) / (max_seq_len - base_seq_len);
    const double b = base_shift - m * base_seq_len;
    return image_seq_len * m + b;
}

/// The dynamic (resolution-dependent) shift of t in [0, 1]: e^mu / (e^mu + (1/t - 1)^sigma) or
/// mu / (mu + (1/t - 1)^sigma) (diffusers FlowMatchEulerDiscreteScheduler.time_shift); 0 at t = 0.
inline double flow_time_shift(double t, double mu, time_shift form = time_shift::exponential, double sigma = 1.0) {
    constexpr const char* fn = "flow_time_shift";
    const double m = form == time_shift::exponential ? std::exp(mu) : mu;
    check_argument(m > 0 && std::isfinite(m), fn, "mu", mu, "the shift (e^mu or mu) must be finite and > 0");
    check_argument(sigma > 0 && std::isfinite(sigma), fn, "sigma", sigma, "must be finite and > 0");
    check_argument(t >= 0 && t <= 1, fn, "t", t, "must be in [0, 1]");
    return m / (m + std::pow(1 / t - 1, sigma));
}

/// Settings of diffusers' FlowMatchEulerDiscreteScheduler that shape its sigmas.
struct flow_options {
    double shift = 1.0;                          ///< static shift (SD3: 3.0); used unless dynamic
    bool dynamic = false;                        ///< use_dynamic_shifting: shift by mu instead
    double mu = 0.0;                             ///< for dynamic shifting (gmk::flow_mu)
    time_shift form = time_shift::exponential;   ///< time_shift_type
    double shift_terminal = 0.0;                 ///< if > 0, stretch so the last level is this
    std::size_t num_train_timesteps = 1000;
};

namespace detail {

inline void check_flow_options(const char* fn, const flow_options& o) {
    check_argument(o.num_train_timesteps >= 1, fn, "num_train_timesteps", o.num_train_timesteps, "must be >= 1");
    if (!o.dynamic)
        check_argument(o.shift > 0 && std::isfinite(o.shift), fn, "shift", o.shift, "must be finite and > 0");
    else if (o.form == time_shift::linear)
        check_argument(o.mu > 0 && std::isfinite(o.mu), fn, "mu", o.mu, "must be finite and > 0 for the linear time shift");
    else
        check_argument(std::isfinite(o.mu), fn, "mu", o.mu, "must be finite");
    check_argument(o.shift_terminal >= 0 && o.shift_terminal < 1, fn, "shift_terminal", o.shift_terminal,
                   "must be in [0, 1) (0: no stretch)");
}

inline std::vector<double> flow_finish(std::vector<double> s, const flow_options& o) {
    for (double& x : s) x = o.dynamic ? flow_time_shift(x, o.mu, o.form) : shifted(x, o.shift);
    if (o.shift_terminal > 0) {
        // diffusers stretch_shift_to_terminal: scale 1 - t so that the last level becomes
        // shift_terminal (used by LTX-Video).
        check_argument(s.back() < 1, "sigmas_flow", "shift_terminal", o.shift_terminal,
                       "needs a last level below 1 to stretch (n = 1 has only t = 1)");
        const double scale = (1 - s.back()) / (1 - o.shift_terminal);
        for (double& x : s) x = 1 - (1 - x) / scale;
    }
    s.push_back(0);
    return s;
}

}  // namespace detail

/// n flow levels, descending, then 0, as FlowMatchEulerDiscreteScheduler.set_timesteps(n): t
/// linear between its trained extremes, which (without dynamic shifting) it stores already
/// shifted (t_max = shift(1) = 1, t_min = shift(1/T)), and then shifted again (diffusers does
/// shift twice there; SD3's sigmas are these). The model time of level t is t * T.
template <class T = double>
std::vector<T> sigmas_flow(std::size_t n, const flow_options& options = {}) {
    constexpr const char* fn = "sigmas_flow";
    check_argument(n >= 1, fn, "n", n, "must be >= 1");
    detail::check_flow_options(fn, options);
    const double N = double(options.num_train_timesteps);
    double t_min = 1 / N, t_max = 1;
    if (!options.dynamic) {
        t_min = detail::shifted(t_min, options.shift);
        t_max = detail::shifted(t_max, options.shift);
    }
    // numpy.linspace(t_max * T, t_min * T, n) / T; held at or above its last value, which the
    // rounding of i * step + a can pass when the two ends are within a few ulps.
    std::vector<double> s(n);
    const double a = t_max * N, b = t_min * N;
    const double step = n > 1 ? (b - a) / double(n - 1) : 0.0;
    for (std::size_t i = 0; i < n; ++i) s[i] = ((n > 1 && i == n - 1) ? b : std::max(double(i) * step + a, b)) / N;
    return detail::converted<T>(detail::flow_finish(std::move(s), options));
}

/// The given levels (descending in (0, 1]; the Flux pipeline passes linspace(1, 1/n, n)) shifted
/// as options say, then 0: FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=...).
template <class T = double>
std::vector<T> sigmas_flow(span<const double> sigmas, const flow_options& options) {
    constexpr const char* fn = "sigmas_flow";
    check_argument(sigmas.size() >= 1, fn, "sigmas.size()", sigmas.size(), "must be >= 1");
    detail::check_flow_options(fn, options);
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
        if (!(sigmas[i] > 0 && sigmas[i] <= 1))
            detail::fail_argument(fn, "sigmas[i]", sigmas[i], "must be in (0, 1] (i = " + std::to_string(i) + ")");
        if (i > 0 && !(sigmas[i] < sigmas[i - 1]))
            detail::fail_argument(fn, "sigmas[i]", sigmas[i], "must decrease (i = " + std::to_string(i) + ")");
    }
    return detail::converted<T>(detail::flow_finish(std::vector<double>(sigmas.begin(), sigmas.end()), options));
}

}  // namespace gmk
