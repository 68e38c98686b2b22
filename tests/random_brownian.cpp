// Tests of gmk/random/brownian.hpp: the virtual Brownian tree answers consistently (the same t,
// any query order, increments = differences of values), follows the documented node layout, is
// Brownian in law (variances, covariances and independence of increments within 5 standard
// errors of the sample), agrees across backends, and rejects bad input.
#include <gmk/random/brownian.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
using gmk::brownian_tree;

namespace {

// The span of Karras sigmas a k-diffusion SDE sampler walks (sigma_max 14.6, sigma_min 0.03).
constexpr double sigma_min = 0.03, sigma_max = 14.6;

template <class T>
bool same_array(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class F>
std::string message_of(F f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no exception";
}

/// Karras et al. (2022) eq. 5: n sigmas from sigma_max down to sigma_min with rho = 7.
std::vector<double> karras_sigmas(std::size_t n) {
    const double rho = 7, hi = std::pow(sigma_max, 1 / rho), lo = std::pow(sigma_min, 1 / rho);
    std::vector<double> s(n);
    for (std::size_t i = 0; i < n; ++i) s[i] = std::pow(hi + double(i) / double(n - 1) * (lo - hi), rho);
    return s;
}

// ---- sample statistics with their standard errors -------------------------------------------

/// A sample estimate and its standard error (from the sample itself, so no law is assumed).
struct estimate {
    double value = 0, se = 0;
    /// |value - expected| <= 5 standard errors: a sound tree fails this with probability 6e-7.
    bool near(double expected) const { return std::fabs(value - expected) <= 5 * se; }
};

/// Mean of x.
template <class T>
GMK_TEST_NOINLINE estimate mean_of(const std::vector<T>& x) {
    const double n = double(x.size());
    double s = 0, s2 = 0;
    for (T v : x) s += v;
    const double m = s / n;
    for (T v : x) s2 += (v - m) * (v - m);
    return {m, std::sqrt(s2 / n / n)};
}

/// Covariance of x and y (the variance for x = y): the mean of (x - mx)(y - my), with the
/// standard error of that mean.
template <class T>
GMK_TEST_NOINLINE estimate covariance_of(const std::vector<T>& x, const std::vector<T>& y) {
    const double n = double(x.size());
    double sx = 0, sy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        sx += x[i];
        sy += y[i];
    }
    const double mx = sx / n, my = sy / n;
    double c = 0;
    for (std::size_t i = 0; i < x.size(); ++i) c += (x[i] - mx) * (y[i] - my);
    c /= n;
    double v = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double d = (x[i] - mx) * (y[i] - my) - c;
        v += d * d;
    }
    return {c, std::sqrt(v / n / n)};
}

/// "Var 7.29 +- 0.03 (expected 7.285)": what a failing statistic prints.
std::string describe(const char* what, const estimate& e, double expected) {
    return std::string(what) + " = " + std::to_string(e.value) + " +- " + std::to_string(e.se) +
           " (expected " + std::to_string(expected) + ")";
}

// ---- the law, on the native backend ---------------------------------------------------------

// Elements are independent Brownian motions, so each statistic below is a sample of 2^17 paths:
// the standard error of a variance is about sqrt(2 / 2^17) = 0.4 % of it. A tree whose midpoint
// noise had standard deviation sqrt(h / 2) instead of sqrt(h / 4) gives Var W(midpoint of the
// span) = 0.75 (t1 - t0) instead of 0.5 (t1 - t0), and inflates every short increment by up to
// 3x: it fails the value, increment and covariance checks by hundreds of standard errors.
constexpr std::size_t law_size = std::size_t(1) << 17;

template <class T>
GMK_TEST_NOINLINE void check_values_law(gt::mismatch_log& log) {
    brownian_tree<T> tree(sigma_min, sigma_max, law_size, 2024);
    const double t0 = tree.t0();
    std::vector<T> w(law_size);
    // W(t) ~ N(0, t - t0) at the end, the midpoint, near t0 and at points off the dyadic grid.
    for (double t : {sigma_max, (sigma_min + sigma_max) / 2, 0.031, 1.0, 3.3, 14.59}) {
        tree.value(t, w.data());
        const double var = tree.snap(t) - t0;
        const estimate m = mean_of(w), v = covariance_of(w, w);
        if (!m.near(0)) log.add(gt::type_name<T>(), " t = ", t, ": ", describe("mean", m, 0));
        if (!v.near(var)) log.add(gt::type_name<T>(), " t = ", t, ": ", describe("var", v, var));
    }
    // Cov(W(s), W(t)) = min(s, t) - t0: the bridge between queried points is right, whatever
    // the order of the queries.
    const std::pair<double, double> pairs[] = {{sigma_max, 0.5}, {1.0, 7.0}, {7.0, 3.0}, {0.04, 0.05}, {2.0, 2.0 + 1e-3}};
    std::vector<T> ws(law_size);
    for (const auto& [s, t] : pairs) {
        tree.value(s, ws.data());
        tree.value(t, w.data());
        const double expected = std::min(tree.snap(s), tree.snap(t)) - t0;
        const estimate c = covariance_of(ws, w);
        if (!c.near(expected)) log.add(gt::type_name<T>(), " s = ", s, ", t = ", t, ": ", describe("cov", c, expected));
    }
}

template <class T>
GMK_TEST_NOINLINE void check_increments_law(gt::mismatch_log& log) {
    // The increments an SDE sampler draws on a 12-sigma Karras grid: lengths from 4.65 down to
    // 0.040, each with variance equal to its snapped length and uncorrelated with the others.
    const std::vector<double> sigmas = karras_sigmas(12);
    brownian_tree<T> tree(sigmas.back(), sigmas.front(), law_size, 77);
    const std::size_t steps = sigmas.size() - 1;
    std::vector<std::vector<T>> dw(steps, std::vector<T>(law_size));
    for (std::size_t k = 0; k < steps; ++k) {
        tree.increment(sigmas[k], sigmas[k + 1], dw[k].data());
        const double var = tree.snap(sigmas[k]) - tree.snap(sigmas[k + 1]);
        const estimate m = mean_of(dw[k]), v = covariance_of(dw[k], dw[k]);
        if (!m.near(0)) log.add(gt::type_name<T>(), " step ", k, ": ", describe("mean", m, 0));
        if (!v.near(var)) log.add(gt::type_name<T>(), " step ", k, ": ", describe("var", v, var));
    }
    for (std::size_t j = 0; j < steps; ++j)
        for (std::size_t k = j + 1; k < steps; ++k) {
            const estimate c = covariance_of(dw[j], dw[k]);
            if (!c.near(0)) log.add(gt::type_name<T>(), " steps ", j, ", ", k, ": ", describe("cov", c, 0));
        }
    // Normalized increments are N(0, 1): over 1e-7 (29 cells of the default depth 32, levels
    // 27-31 of the tree), and over a few grid cells of a shallower tree, where the normalization
    // must use the snapped length: [1000.4, 1002.6] cells snaps to [1000, 1003], 3 cells, not
    // 2.2 (which would give variance 1.36).
    std::vector<T> z(law_size);
    tree.normalized_increment(1.0, 1.0 + 1e-7, z.data());
    const estimate zm = mean_of(z), zv = covariance_of(z, z);
    if (!zm.near(0)) log.add(gt::type_name<T>(), " [1, 1 + 1e-7]: ", describe("mean", zm, 0));
    if (!zv.near(1)) log.add(gt::type_name<T>(), " [1, 1 + 1e-7]: ", describe("var", zv, 1));
    brownian_tree<T> fine(0.0, 1.0, law_size, 5, 20);
    const double res = fine.resolution();
    const std::pair<double, double> intervals[] = {{1000.4 * res, 1002.6 * res}, {0.5, 0.5 + res}, {0.9, 0.2}, {0.0, 1.0}};
    for (const auto& [ta, tb] : intervals) {
        fine.normalized_increment(ta, tb, z.data());
        const estimate m = mean_of(z), v = covariance_of(z, z);
        if (!m.near(0)) log.add(gt::type_name<T>(), " [", ta, ", ", tb, "]: ", describe("mean", m, 0));
        if (!v.near(1)) log.add(gt::type_name<T>(), " [", ta, ", ", tb, "]: ", describe("var", v, 1));
    }
}

// ---- backends -------------------------------------------------------------------------------

// Normals differ across backends by up to 2 ulp (fill.hpp) and the SSE/AVX tags have no fused
// multiply-add, so W differs by rounding accumulated over the levels. Where W(t) crosses zero a
// tiny absolute difference is many ulps of W itself, so the bound is in ulps of W's own scale,
// its standard deviation sqrt(t - t0): 16 eps sqrt(t - t0) (measured: at most about 8).
constexpr double backend_ulps = 16;

template <class B, class T>
GMK_TEST_NOINLINE void compare_with_scalar(gt::mismatch_log& log) {
    constexpr std::size_t n = 1100;  // a full chunk of 1024 and a tail
    const double eps = std::numeric_limits<T>::epsilon();
    brownian_tree<T> tree(sigma_min, sigma_max, n, 99);
    std::vector<T> ref(n), got(n);
    const auto bound = [&](double t) { return backend_ulps * eps * std::sqrt(t - sigma_min); };
    const auto compare = [&](const char* what, double ta, double tb, double tolerance) {
        for (std::size_t i = 0; i < n; ++i)
            if (!(std::fabs(double(got[i]) - double(ref[i])) <= tolerance))
                log.add(gt::label<B, T>(), " ", what, "(", ta, ", ", tb, ") [", i, "]: ", gt::show(got[i]),
                        " vs scalar ", gt::show(ref[i]), " (tolerance ", tolerance, ")");
    };
    for (double t : {sigma_max, 7.3, 1.0, 0.0301, 0.3}) {
        tree.template value<simd::scalar>(t, ref.data());
        tree.template value<B>(t, got.data());
        compare("value", t, t, bound(t));
    }
    for (const auto& [ta, tb] : {std::pair<double, double>{7.0, 3.0}, {0.05, 0.04}, {1.0, 1.001}}) {
        const double tolerance = bound(ta) + bound(tb);
        tree.template increment<simd::scalar>(ta, tb, ref.data());
        tree.template increment<B>(ta, tb, got.data());
        compare("increment", ta, tb, tolerance);
        tree.template normalized_increment<simd::scalar>(ta, tb, ref.data());
        tree.template normalized_increment<B>(ta, tb, got.data());
        compare("normalized_increment", ta, tb, tolerance / std::sqrt(std::fabs(tree.snap(tb) - tree.snap(ta))));
    }
}

// ---- consistency ----------------------------------------------------------------------------

template <class T>
GMK_TEST_NOINLINE void check_consistency() {
    INFO(gt::type_name<T>());
    constexpr std::size_t n = 3000;
    brownian_tree<T> tree(sigma_min, sigma_max, n, 11);
    std::vector<T> a(n), b(n), c(n);

    // W(t0) = +0 exactly, in every element.
    tree.value(sigma_min, a.data());
    REQUIRE(same_array(a, std::vector<T>(n, T(0))));

    // The same t twice, and a time moved by less than half a grid cell, give the same bits.
    tree.value(2.5, a.data());
    tree.value(2.5, b.data());
    REQUIRE(same_array(a, b));
    REQUIRE(std::fabs(tree.snap(2.5) - 2.5) <= 0.5 * tree.resolution());
    tree.value(tree.snap(2.5) + 0.3 * tree.resolution(), b.data());
    REQUIRE(same_array(a, b));
    REQUIRE(std::count(a.begin(), a.end(), T(0)) == 0);

    // Any query order: forward, backward and interleaved with other work on a copy give the
    // same bits (the tree keeps no state between queries beyond scratch space).
    const std::vector<double> times = {14.6, 0.03, 7.0, 0.5, 0.500001, 3.14159, 0.031, 12.0};
    std::vector<std::vector<T>> forward(times.size(), std::vector<T>(n));
    for (std::size_t k = 0; k < times.size(); ++k) tree.value(times[k], forward[k].data());
    brownian_tree<T> other = tree;
    for (std::size_t k = times.size(); k-- > 0;) {
        tree.value(times[k], a.data());
        REQUIRE(same_array(a, forward[k]));
        other.increment(times[k], 9.0, c.data());
        other.value(times[(k * 5) % times.size()], b.data());
        REQUIRE(same_array(b, forward[(k * 5) % times.size()]));
    }

    // increment(ta, tb) is bitwise value(tb) - value(ta), and increment(tb, ta) its negation
    // (0 - x: an increment of +0 stays +0 both ways).
    for (const auto& [ta, tb] : {std::pair<double, double>{0.5, 7.0}, {7.0, 0.5}, {0.03, 14.6}, {3.0, 3.0}}) {
        tree.value(ta, a.data());
        tree.value(tb, b.data());
        for (std::size_t i = 0; i < n; ++i) b[i] = b[i] - a[i];
        tree.increment(ta, tb, c.data());
        REQUIRE(same_array(c, b));
        tree.increment(tb, ta, a.data());
        for (std::size_t i = 0; i < n; ++i) b[i] = T(0) - c[i];
        REQUIRE(same_array(a, b));
    }

    // normalized_increment is the increment times 1 / sqrt(snapped length).
    for (const auto& [ta, tb] : {std::pair<double, double>{0.5, 7.0}, {7.0, 0.5}, {1.0, 1.0 + 1e-6}}) {
        const double cells = std::round(std::fabs(tree.snap(tb) - tree.snap(ta)) / tree.resolution());
        const T scale = static_cast<T>(1 / std::sqrt(cells * tree.resolution()));
        tree.increment(ta, tb, a.data());
        for (std::size_t i = 0; i < n; ++i) b[i] = a[i] * scale;
        tree.normalized_increment(ta, tb, c.data());
        REQUIRE(same_array(c, b));
    }
}

}  // namespace

/// The call throws std::invalid_argument whose message contains `text` (the argument's name).
#define REQUIRE_REJECTS(call, text)                              \
    do {                                                         \
        const std::string message_ = message_of([&] { call; });  \
        INFO(message_);                                          \
        REQUIRE(message_.find(text) != std::string::npos);       \
    } while (false)

TEST_CASE("brownian_tree answers consistently", "[random][brownian]") {
    gt::for_each_type<float, double>([](auto tag) { check_consistency<typename decltype(tag)::type>(); });
}

TEST_CASE("brownian_tree follows the documented node layout", "[random][brownian]") {
    // Scalar backend: the test redoes the first levels with std::fma, as the tree does.
    using B = simd::scalar;
    const double t0 = -1.0, t1 = 3.0, span = t1 - t0;
    const std::uint64_t seed = 314;
    constexpr std::size_t n = 100;
    brownian_tree<double> tree(t0, t1, n, seed, 8);
    REQUIRE(tree.t0() == t0);
    REQUIRE(tree.t1() == t1);
    REQUIRE(tree.size() == n);
    REQUIRE(tree.depth() == 8);
    REQUIRE(tree.resolution() == span / 256);

    const auto noise = [&](std::uint64_t h) {
        std::vector<double> z(n);
        gmk::random::normal_fill<B>(gmk::random::philox_stream(seed, (std::uint64_t(1) << 63) | h), 0, z.data(), n);
        return z;
    };
    const std::vector<double> z0 = noise(0), z1 = noise(1), z2 = noise(2), z3 = noise(3), z5 = noise(5);
    std::vector<double> w1(n), wh(n), wq(n), w3q(n), w38(n), expect(n);
    tree.value<B>(t1, w1.data());
    tree.value<B>(t0 + span / 2, wh.data());
    tree.value<B>(t0 + span / 4, wq.data());
    tree.value<B>(t0 + 3 * span / 4, w3q.data());
    tree.value<B>(t0 + 3 * span / 8, w38.data());
    // W(t1) = sqrt(span) Z_0; the midpoint of node h = (W(a) + W(b)) / 2 + sqrt(h's length / 4) Z_h,
    // with node 1 the span, 2 and 3 its halves, 5 the right half of node 2.
    for (std::size_t i = 0; i < n; ++i) expect[i] = std::sqrt(span) * z0[i];
    REQUIRE(same_array(w1, expect));
    for (std::size_t i = 0; i < n; ++i) expect[i] = std::fma(std::sqrt(span / 4), z1[i], (0.0 + w1[i]) * 0.5);
    REQUIRE(same_array(wh, expect));
    for (std::size_t i = 0; i < n; ++i) expect[i] = std::fma(std::sqrt(span / 8), z2[i], (0.0 + wh[i]) * 0.5);
    REQUIRE(same_array(wq, expect));
    for (std::size_t i = 0; i < n; ++i) expect[i] = std::fma(std::sqrt(span / 8), z3[i], (wh[i] + w1[i]) * 0.5);
    REQUIRE(same_array(w3q, expect));
    for (std::size_t i = 0; i < n; ++i) expect[i] = std::fma(std::sqrt(span / 16), z5[i], (wq[i] + wh[i]) * 0.5);
    REQUIRE(same_array(w38, expect));

    // User streams below 2^63 are not the tree's: stream 0 of the same seed differs from Z_0.
    std::vector<double> user(n);
    gmk::random::normal_fill<B>(gmk::random::philox_stream(seed, 0), 0, user.data(), n);
    REQUIRE_FALSE(same_array(user, z0));
}

TEST_CASE("brownian_tree: deeper trees refine shallower ones; elements do not depend on size",
          "[random][brownian]") {
    gt::for_each_type<float, double>([](auto tag) {
        using T = typename decltype(tag)::type;
        INFO(gt::type_name<T>());
        brownian_tree<T> coarse(sigma_min, sigma_max, 1500, 8, 12), deep(sigma_min, sigma_max, 3000, 8, 40);
        std::vector<T> a(1500), b(3000);
        for (double k : {1.0, 1000.0, 2048.0, 4095.0, 4096.0}) {
            const double t = sigma_min + (sigma_max - sigma_min) * (k / 4096);
            coarse.value(t, a.data());
            deep.value(t, b.data());
            b.resize(1500);  // the first 1500 of 3000 elements: chunk boundaries differ
            REQUIRE(same_array(a, b));
            b.resize(3000);
        }
        // A different seed gives a different path.
        brownian_tree<T> reseeded(sigma_min, sigma_max, 1500, 9, 12);
        std::vector<T> c(1500);
        coarse.value(7.0, a.data());
        reseeded.value(7.0, c.data());
        REQUIRE_FALSE(same_array(a, c));
    });
}

TEST_CASE("brownian_tree is Brownian in law", "[random][brownian]") {
    gt::mismatch_log log;
    gt::for_each_type<float, double>([&](auto tag) {
        using T = typename decltype(tag)::type;
        check_values_law<T>(log);
        check_increments_law<T>(log);
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("brownian_tree agrees across backends", "[random][brownian]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto backend) {
        using B = decltype(backend);
        compare_with_scalar<B, float>(log);
        compare_with_scalar<B, double>(log);
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("brownian_tree rejects bad input", "[random][brownian]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    REQUIRE_REJECTS(brownian_tree<float>(1.0, 1.0, 4, 0), "t1 = 1");
    REQUIRE_REJECTS(brownian_tree<float>(2.0, 1.0, 4, 0), "t1 = 1");
    REQUIRE_REJECTS(brownian_tree<float>(nan, 1.0, 4, 0), "t0 = nan");
    REQUIRE_REJECTS(brownian_tree<float>(0.0, inf, 4, 0), "t1 = inf");
    REQUIRE_REJECTS(brownian_tree<float>(-1e308, 1e308, 4, 0), "t1 - t0 must be finite");
    REQUIRE_REJECTS(brownian_tree<double>(0.0, 1.0, 0, 0), "size = 0");
    REQUIRE_REJECTS(brownian_tree<double>(0.0, 1.0, 4, 0, 0), "depth = 0");
    REQUIRE_REJECTS(brownian_tree<double>(0.0, 1.0, 4, 0, 63), "depth = 63");
    REQUIRE_NOTHROW(brownian_tree<double>(0.0, 1.0, 4, 0, 62));

    brownian_tree<float> tree(0.0, 1.0, 4, 0, 10);
    float out[4] = {};
    REQUIRE_REJECTS(tree.value(-0.1, out), "t = -0.1");
    REQUIRE_REJECTS(tree.value(1.5, out), "t = 1.5");
    REQUIRE_REJECTS(tree.value(nan, out), "t = nan");
    REQUIRE_REJECTS(tree.value(0.5, nullptr), "out = null");
    REQUIRE_REJECTS(tree.increment(0.5, 2.0, out), "tb = 2");
    REQUIRE_REJECTS(tree.increment(nan, 0.5, out), "ta = nan");
    REQUIRE_REJECTS(tree.increment(0.1, 0.5, nullptr), "out = null");
    REQUIRE_REJECTS(tree.normalized_increment(0.5, 0.5, out), "tb = 0.5");
    // Distinct times within one grid cell (2^-10) snap to the same point: no length to divide by.
    REQUIRE_REJECTS(tree.normalized_increment(0.5, 0.5001, out), "same grid point");
    REQUIRE_REJECTS(tree.normalized_increment(-1.0, 0.5, out), "ta = -1");
    REQUIRE_REJECTS(tree.normalized_increment(0.5, 0.6, nullptr), "out = null");
    REQUIRE_REJECTS((void)tree.snap(2.0), "t = 2");
    // The endpoints themselves are valid queries.
    REQUIRE_NOTHROW(tree.value(0.0, out));
    REQUIRE_NOTHROW(tree.normalized_increment(1.0, 0.0, out));
}
