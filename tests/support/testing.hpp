// gmk tests: shared helpers (header-only): a deterministic random source, exact and ulp-level
// comparisons of floating-point values, and the backend/type loops every SIMD test runs.
#pragma once

#include <gmk/core/parallel.hpp>
#include <gmk/simd/simd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

/// Keeps a test helper out of its callers: the loops over every backend and type would otherwise
/// inline into one huge function per test case, which the optimizer takes minutes over.
#if defined(__GNUC__) || defined(__clang__)
#define GMK_TEST_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define GMK_TEST_NOINLINE __declspec(noinline)
#else
#define GMK_TEST_NOINLINE
#endif

#include "catch.hpp"

/// One assertion per loop: the mismatch_log names every failing backend, type, input and lane.
#define GMK_REQUIRE_NO_MISMATCH(log)     \
    do {                                 \
        INFO((log).text());              \
        REQUIRE((log).count() == 0);     \
    } while (false)

namespace gmk_test {

// ---- types ---------------------------------------------------------------------------------

/// A value carrying a type, for generic lambdas: `[](auto t) { using T = typename decltype(t)::type; }`.
template <class T>
struct type_tag {
    using type = T;
};

namespace detail {
template <class F, class A>
GMK_TEST_NOINLINE void call_out_of_line(F& f, A a) {
    f(a);
}
}  // namespace detail

/// Calls f(type_tag<T>{}) for each T, in order (each call out of line: see GMK_TEST_NOINLINE).
template <class... Ts, class F>
void for_each_type(F&& f) {
    (detail::call_out_of_line(f, type_tag<Ts>{}), ...);
}

/// gmk::simd::for_each_backend(f), each backend's call out of line.
template <class F>
void for_each_backend(F&& f) {
    gmk::simd::for_each_backend([&](auto b) { detail::call_out_of_line(f, b); });
}

/// An executor on `threads` threads: OpenMP's where the build has it (GMK_USE_OPENMP), else a
/// user executor that runs the tasks in reverse order, so results that depend on the order or
/// the split still show.
inline gmk::executor threaded_executor(int threads) {
#if defined(GMK_USE_OPENMP) && defined(_OPENMP)
    return gmk::executor::openmp(threads);
#else
    (void)threads;
    return gmk::executor([](std::size_t count, gmk::task_ref task) {
        for (std::size_t i = count; i-- > 0;) task(i);
    });
#endif
}

/// Calls f() and checks it throws std::invalid_argument whose message names `setting` as gmk's
/// argument checks do ("... setting = value ...").
template <class F>
void require_throws_naming(F&& f, const std::string& setting) {
    try {
        f();
        FAIL("no exception; expected one naming " << setting);
    } catch (const std::invalid_argument& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(setting + " = ") != std::string::npos);
    }
}

template <class T>
const char* type_name() {
    if constexpr (std::is_same_v<T, float>) return "float";
    else if constexpr (std::is_same_v<T, double>) return "double";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "int32_t";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "int64_t";
    else if constexpr (std::is_same_v<T, std::uint32_t>) return "uint32_t";
    else if constexpr (std::is_same_v<T, std::uint64_t>) return "uint64_t";
    else return "?";
}

/// "avx512bw/float": what INFO prints to say which instantiation failed.
template <class B, class T>
std::string label() {
    return std::string(gmk::simd::backend_name<B>()) + "/" + type_name<T>();
}

// ---- random numbers ------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator whose output does not depend on the standard
/// library (std:: distributions are implementation-defined, so tests avoid them).
class rng {
public:
    explicit rng(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, 1), 53 random bits.
    double uniform() noexcept { return double(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [lo, hi] (hi - lo < 2^63; the modulo bias is irrelevant for tests).
    std::int64_t integer(std::int64_t lo, std::int64_t hi) noexcept {
        const std::uint64_t span = std::uint64_t(hi) - std::uint64_t(lo) + 1;
        return std::int64_t(std::uint64_t(lo) + (span == 0 ? next() : next() % span));
    }

private:
    std::uint64_t state_;
};

/// Fills p[0..n) with values uniform in [lo, hi] (integers for integral T).
template <class T>
void fill_uniform(T* p, std::size_t n, double lo, double hi, std::uint64_t seed) {
    rng r(seed);
    for (std::size_t i = 0; i < n; ++i) {
        if constexpr (std::is_floating_point_v<T>) p[i] = static_cast<T>(r.uniform(lo, hi));
        else p[i] = static_cast<T>(r.integer(static_cast<std::int64_t>(lo), static_cast<std::int64_t>(hi)));
    }
}

template <class T>
std::vector<T> uniform_vector(std::size_t n, double lo, double hi, std::uint64_t seed) {
    std::vector<T> v(n);
    fill_uniform(v.data(), n, lo, hi, seed);
    return v;
}

// ---- exact comparison ----------------------------------------------------------------------

/// The unsigned integer of the same width as T.
template <class T>
using bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <class T>
bits_t<T> bits(T x) noexcept {
    static_assert(sizeof(T) == sizeof(bits_t<T>), "bits: 4- or 8-byte types only");
    bits_t<T> u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

template <class T>
bool is_nan(T x) noexcept {
    if constexpr (std::is_floating_point_v<T>) return x != x;
    else return false;
}

/// Exactly the same value: equal bits, except that any NaN matches any NaN (payloads and the
/// sign of NaN are not specified by IEEE arithmetic). +0 and -0 differ.
template <class T>
bool same_value(T a, T b) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
        if (a != a || b != b) return a != a && b != b;
        return bits(a) == bits(b);
    } else {
        return a == b;
    }
}

/// Exactly the same bits, NaN payload included (results of the same code path).
template <class T>
bool same_bits(T a, T b) noexcept {
    if constexpr (std::is_floating_point_v<T>) return bits(a) == bits(b);
    else return a == b;
}

/// Prints a value with enough digits to be read back exactly (and its bits for floats).
template <class T>
std::string show(T x) {
    std::ostringstream os;
    if constexpr (std::is_floating_point_v<T>) {
        os.precision(std::numeric_limits<T>::max_digits10);
        os << x << " [0x" << std::hex << bits(x) << "]";
    } else if constexpr (std::is_same_v<T, bool>) {
        os << (x ? "true" : "false");
    } else {
        os << +x;
    }
    return os.str();
}

// ---- ulps ----------------------------------------------------------------------------------

/// The integer line on which consecutive floating-point values of T are consecutive integers
/// (-0 and +0 both map to 0).
template <class T>
std::int64_t ordinal(T x) noexcept {
    const bits_t<T> u = bits(x);
    constexpr bits_t<T> sign = bits_t<T>(1) << (8 * sizeof(T) - 1);
    const std::int64_t magnitude = std::int64_t(u & ~sign);
    return (u & sign) ? -magnitude : magnitude;
}

/// Number of representable values of T between a and b (0 when equal, -0 == +0). Both finite
/// or infinite, not NaN.
template <class T>
std::uint64_t ulp_distance(T a, T b) noexcept {
    const std::int64_t d = ordinal(a) - ordinal(b);
    return d < 0 ? std::uint64_t(-d) : std::uint64_t(d);
}

/// The spacing of T's values at magnitude |r| (the ulp of the binade holding r; for subnormal
/// r, the smallest subnormal).
template <class T>
long double ulp_of(long double r) noexcept {
    using L = std::numeric_limits<T>;
    int e = 0;
    (void)std::frexp(std::fabs(r), &e);  // |r| = m * 2^e, m in [0.5, 1): leading bit is 2^(e-1)
    const int leading = (r == 0) ? L::min_exponent - 1 : std::max(e - 1, L::min_exponent - 1);
    return std::ldexp(1.0L, leading - (L::digits - 1));
}

/// Error of `got` against the exact value `ref`, in units of T's ulp at ref. Infinite when got
/// and ref disagree on being infinite or NaN.
template <class T>
long double ulp_error(T got, long double ref) noexcept {
    const bool got_nan = got != got, ref_nan = ref != ref;
    if (got_nan || ref_nan) return got_nan && ref_nan ? 0.0L : std::numeric_limits<long double>::infinity();
    if (std::isinf(got) || std::isinf(ref))
        return (static_cast<long double>(got) == ref) ? 0.0L : std::numeric_limits<long double>::infinity();
    return std::fabs(static_cast<long double>(got) - ref) / ulp_of<T>(ref);
}

// ---- collecting mismatches -----------------------------------------------------------------

/// Collects the first few failures of a loop into one message, so a test makes one assertion
/// per loop (`INFO(log.text()); REQUIRE(log.count() == 0);`) instead of one per element.
class mismatch_log {
public:
    template <class... Parts>
    GMK_TEST_NOINLINE void add(const Parts&... parts) {
        if (count_++ < max_shown) {
            std::ostringstream os;
            (os << ... << parts);
            text_ += os.str() + "\n";
        }
    }
    std::size_t count() const noexcept { return count_; }
    std::string text() const {
        return count_ > max_shown ? text_ + "... and " + std::to_string(count_ - max_shown) + " more\n" : text_;
    }

private:
    static constexpr std::size_t max_shown = 12;
    std::size_t count_ = 0;
    std::string text_;
};

}  // namespace gmk_test
