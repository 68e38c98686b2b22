// gmk: keeping the denoised estimate x0_hat in range: clip_sample and dynamic thresholding.
//
//   clip_sample          x0 = clamp(x0, -r, r)  (diffusers clip_sample / clip_sample_range)
//   dynamic_threshold    per sample: s = quantile(|x0|, ratio), clamped to [1, sample_max_value];
//                        x0 = clamp(x0, -s, s) / s  (Saharia et al. 2022, "Photorealistic
//                        Text-to-Image Diffusion Models with Deep Language Understanding", sec. 2.3;
//                        diffusers DDPMScheduler._threshold_sample)
//
// The quantile is torch.quantile's (and numpy's default "linear" method): with the sorted values
// v[0..n) and r = ratio * (n - 1), q = v[floor r] + (r - floor r) (v[ceil r] - v[floor r]).
// To give torch's bits in float as well, the arithmetic follows torch: ratio is rounded to T,
// r is formed in double from that, the weight r - floor r is rounded to T, and the two values are
// blended with torch.lerp's formula in T. torch.clamp(s, min = 1, max = sample_max_value) gives
// sample_max_value when that is below 1 (max wins); so does this. diffusers' default
// sample_max_value = 1 makes dynamic thresholding the same as clip_sample with r = 1.
//
// No allocation: the order statistics come from std::nth_element on a scratch buffer of
// sample_size elements the caller provides (it receives |x0| of the last sample; its previous
// contents do not matter). Expected O(sample_size) per sample.
//
// NaN: clip_sample and the final clamp keep NaN elements NaN; a sample holding NaN gets an
// unspecified threshold (std::nth_element's order is unspecified with NaN; torch.quantile returns
// NaN there). Build with -ffp-contract=off (the default of ISO -std=c++17) for torch's float bits:
// a contracted lerp may differ from torch by an ulp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../core/error.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/ops.hpp"

namespace gmk {

/// Clamps x0[0..n) to [-range, range] in place (diffusers clip_sample; range > 0, finite).
/// NaN stays NaN.
template <class B = simd::native, class T>
void clip_sample(T* x0, std::size_t n, double range = 1.0) {
    constexpr const char* fn = "clip_sample";
    check_pointer(x0, n, fn, "x0");
    check_argument(range > 0 && std::isfinite(range), fn, "range", range, "must be finite and > 0");
    const T hi = T(range), lo = T(-range);
    simd::map<B>(n, simd::out(x0), simd::in(static_cast<const T*>(x0)), [=](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        return simd::min(simd::max(v, V(lo)), V(hi));
    });
}

/// quantile(|x|, ratio) of x[0..n), n >= 1, ratio in [0, 1], with torch.quantile's linear
/// interpolation and rounding (see the top of this file). `scratch` holds n elements and is
/// overwritten (with |x|, partially ordered). Allocation-free.
template <class B = simd::native, class T>
T abs_quantile(const T* x, std::size_t n, T* scratch, double ratio) {
    constexpr const char* fn = "abs_quantile";
    check_pointer(x, n, fn, "x");
    check_pointer(scratch, n, fn, "scratch");
    check_argument(n >= 1, fn, "n", n, "must be >= 1");
    check_argument(ratio >= 0 && ratio <= 1, fn, "ratio", ratio, "must be in [0, 1]");
    simd::map<B>(n, simd::out(scratch), simd::in(x), [](const auto& v) { return simd::abs(v); });
    const double r = double(T(ratio)) * double(n - 1);
    const double below = std::floor(r);
    const std::size_t lo = std::size_t(below);
    const std::size_t hi = std::min(std::size_t(std::ceil(r)), n - 1);
    std::nth_element(scratch, scratch + lo, scratch + n);
    const T v_lo = scratch[lo];
    // After nth_element everything past lo is >= v_lo: the next order statistic is their minimum.
    const T v_hi = hi == lo ? v_lo : *std::min_element(scratch + lo + 1, scratch + n);
    const T w = T(r - below);
    // torch.lerp: start + w (end - start) for w < 1/2, else end - (end - start) (1 - w).
    const T d = v_hi - v_lo;
    return w < T(0.5) ? v_lo + w * d : v_hi - d * (T(1) - w);
}

/// Dynamic thresholding of a batch of x0 estimates, in place: `batch` samples of `sample_size`
/// contiguous elements each (all dimensions but the batch one, as diffusers flattens them).
/// `scratch` holds sample_size elements (overwritten). ratio in [0, 1] (diffusers
/// dynamic_thresholding_ratio, default 0.995); sample_max_value > 0 (default 1).
template <class B = simd::native, class T>
void dynamic_threshold(T* x0, std::size_t batch, std::size_t sample_size, T* scratch, double ratio = 0.995,
                       double sample_max_value = 1.0) {
    constexpr const char* fn = "dynamic_threshold";
    check_pointer(x0, batch * sample_size, fn, "x0");
    check_pointer(scratch, sample_size, fn, "scratch");
    check_argument(sample_size >= 1 || batch == 0, fn, "sample_size", sample_size, "must be >= 1");
    check_argument(ratio >= 0 && ratio <= 1, fn, "ratio", ratio, "must be in [0, 1]");
    check_argument(sample_max_value > 0 && std::isfinite(sample_max_value), fn, "sample_max_value",
                   sample_max_value, "must be finite and > 0");
    for (std::size_t b = 0; b < batch; ++b) {
        T* x = x0 + b * sample_size;
        const T q = abs_quantile<B>(x, sample_size, scratch, ratio);
        // torch.clamp(q, min=1, max=sample_max_value) = min(max(q, 1), sample_max_value).
        const T s = std::min(std::max(q, T(1)), T(sample_max_value));
        simd::map<B>(sample_size, simd::out(x), simd::in(static_cast<const T*>(x)), [=](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            return simd::min(simd::max(v, V(-s)), V(s)) / V(s);
        });
    }
}

}  // namespace gmk
