// Tests of gmk/diffusion/noise_levels.hpp: noise_grid built from the settings of diffusers'
// DDIM (VP: alphas_cumprod at the timesteps), EulerDiscrete (VE sigmas and their model
// timesteps), FlowMatchEuler (t-grid) and EDM (Karras sigmas with c_noise), compared with the
// golden data of tests/golden/schedules.txt that tests/schedules.cpp already checks the
// schedules against (double within 1e-12 of the references' float64 evaluations); log-SNR
// monotone; bad settings throw naming the setting.
#include <gmk/diffusion/noise_levels.hpp>
#include <gmk/diffusion/preconditioning.hpp>
#include <gmk/schedules/betas.hpp>
#include <gmk/schedules/flow.hpp>
#include <gmk/schedules/sigmas.hpp>
#include <gmk/schedules/timesteps.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace gt = gmk_test;

namespace {

const gt::golden_file& golden() {
    static const gt::golden_file g = gt::read_golden("schedules.txt");
    return g;
}

std::vector<double> golden_ref(const std::string& name) {
    for (const auto& c : golden().cases) {
        if (c.op != name || c.dtype != "float64") continue;
        const auto& call = c.calls.at(0);
        std::vector<double> v(call.index.size());
        for (std::size_t j = 0; j < v.size(); ++j) v[j] = call.value<double>(j);
        return v;
    }
    throw std::runtime_error("no golden entry " + name + " float64");
}

/// max |got - want| / max(|want|, floor).
double rel_error(const std::vector<double>& got, const std::vector<double>& want, double floor = 0) {
    REQUIRE(got.size() == want.size());
    double w = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double scale = std::max(std::fabs(want[i]), floor);
        const double d = std::fabs(got[i] - want[i]);
        w = std::max(w, scale > 0 ? d / scale : d);
    }
    return w;
}

std::vector<double> sd_alphas_cumprod(bool zero_snr = false) {
    const auto b = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
    return zero_snr ? gmk::rescaled_alphas_cumprod(b) : gmk::alphas_cumprod(b);
}

template <class Get>
std::vector<double> column(const gmk::noise_grid& g, Get get, std::size_t count) {
    std::vector<double> v;
    for (std::size_t i = 0; i < count; ++i) v.push_back(get(g[i]));
    return v;
}

/// lambda never decreases along the grid, log_snr = 2 lambda, alpha^2 + sigma^2 = 1 for VP.
void check_properties(const gmk::noise_grid& g, bool vp) {
    for (std::size_t i = 0; i < g.size(); ++i) {
        INFO("level " << i);
        CHECK(g[i].log_snr() == 2 * g[i].lambda());
        if (i > 0) CHECK(g[i].lambda() >= g[i - 1].lambda());
        if (vp) CHECK(std::fabs(g[i].alpha * g[i].alpha + g[i].sigma * g[i].sigma - 1) <= 4e-16);
    }
}

}  // namespace

TEST_CASE("noise_grid::vp from DDIM's settings (SD 1.x, leading, offset 1, set_alpha_to_one=False)",
          "[diffusion][noise_levels]") {
    const auto ac = sd_alphas_cumprod();
    const auto t = gmk::timesteps(gmk::timestep_spacing::leading, 1000, 50, 1);
    const auto g = gmk::noise_grid::vp(ac, t, ac[0]);
    REQUIRE(g.steps() == 50);
    REQUIRE(g.size() == 51);
    const auto want = golden_ref("ddim.sd.alphas.leading.50.1");
    const auto abar = column(g, [](const gmk::noise_level& l) { return l.alpha * l.alpha; }, 50);
    const auto abar_from_sigma = column(g, [](const gmk::noise_level& l) { return 1 - l.sigma * l.sigma; }, 50);
    CHECK(rel_error(abar, want) <= 1e-15);
    CHECK(rel_error(abar_from_sigma, want) <= 1e-13);  // 1 - sigma^2 cancels near abar = 1
    for (std::size_t i = 0; i < 50; ++i) CHECK(g[i].model_time == double(t[i]));
    CHECK(g.back().alpha == std::sqrt(ac[0]));  // final_alpha_cumprod = alphas_cumprod[0]
    CHECK(g.back().model_time == -1);
    check_properties(g, true);
    // set_alpha_to_one = True (and DDPM): the last level is clean.
    const auto g1 = gmk::noise_grid::vp(ac, t);
    CHECK(g1.back().alpha == 1);
    CHECK(g1.back().sigma == 0);
    CHECK(g1.back().lambda() == std::numeric_limits<double>::infinity());
    check_properties(g1, true);
}

TEST_CASE("noise_grid::vp with zero terminal SNR starts at alpha = 0", "[diffusion][noise_levels]") {
    const auto b = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
    // DDIM keeps the rescaled abar[T - 1] = 0 (gmk::alphas_cumprod rejects the final beta = 1,
    // so the product is formed here).
    const auto rb = gmk::rescale_zero_terminal_snr(b);
    std::vector<double> ac(rb.size());
    double p = 1;
    for (std::size_t i = 0; i < rb.size(); ++i) ac[i] = p *= 1 - rb[i];
    REQUIRE(ac.back() == 0);
    const auto ts = gmk::timesteps(gmk::timestep_spacing::trailing, 1000, 25);
    const auto g = gmk::noise_grid::vp(ac, ts);
    CHECK(g.front().model_time == 999);
    CHECK(g.front().alpha == 0);
    CHECK(g.front().sigma == 1);
    CHECK(g.front().lambda() == -std::numeric_limits<double>::infinity());
    check_properties(g, true);
}

TEST_CASE("noise_grid::ve from EulerDiscrete's sigmas and timesteps", "[diffusion][noise_levels]") {
    const auto ac = sd_alphas_cumprod();
    const auto trained = gmk::sigmas_from_alphas_cumprod(ac);
    struct c {
        const char* name;
        gmk::timestep_spacing spacing;
        std::size_t n;
        int offset;
        gmk::sigma_spacing kind;
    };
    for (const auto& e : {c{"euler.sd.linspace.10.0.plain.zero.plain", gmk::timestep_spacing::linspace, 10, 0, gmk::sigma_spacing::timesteps},
                          c{"euler.sd.leading.25.1.plain.zero.plain", gmk::timestep_spacing::leading, 25, 1, gmk::sigma_spacing::timesteps},
                          c{"euler.sd.linspace.25.0.karras.zero.plain", gmk::timestep_spacing::linspace, 25, 0, gmk::sigma_spacing::karras},
                          c{"euler.sd.linspace.10.0.exponential.zero.plain", gmk::timestep_spacing::linspace, 10, 0, gmk::sigma_spacing::exponential}}) {
        INFO(e.name);
        const auto tf = gmk::timesteps_fractional(e.spacing, 1000, e.n, e.offset);
        const auto dg = gmk::discrete_sigmas(ac, tf, e.kind);
        const auto g = gmk::noise_grid::ve(dg.sigmas, dg.timesteps);
        REQUIRE(g.steps() == e.n);
        const std::string name = e.name;
        CHECK(rel_error(column(g, [](const gmk::noise_level& l) { return l.sigma; }, e.n + 1), golden_ref(name + ".sigmas")) <= 1e-12);
        CHECK(rel_error(column(g, [](const gmk::noise_level& l) { return l.model_time; }, e.n), golden_ref(name + ".timesteps"), 1.0) <= 1e-12);
        CHECK(g.back().sigma == 0);
        CHECK(g.back().model_time == 0);
        for (const auto& l : g) CHECK(l.alpha == 1);
        check_properties(g, false);
        // The same model times from a transform: timestep_at_sigma for Karras/exponential levels.
        if (e.kind != gmk::sigma_spacing::timesteps) {
            const auto g2 = gmk::noise_grid::ve(dg.sigmas, [&](double s) { return gmk::timestep_at_sigma(trained, s); });
            for (std::size_t i = 0; i < e.n; ++i) CHECK(g2[i].model_time == g[i].model_time);
        }
    }
}

TEST_CASE("noise_grid::ve for EDM: Karras sigmas with c_noise", "[diffusion][noise_levels]") {
    const auto s = gmk::sigmas_karras(18, 0.002, 80.0);
    const auto g = gmk::noise_grid::ve(s, [](double sigma) { return gmk::edm_precondition(sigma).c_noise; });
    REQUIRE(g.steps() == 18);
    for (std::size_t i = 0; i < 18; ++i) CHECK(g[i].model_time == std::log(s[i]) / 4);
    CHECK(g.front().sigma == Approx(80.0).epsilon(1e-15));
    CHECK(g.back().sigma == 0);
    CHECK(g.back().model_time == 0);  // c_noise(0) = -inf is never passed to the model
    const auto plain = gmk::noise_grid::ve(s);
    for (std::size_t i = 0; i < plain.size(); ++i) CHECK(plain[i].model_time == s[i]);
    check_properties(g, false);
}

TEST_CASE("noise_grid::flow from FlowMatchEuler's sigmas (SD3 shift 3, Flux dynamic shift)", "[diffusion][noise_levels]") {
    gmk::flow_options o;
    o.shift = 3.0;
    const auto t = gmk::sigmas_flow(28, o);
    const auto g = gmk::noise_grid::flow(t);
    REQUIRE(g.steps() == 28);
    const auto want = golden_ref("flow.static.28.3.0.0");
    CHECK(rel_error(column(g, [](const gmk::noise_level& l) { return l.sigma; }, 29), want) <= 1e-12);
    for (std::size_t i = 0; i < g.size(); ++i) {
        CHECK(g[i].alpha == 1 - t[i]);
        CHECK(g[i].model_time == t[i] * 1000);
    }
    CHECK(g.front().alpha == 0);  // t = 1: pure noise
    check_properties(g, false);

    gmk::flow_options d;
    d.dynamic = true;
    d.mu = gmk::flow_mu(4096);
    std::vector<double> user(28);
    for (std::size_t i = 0; i < 28; ++i) user[i] = 1.0 + double(i) * ((1.0 / 28 - 1.0) / 27);
    user.back() = 1.0 / 28;
    const auto td = gmk::sigmas_flow(user, d);
    const auto gd = gmk::noise_grid::flow(td, 1.0);
    CHECK(rel_error(column(gd, [](const gmk::noise_level& l) { return l.sigma; }, 29), golden_ref("flow.dynamic.28.exponential.0")) <= 1e-12);
    for (const auto& l : gd) CHECK(l.model_time == l.sigma);
    check_properties(gd, false);
}

TEST_CASE("noise_grid: bad settings throw naming the setting", "[diffusion][noise_levels]") {
    const auto ac = sd_alphas_cumprod();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto vp = [&](std::vector<double> t, double final = 1.0) { return gmk::noise_grid::vp(ac, t, final); };
    gt::require_throws_naming([&] { vp({1000.0}); }, "timesteps[i]");
    gt::require_throws_naming([&] { vp({10.5}); }, "timesteps[i]");
    const std::vector<std::int64_t> negative{-1};
    gt::require_throws_naming([&] { gmk::noise_grid::vp(ac, negative); }, "timesteps[i]");
    gt::require_throws_naming([&] { vp({}); }, "timesteps.size()");
    gt::require_throws_naming([&] { vp({10.0}, 0.0); }, "final_alpha_cumprod");
    // timesteps ascending: the noise-to-signal ratio increases
    gt::require_throws_naming([&] { vp({10.0, 500.0}); }, "sigma");
    const auto ve = [](std::vector<double> s) { return gmk::noise_grid::ve(s); };
    const auto ve_times = [](std::vector<double> s, std::vector<double> m) { return gmk::noise_grid::ve(s, m); };
    const auto flow = [](std::vector<double> t, double T = 1000) { return gmk::noise_grid::flow(t, T); };
    gt::require_throws_naming([&] { ve({1.0, 2.0, 0.0}); }, "sigma");
    gt::require_throws_naming([&] { ve({1.0}); }, "sigmas.size()");
    gt::require_throws_naming([&] { ve({2.0, 0.0, 0.0}); }, "sigma");  // 0 before the end
    gt::require_throws_naming([&] { ve({2.0, nan, 0.0}); }, "sigma");
    gt::require_throws_naming([&] { ve({2.0, -1.0}); }, "sigma");
    gt::require_throws_naming([&] { ve_times({2.0, 1.0, 0.0}, {1.0}); }, "model_times.size()");
    const std::vector<double> s21{2.0, 1.0, 0.0};
    // -inf at a level the model is called at
    gt::require_throws_naming([&] { gmk::noise_grid::ve(s21, [](double s) { return std::log(s - 1); }); }, "model_time");
    gt::require_throws_naming([&] { flow({1.5, 0.0}); }, "ts[i]");
    gt::require_throws_naming([&] { flow({0.5, 0.7, 0.0}); }, "sigma");
    gt::require_throws_naming([&] { flow({1.0, 0.0}, 0.0); }, "num_train_timesteps");
    gt::require_throws_naming([] { gmk::noise_grid(std::vector<gmk::noise_level>{{1, 1, 0}, {0, 1, 0}}); }, "alpha");
    gt::require_throws_naming([] { gmk::noise_grid(std::vector<gmk::noise_level>{{1, 1, 0}}); }, "levels");
}

// Found by the schedules fuzz target (fuzz/README.md, S9 and S11): each failed before its fix.
TEST_CASE("noise_grid: VP levels at huge ratios and the ratio check at tiny levels", "[diffusion][noise_levels][extremes]") {
    // S9: alpha = 1 / sqrt(1 + r^2) squared r, which overflows past 1.3e154 (alpha = sigma = 0).
    const std::vector<double> s{1e160, 1e3, 1, 0}, t{999, 500, 0};
    const gmk::noise_grid g = gmk::noise_grid::vp_sigmas(s, t);
    CHECK(g[0].alpha == 1 / 1e160);
    CHECK(g[0].sigma == 1.0);
    CHECK(g.ratio(0) == Approx(1e160).epsilon(1e-15));
    for (double r : {0x1p32, 1e100, 1e300, 0x1p1022}) {
        const gmk::noise_level l = g.level_at(r);
        CHECK(l.alpha == 1 / r);
        CHECK(l.sigma == 1.0);
    }
    // Below 2^32 the usual form; both agree with the exact level to rounding at the switch.
    const gmk::noise_level below = g.level_at(std::nextafter(0x1p32, 0.0));
    CHECK(below.alpha == Approx(0x1p-32).epsilon(1e-15));
    CHECK(below.sigma == Approx(1.0).epsilon(1e-15));
    // Past 2^1022 alpha would be subnormal: rejected, naming the argument.
    const std::vector<double> too_big{0x1p1023, 1, 0};
    gt::require_throws_naming([&] { gmk::noise_grid::vp_sigmas(too_big, t); }, "sigmas[i]");
    gt::require_throws_naming([&] { (void)g.level_at(0x1p1023); }, "r");
    // S11: levels whose cross products underflow. The ratio rises from 5.6e-57 to 1: rejected;
    // the other way round it falls: accepted.
    gt::require_throws_naming(
        [] { gmk::noise_grid(std::vector<gmk::noise_level>{{1.78e-164, 1e-220, 0}, {1e-220, 1e-220, 0}}); }, "sigma");
    CHECK_NOTHROW(gmk::noise_grid(std::vector<gmk::noise_level>{{1e-220, 1e-220, 0}, {1.78e-164, 1e-220, 0}}));
    // ... and overflow: ratios 1e-300 / 1e300 -> 1e300 / 1e-300 rise; the reverse falls.
    gt::require_throws_naming(
        [] { gmk::noise_grid(std::vector<gmk::noise_level>{{1e300, 1e-300, 0}, {1e-300, 1e300, 0}}); }, "sigma");
    CHECK_NOTHROW(gmk::noise_grid(std::vector<gmk::noise_level>{{1e-300, 1e300, 0}, {1e300, 1e-300, 0}}));
    // Equal ratios pass, at any scale.
    CHECK_NOTHROW(gmk::noise_grid(std::vector<gmk::noise_level>{{1e-200, 3e-200, 0}, {1e200, 3e200, 0}}));
}
