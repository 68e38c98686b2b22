// gmk fuzz targets: shared helpers. `input` decodes the fuzzer's bytes into parameters and data
// (every read is defined: past the end it returns zeros, so any byte string is an input), `mix`
// stretches a few bytes into many values for the larger problems, `expect` aborts with a message
// on a mismatch, `rejects` runs a call and reports whether it threw std::invalid_argument (the
// valid answer to bad input), and `with_backend` runs a generic lambda on one of the SIMD
// backends the CPU supports, one per distinct vector width.
#pragma once

#include <gmk/simd/backend.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace gmk_fuzz {

// ---- decoding -------------------------------------------------------------------------------

class input {
public:
    input(const std::uint8_t* data, std::size_t size) noexcept : p_(data), n_(size) {}

    std::size_t left() const noexcept { return n_; }

    std::uint8_t byte() noexcept {
        if (n_ == 0) return 0;
        --n_;
        return *p_++;
    }
    /// sizeof(U) bytes, little-endian (zeros past the end).
    template <class U>
    U bits() noexcept {
        static_assert(std::is_trivially_copyable_v<U>);
        unsigned char b[sizeof(U)] = {};
        for (auto& x : b) x = byte();
        U u;
        std::memcpy(&u, b, sizeof(U));
        return u;
    }
    bool flag() noexcept { return byte() & 1; }
    /// An integer in [lo, hi] (hi - lo < 2^32).
    std::size_t range(std::size_t lo, std::size_t hi) noexcept {
        const std::uint64_t span = std::uint64_t(hi - lo) + 1;
        const std::uint64_t r = span <= 256 ? byte() : span <= 65536 ? bits<std::uint16_t>() : bits<std::uint32_t>();
        return lo + std::size_t(r % span);
    }
    /// One of the n choices 0 .. n - 1.
    std::size_t choice(std::size_t n) noexcept { return range(0, n - 1); }
    /// A double in [lo, hi], 16 bits of resolution.
    double real(double lo, double hi) noexcept { return lo + (hi - lo) * (bits<std::uint16_t>() / 65535.0); }
    /// A double whose logarithm is uniform in [log lo, log hi] (0 < lo < hi), 16 bits.
    double log_real(double lo, double hi) noexcept { return std::exp(real(std::log(lo), std::log(hi))); }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

/// splitmix64: a deterministic stream of 64-bit values from a seed taken from the input.
class mix {
public:
    explicit mix(std::uint64_t seed) noexcept : s_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// In [0, 1).
    double uniform() noexcept { return double(next() >> 11) * 0x1p-53; }
    std::uint8_t byte() noexcept { return std::uint8_t(next() >> 56); }

private:
    std::uint64_t s_;
};

/// The floating-point values the byte b stands for: a few special values (NaN, infinities, signed
/// zeros, the extremes, a subnormal) and otherwise a coarse grid (b - 136) / 4, which makes ties
/// and repeated values common.
template <class T>
T special_or_grid(std::uint8_t b) noexcept {
    using lim = std::numeric_limits<T>;
    switch (b) {
        case 0:
            return lim::quiet_NaN();
        case 1:
            return lim::infinity();
        case 2:
            return -lim::infinity();
        case 3:
            return T(-0.0);
        case 4:
            return T(0);
        case 5:
            return lim::max();
        case 6:
            return lim::lowest();
        case 7:
            return lim::denorm_min();
        default:
            return T(int(b) - 136) / T(4);
    }
}

// ---- checking -------------------------------------------------------------------------------

namespace detail {
inline void append(std::ostringstream&) {}
template <class A, class... R>
void append(std::ostringstream& os, const A& a, const R&... r) {
    os << a;
    append(os, r...);
}
}  // namespace detail

/// Aborts (a finding) with the message when `ok` is false.
template <class... A>
void expect(bool ok, const A&... what) {
    if (ok) return;
    std::ostringstream os;
    os.precision(17);
    detail::append(os, what...);
    std::fprintf(stderr, "gmk fuzz: MISMATCH: %s\n", os.str().c_str());
    std::fflush(stderr);
    std::abort();
}

/// Runs f(); true when it threw std::invalid_argument (any other exception escapes: a finding).
template <class F>
bool rejects(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    }
    return false;
}

/// Runs f() where `valid` says whether its arguments are valid: a valid call must not throw, an
/// invalid one must throw std::invalid_argument. Returns whether f ran to completion.
template <class F>
bool call_checked(bool valid, const char* what, F&& f) {
    std::string message;
    bool threw = false;
    try {
        f();
    } catch (const std::invalid_argument& e) {
        threw = true;
        message = e.what();
    }
    expect(threw != valid, what, valid ? ": valid arguments rejected: " : ": invalid arguments accepted", message);
    return !threw;
}

/// Same value, bit for bit except that any two NaNs match.
template <class T>
bool same_value(T a, T b) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
        if (a != a) return b != b;
        return std::memcmp(&a, &b, sizeof(T)) == 0;
    } else {
        return a == b;
    }
}

// ---- backends -------------------------------------------------------------------------------

namespace detail {
template <class List>
struct width_representatives;
template <class... Bs>
struct width_representatives<gmk::simd::backend_list<Bs...>> {
    static constexpr std::size_t count = sizeof...(Bs);
    // True for the first backend of the list with its float vector width (scalar, then the
    // widest xsimd architecture of each width): the others repeat the same code paths.
    template <std::size_t I>
    static constexpr bool keep() noexcept {
        constexpr std::size_t w[] = {gmk::simd::lanes<float, Bs>...};
        for (std::size_t j = 0; j < I; ++j)
            if (w[j] == w[I]) return false;
        return true;
    }
    template <class F, std::size_t... I>
    static void run(std::size_t which, F& f, std::index_sequence<I...>) {
        std::size_t seen = 0;
        std::size_t total = 0;
        const auto count_one = [&](auto b, auto keep) {
            using B = decltype(b);
            if constexpr (decltype(keep)::value) {
                if (gmk::simd::runs_here<B>()) ++total;
            }
        };
        (count_one(Bs{}, std::integral_constant<bool, keep<I>()>{}), ...);
        which %= total;
        const auto call_one = [&](auto b, auto keep) {
            using B = decltype(b);
            if constexpr (decltype(keep)::value) {
                if (gmk::simd::runs_here<B>()) {
                    if (seen == which) f(b);
                    ++seen;
                }
            }
        };
        (call_one(Bs{}, std::integral_constant<bool, keep<I>()>{}), ...);
    }
};
using representatives = width_representatives<gmk::simd::compiled_backends>;
}  // namespace detail

/// Calls f(B{}) for one backend B the CPU runs, chosen by `which` among one per vector width.
template <class F>
void with_backend(std::size_t which, F&& f) {
    detail::representatives::run(which, f, std::make_index_sequence<detail::representatives::count>{});
}

}  // namespace gmk_fuzz
