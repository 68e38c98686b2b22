// gmk: the vector interface every kernel is written against.
//
// The same kernel source runs on gmk::simd::scalar and on every xsimd architecture, and compiles
// against xsimd 8.1 (Debian 12) as well as xsimd 13/14: every call whose name or semantics
// changed between them (reductions, bit and mask casts, min/max on NaN, != and unary minus on
// NaN and zeros) goes through here: write simd::neq(a, b) and simd::neg(a), not a != b and -a.
// Call these qualified (`simd::fma(a, b, c)`): unqualified calls would also find xsimd's own
// overloads by argument-dependent lookup.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../core/error.hpp"  // GMK_COLD
#include "backend.hpp"

/// Forces inlining of small vector helpers whose callers keep their state in registers.
#if defined(__GNUC__) || defined(__clang__)
#define GMK_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define GMK_INLINE __forceinline
#else
#define GMK_INLINE inline
#endif

namespace gmk::simd {

// ---- memory --------------------------------------------------------------------------------

/// The lane indices 0, 1, ..., lanes<T, B> - 1 plus `start`.
template <class T, class B = native>
batch<T, B> iota(T start = T(0)) noexcept {
    alignas(64) T idx[batch<T, B>::size];
    for (std::size_t k = 0; k < batch<T, B>::size; ++k) idx[k] = static_cast<T>(start + T(k));
    return batch<T, B>::load_aligned(idx);
}

/// Loads lanes<T, B> elements from p (any alignment).
template <class B = native, class T>
batch<T, B> load(const T* p) noexcept {
    return batch<T, B>::load_unaligned(p);
}
/// Loads lanes<T, B> elements from p, which must be aligned to B::alignment().
template <class B = native, class T>
batch<T, B> load_aligned(const T* p) noexcept {
    return batch<T, B>::load_aligned(p);
}
/// A vector with every lane equal to v.
template <class B = native, class T>
batch<T, B> broadcast(T v) noexcept {
    return batch<T, B>(v);
}
/// Stores all lanes of v to p (any alignment).
template <class T, class V>
void store(T* p, const V& v) noexcept {
    v.store_unaligned(p);
}
/// Stores all lanes of v to p, which must be aligned to the backend's alignment.
template <class T, class V>
void store_aligned(T* p, const V& v) noexcept {
    v.store_aligned(p);
}
/// Lane i of v (slow: for tests and tails, not inner loops).
template <class V>
typename V::value_type lane(const V& v, std::size_t i) noexcept {
    alignas(64) typename V::value_type tmp[V::size];
    v.store_unaligned(tmp);
    return tmp[i];
}

// ---- scalar backend ------------------------------------------------------------------------

template <class T>
scalar_batch<T> fma(scalar_batch<T> a, scalar_batch<T> b, scalar_batch<T> c) noexcept {
    if constexpr (std::is_floating_point_v<T>) return std::fma(a.value, b.value, c.value);
    else return T(a.value * b.value + c.value);
}
/// std::min semantics: b < a ? b : a (returns a when either is NaN).
template <class T>
scalar_batch<T> min(scalar_batch<T> a, scalar_batch<T> b) noexcept { return std::min(a.value, b.value); }
/// std::max semantics: a < b ? b : a (returns a when either is NaN).
template <class T>
scalar_batch<T> max(scalar_batch<T> a, scalar_batch<T> b) noexcept { return std::max(a.value, b.value); }
template <class T>
scalar_batch<T> abs(scalar_batch<T> a) noexcept {
    if constexpr (std::is_floating_point_v<T>) return std::fabs(a.value);
    else return a.value < 0 ? T(-a.value) : a.value;
}
template <class T>
scalar_batch<T> sqrt(scalar_batch<T> a) noexcept { return std::sqrt(a.value); }
template <class T>
scalar_batch<T> exp(scalar_batch<T> a) noexcept { return std::exp(a.value); }
template <class T>
scalar_batch<T> log(scalar_batch<T> a) noexcept { return std::log(a.value); }
template <class T>
scalar_batch<T> log1p(scalar_batch<T> a) noexcept { return std::log1p(a.value); }
template <class T>
scalar_batch<T> sin(scalar_batch<T> a) noexcept { return std::sin(a.value); }
template <class T>
scalar_batch<T> cos(scalar_batch<T> a) noexcept { return std::cos(a.value); }
/// The 64-bit product a * m of each lane: its high half in hi, its low half returned.
GMK_INLINE scalar_batch<std::uint32_t> mulhilo(scalar_batch<std::uint32_t> a, std::uint32_t m,
                                           scalar_batch<std::uint32_t>& hi) noexcept {
    const std::uint64_t p = std::uint64_t(a.value) * m;
    hi = static_cast<std::uint32_t>(p >> 32);
    return static_cast<std::uint32_t>(p);
}
template <class T>
scalar_batch<T> select(scalar_mask<T> m, scalar_batch<T> a, scalar_batch<T> b) noexcept {
    return m.value ? a : b;
}
template <class T>
scalar_mask<T> isnan(scalar_batch<T> a) noexcept { return a.value != a.value; }
template <class T>
scalar_mask<T> neq(scalar_batch<T> a, scalar_batch<T> b) noexcept { return a.value != b.value; }
template <class T>
scalar_batch<T> neg(scalar_batch<T> a) noexcept { return T(-a.value); }
template <class T>
T reduce_add(scalar_batch<T> a) noexcept { return a.value; }
template <class T>
T reduce_max(scalar_batch<T> a) noexcept { return a.value; }
template <class T>
T reduce_min(scalar_batch<T> a) noexcept { return a.value; }
template <class T>
bool any(scalar_mask<T> m) noexcept { return m.value; }
template <class T>
bool all(scalar_mask<T> m) noexcept { return m.value; }
/// Reinterprets the bits of each lane as U (same lane width).
template <class U, class T>
scalar_batch<U> bitcast(scalar_batch<T> a) noexcept {
    static_assert(sizeof(U) == sizeof(T), "gmk::simd::bitcast: lane widths differ");
    U u;
    std::memcpy(&u, &a.value, sizeof(U));
    return u;
}
/// The same mask over lanes of U (same lane count).
template <class U, class T>
scalar_mask<U> mask_cast(scalar_mask<T> m) noexcept { return m.value; }
/// Converts each lane to U by static_cast (same lane count).
template <class U, class T>
scalar_batch<U> convert(scalar_batch<T> a) noexcept { return static_cast<U>(a.value); }

// ---- xsimd backends ------------------------------------------------------------------------

/// a * b + c rounded once where the architecture has a fused multiply-add (scalar, FMA3,
/// AVX-512, NEON64); the SSE and plain AVX tags have none and round twice.
template <class T, class A>
xsimd::batch<T, A> fma(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                       const xsimd::batch<T, A>& c) noexcept {
#if defined(__AVX512F__)
    // xsimd 8.1 has no AVX-512 fma: its generic fallback a * b + c rounds twice, in two
    // instructions. Every AVX-512 CPU has the fused one.
    if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, float>)
        return _mm512_fmadd_ps(a, b, c);
    else if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, double>)
        return _mm512_fmadd_pd(a, b, c);
    else
#endif
        return xsimd::fma(a, b, c);
}

namespace detail {
template <class A>
struct is_fma3 : std::false_type {};
#if defined(__x86_64__) || defined(__i386__)
template <class X>
struct is_fma3<xsimd::fma3<X>> : std::true_type {};
#endif
template <class B>
constexpr bool fused_fma() noexcept {
    if constexpr (std::is_same_v<B, scalar>) return true;
#if defined(__x86_64__) || defined(__i386__)
    else if constexpr (is_fma3<B>::value || std::is_base_of_v<xsimd::avx512f, B>) return true;
#endif
#if defined(__aarch64__)
    else if constexpr (std::is_base_of_v<xsimd::neon64, B>) return true;
#endif
    else return false;
}
}  // namespace detail

/// Whether simd::fma rounds once on backend B. Kernels built on fma give the scalar backend's
/// bits on such backends; on the others (SSE, AVX and AVX2 tags without FMA3, 32-bit NEON) they
/// differ by the second rounding.
template <class B>
inline constexpr bool has_fused_fma = detail::fused_fma<B>();

namespace detail {
#if (defined(__x86_64__) || defined(__i386__)) && XSIMD_VERSION_MAJOR < 14
// x86 max(a, b) returns its second operand when either is NaN, so swapping the operands gives
// std::max's "first argument" rule in one instruction. xsimd 14 adopted std semantics itself.
inline constexpr bool swap_minmax_operands = true;
#else
inline constexpr bool swap_minmax_operands = false;
#endif
inline constexpr bool native_minmax_is_std =
#if defined(__x86_64__) || defined(__i386__) || XSIMD_VERSION_MAJOR >= 14
    true;
#else
    false;
#endif
}  // namespace detail

/// std::max semantics lane by lane: a < b ? b : a (returns a when either is NaN).
template <class T, class A>
xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    if constexpr (!std::is_floating_point_v<T>) return xsimd::max(a, b);
    else if constexpr (!detail::native_minmax_is_std) return xsimd::select(a < b, b, a);
    else if constexpr (detail::swap_minmax_operands) return xsimd::max(b, a);
    else return xsimd::max(a, b);
}
/// std::min semantics lane by lane: b < a ? b : a (returns a when either is NaN).
template <class T, class A>
xsimd::batch<T, A> min(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    if constexpr (!std::is_floating_point_v<T>) return xsimd::min(a, b);
    else if constexpr (!detail::native_minmax_is_std) return xsimd::select(b < a, b, a);
    else if constexpr (detail::swap_minmax_operands) return xsimd::min(b, a);
    else return xsimd::min(a, b);
}
template <class T, class A>
xsimd::batch<T, A> abs(const xsimd::batch<T, A>& a) noexcept { return xsimd::abs(a); }
template <class T, class A>
xsimd::batch<T, A> sqrt(const xsimd::batch<T, A>& a) noexcept { return xsimd::sqrt(a); }
namespace detail {
// Where xsimd's exp overflows early: from 127.5 ln 2 (float) or 1023.5 ln 2 (double) on, the
// 2^k scale of its reduction x = k ln 2 + r overflows for k = 128 or 1024, though exp itself
// overflows only from ln(max()) = 88.723 or 709.783 on.
template <class T>
struct exp_overflow_gap;
template <>
struct exp_overflow_gap<float> {
    static constexpr float lo = 88.37f;  // xsimd: +inf from 88.376; exp: from 88.7228
};
template <>
struct exp_overflow_gap<double> {
    static constexpr double lo = 709.08;  // xsimd: +inf from 709.09; exp: from 709.7827
};
// exp(a) with the lanes from the gap on taken from std::exp and the others from r. Out of line
// and cold: the caller's hot path is one compare and one test.
template <class T, class A>
GMK_COLD xsimd::batch<T, A> exp_in_overflow_gap(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& r) noexcept {
    constexpr std::size_t L = xsimd::batch<T, A>::size;
    alignas(64) T x[L];
    alignas(64) T y[L];
    a.store_unaligned(x);
    r.store_unaligned(y);
    for (std::size_t k = 0; k < L; ++k)
        if (x[k] > exp_overflow_gap<T>::lo) y[k] = std::exp(x[k]);
    return xsimd::batch<T, A>::load_unaligned(y);
}
}  // namespace detail

/// exp to within a few ulp of the correctly rounded result (bounds measured in
/// tests/simd_ops.cpp). Results below numeric_limits<T>::min() may be flushed to 0.
template <class T, class A>
xsimd::batch<T, A> exp(const xsimd::batch<T, A>& a) noexcept {
    using V = xsimd::batch<T, A>;
    V r;
    if constexpr (std::is_same_v<T, double>) {
        // xsimd converts k = round(a / ln 2) to int64 with a static_cast per lane (8.1 on every x86
        // tag, AVX-512 included), undefined for NaN, infinite and huge a: clang -O2 folds exp(NaN)
        // to 710.19 on SSE2, UBSan reports it. Bound a first, to beyond where exp is 0 or inf, and
        // put the NaN lanes back.
        const auto nan = xsimd::isnan(a);
        const V bounded = xsimd::select(nan, V(0.0), xsimd::min(xsimd::max(a, V(-800.0)), V(800.0)));
        r = xsimd::select(nan, a, xsimd::exp(bounded));
    } else {
        r = xsimd::exp(a);
    }
    if constexpr (std::is_floating_point_v<T>) {
        // xsimd returns +inf a little short of the overflow threshold (see exp_overflow_gap).
        // Arguments there are rare (exp of them is within a factor 2 of max()): a scalar path.
        // Lanes beyond the gap overflow either way, so one compare (from the gap's start on) picks
        // every lane the scalar path must see.
        if (xsimd::any(a > V(detail::exp_overflow_gap<T>::lo))) return detail::exp_in_overflow_gap(a, r);
    }
    return r;
}
/// Natural logarithm to within a few ulp (bounds measured in tests/simd_ops.cpp).
template <class T, class A>
xsimd::batch<T, A> log(const xsimd::batch<T, A>& a) noexcept {
    if constexpr (std::is_same_v<T, double>) {
        // xsimd's double log (8.1 through 14) reads the exponent of a subnormal input before it
        // rescales it, and is off by about 37 there. Rescale here instead:
        // log(x) = log(x * 2^54) - 54 ln 2, with ln 2 split as fdlibm's ln2_hi + ln2_lo. ln2_hi has
        // 32 significant bits, so subtracting 54 ln2_hi from a log in [-707, -671] is exact.
        using V = xsimd::batch<double, A>;
        const auto subnormal = (a < V(std::numeric_limits<double>::min())) & (a > V(0.0));
        if (xsimd::any(subnormal)) {
            constexpr double ln2_hi = 6.93147180369123816490e-01;  // 0x3FE62E42FEE00000
            constexpr double ln2_lo = 1.90821492927058770002e-10;  // 0x3DEA39EF35793C76
            const V r = xsimd::log(xsimd::select(subnormal, a * V(0x1p54), a));
            return xsimd::select(subnormal, (r - V(54 * ln2_hi)) - V(54 * ln2_lo), r);
        }
    }
    return xsimd::log(a);
}
/// log(1 + a), accurate for small a.
template <class T, class A>
xsimd::batch<T, A> log1p(const xsimd::batch<T, A>& a) noexcept { return xsimd::log1p(a); }
/// Sine and cosine (xsimd's, within a few ulp over the range the tests measure).
template <class T, class A>
xsimd::batch<T, A> sin(const xsimd::batch<T, A>& a) noexcept { return xsimd::sin(a); }
template <class T, class A>
xsimd::batch<T, A> cos(const xsimd::batch<T, A>& a) noexcept { return xsimd::cos(a); }

/// The 64-bit product a * m of each 32-bit lane: the high half in hi, the low half returned.
/// x86 multiplies the even lanes and the odd lanes (shifted down) with one widening multiply
/// each (pmuludq) and blends the halves; other architectures go lane by lane.
template <class A>
GMK_INLINE xsimd::batch<std::uint32_t, A> mulhilo(const xsimd::batch<std::uint32_t, A>& a, std::uint32_t m,
                                       xsimd::batch<std::uint32_t, A>& hi) noexcept {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
        const __m512i x = a, mm = _mm512_set1_epi32(static_cast<int>(m));
        const __m512i even = _mm512_mul_epu32(x, mm);                         // lanes 0, 2, ..
        const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);   // lanes 1, 3, ..
        hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
        return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    } else
#endif
#if defined(__AVX2__)
    if constexpr (std::is_base_of_v<xsimd::avx2, A>) {
        const __m256i x = a, mm = _mm256_set1_epi32(static_cast<int>(m));
        const __m256i even = _mm256_mul_epu32(x, mm);
        const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
        hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
        return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    } else
#endif
#if defined(__SSE2__)
    if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
        const __m128i x = a, mm = _mm_set1_epi32(static_cast<int>(m));
        const __m128i even = _mm_mul_epu32(x, mm);
        const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(x, 32), mm);
        const __m128i keep_low = _mm_set_epi32(0, -1, 0, -1);  // the low word of each 64-bit lane
        hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi64(even, 32), keep_low),
                          _mm_andnot_si128(keep_low, odd));
        return _mm_or_si128(_mm_and_si128(even, keep_low), _mm_slli_epi64(odd, 32));
    } else
#endif
    {
        constexpr std::size_t L = xsimd::batch<std::uint32_t, A>::size;
        alignas(64) std::uint32_t x[L], h[L], l[L];
        a.store_unaligned(x);
        for (std::size_t k = 0; k < L; ++k) {
            const std::uint64_t p = std::uint64_t(x[k]) * m;
            h[k] = static_cast<std::uint32_t>(p >> 32);
            l[k] = static_cast<std::uint32_t>(p);
        }
        hi = xsimd::batch<std::uint32_t, A>::load_unaligned(h);
        return xsimd::batch<std::uint32_t, A>::load_unaligned(l);
    }
}

template <class T, class A>
xsimd::batch<T, A> select(const xsimd::batch_bool<T, A>& m, const xsimd::batch<T, A>& a,
                          const xsimd::batch<T, A>& b) noexcept {
    return xsimd::select(m, a, b);
}
/// True in the lanes that are NaN (never for integers).
template <class T, class A>
xsimd::batch_bool<T, A> isnan(const xsimd::batch<T, A>& a) noexcept {
    return xsimd::isnan(a);  // not a != a: see neq
}
/// a != b lane by lane, true where either lane is NaN as IEEE 754 says. Write simd::neq(a, b),
/// not a != b: xsimd 8.1's AVX and AVX-512 operator!= compares ordered (_CMP_NEQ_OQ), false on NaN.
template <class T, class A>
xsimd::batch_bool<T, A> neq(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return !(a == b);
}
/// -a lane by lane, flipping the sign of zeros too. Write simd::neg(a), not -a: xsimd's AVX-512
/// unary minus (8.1 through 14) computes 0 - a, which is +0 for a = +0.
template <class T, class A>
xsimd::batch<T, A> neg(const xsimd::batch<T, A>& a) noexcept {
    // -0 - a is exactly -a for every a: -0 - (+0) = -0, -0 - (-0) = +0, and NaN stays NaN.
    if constexpr (std::is_floating_point_v<T>) return xsimd::batch<T, A>(T(-0.0)) - a;
    else return -a;
}
template <class T, class A>
bool any(const xsimd::batch_bool<T, A>& m) noexcept { return xsimd::any(m); }
template <class T, class A>
bool all(const xsimd::batch_bool<T, A>& m) noexcept { return xsimd::all(m); }

/// Sum of the lanes (the order of additions is the architecture's).
template <class T, class A>
T reduce_add(const xsimd::batch<T, A>& a) noexcept {
#if GMK_XSIMD_MODERN_API
    return xsimd::reduce_add(a);
#else
    return xsimd::hadd(a);
#endif
}

namespace detail {
template <class T, class A, class Pick>
T fold_lanes(const xsimd::batch<T, A>& a, Pick pick) noexcept {
    alignas(64) T tmp[xsimd::batch<T, A>::size];
    a.store_unaligned(tmp);
    T r = tmp[0];
    for (std::size_t i = 1; i < xsimd::batch<T, A>::size; ++i) r = pick(r, tmp[i]);
    return r;
}
}  // namespace detail

/// Largest lane; NaN when any lane is NaN.
template <class T, class A>
T reduce_max(const xsimd::batch<T, A>& a) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
        if (xsimd::any(xsimd::isnan(a))) return std::numeric_limits<T>::quiet_NaN();
    }
#if GMK_XSIMD_MODERN_API
    return xsimd::reduce_max(a);
#else
    return detail::fold_lanes(a, [](T x, T y) { return x < y ? y : x; });
#endif
}
/// Smallest lane; NaN when any lane is NaN.
template <class T, class A>
T reduce_min(const xsimd::batch<T, A>& a) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
        if (xsimd::any(xsimd::isnan(a))) return std::numeric_limits<T>::quiet_NaN();
    }
#if GMK_XSIMD_MODERN_API
    return xsimd::reduce_min(a);
#else
    return detail::fold_lanes(a, [](T x, T y) { return y < x ? y : x; });
#endif
}

/// Reinterprets the bits of each lane as U (same lane width).
template <class U, class T, class A>
xsimd::batch<U, A> bitcast(const xsimd::batch<T, A>& a) noexcept {
    static_assert(sizeof(U) == sizeof(T), "gmk::simd::bitcast: lane widths differ");
#if GMK_XSIMD_MODERN_API
    return xsimd::bitwise_cast<U>(a);
#else
    return xsimd::bitwise_cast<xsimd::batch<U, A>>(a);
#endif
}

/// The same mask over lanes of U (same lane count).
template <class U, class T, class A>
xsimd::batch_bool<U, A> mask_cast(const xsimd::batch_bool<T, A>& m) noexcept {
    static_assert(xsimd::batch<U, A>::size == xsimd::batch<T, A>::size,
                  "gmk::simd::mask_cast: lane counts differ");
    if constexpr (std::is_same_v<U, T>) {
        return m;
    } else {
#if GMK_XSIMD_MODERN_API
        return xsimd::batch_bool_cast<U>(m);
#else
        return xsimd::bool_cast(m);
#endif
    }
}

/// Converts each lane to U by static_cast (same lane count).
template <class U, class T, class A>
xsimd::batch<U, A> convert(const xsimd::batch<T, A>& a) noexcept {
    return xsimd::batch_cast<U>(a);
}

/// Asks for the cache lines of `bytes` bytes at p (a hint: no effect on results; never faults,
/// so p may point past the end of an array). Always inlined: a call in a vector loop would
/// spill the loop's vector registers.
GMK_INLINE void prefetch(const void* p, std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    const char* c = static_cast<const char*>(p);
    for (std::size_t at = 0; at < bytes; at += 64) __builtin_prefetch(c + at);
#else
    (void)p;
    (void)bytes;
#endif
}

/// 2^x for float x in [-126, 0], no special cases: a rounding to the nearest integer k, a
/// degree-6 polynomial of the rest (Cephes exp2f, relative error below 2e-7) and an exponent add.
/// The same bits on every backend with a fused FMA; on the scalar backend as well.
template <class V>
GMK_INLINE V exp2_in_range(const V& x) noexcept {
    using T = typename V::value_type;
    static_assert(std::is_same_v<T, float>, "exp2_in_range: float only");
    const V magic(T(0x1.8p23));                  // x + 1.5 * 2^23 rounds x to an integer k
    const V t = x + magic;                       // ... held in the low bits of t
    const V f = x - (t - magic);                 // x - k, in [-1/2, 1/2]
    V p(T(1.535336188319500e-4));
    p = simd::fma(p, f, V(T(1.339887440266574e-3)));
    p = simd::fma(p, f, V(T(9.618437357674640e-3)));
    p = simd::fma(p, f, V(T(5.550332471162809e-2)));
    p = simd::fma(p, f, V(T(2.402264791363012e-1)));
    p = simd::fma(p, f, V(T(6.931472028550421e-1)));
    p = simd::fma(p, f, V(T(1)));                // 2^f
    // 2^k 2^f: add k to the exponent field (unsigned: the wrap-around is the subtraction).
    const auto k = simd::bitcast<std::uint32_t>(t) << 23;
    return simd::bitcast<T>(simd::bitcast<std::uint32_t>(p) + k);
}

/// 2^x for float x <= 0 (softmax weights below a row maximum), -inf (0) and NaN (NaN): results
/// below 2^-125 are flushed to 0 (against the maximum's weight 1 they do not change a float sum).
template <class V>
GMK_INLINE V exp2_nonpositive(const V& x) noexcept {
    using T = typename V::value_type;
    const V r = exp2_in_range(simd::max(x, V(T(-126))));  // -inf -> -126; NaN stays NaN
    return simd::select(x < V(T(-125)), V(T(0)), r);
}

}  // namespace gmk::simd
