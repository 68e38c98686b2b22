// Tests of gmk/diffusion/parameterization.hpp, preconditioning.hpp and thresholding.hpp.
//
// Parameterisations: on every backend and for float and double, at noise levels from sigma 1e-4
// to 1e4 (VE), abar from 2^-24 to 1 - 1e-6 (VP) and t from 1e-6 to 1 - 1e-6 (flow), plus the two
// ends sigma = 0 and alpha = 0:
//   - model_output_from and to_x0_eps against a long-double evaluation of the same formula on the
//     same T inputs, in ulps of the magnitude of the terms, |c1 a| + |c2 b| (the result itself
//     may cancel: x0 = (x - sigma eps) / alpha at sigma = 1e4 keeps only what x's rounding left,
//     for any algorithm; the terms' magnitude is what a backward-stable kernel is accurate to);
//   - the round trip (x0, eps) -> x, model output -> (x0_hat, eps_hat), and x = alpha x0_hat +
//     sigma eps_hat, in the same units;
//   - every backend with a fused multiply-add gives the scalar backend's bits.
// Dynamic thresholding against diffusers' DDPMScheduler._threshold_sample (tests/golden/
// thresholding.txt, written by tests/golden/thresholding.py), bit for bit, and abs_quantile against
// numpy's "linear" quantile evaluated in long double.
// GMK_DIFFUSION_REPORT=1 prints the worst measured errors.
#include <gmk/diffusion/noise_levels.hpp>
#include <gmk/diffusion/parameterization.hpp>
#include <gmk/diffusion/preconditioning.hpp>
#include <gmk/diffusion/thresholding.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace gt = gmk_test;
namespace simd = gmk::simd;
using gmk::prediction;
using LD = long double;

namespace {

const prediction all_predictions[] = {prediction::epsilon, prediction::sample, prediction::v,
                                      prediction::flow_velocity};

struct named_level {
    std::string name;
    gmk::noise_level level;
};

std::vector<named_level> test_levels() {
    std::vector<named_level> v;
    for (double s : {1e-4, 1e-2, 1.0, 80.0, 1e4}) v.push_back({"ve sigma=" + std::to_string(s), {1.0, s, s}});
    for (double a : {1 - 1e-6, 0.99915, 0.5, 1e-3, 1e-8, 0x1p-24})
        v.push_back({"vp abar=" + std::to_string(a), {std::sqrt(a), std::sqrt(1 - a), 0}});
    for (double t : {1e-6, 1e-3, 0.5, 0.999, 1 - 1e-6}) v.push_back({"flow t=" + std::to_string(t), {1 - t, t, t}});
    return v;
}

bool defined_at(prediction p, const gmk::noise_level& l) {
    return !(p == prediction::epsilon && l.alpha == 0) && !(p == prediction::sample && l.sigma == 0);
}

/// Long-double coefficients (x, out) -> (x0, eps) and out = o_x0 x0 + o_eps eps.
struct ld_map {
    LD x0_x, x0_out, eps_x, eps_out, o_x0, o_eps;
};
ld_map ld_coefficients(prediction p, const gmk::noise_level& l) {
    const LD a = l.alpha, s = l.sigma;
    switch (p) {
        case prediction::epsilon: return {1 / a, -s / a, 0, 1, 0, 1};
        case prediction::sample: return {0, 1, 1 / s, -a / s, 1, 0};
        case prediction::v: {
            const LD d = a * a + s * s;
            return {a / d, -s / d, s / d, a / d, -s, a};
        }
        case prediction::flow_velocity: {
            const LD d = a + s;
            return {1 / d, -s / d, 1 / d, a / d, -1, 1};
        }
    }
    return {};
}

std::map<std::string, long double>& worst() {
    static std::map<std::string, long double> m;
    return m;
}
void record(const std::string& key, long double e) {
    long double& w = worst()[key];
    w = std::max(w, e);
}
struct report_at_exit {
    report_at_exit() { (void)worst(); }  // constructed first, so destroyed after this reports
    ~report_at_exit() {
        if (!std::getenv("GMK_DIFFUSION_REPORT")) return;
        for (const auto& kv : worst()) std::printf("  %-48s %.3Lg\n", kv.first.c_str(), kv.second);
    }
} report_instance;

/// |got - ref| in ulps of T at magnitude `scale`.
template <class T>
long double err_ulps(T got, LD ref, LD scale) {
    return std::fabs(LD(got) - ref) / gt::ulp_of<T>(scale);
}

template <class B, class T>
GMK_TEST_NOINLINE void check_round_trip(prediction p, const named_level& nl, gt::mismatch_log& log) {
    const gmk::noise_level& l = nl.level;
    const std::size_t n = 4 * simd::lanes<T, B> + 3;
    const auto x0 = gt::uniform_vector<T>(n, -3, 3, 11);
    const auto eps = gt::uniform_vector<T>(n, -3, 3, 12);
    std::vector<T> x(n), out(n), x0h(n), epsh(n), out_s(n), x0h_s(n), epsh_s(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = T(LD(l.alpha) * x0[i] + LD(l.sigma) * eps[i]);
    gmk::model_output_from<B>(p, l, x0.data(), eps.data(), out.data(), n);
    gmk::to_x0_eps<B>(p, l, x.data(), out.data(), x0h.data(), epsh.data(), n);
    gmk::model_output_from<simd::scalar>(p, l, x0.data(), eps.data(), out_s.data(), n);
    gmk::to_x0_eps<simd::scalar>(p, l, x.data(), out.data(), x0h_s.data(), epsh_s.data(), n);
    const ld_map c = ld_coefficients(p, l);
    const std::string what = gt::label<B, T>() + " " + gmk::prediction_name(p) + " " + nl.name;
    const std::string tk = std::string(gt::type_name<T>()) + " ";
    // Kernel bounds: 0.5 ulp per coefficient rounded to T, 0.5 for the product, 0.5 for the fma.
    const long double kernel_bound = 3, trip_bound = 8;
    for (std::size_t i = 0; i < n; ++i) {
        if (simd::has_fused_fma<B> &&
            !(gt::same_bits(out[i], out_s[i]) && gt::same_bits(x0h[i], x0h_s[i]) && gt::same_bits(epsh[i], epsh_s[i])))
            log.add(what, " i=", i, ": differs from the scalar backend");
        // model output against long double, on the same inputs
        const LD o_ref = c.o_x0 * x0[i] + c.o_eps * eps[i];
        const LD o_scale = std::fabs(c.o_x0 * x0[i]) + std::fabs(c.o_eps * eps[i]);
        const long double eo = err_ulps(out[i], o_ref, o_scale);
        record(tk + "model_output_from vs long double", eo);
        if (!(eo <= kernel_bound)) log.add(what, " i=", i, ": out ", gt::show(out[i]), " ulps ", double(eo));
        // to_x0_eps against long double, on the same x and out
        const LD x0_ref = c.x0_x * x[i] + c.x0_out * out[i];
        const LD eps_ref = c.eps_x * x[i] + c.eps_out * out[i];
        const LD x0_scale = std::fabs(c.x0_x * x[i]) + std::fabs(c.x0_out * out[i]);
        const LD eps_scale = std::fabs(c.eps_x * x[i]) + std::fabs(c.eps_out * out[i]);
        const long double e1 = err_ulps(x0h[i], x0_ref, x0_scale), e2 = err_ulps(epsh[i], eps_ref, eps_scale);
        record(tk + "to_x0_eps vs long double", std::max(e1, e2));
        if (!(e1 <= kernel_bound && e2 <= kernel_bound))
            log.add(what, " i=", i, ": x0_hat ulps ", double(e1), " eps_hat ulps ", double(e2));
        // round trip: back to the x0 and eps we started from, in ulps of the terms' magnitude
        // (x and out carry rounding errors of their own magnitude into the terms)
        const LD xs = std::fabs(LD(l.alpha) * x0[i]) + std::fabs(LD(l.sigma) * eps[i]);
        const LD r0 = std::fabs(c.x0_x) * xs + std::fabs(c.x0_out) * o_scale + std::fabs(LD(x0[i]));
        const LD r1 = std::fabs(c.eps_x) * xs + std::fabs(c.eps_out) * o_scale + std::fabs(LD(eps[i]));
        const long double t0 = err_ulps(x0h[i], x0[i], r0), t1 = err_ulps(epsh[i], eps[i], r1);
        record(tk + "round trip", std::max(t0, t1));
        if (!(t0 <= trip_bound && t1 <= trip_bound))
            log.add(what, " i=", i, ": round trip x0 ulps ", double(t0), " eps ulps ", double(t1));
        // consistency: alpha x0_hat + sigma eps_hat reconstructs x
        const LD xr = LD(l.alpha) * x0h[i] + LD(l.sigma) * epsh[i];
        const LD xr_scale = std::fabs(LD(l.alpha) * x0h[i]) + std::fabs(LD(l.sigma) * epsh[i]) + std::fabs(LD(x[i]));
        const long double ec = std::fabs(xr - LD(x[i])) / gt::ulp_of<T>(xr_scale);
        record(tk + "x = alpha x0_hat + sigma eps_hat", ec);
        if (!(ec <= trip_bound)) log.add(what, " i=", i, ": reconstruction ulps ", double(ec));
    }
}

template <class T>
std::vector<T> golden_values(const gt::golden_file& g, const std::string& op, const char* dtype) {
    for (const auto& c : g.cases) {
        if (c.op != op || c.dtype != dtype) continue;
        const auto& call = c.calls.at(0);
        std::vector<T> v(call.index.size());
        for (std::size_t j = 0; j < v.size(); ++j) v[j] = call.value<T>(j);
        return v;
    }
    throw std::runtime_error("no golden entry " + op + " " + dtype);
}

}  // namespace

TEST_CASE("parameterisations: round trips on every backend, exact to rounding", "[diffusion][parameterization]") {
    const auto levels = test_levels();
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            for (const auto& nl : levels)
                for (prediction p : all_predictions) check_round_trip<B, T>(p, nl, log);
            // the ends, where only some predictions are defined
            for (const auto& nl : {named_level{"sigma=0", {1.0, 0.0, 0.0}}, named_level{"alpha=0", {0.0, 1.0, 1.0}}})
                for (prediction p : all_predictions)
                    if (defined_at(p, nl.level)) check_round_trip<B, T>(p, nl, log);
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("parameterisations: the ends of a grid", "[diffusion][parameterization]") {
    const std::vector<double> x{1.5, -2.25, 0.0, 3.0, -0.5}, out{0.25, 1.0, -4.0, 2.5, -1.5};
    const std::size_t n = x.size();
    std::vector<double> x0(n), eps(n);
    const gmk::noise_level clean{1.0, 0.0, 0.0}, noise{0.0, 1.0, 1.0};
    // sigma = 0: x0 = x for every prediction that is defined there
    for (prediction p : {prediction::epsilon, prediction::v, prediction::flow_velocity}) {
        gmk::to_x0_eps(p, clean, x.data(), out.data(), x0.data(), eps.data(), n);
        CHECK(x0 == x);
    }
    // alpha = 0: eps = x
    for (prediction p : {prediction::sample, prediction::v, prediction::flow_velocity}) {
        gmk::to_x0_eps(p, noise, x.data(), out.data(), x0.data(), eps.data(), n);
        CHECK(eps == x);
    }
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::sample, clean, x.data(), out.data(), x0.data(), eps.data(), n); },
                          "level.sigma");
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::epsilon, noise, x.data(), out.data(), x0.data(), eps.data(), n); },
                          "level.alpha");
    // invalid levels and arguments
    const double nan = std::numeric_limits<double>::quiet_NaN();
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::v, {1.0, -0.5, 0.0}, x.data(), out.data(), x0.data(), eps.data(), n); },
                          "level.sigma");
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::v, {nan, 0.5, 0.0}, x.data(), out.data(), x0.data(), eps.data(), n); },
                          "level.alpha");
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::v, {0.0, 0.0, 0.0}, x.data(), out.data(), x0.data(), eps.data(), n); },
                          "level.alpha");
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::v, clean, x.data(), out.data(), x0.data(), x0.data(), n); },
                          "eps");
    gt::require_throws_naming([&] { gmk::to_x0_eps(prediction::v, clean, static_cast<const double*>(nullptr), out.data(), x0.data(), eps.data(), n); },
                          "x");
    gt::require_throws_naming([&] { gmk::model_output_from(prediction::v, {0.0, 0.0, 0.0}, x.data(), out.data(), eps.data(), n); },
                          "level.alpha");
    // in place: x0 over x, eps over the model output
    std::vector<double> xi = x, oi = out;
    gmk::to_x0_eps(prediction::v, gmk::noise_level{0.6, 0.8, 0.0}, xi.data(), oi.data(), xi.data(), oi.data(), n);
    gmk::to_x0_eps(prediction::v, gmk::noise_level{0.6, 0.8, 0.0}, x.data(), out.data(), x0.data(), eps.data(), n);
    CHECK(xi == x0);
    CHECK(oi == eps);
}

TEST_CASE("parameterisations: FORMULAS.md's VP forms", "[diffusion][parameterization]") {
    // epsilon: x0 = (x - sqrt(1 - abar) eps) / sqrt(abar); v: x0 = sqrt(abar) x - sqrt(1 - abar) v;
    // flow: x0 = x - t v.
    const double abar = 0.3, t = 0.37;
    const gmk::noise_level vp{std::sqrt(abar), std::sqrt(1 - abar), 500}, fl{1 - t, t, t * 1000};
    const double x = 0.75, o = -1.25;
    double x0 = 0, eps = 0;
    gmk::to_x0_eps(prediction::epsilon, vp, &x, &o, &x0, &eps, 1);
    CHECK(x0 == Approx((x - std::sqrt(1 - abar) * o) / std::sqrt(abar)).epsilon(1e-15));
    gmk::to_x0_eps(prediction::v, vp, &x, &o, &x0, &eps, 1);
    CHECK(x0 == Approx(std::sqrt(abar) * x - std::sqrt(1 - abar) * o).epsilon(1e-15));
    gmk::to_x0_eps(prediction::flow_velocity, fl, &x, &o, &x0, &eps, 1);
    CHECK(x0 == Approx(x - t * o).epsilon(1e-15));
    CHECK(eps == Approx(x + (1 - t) * o).epsilon(1e-15));
}

TEST_CASE("EDM preconditioning (Karras et al. 2022, table 1)", "[diffusion][edm]") {
    for (double sd : {0.5, 1.0}) {
        for (double sigma : {0.002, 0.1, 0.5, 1.0, 14.6, 80.0, 1e150}) {
            INFO("sigma " << sigma << " sigma_data " << sd);
            const auto c = gmk::edm_precondition(sigma, sd);
            const LD s = sigma, d = sd, r2 = s * s + d * d;
            CHECK(std::fabs(c.c_skip - double(d * d / r2)) <= 4e-16 * c.c_skip);
            CHECK(std::fabs(c.c_out - double(s * d / std::sqrt(r2))) <= 4e-16 * c.c_out);
            CHECK(std::fabs(c.c_in - double(1 / std::sqrt(r2))) <= 4e-16 * c.c_in);
            CHECK(c.c_noise == std::log(sigma) / 4);
        }
    }
    const auto c = gmk::edm_precondition(0.5);
    CHECK(c.c_skip == Approx(0.5).epsilon(1e-15));
    CHECK(c.c_out == Approx(0.25 / std::sqrt(0.5)).epsilon(1e-15));
    CHECK(c.c_in == Approx(std::sqrt(2.0)).epsilon(1e-15));
    gt::require_throws_naming([] { gmk::edm_precondition(0.0); }, "sigma");
    gt::require_throws_naming([] { gmk::edm_precondition(1.0, -0.5); }, "sigma_data");
}

TEST_CASE("clip_sample clamps on every backend", "[diffusion][thresholding]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            const std::size_t n = 3 * simd::lanes<T, B> + 1;
            auto x = gt::uniform_vector<T>(n, -3, 3, 5);
            x[0] = std::numeric_limits<T>::quiet_NaN();
            const auto ref = x;
            gmk::clip_sample<B>(x.data(), n, 1.5);
            for (std::size_t i = 0; i < n; ++i) {
                const T want = i == 0 ? ref[i] : std::min(std::max(ref[i], T(-1.5)), T(1.5));
                if (!gt::same_value(x[i], want)) log.add(gt::label<B, T>(), " i=", i, ": ", gt::show(x[i]));
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
    double v = 1;
    gt::require_throws_naming([&] { gmk::clip_sample(&v, 1, 0.0); }, "range");
}

TEST_CASE("abs_quantile is numpy's linear quantile of |x|", "[diffusion][thresholding]") {
    gt::mismatch_log log;
    for (std::size_t n : {1, 2, 3, 7, 64, 201, 1000, 4097}) {
        for (double ratio : {0.0, 0.1, 0.5, 0.9, 0.995, 1.0}) {
            const auto x = gt::uniform_vector<double>(n, -4, 4, 100 + n);
            std::vector<double> scratch(n), sorted(n);
            for (std::size_t i = 0; i < n; ++i) sorted[i] = std::fabs(x[i]);
            std::sort(sorted.begin(), sorted.end());
            // numpy.quantile(a, q, method="linear"): virtual index (n - 1) q, linear between the
            // order statistics around it.
            const LD r = LD(ratio) * LD(n - 1);
            const std::size_t lo = std::size_t(std::floor(r)), hi = std::min(lo + 1, n - 1);
            const LD want = sorted[lo] + (r - LD(lo)) * (LD(sorted[hi]) - sorted[lo]);
            const double got = gmk::abs_quantile(x.data(), n, scratch.data(), ratio);
            if (!(std::fabs(got - want) <= 2 * gt::ulp_of<double>(want)))
                log.add("n=", n, " ratio=", ratio, ": ", gt::show(got), " want ", double(want));
        }
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("dynamic thresholding matches diffusers' _threshold_sample bit for bit", "[diffusion][thresholding]") {
    const gt::golden_file g = gt::read_golden("thresholding.txt");
    gt::mismatch_log log;
    std::size_t cases = 0;
    for (const auto& c : g.cases) {
        const std::string op = c.op;
        if (op.size() < 3 || op.compare(op.size() - 3, 3, ".in") != 0) continue;
        const std::string base = op.substr(0, op.size() - 3);
        std::size_t k = 0, batch = 0, size = 0;
        double ratio = 0, smv = 0;
        REQUIRE(std::sscanf(base.c_str(), "threshold.%zu.%zux%zu.r%lf.m%lf", &k, &batch, &size, &ratio, &smv) == 5);
        ++cases;
        gt::for_each_backend([&](auto b) {
            using B = decltype(b);
            const auto run = [&](auto tag) {
                using T = typename decltype(tag)::type;
                const char* dtype = std::is_same_v<T, float> ? "float32" : "float64";
                if (c.dtype != dtype) return;
                auto x = golden_values<T>(g, op, dtype);
                const auto want = golden_values<T>(g, base + ".out", dtype);
                REQUIRE(x.size() == batch * size);
                std::vector<T> scratch(size);
                gmk::dynamic_threshold<B>(x.data(), batch, size, scratch.data(), ratio, smv);
                for (std::size_t i = 0; i < x.size(); ++i)
                    if (!gt::same_bits(x[i], want[i]))
                        log.add(gt::label<B, T>(), " ", base, " i=", i, ": ", gt::show(x[i]), " want ", gt::show(want[i]));
            };
            run(gt::type_tag<float>{});
            run(gt::type_tag<double>{});
        });
    }
    CHECK(cases == 16);
    GMK_REQUIRE_NO_MISMATCH(log);
    double v = 1, s = 0;
    gt::require_throws_naming([&] { gmk::dynamic_threshold(&v, 1, 1, &s, 1.5); }, "ratio");
    gt::require_throws_naming([&] { gmk::dynamic_threshold(&v, 1, 1, &s, 0.995, 0.0); }, "sample_max_value");
    gt::require_throws_naming([&] { gmk::dynamic_threshold(&v, 1, 1, static_cast<double*>(nullptr)); }, "scratch");
}
