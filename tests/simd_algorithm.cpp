// Tests of gmk/simd/algorithm.hpp: map, transform_reduce, find_first and the reductions built on
// them (sum, max_value, min_value, argmax, argmin), on every backend the build compiles and this
// CPU runs, for every size from 0 to 4 vectors + 3 (and sizes around the unrolled loops beyond)
// and for starting points 0..3 elements past an aligned address, against the scalar backend and
// plain C++ references.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
using std::int32_t;
using std::int64_t;

namespace {

template <class T>
using lim = std::numeric_limits<T>;

// The exact sum of n terms and how far any order of n additions in T may stray from it:
// (n - 1) eps sum|term| (eps = 2u), rounded up to n eps sum|term|; 0 for integers.
struct exact_sum {
    long double value = 0;
    long double bound = 0;
};
template <class T, class Term>
exact_sum exact_sum_of(std::size_t n, Term term) {
    exact_sum r;
    long double magnitude = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const long double t = term(i);
        r.value += t;
        magnitude += std::fabs(t);
    }
    r.bound = std::is_floating_point_v<T> ? n * lim<T>::epsilon() * magnitude : 0;
    return r;
}

constexpr std::size_t max_offset = 3;
constexpr std::size_t guard = 8;  // elements after the end of every array, checked untouched

/// n elements starting `offset` elements past a 64-byte boundary, with `guard` more after them.
template <class T>
struct offset_array {
    simd::aligned_vector<T> storage;
    std::size_t offset, n;

    offset_array(std::size_t n_, std::size_t offset_, T fill) : storage(n_ + offset_ + guard, fill), offset(offset_), n(n_) {}
    T* data() { return storage.data() + offset; }
    const T* data() const { return storage.data() + offset; }
    T& operator[](std::size_t i) { return storage[offset + i]; }
    const T& operator[](std::size_t i) const { return storage[offset + i]; }
    /// True when nothing before data() or after data() + n differs from `fill`.
    bool untouched_outside(T fill) const {
        for (std::size_t i = 0; i < storage.size(); ++i)
            if ((i < offset || i >= offset + n) && !gt::same_bits(storage[i], fill)) return false;
        return true;
    }
};

/// Random inputs: floating point uniform in [lo, hi], integers uniform in [lo, hi].
template <class T>
offset_array<T> random_array(std::size_t n, std::size_t offset, double lo, double hi, std::uint64_t seed) {
    offset_array<T> a(n, offset, T(0));
    gt::fill_uniform(a.data(), n, lo, hi, seed);
    return a;
}

/// The sizes every loop is tested at, for vectors of L lanes: every n up to 4 vectors + 3, then
/// sizes around the reductions' unrolled loop (8 accumulators of L lanes: one and two full
/// rounds, with 0, 1 and 7 vectors left over and a tail) and one long array.
std::vector<std::size_t> sizes(std::size_t L) {
    std::vector<std::size_t> n;
    for (std::size_t k = 0; k <= 4 * L + 3; ++k) n.push_back(k);
    for (std::size_t k : {8 * L - 1, 8 * L, 8 * L + 1, 9 * L, 9 * L + 2, 15 * L + L / 2, 16 * L, 23 * L + 1,
                          24 * L - 1, 100 * L + 5})
        if (k > 4 * L + 3) n.push_back(k);
    std::sort(n.begin(), n.end());
    n.erase(std::unique(n.begin(), n.end()), n.end());
    return n;
}

/// Positions in [0, n) that tests plant values at: all of them for short arrays; for long ones
/// the ends, both sides of the first vector and of the first unrolled round, and the middle.
std::vector<std::size_t> positions(std::size_t n, std::size_t L) {
    std::vector<std::size_t> p;
    if (n <= 4 * L + 3) {
        for (std::size_t k = 0; k < n; ++k) p.push_back(k);
        return p;
    }
    for (std::size_t k : {std::size_t(0), std::size_t(1), L - 1, L, 8 * L - 1, 8 * L, n / 2, n - L - 1, n - L,
                          n - 2, n - 1})
        if (k < n) p.push_back(k);
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    return p;
}

/// Calls f(B{}, type_tag<T>{}, n, offset) for every backend B, element type T, size n of
/// sizes(lanes) and offset in [0, 3].
template <class... Ts, class F>
void for_each_case(F&& f) {
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<Ts...>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            for (std::size_t n : sizes(simd::lanes<T, B>))
                for (std::size_t offset = 0; offset <= max_offset; ++offset) f(b, t, n, offset);
        });
    });
}

template <class B, class T>
std::string where(std::size_t n, std::size_t offset) {
    return gt::label<B, T>() + " n=" + std::to_string(n) + " offset=" + std::to_string(offset);
}

/// Scale of inputs whose arithmetic stays exact enough to compare bit for bit: integers small
/// enough that (x + c) * x cannot overflow.
template <class T>
double input_range() {
    return std::is_floating_point_v<T> ? 100.0 : 1000.0;
}

/// The elementwise function the map tests run: additions, a product, min/max and abs, each
/// correctly rounded, so every backend must agree bit for bit.
struct mixed_arithmetic {
    template <class V>
    V operator()(const V& x) const {
        using T = typename V::value_type;
        return simd::max((x + V(T(3))) * x, simd::min(simd::abs(x), V(T(50))));
    }
};
template <class T>
T mixed_arithmetic_reference(T x) {
    return std::max(T(T(x + T(3)) * x), std::min(T(x < 0 ? -x : x), T(50)));
}

/// First index of the largest / smallest element with std::max semantics (ties: lowest index).
template <class T>
std::size_t reference_argmax(const T* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (gt::is_nan(x[i])) return i;
    return std::size_t(std::max_element(x, x + n) - x);
}
template <class T>
std::size_t reference_argmin(const T* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (gt::is_nan(x[i])) return i;
    return std::size_t(std::min_element(x, x + n) - x);
}

std::string message_of_invalid_argument(void (*f)()) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no std::invalid_argument";
}

}  // namespace

// ---- map -----------------------------------------------------------------------------------

TEST_CASE("simd::map computes one output for every size and alignment, writing nothing else", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const offset_array<T> x = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 100 + n);
        const T fill = T(-77);
        offset_array<T> y(n, offset, fill), y_scalar(n, offset, fill);
        simd::map<B>(n, simd::out(y.data()), simd::in(x.data()), mixed_arithmetic{});
        simd::map<simd::scalar>(n, simd::out(y_scalar.data()), simd::in(x.data()), mixed_arithmetic{});
        for (std::size_t i = 0; i < n; ++i)
            if (!gt::same_value(y[i], y_scalar[i]) || !gt::same_value(y[i], mixed_arithmetic_reference(x[i])))
                log.add(where<B, T>(n, offset), " element ", i, ": ", gt::show(y[i]), " for x = ", gt::show(x[i]));
        if (!y.untouched_outside(fill)) log.add(where<B, T>(n, offset), ": wrote outside [0, n)");
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::map with two inputs and two outputs returned as a std::tuple", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const offset_array<T> x = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 200 + n);
        const offset_array<T> z = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 300 + n);
        const T fill = T(-77);
        offset_array<T> s(n, offset, fill), p(n, offset, fill);
        simd::map<B>(n, simd::out(s.data(), p.data()), simd::in(x.data(), z.data()),
                     [](const auto& u, const auto& v) { return std::make_tuple(u - v, simd::min(u, v) * v); });
        for (std::size_t i = 0; i < n; ++i) {
            const T want_s = T(x[i] - z[i]), want_p = T(std::min(x[i], z[i]) * z[i]);
            if (!gt::same_value(s[i], want_s) || !gt::same_value(p[i], want_p))
                log.add(where<B, T>(n, offset), " element ", i, ": ", gt::show(s[i]), ", ", gt::show(p[i]));
        }
        if (!s.untouched_outside(fill) || !p.untouched_outside(fill))
            log.add(where<B, T>(n, offset), ": wrote outside [0, n)");
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::map in place: the output may be the input", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        offset_array<T> x = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 400 + n);
        const T fill = T(0);  // random_array's padding
        const offset_array<T> original = x;
        // In place on one array, and over two arrays that are both input and output, swapped.
        offset_array<T> z = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 500 + n);
        const offset_array<T> z_original = z;
        simd::map<B>(n, simd::out(x.data()), simd::in(x.data()), mixed_arithmetic{});
        for (std::size_t i = 0; i < n; ++i)
            if (!gt::same_value(x[i], mixed_arithmetic_reference(original[i])))
                log.add(where<B, T>(n, offset), " in place, element ", i, ": ", gt::show(x[i]));
        simd::map<B>(n, simd::out(x.data(), z.data()), simd::in(z.data(), x.data()),
                     [](const auto& u, const auto& v) { return std::make_tuple(u, v); });
        for (std::size_t i = 0; i < n; ++i)
            if (!gt::same_value(x[i], z_original[i]) || !gt::same_value(z[i], mixed_arithmetic_reference(original[i])))
                log.add(where<B, T>(n, offset), " swap in place, element ", i);
        if (!x.untouched_outside(fill) || !z.untouched_outside(fill))
            log.add(where<B, T>(n, offset), ": wrote outside [0, n)");
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::map over mixed element types of one lane count (float with int32_t, double with int64_t)",
          "[simd][algorithm]") {
    gt::mismatch_log log;
    auto run = [&](auto b, auto ft, auto it) {
        using B = decltype(b);
        using F = typename decltype(ft)::type;
        using I = typename decltype(it)::type;
        STATIC_REQUIRE(simd::lanes<F, B> == simd::lanes<I, B>);
        constexpr std::size_t L = simd::lanes<F, B>;
        for (std::size_t n = 0; n <= 4 * L + 3; ++n)
            for (std::size_t offset = 0; offset <= max_offset; ++offset) {
                const offset_array<F> f = random_array<F>(n, offset, -1000, 1000, 600 + n);
                const offset_array<I> i = random_array<I>(n, offset, -1000, 1000, 700 + n);
                offset_array<F> yf(n, offset, F(-77));
                offset_array<I> yi(n, offset, I(-77));
                simd::map<B>(n, simd::out(yf.data(), yi.data()), simd::in(f.data(), i.data()),
                             [](const auto& fv, const auto& iv) {
                                 return std::make_tuple(fv * simd::convert<F>(iv), iv + simd::convert<I>(fv));
                             });
                for (std::size_t k = 0; k < n; ++k) {
                    const F want_f = F(f[k] * static_cast<F>(i[k]));
                    const I want_i = I(i[k] + static_cast<I>(f[k]));
                    if (!gt::same_value(yf[k], want_f) || yi[k] != want_i)
                        log.add(where<B, F>(n, offset), " element ", k, ": ", gt::show(yf[k]), ", ", yi[k]);
                }
                if (!yf.untouched_outside(F(-77)) || !yi.untouched_outside(I(-77)))
                    log.add(where<B, F>(n, offset), ": wrote outside [0, n)");
            }
    };
    gt::for_each_backend([&](auto b) {
        run(b, gt::type_tag<float>{}, gt::type_tag<int32_t>{});
        run(b, gt::type_tag<double>{}, gt::type_tag<int64_t>{});
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::map gives an element the same bits wherever it sits: body, tail, any lane", "[simd][algorithm]") {
    // The tail runs through the same vector code as the body, so exp, log and fma of element i do
    // not depend on n or on where the array starts. Compared bit for bit (NaN payloads included).
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            constexpr std::size_t L = simd::lanes<T, B>;
            const std::size_t N = 4 * L + 3;
            const offset_array<T> x = random_array<T>(N, 0, -20, 20, 800);
            const offset_array<T> p = random_array<T>(N, 0, 0.001, 50, 801);
            const auto f = [](const auto& u, const auto& v) {
                using V = std::decay_t<decltype(u)>;
                using E = typename V::value_type;
                return std::make_tuple(simd::exp(u), simd::log(v), simd::fma(u, v, V(E(0.5))));
            };
            offset_array<T> e_all(N, 0, T(0)), l_all(N, 0, T(0)), m_all(N, 0, T(0));
            simd::map<B>(N, simd::out(e_all.data(), l_all.data(), m_all.data()), simd::in(x.data(), p.data()), f);
            for (std::size_t start = 0; start < N; ++start)
                for (std::size_t n = 1; start + n <= N; ++n) {
                    offset_array<T> e(n, 0, T(0)), l(n, 0, T(0)), m(n, 0, T(0));
                    simd::map<B>(n, simd::out(e.data(), l.data(), m.data()),
                                 simd::in(x.data() + start, p.data() + start), f);
                    for (std::size_t i = 0; i < n; ++i)
                        if (!gt::same_bits(e[i], e_all[start + i]) || !gt::same_bits(l[i], l_all[start + i]) ||
                            !gt::same_bits(m[i], m_all[start + i]))
                            log.add(gt::label<B, T>(), " element ", start + i, " of a map over [", start, ", ",
                                    start + n, ") differs from the map over [0, ", N, ")");
                }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- transform_reduce and find_first -------------------------------------------------------

TEST_CASE("simd::transform_reduce folds a mapped expression for every size and alignment", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const offset_array<T> x = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 900 + n);
        const offset_array<T> z = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 1000 + n);
        const auto plus = [](const auto& u, const auto& v) { return u + v; };
        const auto times = [](const auto& u, const auto& v) { return u * v; };

        // A dot product: exact for integers, within n eps sum |x z| (any summation order) for floats.
        const T dot = simd::reduce_add(simd::transform_reduce<B>(n, T(0), simd::in(x.data(), z.data()), times, plus));
        const exact_sum ref = exact_sum_of<T>(n, [&](std::size_t i) {
            return static_cast<long double>(x[i]) * static_cast<long double>(z[i]);
        });
        const long double exact = ref.value;
        if (!(std::fabs(static_cast<long double>(dot) - exact) <= ref.bound))
            log.add(where<B, T>(n, offset), " dot product ", gt::show(dot), ", exact ", double(exact));

        // A maximum of |x| from identity 0: exact.
        const T big = simd::reduce_max(simd::transform_reduce<B>(
            n, T(0), simd::in(x.data()), [](const auto& u) { return simd::abs(u); },
            [](const auto& u, const auto& v) { return simd::max(u, v); }));
        T want = T(0);
        for (std::size_t i = 0; i < n; ++i) want = std::max(want, T(x[i] < 0 ? -x[i] : x[i]));
        if (!gt::same_value(big, want)) log.add(where<B, T>(n, offset), " max |x| ", gt::show(big));

        // An identity unlike the tail's zero padding: the lanes past n must hold the identity.
        const T small = simd::reduce_min(simd::transform_reduce<B>(
            n, T(5000), simd::in(x.data()), [](auto u) { return simd::abs(u) + decltype(u)(T(1)); },
            [](const auto& u, const auto& v) { return simd::min(u, v); }));
        T want_small = T(5000);
        for (std::size_t i = 0; i < n; ++i) want_small = std::min(want_small, T(T(x[i] < 0 ? -x[i] : x[i]) + T(1)));
        if (!gt::same_value(small, want_small)) log.add(where<B, T>(n, offset), " min |x| + 1 ", gt::show(small));
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::find_first returns the first index where the predicate holds, or n", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const auto above = [](auto v) { return v > decltype(v)(T(10)); };
        offset_array<T> x = random_array<T>(n, offset, -10, 10, 1100 + n);
        if (simd::find_first<B>(n, simd::in(x.data()), above) != n) log.add(where<B, T>(n, offset), ": found none");
        const std::vector<std::size_t> at = positions(n, simd::lanes<T, B>);
        for (std::size_t p : at) {
            for (std::size_t q : at) {  // hits at p and q >= p: the answer is p
                if (q < p) continue;
                offset_array<T> y = x;
                y[p] = T(11);
                y[q] = T(12);
                const std::size_t got = simd::find_first<B>(n, simd::in(y.data()), above);
                if (got != p) log.add(where<B, T>(n, offset), ": hits at ", p, " and ", q, ", found ", got);
            }
        }
        // The padded tail must not produce hits: a predicate true for 0 (the padding).
        const auto zero = [](auto v) { return v == decltype(v)(T(0)); };
        offset_array<T> nonzero(n, offset, T(1));
        if (simd::find_first<B>(n, simd::in(nonzero.data()), zero) != n)
            log.add(where<B, T>(n, offset), ": found padding past n");
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- sum -----------------------------------------------------------------------------------

TEST_CASE("simd::sum is within n eps sum|x| of the exact sum (exact for integers)", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const offset_array<T> x = random_array<T>(n, offset, -input_range<T>(), input_range<T>(), 1200 + n);
        const T got = simd::sum<B>(x.data(), n);
        const T on_scalar = simd::sum<simd::scalar>(x.data(), n);
        const exact_sum ref = exact_sum_of<T>(n, [&](std::size_t i) { return static_cast<long double>(x[i]); });
        const long double exact = ref.value, bound = ref.bound;
        if (!(std::fabs(got - exact) <= bound) || !(std::fabs(got - static_cast<long double>(on_scalar)) <= 2 * bound))
            log.add(where<B, T>(n, offset), ": sum ", gt::show(got), ", scalar ", gt::show(on_scalar), ", exact ",
                    double(exact));
        if (n == 0 && !gt::same_value(got, T(0))) log.add(where<B, T>(n, offset), ": sum of nothing ", gt::show(got));
    });
    GMK_REQUIRE_NO_MISMATCH(log);

    REQUIRE(simd::sum(static_cast<const float*>(nullptr), 0) == 0.0f);
    REQUIRE(simd::sum<simd::scalar>(static_cast<const int64_t*>(nullptr), 0) == 0);
}

// ---- max_value, min_value, argmax, argmin --------------------------------------------------

TEST_CASE("simd::max_value, min_value, argmax, argmin on random data, exactly the std:: answer", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        if (n == 0) return;
        // Integers over the whole range here: max and min involve no arithmetic.
        const double range = std::is_floating_point_v<T> ? 1e6 : double(lim<T>::max()) / 2;
        const offset_array<T> x = random_array<T>(n, offset, -range, range, 1300 + n);
        const T hi = *std::max_element(x.data(), x.data() + n), lo = *std::min_element(x.data(), x.data() + n);
        const std::size_t ihi = reference_argmax(x.data(), n), ilo = reference_argmin(x.data(), n);
        const T got_hi = simd::max_value<B>(x.data(), n), got_lo = simd::min_value<B>(x.data(), n);
        const std::size_t got_ihi = simd::argmax<B>(x.data(), n), got_ilo = simd::argmin<B>(x.data(), n);
        if (!gt::same_value(got_hi, hi) || !gt::same_value(got_lo, lo) || got_ihi != ihi || got_ilo != ilo ||
            !gt::same_value(got_hi, simd::max_value<simd::scalar>(x.data(), n)) ||
            got_ihi != simd::argmax<simd::scalar>(x.data(), n))
            log.add(where<B, T>(n, offset), ": max ", gt::show(got_hi), " at ", got_ihi, ", min ", gt::show(got_lo),
                    " at ", got_ilo, "; expected ", gt::show(hi), " at ", ihi, ", ", gt::show(lo), " at ", ilo);
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::argmax and argmin: ties go to the lowest index, -0 and +0 tie", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double, int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const offset_array<T> base = random_array<T>(n, offset, -100, 100, 1400 + n);
        const std::vector<std::size_t> at = positions(n, simd::lanes<T, B>);
        for (std::size_t p : at)
            for (std::size_t q : at) {
                if (q < p) continue;
                offset_array<T> x = base;
                x[p] = x[q] = T(1000);
                offset_array<T> y = base;
                y[p] = y[q] = T(-1000);
                const std::size_t a = simd::argmax<B>(x.data(), n), c = simd::argmin<B>(y.data(), n);
                if (a != p || c != p || simd::max_value<B>(x.data(), n) != T(1000) || simd::min_value<B>(y.data(), n) != T(-1000))
                    log.add(where<B, T>(n, offset), ": extremes at ", p, " and ", q, ": argmax ", a, ", argmin ", c);
            }
        if constexpr (std::is_floating_point_v<T>) {
            // Signed zeros tie: the first zero wins whichever sign it has.
            for (std::size_t p : at)
                for (std::size_t q : at)
                    for (const T first : {T(0), -T(0)}) {
                        if (q <= p) continue;
                        offset_array<T> x(n, offset, T(-5));  // all negative but the zeros
                        x[p] = first;
                        x[q] = -first;
                        offset_array<T> y(n, offset, T(5));  // all positive but the zeros
                        y[p] = first;
                        y[q] = -first;
                        const std::size_t a = simd::argmax<B>(x.data(), n), c = simd::argmin<B>(y.data(), n);
                        if (a != p || c != p || simd::max_value<B>(x.data(), n) != T(0) || simd::min_value<B>(y.data(), n) != T(0))
                            log.add(where<B, T>(n, offset), ": zeros ", gt::show(first), " at ", p, ", ",
                                    gt::show(T(-first)), " at ", q, ": argmax ", a, ", argmin ", c);
                    }
        }
        // All equal: index 0.
        if (n > 0) {
            const offset_array<T> same(n, offset, T(7));
            if (simd::argmax<B>(same.data(), n) != 0 || simd::argmin<B>(same.data(), n) != 0)
                log.add(where<B, T>(n, offset), ": all equal");
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::max_value and min_value are NaN, argmax and argmin the first NaN, when any element is NaN",
          "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<float, double>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        const T nan = lim<T>::quiet_NaN(), inf = lim<T>::infinity();
        offset_array<T> base = random_array<T>(n, offset, -100, 100, 1500 + n);
        if (n >= 2) {  // infinities beside the NaN must not win
            base[0] = inf;
            base[n - 1] = -inf;
        }
        const std::vector<std::size_t> at = positions(n, simd::lanes<T, B>);
        for (std::size_t p : at)
            for (std::size_t q : at) {
                if (q < p) continue;
                offset_array<T> x = base;
                x[q] = -nan;  // a second NaN (of either sign) later does not matter
                x[p] = nan;
                const T hi = simd::max_value<B>(x.data(), n), lo = simd::min_value<B>(x.data(), n);
                const std::size_t a = simd::argmax<B>(x.data(), n), c = simd::argmin<B>(x.data(), n);
                if (!std::isnan(hi) || !std::isnan(lo) || a != p || c != p)
                    log.add(where<B, T>(n, offset), ": NaN at ", p, " and ", q, ": max ", gt::show(hi), ", min ",
                            gt::show(lo), ", argmax ", a, ", argmin ", c);
            }
        if (n >= 2) {  // no NaN: infinities are ordinary extremes
            offset_array<T> x(n, offset, -inf);
            x[n - 1] = inf;
            if (simd::max_value<B>(x.data(), n) != inf || simd::argmax<B>(x.data(), n) != n - 1 ||
                simd::min_value<B>(x.data(), n) != -inf || simd::argmin<B>(x.data(), n) != 0)
                log.add(where<B, T>(n, offset), ": infinities");
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("simd::max_value, min_value, argmax, argmin at the ends of the integer range", "[simd][algorithm]") {
    gt::mismatch_log log;
    for_each_case<int32_t, int64_t>([&](auto b, auto t, std::size_t n, std::size_t offset) {
        using B = decltype(b);
        using T = typename decltype(t)::type;
        if (n == 0) return;
        const T lo = lim<T>::min(), hi = lim<T>::max();
        auto check = [&](const offset_array<T>& a, const char* what, std::size_t p) {
            const T* d = a.data();
            if (simd::max_value<B>(d, n) != *std::max_element(d, d + n) ||
                simd::min_value<B>(d, n) != *std::min_element(d, d + n) ||
                simd::argmax<B>(d, n) != reference_argmax(d, n) || simd::argmin<B>(d, n) != reference_argmin(d, n))
                log.add(where<B, T>(n, offset), ": ", what, " at ", p, ": max ", simd::max_value<B>(d, n), " at ",
                        simd::argmax<B>(d, n), ", min ", simd::min_value<B>(d, n), " at ", simd::argmin<B>(d, n));
        };
        const offset_array<T> all_lo(n, offset, lo), all_hi(n, offset, hi);
        check(all_lo, "all min()", 0);
        check(all_hi, "all max()", 0);
        for (std::size_t p : positions(n, simd::lanes<T, B>)) {
            offset_array<T> x = all_lo, y = all_hi, z = all_lo;
            x[p] = hi;
            y[p] = lo;
            z[p] = T(lo + 1);
            check(x, "one max() among min()", p);
            check(y, "one min() among max()", p);
            check(z, "one min() + 1 among min()", p);
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- argument checks -----------------------------------------------------------------------

TEST_CASE("simd reductions reject n = 0 and null pointers with std::invalid_argument", "[simd][algorithm][error]") {
    gt::for_each_backend([](auto b) {
        using B = decltype(b);
        INFO(simd::backend_name<B>());
        const float x[3] = {1.0f, 2.0f, 3.0f};
        REQUIRE_THROWS_AS(simd::max_value<B>(x, 0), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::min_value<B>(x, 0), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::argmax<B>(x, 0), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::argmin<B>(x, 0), std::invalid_argument);
        REQUIRE(simd::sum<B>(x, 0) == 0.0f);
        const double* null = nullptr;
        REQUIRE_THROWS_AS(simd::sum<B>(null, 3), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::max_value<B>(null, 3), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::min_value<B>(null, 3), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::argmax<B>(null, 3), std::invalid_argument);
        REQUIRE_THROWS_AS(simd::argmin<B>(null, 3), std::invalid_argument);
        REQUIRE(simd::sum<B>(null, 0) == 0.0);
        REQUIRE_THROWS_AS(simd::max_value<B>(null, 0), std::invalid_argument);  // n = 0 is checked too
    });
    // The messages name the function, the argument and the value.
    const std::string null_sum = message_of_invalid_argument([] { (void)simd::sum(static_cast<const float*>(nullptr), 4); });
    REQUIRE(null_sum.find("simd::sum") != std::string::npos);
    REQUIRE(null_sum.find("x = null") != std::string::npos);
    const std::string null_max = message_of_invalid_argument([] { (void)simd::argmax(static_cast<const double*>(nullptr), 2); });
    REQUIRE(null_max.find("x = null") != std::string::npos);
    const std::string empty = message_of_invalid_argument([] {
        const int32_t v[1] = {1};
        (void)simd::min_value(v, 0);
    });
    REQUIRE(empty.find("simd::min_value") != std::string::npos);
    REQUIRE(empty.find("n = 0") != std::string::npos);
}

TEST_CASE("simd reductions take containers and spans without copying", "[simd][algorithm]") {
    std::vector<float> v{3.0f, -1.0f, 7.0f, 7.0f, 2.0f};
    const std::array<double, 4> a{1.0, 2.0, 4.0, 8.0};
    REQUIRE(simd::sum(v) == 18.0f);
    REQUIRE(simd::max_value(v) == 7.0f);
    REQUIRE(simd::min_value<simd::scalar>(v) == -1.0f);
    REQUIRE(simd::argmax(v) == 2);  // the first of the tied maxima
    REQUIRE(simd::argmin(gmk::span<const float>(v)) == 1);
    REQUIRE(simd::sum(a) == 15.0);
    REQUIRE(simd::sum(gmk::span<const double>(a).subspan(1, 2)) == 6.0);
    REQUIRE_THROWS_AS(simd::max_value(std::vector<int>{}), std::invalid_argument);
}
