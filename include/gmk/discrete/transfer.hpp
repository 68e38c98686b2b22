// gmk: how many masked positions a discrete-diffusion step commits (the transfer schedules of
// LLaDA, Dream and Fast-dLLM), and which ones (top-k, sampled without replacement, threshold).
//
//   LLaDA (generate.py, get_num_transfer_tokens): n masked positions of a block over its s steps,
//     n / s each, the first n % s steps one more.
//   Dream (generation_utils.py, _sample): timesteps t = linspace(1, eps, steps + 1) in float32;
//     step i commits int(n * (1 - t[i+1] / t[i])) of the n masked positions (float32 arithmetic,
//     truncated), all of them at the last step; its "origin" algorithm instead commits each masked
//     position with probability 1 - t[i+1] / t[i] (1 at the last step).
//   Fast-dLLM (threshold decoding): every candidate whose confidence is at least tau, and always
//     the most confident one.
// Selections take confidences with -inf for positions that are not candidates and return
// positions in descending order of confidence, ties to the lower position.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"

namespace gmk::discrete {

// ---- how many ----------------------------------------------------------------------------

/// LLaDA's count for step `step` of `steps` that share `masked` positions: masked / steps, plus
/// one for the first masked % steps steps.
inline std::size_t linear_transfer_count(std::size_t masked, std::size_t steps, std::size_t step) {
    check_argument(steps >= 1, "discrete::linear_transfer_count", "steps", steps, "must be at least 1");
    check_argument(step < steps, "discrete::linear_transfer_count", "step", step, "must be below steps");
    return masked / steps + (step < masked % steps ? 1 : 0);
}

/// Dream's timesteps: torch.linspace(1, eps, steps + 1) in float32, as torch's CPU kernel computes
/// it: the first half start + i h, the second half end - (n - 1 - i) h, each one fused
/// multiply-add (torch's build contracts them; the values differ from two roundings in the last
/// bit).
inline void dream_timesteps(std::size_t steps, double eps, span<float> out) {
    constexpr const char* fn = "discrete::dream_timesteps";
    check_argument(steps >= 1, fn, "steps", steps, "must be at least 1");
    check_argument(eps > 0 && eps < 1, fn, "eps", eps, "must lie in (0, 1)");
    check_argument(out.size() == steps + 1, fn, "out.size()", out.size(), "must equal steps + 1");
    const std::size_t n = steps + 1;
    const float start = 1.0f, end = static_cast<float>(eps);
    const float step = (end - start) / static_cast<float>(n - 1);
    const std::size_t half = n / 2;
    for (std::size_t i = 0; i < n; ++i)
        out[i] = i < half ? std::fma(step, static_cast<float>(i), start) : std::fma(-step, static_cast<float>(n - i - 1), end);
}

/// 1 - t[i+1] / t[i] in float32 (Dream's p_transfer), 1 at the last step.
inline float dream_transfer_fraction(span<const float> timesteps, std::size_t step) {
    check_argument(timesteps.size() >= 2, "discrete::dream_transfer_fraction", "timesteps.size()", timesteps.size(),
                   "must be at least 2");
    check_argument(step + 1 < timesteps.size(), "discrete::dream_transfer_fraction", "step", step,
                   "must be below timesteps.size() - 1");
    if (step + 2 == timesteps.size()) return 1.0f;
    const float ratio = timesteps[step + 1] / timesteps[step];
    return 1.0f - ratio;
}

/// Dream's count for `masked` positions at `step`: int(float32(masked) * fraction), truncated,
/// or all of them at the last step.
inline std::size_t dream_transfer_count(std::size_t masked, span<const float> timesteps, std::size_t step) {
    if (step + 2 == timesteps.size()) return masked;
    const float n = static_cast<float>(masked) * dream_transfer_fraction(timesteps, step);
    return static_cast<std::size_t>(n);
}

// ---- which ones ----------------------------------------------------------------------------

namespace detail::select {

template <class T>
bool before(const T* c, std::size_t a, std::size_t b) noexcept {  // higher confidence, then lower index
    return c[a] > c[b] || (c[a] == c[b] && a < b);
}

// The candidates (confidence > -inf) of c[0..n) into order; returns their number.
template <class T>
std::size_t candidates(const T* c, std::size_t n, std::size_t* order) noexcept {
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (c[i] > -std::numeric_limits<T>::infinity()) order[m++] = i;
    return m;
}

template <class T>
void check(span<const T> confidence, span<std::size_t> order, const char* fn) {
    check_pointer(confidence.data(), confidence.size(), fn, "confidence");
    check_pointer(order.data(), order.size(), fn, "order");
    check_argument(order.size() >= confidence.size(), fn, "order.size()", order.size(),
                   "must be at least confidence.size()");
}

}  // namespace detail::select

/// The k most confident candidates (confidence > -inf; NaN is not a candidate) into order[0..),
/// most confident first, ties to the lower position: a partial selection, O(n + k log k).
/// order must hold confidence.size() entries (it is the scratch space too); returns
/// min(k, number of candidates).
template <class T>
std::size_t select_top_k(span<const T> confidence, std::size_t k, span<std::size_t> order) {
    detail::select::check(confidence, order, "discrete::select_top_k");
    const T* c = confidence.data();
    const std::size_t m = detail::select::candidates(c, confidence.size(), order.data());
    k = std::min(k, m);
    const auto cmp = [c](std::size_t a, std::size_t b) { return detail::select::before(c, a, b); };
    if (k < m) std::nth_element(order.begin(), order.begin() + k, order.begin() + m, cmp);
    std::sort(order.begin(), order.begin() + k, cmp);
    return k;
}

/// k candidates drawn without replacement with probabilities softmax(confidence / temperature)
/// (Dream's alg_temp > 0): the k largest keys w_i / E_i over exponential variates E_i (one per
/// position; torch.multinomial without replacement does the same, so given its E the positions
/// are Dream's). Keys are computed in T. Returns min(k, candidates), the largest key first.
template <class T>
std::size_t select_sampled(span<const T> confidence, double temperature, std::size_t k,
                           span<const double> exponentials, span<std::size_t> order) {
    constexpr const char* fn = "discrete::select_sampled";
    detail::select::check(confidence, order, fn);
    check_argument(temperature > 0 && std::isfinite(temperature), fn, "temperature", temperature,
                   "must be finite and > 0");
    check_argument(exponentials.size() >= confidence.size(), fn, "exponentials.size()", exponentials.size(),
                   "must be at least confidence.size()");
    const T* c = confidence.data();
    const std::size_t n = confidence.size();
    const std::size_t m = detail::select::candidates(c, n, order.data());
    k = std::min(k, m);
    if (k == 0) return 0;
    // The weights softmax(c / temperature) in double (c / temperature may overflow T), the keys
    // w / E in T as torch divides its float probabilities.
    double top = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < m; ++j) top = std::max(top, double(c[order[j]]));
    const double inv = 1 / temperature;
    double z = 0;
    for (std::size_t j = 0; j < m; ++j) z += std::exp((double(c[order[j]]) - top) * inv);
    const auto key = [&](std::size_t i) {
        return static_cast<T>(std::exp((double(c[i]) - top) * inv) / z) / static_cast<T>(exponentials[i]);
    };
    const auto cmp = [&](std::size_t a, std::size_t b) {
        const T ka = key(a), kb = key(b);
        return ka > kb || (ka == kb && a < b);
    };
    if (k < m) std::nth_element(order.begin(), order.begin() + k, order.begin() + m, cmp);
    std::sort(order.begin(), order.begin() + k, cmp);
    return k;
}

/// Fast-dLLM's threshold rule: every candidate with confidence >= tau, and at least the most
/// confident one, into order[0..) in descending order. tau in (0, 1]. Returns the count (0 only
/// when there is no candidate).
template <class T>
std::size_t select_threshold(span<const T> confidence, double tau, span<std::size_t> order) {
    constexpr const char* fn = "discrete::select_threshold";
    detail::select::check(confidence, order, fn);
    check_argument(tau > 0 && tau <= 1, fn, "tau", tau, "must lie in (0, 1]");
    const T* c = confidence.data();
    const std::size_t m = detail::select::candidates(c, confidence.size(), order.data());
    if (m == 0) return 0;
    const auto cmp = [c](std::size_t a, std::size_t b) { return detail::select::before(c, a, b); };
    std::iter_swap(order.begin(), std::min_element(order.begin(), order.begin() + m, cmp));
    const auto mid = std::partition(order.begin() + 1, order.begin() + m,
                                    [&](std::size_t i) { return double(c[i]) >= tau; });
    std::sort(order.begin() + 1, mid, cmp);
    return static_cast<std::size_t>(mid - order.begin());
}

}  // namespace gmk::discrete
