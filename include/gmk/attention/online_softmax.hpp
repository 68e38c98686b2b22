// gmk: online softmax (Milakov & Gimelshein, arXiv 1805.02867): the running (max, sum) state
// that attention keeps per query row, its merge, and the numerically safe softmax and
// log-sum-exp of a row, on every backend.
//
//   gmk::online_softmax_state<float> s;            // max = -inf, sum = 0: the empty row
//   s.merge(gmk::softmax_stats(x, n));             // a chunk (two vector passes)
//   s.push(3.5f);                                  // one more element
//   float lse = s.log_sum_exp();                   // log sum_i exp(x_i)
//   gmk::softmax(x, n, out);                       // out_i = exp(x_i - lse)
//
// The state (m, l) stands for sum_i exp(x_i) = l * exp(m), with m the largest element seen and
// l = sum_i exp(x_i - m) in [1, count] once a finite element has been seen: nothing overflows
// whatever the magnitudes (FORMULAS.md, Attention: l' = e^(m - m') l + rowsum e^(x - m')).
//
// Defined numerics, the same in the attention kernel (gmk/attention/flash_attention.hpp):
//   - an empty row or a row of -inf only ("fully masked") has max = -inf, sum = 0,
//     log_sum_exp = -inf, and softmax gives all zeros (PyTorch's softmax gives NaN there);
//   - -inf elements weigh exactly 0 and never produce NaN: where the running max is still -inf,
//     exponents are taken against 0 instead of against the max (-inf - -inf would be NaN);
//   - a NaN element makes the whole row NaN (max, sum, log_sum_exp and every softmax output);
//   - a +inf element makes the row NaN as well (inf / inf), as in PyTorch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/backend.hpp"
#include "../simd/ops.hpp"

namespace gmk {

/// The running softmax statistics of a row: sum_i exp(x_i) = sum * exp(max).
template <class T>
struct online_softmax_state {
    static_assert(std::is_floating_point_v<T>, "gmk::online_softmax_state: T must be float or double");

    T max = -std::numeric_limits<T>::infinity();  ///< the largest element seen (-inf: none finite)
    T sum = T(0);                                 ///< sum_i exp(x_i - max)

    /// Adds one element.
    void push(T x) noexcept { merge(online_softmax_state{x, T(1)}); }

    /// Adds the elements another state has seen: the states of two halves of a row merge into the
    /// state of the row (in either order, up to rounding).
    void merge(const online_softmax_state& o) noexcept {
        if (max != max || o.max != o.max) {  // NaN is sticky
            max = sum = std::numeric_limits<T>::quiet_NaN();
            return;
        }
        const T m = max < o.max ? o.max : max;
        // -inf - -inf is NaN: with no finite element on either side both sums are 0 and stay 0.
        const T ref = m == -std::numeric_limits<T>::infinity() ? T(0) : m;
        sum = sum * std::exp(max - ref) + o.sum * std::exp(o.max - ref);
        max = m;
    }

    /// log sum_i exp(x_i): -inf for the empty or fully masked row, NaN if any element was NaN.
    T log_sum_exp() const noexcept {
        if (sum != sum) return sum;
        return sum > T(0) ? max + std::log(sum) : -std::numeric_limits<T>::infinity();
    }

    /// softmax of x within the row seen: exp(x - log_sum_exp()); 0 for the fully masked row.
    T weight(T x) const noexcept {
        if (sum != sum || x != x) return std::numeric_limits<T>::quiet_NaN();
        if (!(sum > T(0))) return T(0);
        return std::exp(x - max) / sum;
    }
};

/// The merge of two states as a value.
template <class T>
online_softmax_state<T> merge(online_softmax_state<T> a, const online_softmax_state<T>& b) noexcept {
    a.merge(b);
    return a;
}

namespace detail::softmax {

// exp(x - m) lane by lane, with m already replaced by 0 where it is -inf.
template <class V>
GMK_INLINE V exp_shifted(const V& x, const V& m) noexcept {
    return simd::exp(x - m);
}

template <class T>
T safe_reference(T m) noexcept {
    return m == -std::numeric_limits<T>::infinity() ? T(0) : m;
}

}  // namespace detail::softmax

/// The state of x[0..n): its maximum (NaN if any element is NaN), then sum exp(x_i - max), in two
/// vector passes. n = 0 gives the empty state.
template <class B = simd::native, class T>
online_softmax_state<T> softmax_stats(const T* x, std::size_t n) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    static_assert(std::is_floating_point_v<T>, "gmk::softmax_stats: T must be float or double");
    check_pointer(x, n, "softmax_stats", "x");
    online_softmax_state<T> s;
    if (n == 0) return s;
    const T m = simd::reduce_max(simd::transform_reduce<B>(n, -std::numeric_limits<T>::infinity(), simd::in(x),
                                                           simd::detail::identity{}, simd::detail::nan_sticky_max{}));
    if (m != m) return {m, m};
    const auto ref = simd::broadcast<B>(detail::softmax::safe_reference(m));
    const T l = simd::reduce_add(simd::transform_reduce<B>(
        n, T(0), simd::in(x), [&](const auto& v) { return detail::softmax::exp_shifted(v, ref); },
        [](const auto& a, const auto& b) { return a + b; }));
    return {m, l};
}

/// log sum_i exp(x_i) over x[0..n), without overflow: -inf for n = 0 or a row of -inf only.
template <class B = simd::native, class T>
T log_sum_exp(const T* x, std::size_t n) {
    check_pointer(x, n, "log_sum_exp", "x");
    return softmax_stats<B>(x, n).log_sum_exp();
}

/// out[i] = exp(x[i]) / sum_j exp(x[j]) for i < n, computed as exp(x[i] - max) / sum without
/// overflow. A row of -inf only gives zeros; NaN anywhere gives NaN everywhere. out may alias x.
template <class B = simd::native, class T>
void softmax(const T* x, std::size_t n, T* out) {
    check_pointer(x, n, "softmax", "x");
    check_pointer(out, n, "softmax", "out");
    if (n == 0) return;
    const online_softmax_state<T> s = softmax_stats<B>(x, n);
    if (s.sum != s.sum) {
        for (std::size_t i = 0; i < n; ++i) out[i] = s.sum;
        return;
    }
    if (!(s.sum > T(0))) {
        for (std::size_t i = 0; i < n; ++i) out[i] = T(0);
        return;
    }
    const auto ref = simd::broadcast<B>(s.max);
    const auto inv = simd::broadcast<B>(T(1) / s.sum);
    simd::map<B>(n, simd::out(out), simd::in(x),
                 [&](const auto& v) { return detail::softmax::exp_shifted(v, ref) * inv; });
}

/// softmax of every row of x into the same row of out (rows contiguous, any row strides), rows
/// spread over `exec`; the same bits on any executor.
template <class B = simd::native, class TX, class T>
void softmax_rows(matrix_view<TX> x, matrix_view<T> out, const executor& exec = executor()) {
    static_assert(std::is_same_v<std::remove_const_t<TX>, T>, "gmk::softmax_rows: x and out hold different types");
    check_argument(x.rows_contiguous(), "softmax_rows", "x.col_stride()", x.col_stride(), "must be 1");
    check_argument(out.rows_contiguous(), "softmax_rows", "out.col_stride()", out.col_stride(), "must be 1");
    check_argument(out.rows() == x.rows(), "softmax_rows", "out.rows()", out.rows(), "must equal x.rows()");
    check_argument(out.cols() == x.cols(), "softmax_rows", "out.cols()", out.cols(), "must equal x.cols()");
    if (x.rows() == 0 || x.cols() == 0) return;
    check_pointer(x.data(), x.cols(), "softmax_rows", "x");
    check_pointer(out.data(), out.cols(), "softmax_rows", "out");
    const std::size_t grain = std::max<std::size_t>(1, (std::size_t(1) << 14) / x.cols());
    parallel_for(0, x.rows(), grain, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t r = lo; r < hi; ++r) softmax<B>(&x(r, 0), x.cols(), &out(r, 0));
    }, exec);
}

}  // namespace gmk
