// gmk: parameterisations: what the network predicts, turned into (x0_hat, eps_hat) and back.
//
// At a noise level x = alpha x0 + sigma eps, every parameterisation is a linear map between the
// network output and the pair (x0, eps) (general alpha/sigma forms):
//   epsilon        out = eps            x0 = (x - sigma eps) / alpha
//   sample         out = x0             eps = (x - alpha x0) / sigma
//   v              out = alpha eps - sigma x0  (Salimans & Ho 2022, "Progressive Distillation")
//                  x0 = (alpha x - sigma v) / (alpha^2 + sigma^2), eps = (sigma x + alpha v) / (alpha^2 + sigma^2)
//   flow_velocity  out = eps - x0 = dx/dt on the path alpha = 1 - t, sigma = t (rectified flow)
//                  x0 = (x - sigma v) / (alpha + sigma), eps = (x + alpha v) / (alpha + sigma)
//                  (alpha + sigma = 1 on a flow grid: x0 = x - t v, eps = x + (1 - t) v)
// The two ends of a grid:
//   sigma = 0 (clean end)  x0 = x for every prediction; eps is not determined by x, so `sample`
//                          cannot give it (division by sigma = 0): to_x0_eps throws there.
//   alpha = 0 (pure noise) eps = x; x0 is not determined by x, so `epsilon` cannot give it
//                          (division by alpha = 0): to_x0_eps throws there.
//   v and flow_velocity are defined at both ends (alpha^2 + sigma^2 > 0, alpha + sigma > 0).
// model_output_from (the inverse) is defined at every level.
//
// The kernels are fused (one pass over x and the output writes both x0 and eps), allocation-free,
// and run on every backend; the coefficients are computed once per call in double and rounded to
// T once. Each result is fma(c1, a, c2 * b): within about 1.5 ulp of |c1 a| + |c2 b| plus the
// rounding of the coefficients (0.5 ulp each). Pass-through results (eps for epsilon, x0 for
// sample) are exact copies.
#pragma once

#include <cmath>
#include <cstddef>
#include <tuple>

#include "../core/error.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/ops.hpp"
#include "noise_levels.hpp"

namespace gmk {

/// What a network predicts (diffusers' prediction_type; flow_velocity is FlowMatch's target).
enum class prediction { epsilon, sample, v, flow_velocity };

/// diffusers' spelling: "epsilon", "sample", "v_prediction", "flow_prediction".
inline const char* prediction_name(prediction p) noexcept {
    switch (p) {
        case prediction::epsilon: return "epsilon";
        case prediction::sample: return "sample";
        case prediction::v: return "v_prediction";
        case prediction::flow_velocity: return "flow_prediction";
    }
    return "?";
}

/// The linear map (x, model_output) -> (x0, eps) of a prediction at a level, in double:
/// x0 = x0_x x + x0_out out, eps = eps_x x + eps_out out.
struct x0_eps_coefficients {
    double x0_x, x0_out, eps_x, eps_out;
};

namespace detail {

inline void check_level(const char* fn, const noise_level& l) {
    check_argument(std::isfinite(l.alpha) && l.alpha >= 0, fn, "level.alpha", l.alpha, "must be finite and >= 0");
    check_argument(std::isfinite(l.sigma) && l.sigma >= 0, fn, "level.sigma", l.sigma, "must be finite and >= 0");
    check_argument(l.alpha > 0 || l.sigma > 0, fn, "level.alpha", l.alpha, "and level.sigma must not both be 0");
}

}  // namespace detail

/// The coefficients of to_x0_eps. Throws std::invalid_argument for an invalid level, for
/// epsilon at alpha = 0 and for sample at sigma = 0 (see the top of this file).
inline x0_eps_coefficients to_x0_eps_coefficients(prediction p, const noise_level& l) {
    constexpr const char* fn = "to_x0_eps";
    detail::check_level(fn, l);
    const double a = l.alpha, s = l.sigma;
    switch (p) {
        case prediction::epsilon:
            check_argument(a > 0, fn, "level.alpha", a, "must be > 0 for epsilon prediction (x0 = (x - sigma eps) / alpha)");
            return {1 / a, -s / a, 0, 1};
        case prediction::sample:
            check_argument(s > 0, fn, "level.sigma", s, "must be > 0 for sample prediction (eps = (x - alpha x0) / sigma)");
            return {0, 1, 1 / s, -a / s};
        case prediction::v: {
            const double d = a * a + s * s;
            return {a / d, -s / d, s / d, a / d};
        }
        case prediction::flow_velocity: {
            const double d = a + s;
            return {1 / d, -s / d, 1 / d, a / d};
        }
    }
    detail::fail_argument(fn, "prediction", int(p), "is not a gmk::prediction");
}

/// Turns a network output at `level` into the denoised estimate x0 and the noise estimate eps:
/// x[0..n), model_output[0..n) -> x0[0..n), eps[0..n). T is float or double. x0 and eps must
/// be distinct arrays; each may alias x or model_output exactly (in place). Allocation-free.
/// Throws std::invalid_argument for null pointers with n > 0, an invalid level, and the
/// undefined ends (epsilon at alpha = 0, sample at sigma = 0).
template <class B = simd::native, class T>
void to_x0_eps(prediction p, const noise_level& level, const T* x, const T* model_output, T* x0, T* eps,
               std::size_t n) {
    static_assert(std::is_floating_point_v<T>, "gmk::to_x0_eps: T must be float or double");
    constexpr const char* fn = "to_x0_eps";
    check_pointer(x, n, fn, "x");
    check_pointer(model_output, n, fn, "model_output");
    check_pointer(x0, n, fn, "x0");
    check_pointer(eps, n, fn, "eps");
    check_argument(x0 != eps || n == 0, fn, "eps", eps, "must not be the same array as x0");
    const x0_eps_coefficients c = to_x0_eps_coefficients(p, level);
    const T x0_x = T(c.x0_x), x0_out = T(c.x0_out), eps_x = T(c.eps_x), eps_out = T(c.eps_out);
    const auto outs = simd::out(x0, eps);
    const auto ins = simd::in(x, model_output);
    switch (p) {
        case prediction::epsilon:  // eps = out exactly
            simd::map<B>(n, outs, ins, [=](const auto& xv, const auto& ov) {
                using V = std::decay_t<decltype(xv)>;
                return std::make_tuple(simd::fma(V(x0_x), xv, V(x0_out) * ov), ov);
            });
            return;
        case prediction::sample:  // x0 = out exactly
            simd::map<B>(n, outs, ins, [=](const auto& xv, const auto& ov) {
                using V = std::decay_t<decltype(xv)>;
                return std::make_tuple(ov, simd::fma(V(eps_x), xv, V(eps_out) * ov));
            });
            return;
        case prediction::v:
        case prediction::flow_velocity:
            simd::map<B>(n, outs, ins, [=](const auto& xv, const auto& ov) {
                using V = std::decay_t<decltype(xv)>;
                return std::make_tuple(simd::fma(V(x0_x), xv, V(x0_out) * ov), simd::fma(V(eps_x), xv, V(eps_out) * ov));
            });
            return;
    }
}

/// The network output that a prediction type would give for (x0, eps) at `level` (the inverse
/// of to_x0_eps; defined at every valid level): epsilon -> eps, sample -> x0,
/// v -> alpha eps - sigma x0, flow_velocity -> eps - x0. `out` may alias x0 or eps exactly.
/// Used to build training targets and to convert between parameterisations.
template <class B = simd::native, class T>
void model_output_from(prediction p, const noise_level& level, const T* x0, const T* eps, T* out,
                       std::size_t n) {
    static_assert(std::is_floating_point_v<T>, "gmk::model_output_from: T must be float or double");
    constexpr const char* fn = "model_output_from";
    check_pointer(x0, n, fn, "x0");
    check_pointer(eps, n, fn, "eps");
    check_pointer(out, n, fn, "out");
    detail::check_level(fn, level);
    const T a = T(level.alpha), ms = T(-level.sigma);
    const auto ins = simd::in(x0, eps);
    switch (p) {
        case prediction::epsilon:
            simd::map<B>(n, simd::out(out), ins, [](const auto&, const auto& ev) { return ev; });
            return;
        case prediction::sample:
            simd::map<B>(n, simd::out(out), ins, [](const auto& xv, const auto&) { return xv; });
            return;
        case prediction::v:
            simd::map<B>(n, simd::out(out), ins, [=](const auto& xv, const auto& ev) {
                using V = std::decay_t<decltype(xv)>;
                return simd::fma(V(a), ev, V(ms) * xv);
            });
            return;
        case prediction::flow_velocity:
            simd::map<B>(n, simd::out(out), ins, [](const auto& xv, const auto& ev) { return ev - xv; });
            return;
    }
    detail::fail_argument(fn, "prediction", int(p), "is not a gmk::prediction");
}

}  // namespace gmk
