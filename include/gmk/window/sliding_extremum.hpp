// gmk: sliding-window maximum and minimum of an array (LeetCode 239), their index forms, and
// the same over the rows of a 2-D array.
//
//   gmk::sliding_max(x, n, k, out, out_size)                       out[j] = max x[j .. j+k-1],
//                                                                  j < n - k + 1 ('valid')
//   gmk::sliding_max(x, n, k, out, out_size, window_mode::trailing) out[i] = max x[max(0,i-k+1) .. i],
//                                                                  i < n
//
// Algorithms (chosen by k, thresholds measured below):
//   brute force  k - 1 vector max of shifted unaligned loads per vector of outputs; for k < L.
//   van Herk / Gil-Werman (M. van Herk, Pattern Recognit. Lett. 13, 1992; J. Gil and M. Werman,
//                IEEE PAMI 15, 1993): with blocks of k, out[j] = max(S[j], R[j+k-1]) where S is
//                the maximum from j to the end of j's block and R from the start of (j+k-1)'s
//                block to j+k-1: about 3 max per element whatever k. Vectorised across lanes: write
//                k = qL + r (L lanes) and let M[u] be the vector whose lane l is the maximum of the
//                W = L + r elements from uL + l. Then the window of k at vL + l is the union of the
//                q windows of W at (v + p)L + l, p < q (they overlap, which max does not mind), so
//                out's vector v = max(M[v], ..., M[v+q-1]): van Herk over the sequence of vectors
//                M with window q, every lane an independent sequence. M itself comes from doubling
//                inside registers (windows 2, 4, ..., L, then L + r: log2(L) + 1 two-source
//                permutes per vector on AVX-512; elsewhere W - 1 shifted loads). The block
//                suffix maxima S are kept in `out` itself (each output vector holds its S until the
//                forward pass overwrites it with the answer), so no scratch memory is needed.
//   monotonic deque (gmk/window/monotonic_deque.hpp): the streaming form. As a batch algorithm
//                it lost to the two above at every k measured (see brute_force_below), so
//                sliding_max never picks it; the index forms run scalar van Herk on indices.
//
// Semantics, the same on every backend and for every thread count:
//   - integers exactly; floating point: max/min under <, so -0 and +0 tie and a window holding
//     both may report either (the choice depends on n, k and the backend, never on threads).
//   - nan_policy::propagate (default): a window holding NaN yields NaN.
//     nan_policy::ignore: NaN elements are skipped; a window of NaN only yields NaN.
//   - sliding_argmax / sliding_argmin: the index (into x) of the extremum, the lowest index among
//     ties; under propagate the first NaN of the window, under ignore NaN loses to every number
//     and an all-NaN window gives its first index.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../simd/backend.hpp"
#include "../simd/ops.hpp"

namespace gmk {

/// Which windows a sliding extremum reports.
enum class window_mode {
    valid,    ///< the n - k + 1 windows that lie inside x (LeetCode 239, NumPy 'valid')
    trailing  ///< n windows, the one ending at i clipped to x: x[max(0, i-k+1) .. i]
};

/// What a window holding NaN yields (integers have no NaN and ignore this).
enum class nan_policy {
    propagate,  ///< NaN (as numpy.max)
    ignore      ///< the extremum of the other elements; NaN when all are NaN (as numpy.nanmax)
};

namespace detail::window {

// The combining operation of the extremum. Associative and commutative under each policy (NaN
// absorbing under propagate, the identity under ignore), so every algorithm and evaluation order
// gives the same answer, up to the sign of a zero.
template <bool IsMax, nan_policy Policy>
struct extremum {
    template <class V>
    static GMK_INLINE V pick(const V& a, const V& b) noexcept {
        if constexpr (IsMax) return simd::max(a, b);
        else return simd::min(a, b);
    }
    template <class V>
    static GMK_INLINE V combine(const V& a, const V& b) noexcept {
        using T = typename V::value_type;
        // simd::max/min follow std::max: they return a when either is NaN.
        if constexpr (!std::is_floating_point_v<T>) return pick(a, b);
        else if constexpr (Policy == nan_policy::propagate) return simd::select(simd::isnan(b), b, pick(a, b));
        else return simd::select(simd::isnan(a), b, pick(a, b));
    }
    template <class T>
    static T identity() noexcept {
        using lim = std::numeric_limits<T>;
        if constexpr (std::is_floating_point_v<T>) {
            if constexpr (Policy == nan_policy::ignore) return lim::quiet_NaN();
            else return IsMax ? -lim::infinity() : lim::infinity();
        } else {
            return IsMax ? lim::lowest() : lim::max();
        }
    }
};

// Thresholds: brute force below, van Herk from there on (which needs k >= L). Measured with the
// window/algorithm/* rows of bench/window.cpp (float, n = 10^7, one core of an AMD Zen 5 with
// AVX-512 at 4.2 GHz; G elements/s, brute force / van Herk; '-': van Herk needs k >= L):
//   float  (L = 16): k = 8: 2.4 / -,    k = 12: 1.9 / -,    k = 16: 1.7 / 3.8,  k = 32: 1.2 / 3.5
//   double (L = 8):  k = 4: 2.0 / -,    k = 6: 1.4 / -,     k = 8: 1.1 / 2.1,   k = 16: 0.76 / 2.1
//   scalar (L = 1):  k = 2: 2.1 / 0.69, k = 4: 0.84 / 0.53, k = 6: 0.58 / 0.55, k = 8: 0.41 / 0.50
// So on a SIMD backend van Herk wins from the first k it can take (k = L), and brute force keeps
// the k < L it cannot; on the scalar backend brute force wins below k = 7. The std::deque and
// gmk::monotonic_deque run at 0.11-0.18 G elements/s at every k (window/std_deque_f32,
// window/streaming_deque_f32): never the fastest, so no batch path uses them.
template <class T, class B>
constexpr std::size_t brute_force_below() noexcept {
    constexpr std::size_t L = simd::lanes<T, B>;
    return L == 1 ? 7 : L;
}

// The extremum of the w >= 1 elements from p, in every lane (lane l: p[l .. l + w - 1]).
template <class B, class Op, class T>
GMK_INLINE simd::batch<T, B> window_at(const T* p, std::size_t w) noexcept {
    // Four chains, not one: a chain of w - 1 dependent operations would be latency-bound.
    auto a0 = simd::load<B>(p);
    if (w < 4) {
        for (std::size_t d = 1; d < w; ++d) a0 = Op::combine(a0, simd::load<B>(p + d));
        return a0;
    }
    auto a1 = simd::load<B>(p + 1), a2 = simd::load<B>(p + 2), a3 = simd::load<B>(p + 3);
    std::size_t d = 4;
    for (; d + 4 <= w; d += 4) {
        a0 = Op::combine(a0, simd::load<B>(p + d));
        a1 = Op::combine(a1, simd::load<B>(p + d + 1));
        a2 = Op::combine(a2, simd::load<B>(p + d + 2));
        a3 = Op::combine(a3, simd::load<B>(p + d + 3));
    }
    for (; d < w; ++d) a0 = Op::combine(a0, simd::load<B>(p + d));
    return Op::combine(Op::combine(a0, a1), Op::combine(a2, a3));
}

// shift(lo, hi) = lanes s .. L-1 of lo followed by lanes 0 .. s-1 of hi: from the aligned vectors
// of x at uL and uL + L, the vector of x at uL + s. One two-source permute on AVX-512; elsewhere a
// round trip through the stack (correct, not fast: the lane windows there are better read from x).
template <class B, class T>
class concat_shift {
    using V = simd::batch<T, B>;
    static constexpr std::size_t L = V::size;

public:
#if defined(__AVX512F__)
    static constexpr bool fast = std::is_base_of_v<xsimd::avx512f, B> && (sizeof(T) == 4 || sizeof(T) == 8);
#else
    static constexpr bool fast = false;
#endif
    concat_shift() noexcept : concat_shift(0) {}
    explicit concat_shift(std::size_t s) noexcept : s_(s) {
#if defined(__AVX512F__)
        if constexpr (fast) {
            alignas(64) std::int32_t i32[16];
            alignas(64) std::int64_t i64[8];
            for (std::size_t l = 0; l < 16; ++l) i32[l] = static_cast<std::int32_t>(l + s);
            for (std::size_t l = 0; l < 8; ++l) i64[l] = static_cast<std::int64_t>(l + s);
            index_ = sizeof(T) == 4 ? _mm512_load_si512(i32) : _mm512_load_si512(i64);
        }
#endif
    }
    GMK_INLINE V operator()(const V& lo, const V& hi) const noexcept {
#if defined(__AVX512F__)
        if constexpr (fast) {
            if constexpr (std::is_same_v<T, float>) return _mm512_permutex2var_ps(lo, index_, hi);
            else if constexpr (std::is_same_v<T, double>) return _mm512_permutex2var_pd(lo, index_, hi);
            else if constexpr (sizeof(T) == 4) return _mm512_permutex2var_epi32(lo, index_, hi);
            else return _mm512_permutex2var_epi64(lo, index_, hi);
        } else
#endif
        {
            alignas(64) T buf[2 * L];
            lo.store_aligned(buf);
            hi.store_aligned(buf + L);
            return V::load_unaligned(buf + s_);
        }
    }

private:
    std::size_t s_;
#if defined(__AVX512F__)
    __m512i index_{};
#endif
};

// The lane windows M[0], M[1], ... in order (lane l of M[u]: the extremum of x[uL + l .. uL + l + w),
// L <= w < 2L) by doubling inside registers: windows of 2, 4, ..., L from the aligned vectors of
// x, then one more step with shift w - L. log2(L) + 1 permutes and extrema per vector instead of
// w - 1 unaligned loads and extrema; each level runs one vector behind the one below it. Where
// the pipeline would read past x's end, and on backends without a fast permute, M[u] is read
// from x directly.
template <class B, class Op, class T>
class lane_windows {
    using V = simd::batch<T, B>;
    static constexpr std::size_t L = V::size;
    static constexpr std::size_t J = [] {
        std::size_t j = 0;
        while ((std::size_t(1) << j) < L) ++j;
        return j;
    }();
    static constexpr bool pipelined = concat_shift<B, T>::fast && L > 1;

public:
    lane_windows(const T* x, std::size_t n, std::size_t w) noexcept
        : x_(x), n_(n), w_(w), r_(w - L), tail_(w - L) {
        if constexpr (pipelined) {
            for (std::size_t j = 0; j < J; ++j) shift_[j] = concat_shift<B, T>(std::size_t(1) << j);
            lag_ = J + (r_ > 0 ? 1 : 0);
            // Prime the levels only if next() will use them: it feeds vector u + lag_ while
            // (u + lag_ + 1) L <= n, so for a short x neither reads past its end.
            if ((lag_ + 1) * L <= n_)
                for (std::size_t t = 0; t < lag_; ++t) feed(t);
        }
    }
    /// The next lane window.
    GMK_INLINE V next() noexcept {
        const std::size_t u = u_++;
        if constexpr (pipelined) {
            if ((u + lag_ + 1) * L <= n_) return feed(u + lag_);
        }
        return window_at<B, Op>(x_ + u * L, w_);
    }

private:
    // Feeds the aligned vector t of x through the levels; returns M[t - lag_].
    GMK_INLINE V feed(std::size_t t) noexcept {
        V cur = simd::load<B>(x_ + t * L);
        for (std::size_t j = 0; j < J; ++j) {
            const V up = Op::combine(prev_[j], shift_[j](prev_[j], cur));
            prev_[j] = cur;
            cur = up;
        }
        if (r_ > 0) {
            const V up = Op::combine(prev_[J], tail_(prev_[J], cur));
            prev_[J] = cur;
            cur = up;
        }
        return cur;
    }

    const T* x_;
    std::size_t n_, w_, r_;
    std::size_t u_ = 0, lag_ = 0;
    concat_shift<B, T> shift_[J + 1] = {};
    concat_shift<B, T> tail_;
    V prev_[J + 1] = {};
};

// 'valid' outputs by brute force; needs n - k + 1 >= L.
template <class B, class Op, class T>
void valid_brute_force(const T* x, std::size_t n, std::size_t k, T* out) {
    constexpr std::size_t L = simd::lanes<T, B>;
    const std::size_t nout = n - k + 1;
    std::size_t j = 0;
    // Four independent chains of k - 1 operations hide the latency of each.
    for (; j + 4 * L <= nout; j += 4 * L) {
        auto a0 = simd::load<B>(x + j), a1 = simd::load<B>(x + j + L);
        auto a2 = simd::load<B>(x + j + 2 * L), a3 = simd::load<B>(x + j + 3 * L);
        for (std::size_t d = 1; d < k; ++d) {
            a0 = Op::combine(a0, simd::load<B>(x + j + d));
            a1 = Op::combine(a1, simd::load<B>(x + j + L + d));
            a2 = Op::combine(a2, simd::load<B>(x + j + 2 * L + d));
            a3 = Op::combine(a3, simd::load<B>(x + j + 3 * L + d));
        }
        simd::store(out + j, a0);
        simd::store(out + j + L, a1);
        simd::store(out + j + 2 * L, a2);
        simd::store(out + j + 3 * L, a3);
    }
    for (; j + L <= nout; j += L) simd::store(out + j, window_at<B, Op>(x + j, k));
    // The last few outputs: one vector ending at the last output, overlapping the ones before.
    if (j < nout) simd::store(out + nout - L, window_at<B, Op>(x + nout - L, k));
}

// 'valid' outputs by van Herk / Gil-Werman across lanes (see the top of the file); needs
// k >= L and n - k + 1 >= L. With L = 1 this is the scalar algorithm, blocks of k elements.
template <class B, class Op, class T>
void valid_van_herk(const T* x, std::size_t n, std::size_t k, T* out) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const std::size_t nout = n - k + 1;
    const std::size_t nv = nout / L;  // full output vectors; vector v covers outputs [vL, vL + L)
    const std::size_t q = k / L;      // window length in vectors, also the block length
    const std::size_t w = L + k % L;  // elements per lane of M
    // M[u] reads x up to uL + L + w - 2: in bounds for every u <= nv + q - 2, all that is used.
    const auto M = [&](std::size_t u) { return window_at<B, Op>(x + u * L, w); };
    const auto load = [&](std::size_t v) { return simd::load<B>(out + v * L); };
    const auto store = [&](std::size_t v, const V& a) { simd::store(out + v * L, a); };

    // Suffix maxima of block [b, b + q) into out[u] for the u < nv; M[u] comes from out where the
    // forward pass left it (u < nv), else from x.
    const auto suffix = [&](std::size_t b) {
        std::size_t u = b + q - 1;
        V s = u < nv ? load(u) : M(u);
        while (u-- > b) {
            s = Op::combine(u < nv ? load(u) : M(u), s);
            if (u < nv) store(u, s);
        }
    };
    // M[0], M[1], ... in order, for the forward passes.
    lane_windows<B, Op, T> windows(x, n, w);
    // Block 0 has no forward pass before it: put its M in place first.
    for (std::size_t u = 0; u < q; ++u) {
        const V m = windows.next();
        if (u < nv) store(u, m);
    }
    suffix(0);
    const V identity(Op::template identity<T>());
    for (std::size_t b = 0; b < nv; b += q) {
        // Forward over the next block: p = max M[b + q .. v + q - 1] completes out[v] = S[v] op p,
        // and the next block's M is left in out for its suffix pass.
        const std::size_t end = std::min(b + q, nv);
        V p = identity;
        for (std::size_t v = b; v < end; ++v) {
            store(v, Op::combine(load(v), p));
            const std::size_t u = v + q;
            if (v + 1 < nv) {  // M[u] for u = v + q < nv + q - 1, in order; the last is not needed
                const V m = windows.next();
                p = Op::combine(p, m);
                if (u < nv) store(u, m);
            }
        }
        if (b + q < nv) suffix(b + q);
    }
    if (nv * L < nout) simd::store(out + nout - L, window_at<B, Op>(x + nout - L, k));
}

// 'valid' outputs, any n >= k >= 1.
template <class B, class Op, class T>
void valid(const T* x, std::size_t n, std::size_t k, T* out) {
    constexpr std::size_t L = simd::lanes<T, B>;
    if constexpr (L > 1) {
        if (n - k + 1 < L) return valid<simd::scalar, Op>(x, n, k, out);  // fewer outputs than lanes
    }
    if (k < brute_force_below<T, B>()) valid_brute_force<B, Op>(x, n, k, out);
    else valid_van_herk<B, Op>(x, n, k, out);
}

// One row: 'valid' or 'trailing'.
template <class B, class Op, class T>
void row(const T* x, std::size_t n, std::size_t k, T* out, window_mode mode) {
    if (mode == window_mode::trailing) {
        // The first k - 1 windows are clipped at x[0]: running prefix extrema.
        simd::scalar_batch<T> acc = x[0];
        out[0] = x[0];
        for (std::size_t i = 1; i + 1 < k; ++i) out[i] = (acc = Op::combine(acc, simd::scalar_batch<T>(x[i]))).value;
        out += k - 1;
    }
    valid<B, Op>(x, n, k, out);
}

template <class B, bool IsMax, class T>
void row(const T* x, std::size_t n, std::size_t k, T* out, window_mode mode, nan_policy nan) {
    if constexpr (std::is_floating_point_v<T>) {
        if (nan == nan_policy::ignore) return row<B, extremum<IsMax, nan_policy::ignore>>(x, n, k, out, mode);
    }
    row<B, extremum<IsMax, nan_policy::propagate>>(x, n, k, out, mode);
}

// True when a is strictly better than b (greater for max, less for min) under the NaN policy:
// propagate ranks NaN above every number, ignore below.
template <bool IsMax, nan_policy Policy, class T>
GMK_INLINE bool better(T a, T b) noexcept {
    const bool strict = IsMax ? b < a : a < b;
    if constexpr (!std::is_floating_point_v<T>) {
        return strict;
    } else {
        const bool an = a != a, bn = b != b;
        if constexpr (Policy == nan_policy::propagate) return strict || (an && !bn);
        else return strict || (!an && bn);
    }
}

// Index form, one row: scalar van Herk on indices (blocks of k), the block suffix argmax kept in
// out. Indices are into x; ties go to the lowest index.
template <bool IsMax, nan_policy Policy, class T>
void arg_row(const T* x, std::size_t n, std::size_t k, std::size_t* out, window_mode mode) {
    const auto better = [](T a, T b) { return window::better<IsMax, Policy>(a, b); };
    if (mode == window_mode::trailing) {
        std::size_t best = 0;
        out[0] = 0;
        for (std::size_t i = 1; i + 1 < k; ++i) out[i] = best = better(x[i], x[best]) ? i : best;
        out += k - 1;
    }
    // k >= 1 is checked by the caller; said again here because GCC 12, after inlining a caller's
    // k = 0 into this loop past the throwing check, warns of the overflow it would cause.
    if (k == 0) return;
    const std::size_t nout = n - k + 1;
    for (std::size_t a = 0; a < nout; a += k) {
        const std::size_t end = std::min(a + k, nout);
        // Suffix: the best of x[i .. a + k - 1], the lowest index on ties (>= keeps the left one).
        std::size_t s = a + k - 1;
        for (std::size_t i = a + k - 1; i-- > a;) {
            if (!better(x[s], x[i])) s = i;
            if (i < end) out[i] = s;
        }
        if (a + k - 1 < end) out[a + k - 1] = a + k - 1;
        // Forward: the best of x[a + k .. j + k - 1], the lowest index on ties; S holds the left part.
        std::size_t p = n;  // none yet
        for (std::size_t j = a; j < end; ++j) {
            out[j] = (p != n && better(x[p], x[out[j]])) ? p : out[j];
            if (j + k < n && (p == n || better(x[j + k], x[p]))) p = j + k;
        }
    }
}

template <bool IsMax, class T>
void arg_row(const T* x, std::size_t n, std::size_t k, std::size_t* out, window_mode mode, nan_policy nan) {
    if constexpr (std::is_floating_point_v<T>) {
        if (nan == nan_policy::ignore) return arg_row<IsMax, nan_policy::ignore>(x, n, k, out, mode);
    }
    arg_row<IsMax, nan_policy::propagate>(x, n, k, out, mode);
}

inline std::size_t outputs(std::size_t n, std::size_t k, window_mode mode) noexcept {
    return mode == window_mode::valid ? n - k + 1 : n;
}

// The checks every entry point makes; returns the number of outputs per row.
template <class T, class U>
std::size_t check(const char* function, const T* x, std::size_t n, std::size_t k, const U* out,
                  std::size_t out_size, window_mode mode) {
    check_argument(n >= 1, function, "n", n, "must be at least 1");
    if (k < 1 || k > n)
        check_argument(false, function, "k", k, "must be in [1, n] = [1, " + std::to_string(n) + "]");
    check_argument(mode == window_mode::valid || mode == window_mode::trailing, function, "mode",
                   static_cast<int>(mode), "must be window_mode::valid or window_mode::trailing");
    const std::size_t m = outputs(n, k, mode);
    check_pointer(x, n, function, "x");
    check_pointer(out, m, function, "out");
    if (out_size < m)
        check_argument(false, function, "out_size", out_size,
                       "must be at least the " + std::to_string(m) + " outputs");
    return m;
}

template <class B, class T, class U, class Row>
void rows(const char* function, matrix_view<const T> x, std::size_t k, matrix_view<U> out, window_mode mode,
          const executor& exec, Row row) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    check_argument(x.rows_contiguous(), function, "x.col_stride()", x.col_stride(), "must be 1");
    check_argument(out.rows_contiguous(), function, "out.col_stride()", out.col_stride(), "must be 1");
    check_argument(out.rows() == x.rows(), function, "out.rows()", out.rows(),
                   "must equal x.rows()");
    if (x.rows() == 0) return;
    check(function, x.data(), x.cols(), k, out.data(), out.cols(), mode);
    // Chunks of about 64K elements: enough work per task to pay for handing it out; the
    // chunking depends on the shape only, so the result never depends on the thread count.
    const std::size_t grain = std::max<std::size_t>(1, (std::size_t(1) << 16) / x.cols());
    parallel_for(0, x.rows(), grain, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t r = lo; r < hi; ++r) row(&x(r, 0), x.cols(), k, &out(r, 0), mode);
    }, exec);
}

template <class M>
auto as_const(const M& m) {
    using T = std::remove_const_t<typename M::element_type>;
    return matrix_view<const T>(m);
}

}  // namespace detail::window

/// Sliding-window maximum: out[j] = max x[j .. j+k-1] for j < n - k + 1 (mode valid, LeetCode
/// 239), or out[i] = max x[max(0, i-k+1) .. i] for i < n (mode trailing). 1 <= k <= n.
template <class B = simd::native, class T>
void sliding_max(const T* x, std::size_t n, std::size_t k, T* out, std::size_t out_size,
                 window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    detail::window::check("sliding_max", x, n, k, out, out_size, mode);
    detail::window::row<B, true>(x, n, k, out, mode, nan);
}

/// Sliding-window minimum: sliding_max with min.
template <class B = simd::native, class T>
void sliding_min(const T* x, std::size_t n, std::size_t k, T* out, std::size_t out_size,
                 window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    detail::window::check("sliding_min", x, n, k, out, out_size, mode);
    detail::window::row<B, false>(x, n, k, out, mode, nan);
}

/// Index (into x) of each window's maximum, the lowest index among ties; windows as sliding_max.
template <class T>
void sliding_argmax(const T* x, std::size_t n, std::size_t k, std::size_t* out, std::size_t out_size,
                    window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate) {
    detail::window::check("sliding_argmax", x, n, k, out, out_size, mode);
    detail::window::arg_row<true>(x, n, k, out, mode, nan);
}

/// Index (into x) of each window's minimum, the lowest index among ties; windows as sliding_min.
template <class T>
void sliding_argmin(const T* x, std::size_t n, std::size_t k, std::size_t* out, std::size_t out_size,
                    window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate) {
    detail::window::check("sliding_argmin", x, n, k, out, out_size, mode);
    detail::window::arg_row<false>(x, n, k, out, mode, nan);
}

/// sliding_max of every row of x into the same row of out (rows contiguous, any row strides;
/// out.cols() >= the outputs per row), rows spread over `exec`; bitwise the same on any executor.
template <class B = simd::native, class TX, class T>
void sliding_max(matrix_view<TX> x, std::size_t k, matrix_view<T> out, window_mode mode = window_mode::valid,
                 nan_policy nan = nan_policy::propagate, const executor& exec = executor()) {
    static_assert(std::is_same_v<std::remove_const_t<TX>, T>, "gmk::sliding_max: x and out hold different types");
    detail::window::rows<B>("sliding_max", detail::window::as_const(x), k, out, mode, exec,
                            [nan](const T* xr, std::size_t n, std::size_t kk, T* o, window_mode m) {
                                detail::window::row<B, true>(xr, n, kk, o, m, nan);
                            });
}

/// sliding_min of every row of x, as the row form of sliding_max.
template <class B = simd::native, class TX, class T>
void sliding_min(matrix_view<TX> x, std::size_t k, matrix_view<T> out, window_mode mode = window_mode::valid,
                 nan_policy nan = nan_policy::propagate, const executor& exec = executor()) {
    static_assert(std::is_same_v<std::remove_const_t<TX>, T>, "gmk::sliding_min: x and out hold different types");
    detail::window::rows<B>("sliding_min", detail::window::as_const(x), k, out, mode, exec,
                            [nan](const T* xr, std::size_t n, std::size_t kk, T* o, window_mode m) {
                                detail::window::row<B, false>(xr, n, kk, o, m, nan);
                            });
}

/// sliding_argmax of every row of x (indices within the row), as the row form of sliding_max.
template <class TX>
void sliding_argmax(matrix_view<TX> x, std::size_t k, matrix_view<std::size_t> out,
                    window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate,
                    const executor& exec = executor()) {
    using T = std::remove_const_t<TX>;
    detail::window::rows<simd::scalar>("sliding_argmax", detail::window::as_const(x), k, out, mode, exec,
                                       [nan](const T* xr, std::size_t n, std::size_t kk, std::size_t* o, window_mode m) {
                                           detail::window::arg_row<true>(xr, n, kk, o, m, nan);
                                       });
}

/// sliding_argmin of every row of x (indices within the row), as the row form of sliding_max.
template <class TX>
void sliding_argmin(matrix_view<TX> x, std::size_t k, matrix_view<std::size_t> out,
                    window_mode mode = window_mode::valid, nan_policy nan = nan_policy::propagate,
                    const executor& exec = executor()) {
    using T = std::remove_const_t<TX>;
    detail::window::rows<simd::scalar>("sliding_argmin", detail::window::as_const(x), k, out, mode, exec,
                                       [nan](const T* xr, std::size_t n, std::size_t kk, std::size_t* o, window_mode m) {
                                           detail::window::arg_row<false>(xr, n, kk, o, m, nan);
                                       });
}

}  // namespace gmk
