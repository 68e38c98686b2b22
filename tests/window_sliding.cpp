// Tests of gmk/window/sliding_extremum.hpp: sliding_max/min and sliding_argmax/argmin in both
// window modes, on every backend the build compiles and this CPU runs and for float, double,
// int32 and int64, exactly equal to a naive O(n k) reference: random data with many ties,
// ascending and descending runs, infinities, NaN under each policy, every k for small n, integer
// extremes; the row form with strides on 1, 2 and 4 threads; bad arguments.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"
#include "support/window_reference.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
using gmk::nan_policy;
using gmk::window_mode;
using std::int32_t;
using std::int64_t;

namespace {

using gt::naive_arg;
using gt::naive_extremum;
using gt::same_extremum;

template <class T>
using lim = std::numeric_limits<T>;

template <bool IsMax, class B, class T>
GMK_TEST_NOINLINE void check_values(const std::vector<T>& x, std::size_t k, window_mode mode, nan_policy nan,
                                    const char* what, gt::mismatch_log& log) {
    const std::size_t n = x.size();
    const std::size_t m = mode == window_mode::valid ? n - k + 1 : n;
    std::vector<T> out(m + 3, T(42));  // room past the end, checked untouched
    if (IsMax) gmk::sliding_max<B>(x.data(), n, k, out.data(), m, mode, nan);
    else gmk::sliding_min<B>(x.data(), n, k, out.data(), m, mode, nan);
    for (std::size_t j = 0; j < m; ++j) {
        const std::size_t b = mode == window_mode::valid ? j + k - 1 : j;
        const std::size_t a = b + 1 >= k ? b + 1 - k : 0;
        const T ref = naive_extremum<IsMax>(x.data(), a, b, nan);
        if (!same_extremum(out[j], ref)) {
            log.add(gt::label<B, T>(), IsMax ? " max " : " min ", what, " n=", n, " k=", k,
                    mode == window_mode::valid ? " valid" : " trailing",
                    nan == nan_policy::ignore ? " ignore" : " propagate", " j=", j, ": ", gt::show(out[j]),
                    ", expected ", gt::show(ref));
            return;
        }
    }
    for (std::size_t j = m; j < m + 3; ++j)
        if (out[j] != T(42)) log.add(gt::label<B, T>(), " ", what, " n=", n, " k=", k, ": wrote past the end");
}

template <bool IsMax, class T>
GMK_TEST_NOINLINE void check_indices(const std::vector<T>& x, std::size_t k, window_mode mode, nan_policy nan,
                                     const char* what, gt::mismatch_log& log) {
    const std::size_t n = x.size();
    const std::size_t m = mode == window_mode::valid ? n - k + 1 : n;
    std::vector<std::size_t> out(m);
    if (IsMax) gmk::sliding_argmax(x.data(), n, k, out.data(), m, mode, nan);
    else gmk::sliding_argmin(x.data(), n, k, out.data(), m, mode, nan);
    for (std::size_t j = 0; j < m; ++j) {
        const std::size_t b = mode == window_mode::valid ? j + k - 1 : j;
        const std::size_t a = b + 1 >= k ? b + 1 - k : 0;
        const std::size_t ref = naive_arg<IsMax>(x.data(), a, b, nan);
        if (out[j] != ref) {
            log.add(gt::type_name<T>(), IsMax ? " argmax " : " argmin ", what, " n=", n, " k=", k,
                    mode == window_mode::valid ? " valid" : " trailing",
                    nan == nan_policy::ignore ? " ignore" : " propagate", " j=", j, ": ", out[j], ", expected ", ref);
            return;
        }
    }
}

// Every combination of extremum, mode and policy for one input and window.
template <class B, class T>
GMK_TEST_NOINLINE void check_all(const std::vector<T>& x, std::size_t k, const char* what, gt::mismatch_log& log,
                                 bool indices) {
    for (const window_mode mode : {window_mode::valid, window_mode::trailing})
        for (const nan_policy nan : {nan_policy::propagate, nan_policy::ignore}) {
            check_values<true, B>(x, k, mode, nan, what, log);
            check_values<false, B>(x, k, mode, nan, what, log);
            if (indices) {
                check_indices<true>(x, k, mode, nan, what, log);
                check_indices<false>(x, k, mode, nan, what, log);
            }
            if (!std::is_floating_point_v<T>) break;  // the policy is moot for integers
        }
}

// Windows worth testing for rows of n, vectors of L lanes: around L and 2L (the algorithms'
// boundaries), small ones, and the largest.
std::vector<std::size_t> windows(std::size_t n, std::size_t L) {
    std::vector<std::size_t> ks;
    for (std::size_t k : {std::size_t(1), std::size_t(2), std::size_t(3), L - 1, L, L + 1, 2 * L - 1, 2 * L,
                          2 * L + 1, 3 * L + 5, 7 * L, n / 3, n / 2, n - L, n - 2, n - 1, n})
        if (k >= 1 && k <= n) ks.push_back(k);
    std::sort(ks.begin(), ks.end());
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    return ks;
}

// 7 distinct values (integers, whatever T): ties everywhere.
template <class T>
std::vector<T> tied(std::size_t n, std::uint64_t seed) {
    gt::rng r(seed);
    std::vector<T> x(n);
    for (auto& v : x) v = static_cast<T>(r.integer(-3, 3));
    return x;
}

}  // namespace

TEST_CASE("sliding_max/min/argmax/argmin equal the naive reference for every k, small n", "[window]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double, int32_t, int64_t>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            for (std::size_t n = 1; n <= 3 * simd::lanes<T, B> + 5 && n <= 40; ++n)
                for (std::size_t k = 1; k <= n; ++k)
                    check_all<B>(tied<T>(n, 100 * n + k), k, "ties", log, std::is_same_v<B, simd::scalar>);
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sliding extrema on longer rows: ties, runs, infinities", "[window]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double, int32_t, int64_t>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            const bool indices = std::is_same_v<B, simd::scalar>;
            for (std::size_t n : {std::size_t(97), std::size_t(300), std::size_t(1031)}) {
                for (std::size_t k : windows(n, simd::lanes<T, B>)) {
                    check_all<B>(tied<T>(n, 7 * n + k), k, "ties", log, indices);
                    // Ascending and descending runs: the deque's worst cases, and long plateaus.
                    std::vector<T> up(n), down(n), saw(n);
                    for (std::size_t i = 0; i < n; ++i) {
                        up[i] = T(i / 3);
                        down[i] = T(n - i / 3);
                        saw[i] = T((i % 37 < 20) ? i % 37 : 40 - i % 37);
                    }
                    check_all<B>(up, k, "ascending", log, indices);
                    check_all<B>(down, k, "descending", log, indices);
                    check_all<B>(saw, k, "sawtooth", log, indices);
                    if constexpr (std::is_floating_point_v<T>) {
                        std::vector<T> inf = gt::uniform_vector<T>(n, -1e6, 1e6, n + k);
                        for (std::size_t i = 0; i < n; i += 5) inf[i] = (i % 10 == 0) ? lim<T>::infinity() : -lim<T>::infinity();
                        check_all<B>(inf, k, "infinities", log, indices);
                        const std::vector<T> all_minus(n, -lim<T>::infinity());
                        check_all<B>(all_minus, k, "all -inf", log, indices);
                    }
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sliding extrema with NaN: propagate gives NaN, ignore skips it, all-NaN gives NaN", "[window][nan]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            const bool indices = std::is_same_v<B, simd::scalar>;
            const T nan = lim<T>::quiet_NaN();
            for (std::size_t n : {std::size_t(13), std::size_t(64), std::size_t(250)}) {
                for (std::size_t k : windows(n, simd::lanes<T, B>)) {
                    std::vector<T> sparse = tied<T>(n, 3 * n + k);  // a few NaN of either sign
                    for (std::size_t i = 5; i < n; i += 29) sparse[i] = (i % 2) ? nan : -nan;
                    check_all<B>(sparse, k, "sparse NaN", log, indices);
                    std::vector<T> runs = tied<T>(n, 5 * n + k);  // NaN runs longer than some windows
                    for (std::size_t i = 0; i < n; ++i)
                        if (i % 40 < 12) runs[i] = nan;
                    runs[n - 1] = lim<T>::infinity();
                    check_all<B>(runs, k, "NaN runs", log, indices);
                    check_all<B>(std::vector<T>(n, nan), k, "all NaN", log, indices);
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sliding extrema of int64 and int32 are exact at the ends of the range", "[window]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<int32_t, int64_t>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            for (std::size_t n : {std::size_t(40), std::size_t(129)}) {
                gt::rng r(n);
                std::vector<T> x(n);
                // min(), min() + 1, max() - 1, max(): neighbours no double can tell apart (int64).
                const T pool[4] = {lim<T>::min(), T(lim<T>::min() + 1), T(lim<T>::max() - 1), lim<T>::max()};
                for (auto& v : x) v = pool[r.next() % 4];
                for (std::size_t k : windows(n, simd::lanes<T, B>)) check_all<B>(x, k, "extremes", log, true);
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sliding_max answers LeetCode 239's example", "[window]") {
    const int32_t x[] = {1, 3, -1, -3, 5, 3, 6, 7};
    int32_t out[6];
    gmk::sliding_max(x, 8, 3, out, 6);
    REQUIRE(std::vector<int32_t>(out, out + 6) == std::vector<int32_t>{3, 3, 5, 5, 6, 7});
    gmk::sliding_min<simd::scalar>(x, 8, 3, out, 6);
    REQUIRE(std::vector<int32_t>(out, out + 6) == std::vector<int32_t>{-1, -3, -3, -3, 3, 3});
    std::size_t at[6];
    gmk::sliding_argmax(x, 8, 3, at, 6);
    REQUIRE(std::vector<std::size_t>(at, at + 6) == std::vector<std::size_t>{1, 1, 4, 4, 6, 7});
    // Ties: the lowest index.
    const double y[] = {2, 2, 1, 2, 2};
    std::size_t ty[3];
    gmk::sliding_argmax(y, 5, 3, ty, 3);
    REQUIRE(std::vector<std::size_t>(ty, ty + 3) == std::vector<std::size_t>{0, 1, 3});
}

namespace {
template <class T>
GMK_TEST_NOINLINE void check_rows(gt::mismatch_log& log) {
    const std::size_t rows = 37, n = 301, stride = 320, k = 45;
    const std::vector<T> x = gt::uniform_vector<T>(rows * stride, -50, 50, 77);
    for (const window_mode mode : {window_mode::valid, window_mode::trailing}) {
        const std::size_t m = mode == window_mode::valid ? n - k + 1 : n, ostride = m + 11;
        const gmk::matrix_view<const T> xv(x.data(), rows, n, stride);
        std::vector<std::vector<T>> got;
        std::vector<std::vector<std::size_t>> got_arg;
        const auto run = [&](const gmk::executor& exec) {
            std::vector<T> out(rows * ostride, T(9));
            std::vector<std::size_t> arg(rows * ostride, 9);
            gmk::sliding_max(xv, k, gmk::matrix_view<T>(out.data(), rows, m, ostride), mode, nan_policy::propagate, exec);
            gmk::sliding_argmin(xv, k, gmk::matrix_view<std::size_t>(arg.data(), rows, m, ostride), mode,
                                nan_policy::propagate, exec);
            got.push_back(out);
            got_arg.push_back(arg);
        };
        run(gmk::executor::serial());
        for (int threads : {1, 2, 4}) run(gt::threaded_executor(threads));
        run(gmk::executor());
        for (std::size_t v = 1; v < got.size(); ++v)
            if (got[v] != got[0] || got_arg[v] != got_arg[0]) log.add(gt::type_name<T>(), ": executor ", v, " differs");
        for (std::size_t r = 0; r < rows; ++r) {
            std::vector<T> one(m);
            std::vector<std::size_t> one_arg(m);
            gmk::sliding_max(x.data() + r * stride, n, k, one.data(), m, mode);
            gmk::sliding_argmin(x.data() + r * stride, n, k, one_arg.data(), m, mode);
            for (std::size_t j = 0; j < ostride; ++j) {
                const T want = j < m ? one[j] : T(9);
                const std::size_t want_arg = j < m ? one_arg[j] : 9;
                if (!gt::same_bits(got[0][r * ostride + j], want) || got_arg[0][r * ostride + j] != want_arg) {
                    log.add(gt::type_name<T>(), ": row ", r, " column ", j, " differs from the one-row call");
                    return;
                }
            }
        }
    }
}
}  // namespace

TEST_CASE("row form: strides, every executor gives the bits of the one-row calls", "[window][parallel]") {
    gt::mismatch_log log;
    gt::for_each_type<float, double, int32_t, int64_t>([&](auto t) { check_rows<typename decltype(t)::type>(log); });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sliding extrema reject bad arguments with std::invalid_argument", "[window][error]") {
    // Padded beyond the 4 elements used: GCC 12 (-Warray-bounds) cannot follow the window length
    // through the inlined kernels of every backend and would flag reads it never makes.
    const float x[16] = {1, 2, 3, 4};
    float out[16];
    std::size_t idx[4];
    const float* null = nullptr;
    REQUIRE_THROWS_AS(gmk::sliding_max(x, 4, 0, out, 4), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_max(x, 4, 5, out, 4), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_min(x, 0, 1, out, 4), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_max(null, 4, 2, out, 4), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_max(x, 4, 2, static_cast<float*>(nullptr), 3), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_max(x, 4, 2, out, 2), std::invalid_argument);                         // needs 3
    REQUIRE_THROWS_AS(gmk::sliding_min(x, 4, 2, out, 3, window_mode::trailing), std::invalid_argument);  // needs 4
    REQUIRE_THROWS_AS(gmk::sliding_argmax(x, 4, 0, idx, 4), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::sliding_argmin(x, 4, 2, idx, 2), std::invalid_argument);
    REQUIRE_NOTHROW(gmk::sliding_max(x, 4, 4, out, 1));
    REQUIRE(out[0] == 4);
    float grid[8] = {};
    REQUIRE_THROWS_AS(gmk::sliding_max(gmk::matrix_view<const float>(x, 2, 2), 1,
                                       gmk::matrix_view<float>(grid, 3, 2)), std::invalid_argument);  // rows differ
    REQUIRE_THROWS_AS(gmk::sliding_max(gmk::matrix_view<const float>(x, 2, 2), 3,
                                       gmk::matrix_view<float>(grid, 2, 2)), std::invalid_argument);  // k > n
    try {
        gmk::sliding_max(x, 4, 0, out, 4);
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        REQUIRE(what.find("sliding_max") != std::string::npos);
        REQUIRE(what.find("k = 0") != std::string::npos);
    }
}
