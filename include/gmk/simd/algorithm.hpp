// gmk: loops every kernel uses instead of writing its own.
//
//   map                one generic lambda over n elements of several inputs into one or more
//                      outputs: full vectors first, then the tail, handled once, here
//   transform_reduce   a lane-wise reduction of a mapped expression
//   find_first         the first index where a lane-wise predicate holds
//   sum, max_value, min_value, argmax, argmin   the reductions built on them
//
// map, transform_reduce and find_first are unchecked building blocks for kernels (which check
// their own arguments); sum, max_value, min_value, argmax and argmin check theirs.
//
// The tail runs through the same vector code as the body (its inputs are copied into a
// zero-padded vector), so an element's result never depends on where it sits in the array.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "ops.hpp"

namespace gmk::simd {

/// The inputs of map / transform_reduce / find_first: pointers to n elements each.
template <class... T>
struct inputs {
    std::tuple<const T*...> ptrs;
};
/// The outputs of map: pointers to n elements each (an output may alias an input exactly).
template <class... T>
struct outputs {
    std::tuple<T*...> ptrs;
};
template <class... T>
inputs<T...> in(const T*... p) noexcept {
    return {std::tuple<const T*...>(p...)};
}
template <class... T>
outputs<T...> out(T*... p) noexcept {
    return {std::tuple<T*...>(p...)};
}

namespace detail {

template <class B, class T0, class... Ts>
constexpr std::size_t common_lanes() {
    constexpr std::size_t L = lanes<T0, B>;
    static_assert(((lanes<Ts, B> == L) && ...),
                  "gmk::simd: all arrays of one map or reduction need the same lane count "
                  "(element types of the same width)");
    return L;
}

template <class T>
struct is_tuple : std::false_type {};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type {};

// The vectors of every input at offset `at`, passed to f.
template <class B, class... I, class F, std::size_t... K>
GMK_INLINE decltype(auto) call_at(std::size_t at, const std::tuple<const I*...>& in, F& f,
                       std::index_sequence<K...>) {
    return f(simd::load<B>(std::get<K>(in) + at)...);
}

// Stores f's result(s) at offset `at` of each output.
template <class R, class... O, std::size_t... K>
GMK_INLINE void store_at(std::size_t at, const std::tuple<O*...>& out, const R& r, std::index_sequence<K...>) {
    if constexpr (sizeof...(O) == 1 && !is_tuple<R>::value) {
        simd::store(std::get<0>(out) + at, r);
    } else {
        static_assert(std::tuple_size<R>::value == sizeof...(O),
                      "gmk::simd::map: the lambda must return one vector per output");
        (simd::store(std::get<K>(out) + at, std::get<K>(r)), ...);
    }
}

// Zero-padded copies of `count` elements at offset `at` of each array, L lanes each.
template <std::size_t L, class... T, std::size_t... K>
std::tuple<std::array<std::remove_const_t<T>, L>...> pad(const std::tuple<T*...>& p, std::size_t at,
                                                         std::size_t count, std::index_sequence<K...>) {
    std::tuple<std::array<std::remove_const_t<T>, L>...> buf{};
    (std::copy_n(std::get<K>(p) + at, count, std::get<K>(buf).data()), ...);
    return buf;
}

// The data() pointers of a tuple of arrays (const arrays give const pointers).
template <class Arrays, std::size_t... K>
auto pointers(Arrays& arrays, std::index_sequence<K...>) {
    return std::make_tuple(std::get<K>(arrays).data()...);
}

template <class... A, class... T, std::size_t... K>
void unpad(const std::tuple<A...>& buf, const std::tuple<T*...>& p, std::size_t at,
           std::size_t count, std::index_sequence<K...>) {
    (std::copy_n(std::get<K>(buf).data(), count, std::get<K>(p) + at), ...);
}

// Index of the first set lane of mask m below `limit`, or `limit` (runs once per search).
template <class M>
std::size_t first_set_lane(const M& m, std::size_t limit) noexcept {
    using V = typename M::batch_type;
    using T = typename V::value_type;
    alignas(64) T flags[V::size];
    simd::store(flags, simd::select(m, V(T(1)), V(T(0))));
    for (std::size_t k = 0; k < limit; ++k)
        if (flags[k] != T(0)) return k;
    return limit;
}

template <std::size_t... K>
constexpr auto index_tuple(std::index_sequence<K...>) {
    return std::tuple<std::integral_constant<std::size_t, K>...>{};
}

// Mask of the lanes k < count of a vector of R.
template <class B, class R>
mask<R, B> first_lanes(std::size_t count) noexcept {
    constexpr std::size_t L = lanes<R, B>;
    alignas(64) R iota[L];
    for (std::size_t k = 0; k < L; ++k) iota[k] = static_cast<R>(k);
    return simd::load<B>(iota) < simd::broadcast<B>(static_cast<R>(count));
}

}  // namespace detail

/// Runs `f` over elements [0, n) of the inputs and stores its result(s) to the outputs.
/// f receives one batch per input and returns one batch (one output) or a std::tuple of batches
/// (several outputs). f must be lane-wise (lane k of a result depends only on lane k of the
/// inputs) and free of side effects: it is also called on the zero-padded tail.
///
///   simd::map<B>(n, simd::out(y), simd::in(a, x), [](auto a, auto x) {
///       return simd::fma(a, x, decltype(a)(1.0f));
///   });
template <class B = native, class... O, class... I, class F>
GMK_INLINE void map(std::size_t n, outputs<O...> out, inputs<I...> in, F&& f) {
    static_assert(sizeof...(O) >= 1, "gmk::simd::map needs at least one output");
    constexpr std::size_t L = detail::common_lanes<B, O..., I...>();
    constexpr auto os = std::index_sequence_for<O...>{};
    constexpr auto is = std::index_sequence_for<I...>{};
    const std::size_t body = n - n % L;
    std::size_t at = 0;
    // Two vectors per trip: enough independent work to keep the load and store ports busy, and
    // few enough copies of f that the compiler still inlines a long one (exp, log) in each.
    for (; at + 2 * L <= body; at += 2 * L) {
        detail::store_at(at, out.ptrs, detail::call_at<B>(at, in.ptrs, f, is), os);
        detail::store_at(at + L, out.ptrs, detail::call_at<B>(at + L, in.ptrs, f, is), os);
    }
    for (; at < body; at += L)
        detail::store_at(at, out.ptrs, detail::call_at<B>(at, in.ptrs, f, is), os);
    const std::size_t rest = n - body;
    if (rest == 0) return;
    const auto in_buf = detail::pad<L>(in.ptrs, body, rest, is);
    std::tuple<std::array<O, L>...> out_buf{};
    const auto out_tmp = detail::pointers(out_buf, os);
    detail::store_at(0, out_tmp, detail::call_at<B>(0, detail::pointers(in_buf, is), f, is), os);
    detail::unpad(out_buf, out.ptrs, body, rest, os);
}

/// Lane-wise reduction of f over elements [0, n) of the inputs: returns the vector of partial
/// results `acc`, starting from `identity` in every lane and folding `acc = combine(acc, f(...))`.
/// Reduce its lanes with reduce_add / reduce_max / reduce_min. Eight independent accumulators
/// hide the latency of `combine` (two loads a cycle times a 3-4 cycle latency); the order of
/// operations depends only on n and the backend.
template <class B = native, class R, class... I, class F, class C>
batch<R, B> transform_reduce(std::size_t n, R identity, inputs<I...> in, F&& f, C&& combine) {
    constexpr std::size_t L = detail::common_lanes<B, R, I...>();
    constexpr std::size_t U = 8;
    constexpr auto is = std::index_sequence_for<I...>{};
    const batch<R, B> id = simd::broadcast<B>(identity);
    batch<R, B> acc[U];
    for (auto& a : acc) a = id;
    std::size_t at = 0;
    // The U steps are spelled out by a pack expansion, so the accumulators stay in registers
    // whatever the compiler's unrolling heuristics.
    const auto step = [&](auto... u) {
        ((acc[decltype(u)::value] =
              combine(acc[decltype(u)::value], detail::call_at<B>(at + decltype(u)::value * L, in.ptrs, f, is))),
         ...);
    };
    for (; at + U * L <= n; at += U * L)
        std::apply(step, detail::index_tuple(std::make_index_sequence<U>{}));
    for (std::size_t u = 0; at + L <= n; at += L, ++u)
        acc[u] = combine(acc[u], detail::call_at<B>(at, in.ptrs, f, is));
    for (std::size_t width = U / 2; width >= 1; width /= 2)  // pairwise: 8 -> 4 -> 2 -> 1
        for (std::size_t u = 0; u < width; ++u) acc[u] = combine(acc[u], acc[u + width]);
    const std::size_t rest = n - at;
    if (rest == 0) return acc[0];
    const auto in_buf = detail::pad<L>(in.ptrs, at, rest, is);
    const batch<R, B> tail = detail::call_at<B>(0, detail::pointers(in_buf, is), f, is);
    return combine(acc[0], simd::select(detail::first_lanes<B, R>(rest), tail, id));
}

/// The first index i in [0, n) where lane-wise predicate `pred` (vectors of the inputs -> mask)
/// holds, or n when it holds nowhere.
template <class B = native, class... I, class P>
std::size_t find_first(std::size_t n, inputs<I...> in, P&& pred) {
    constexpr std::size_t L = detail::common_lanes<B, I...>();
    constexpr auto is = std::index_sequence_for<I...>{};
    std::size_t at = 0;
    for (; at + L <= n; at += L) {
        const auto m = detail::call_at<B>(at, in.ptrs, pred, is);
        if (simd::any(m)) return at + detail::first_set_lane(m, L);
    }
    const std::size_t rest = n - at;
    if (rest == 0) return n;
    const auto in_buf = detail::pad<L>(in.ptrs, at, rest, is);
    const auto m = detail::call_at<B>(0, detail::pointers(in_buf, is), pred, is);
    return at + detail::first_set_lane(m, rest);
}

/// Sum of x[0..n) (0 for n = 0), accumulated lane-wise in four interleaved partial sums.
template <class B = native, class T>
T sum(const T* x, std::size_t n) {
    check_pointer(x, n, "simd::sum", "x");
    return simd::reduce_add(transform_reduce<B>(
        n, T(0), in(x), [](const auto& v) { return v; },
        [](const auto& a, const auto& b) { return a + b; }));
}

namespace detail {
// Lane-wise maximum that keeps NaN once seen: std::max semantics keep the first argument
// when either is NaN, so a NaN accumulator stays NaN and a NaN input is taken explicitly.
struct nan_sticky_max {
    template <class V>
    V operator()(const V& acc, const V& x) const noexcept {
        return simd::select(simd::isnan(x), x, simd::max(acc, x));
    }
};
struct nan_sticky_min {
    template <class V>
    V operator()(const V& acc, const V& x) const noexcept {
        return simd::select(simd::isnan(x), x, simd::min(acc, x));
    }
};
struct plain_max {
    template <class V>
    V operator()(const V& acc, const V& x) const noexcept { return simd::max(acc, x); }
};
struct plain_min {
    template <class V>
    V operator()(const V& acc, const V& x) const noexcept { return simd::min(acc, x); }
};
struct identity {
    template <class V>
    V operator()(const V& v) const noexcept { return v; }
};
}  // namespace detail

/// Largest element of x[0..n), n >= 1; NaN when any element is NaN (as numpy.max).
template <class B = native, class T>
T max_value(const T* x, std::size_t n) {
    check_pointer(x, n, "simd::max_value", "x");
    check_argument(n >= 1, "simd::max_value", "n", n, "must be at least 1");
    if constexpr (std::is_floating_point_v<T>)
        return simd::reduce_max(transform_reduce<B>(n, -std::numeric_limits<T>::infinity(), in(x),
                                                    detail::identity{}, detail::nan_sticky_max{}));
    else
        return simd::reduce_max(transform_reduce<B>(n, std::numeric_limits<T>::lowest(), in(x),
                                                    detail::identity{}, detail::plain_max{}));
}

/// Smallest element of x[0..n), n >= 1; NaN when any element is NaN (as numpy.min).
template <class B = native, class T>
T min_value(const T* x, std::size_t n) {
    check_pointer(x, n, "simd::min_value", "x");
    check_argument(n >= 1, "simd::min_value", "n", n, "must be at least 1");
    if constexpr (std::is_floating_point_v<T>)
        return simd::reduce_min(transform_reduce<B>(n, std::numeric_limits<T>::infinity(), in(x),
                                                    detail::identity{}, detail::nan_sticky_min{}));
    else
        return simd::reduce_min(transform_reduce<B>(n, std::numeric_limits<T>::max(), in(x),
                                                    detail::identity{}, detail::plain_min{}));
}

/// Index of the largest element of x[0..n), n >= 1. Ties go to the lowest index (-0 and +0
/// compare equal); if any element is NaN, the index of the first NaN (as numpy and torch).
template <class B = native, class T>
std::size_t argmax(const T* x, std::size_t n) {
    const T m = max_value<B>(x, n);
    if constexpr (std::is_floating_point_v<T>) {
        if (m != m) return find_first<B>(n, in(x), [](const auto& v) { return simd::isnan(v); });
    }
    return find_first<B>(n, in(x), [m](const auto& v) { return v == std::decay_t<decltype(v)>(m); });
}

/// Index of the smallest element of x[0..n), n >= 1, with the tie and NaN rules of argmax.
template <class B = native, class T>
std::size_t argmin(const T* x, std::size_t n) {
    const T m = min_value<B>(x, n);
    if constexpr (std::is_floating_point_v<T>) {
        if (m != m) return find_first<B>(n, in(x), [](const auto& v) { return simd::isnan(v); });
    }
    return find_first<B>(n, in(x), [m](const auto& v) { return v == std::decay_t<decltype(v)>(m); });
}

// ---- the reductions on containers ----------------------------------------------------------
// Each takes any contiguous range gmk::span can view (std::vector, std::array, gmk::span,
// Eigen vectors with <gmk/eigen.hpp>) without copying.

#define GMK_SIMD_RANGE_OVERLOAD(name)                                                      \
    template <class B = native, class C, std::enable_if_t<is_contiguous_range_v<C>, int> = 0> \
    auto name(const C& c) {                                                                \
        const auto s = as_span(c);                                                         \
        return name<B>(s.data(), s.size());                                                \
    }
GMK_SIMD_RANGE_OVERLOAD(sum)
GMK_SIMD_RANGE_OVERLOAD(max_value)
GMK_SIMD_RANGE_OVERLOAD(min_value)
GMK_SIMD_RANGE_OVERLOAD(argmax)
GMK_SIMD_RANGE_OVERLOAD(argmin)
#undef GMK_SIMD_RANGE_OVERLOAD

}  // namespace gmk::simd
