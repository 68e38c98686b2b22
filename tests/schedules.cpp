// Tests of gmk/schedules/*.hpp: golden data from diffusers 0.42.1 and k-diffusion
// (tests/golden/schedules.txt, written by tests/golden/schedules.py), the values quoted in
// ../shared/FORMULAS.md, properties, and bad settings.
//
// Tolerances. gmk builds every schedule in double; its double results must agree with the float64
// evaluation of the reference's formula to a relative 1e-12. Its float results are the doubles
// rounded once, compared with what the reference itself returns in float32 to a relative 1e-6,
// except where the reference's own float32 arithmetic is further than that from the exact value
// (each such tolerance below names the float32 operation that limits it; measured values in
// comments, GMK_SCHEDULES_REPORT=1 prints them).
#include <gmk/diffusion/noise_levels.hpp>
#include <gmk/schedules/betas.hpp>
#include <gmk/schedules/flow.hpp>
#include <gmk/schedules/sigmas.hpp>
#include <gmk/schedules/timesteps.hpp>

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

namespace {

const gt::golden_file& golden() {
    static const gt::golden_file g = gt::read_golden("schedules.txt");
    return g;
}

bool has_ref(const std::string& name, const char* dtype) {
    for (const auto& c : golden().cases)
        if (c.op == name && c.dtype == dtype) return true;
    return false;
}

/// The golden entry `name` as doubles (float32 entries widened exactly).
std::vector<double> ref(const std::string& name, const char* dtype) {
    for (const auto& c : golden().cases) {
        if (c.op != name || c.dtype != dtype) continue;
        const auto& call = c.calls.at(0);
        std::vector<double> v(call.index.size());
        for (std::size_t j = 0; j < v.size(); ++j)
            v[j] = std::string(dtype) == "float32" ? double(call.value<float>(j)) : call.value<double>(j);
        return v;
    }
    throw std::runtime_error("no golden entry " + name + " " + dtype);
}

/// Worst relative error per group and type, for the report.
std::map<std::string, double>& worst_by_group() {
    static std::map<std::string, double> m;
    return m;
}

/// max |got - want| / max(|want|, floor) over the elements; the sizes must match.
template <class T>
double rel_error(const std::vector<T>& got, const std::vector<double>& want, double floor = 0) {
    REQUIRE(got.size() == want.size());
    double w = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(double(got[i]) - want[i]);
        const double scale = std::max(std::fabs(want[i]), floor);
        w = std::max(w, scale > 0 ? d / scale : d);
    }
    return w;
}

/// Compares a double result with the float64 entry and its float rounding with the float32 entry
/// (when the golden file has one), recording both under `group`.
void compare(const std::string& group, const std::string& name, const std::vector<double>& got,
             double float_tol = 1e-6, double floor = 0) {
    INFO(name);
    const double ed = rel_error(got, ref(name, "float64"), floor);
    double& wd = worst_by_group()[group + " double"];
    wd = std::max(wd, ed);
    CHECK(ed <= 1e-12);
    if (has_ref(name, "float32")) {
        const std::vector<float> gf(got.begin(), got.end());
        const double ef = rel_error(gf, ref(name, "float32"), floor);
        double& wf = worst_by_group()[group + " float"];
        wf = std::max(wf, ef);
        CHECK(ef <= float_tol);
    }
}

std::vector<double> as_double(const std::vector<std::int64_t>& v) { return std::vector<double>(v.begin(), v.end()); }

const char* spacing_name(gmk::timestep_spacing s) {
    return s == gmk::timestep_spacing::linspace ? "linspace" : s == gmk::timestep_spacing::leading ? "leading" : "trailing";
}

std::vector<double> sd_alphas_cumprod(bool zero_snr = false) {
    const auto b = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
    return zero_snr ? gmk::rescaled_alphas_cumprod(b) : gmk::alphas_cumprod(b);
}

}  // namespace

TEST_CASE("betas and alphas_cumprod match diffusers", "[schedules][betas]") {
    const std::pair<const char*, gmk::beta_schedule> schedules[] = {
        {"linear", gmk::beta_schedule::linear},
        {"scaled_linear", gmk::beta_schedule::scaled_linear},
        {"squaredcos_cap_v2", gmk::beta_schedule::squaredcos_cap_v2},
        {"sigmoid", gmk::beta_schedule::sigmoid}};
    const std::pair<const char*, std::pair<double, double>> params[] = {{"ddpm", {0.0001, 0.02}},
                                                                       {"sd", {0.00085, 0.012}}};
    for (const auto& s : schedules) {
        for (const auto& p : params) {
            const std::string tag = std::string(s.first) + "." + p.first;
            if (!has_ref("betas." + tag, "float64")) continue;
            const auto b = gmk::betas(s.second, 1000, p.second.first, p.second.second);
            // torch.linspace in float32 (step * i rounded in float): measured 4.4e-7.
            compare("betas", "betas." + tag, b);
            // torch.cumprod over 1000 float32 factors: the error grows with t; measured 1.3e-5
            // (sigmoid, ddpm at t = 999, where abar = 4e-5).
            compare("alphas_cumprod", "alphas_cumprod." + tag, gmk::alphas_cumprod(b), 3e-5);
            // The float overload is the double result rounded once.
            const auto bf = gmk::betas<float>(s.second, 1000, p.second.first, p.second.second);
            for (std::size_t i = 0; i < b.size(); ++i) REQUIRE(bf[i] == float(b[i]));
        }
    }
    const auto b = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
    // rescale_zero_terminal_snr on the reference's float32 betas: sqrt(abar) - sqrt(abar_T)
    // cancels in float32 near t = T, where the rescaled abar falls to ~1e-6 (measured 2.3e-4 on
    // the betas and abar there; 1.3e-5 elsewhere, from the float32 cumprod).
    compare("rescale_zero_terminal_snr", "betas_zero_snr.scaled_linear.sd", gmk::rescale_zero_terminal_snr(b), 5e-4);
    compare("rescale_zero_terminal_snr", "alphas_cumprod_zero_snr.scaled_linear.sd", gmk::rescaled_alphas_cumprod(b),
            5e-4);
}

TEST_CASE("timesteps match DDIM/DDPM (integers) and EulerDiscrete (fractional)", "[schedules][timesteps]") {
    using S = gmk::timestep_spacing;
    for (S spacing : {S::linspace, S::leading, S::trailing}) {
        for (std::size_t n : {1, 10, 25, 50, 61, 999, 1000}) {
            for (int offset : {0, 1}) {
                const std::string key = std::string(spacing_name(spacing)) + "." + std::to_string(n) + "." +
                                        std::to_string(offset);
                INFO(key);
                std::vector<double> want = ref("timesteps.ddim." + key, "float64");
                std::vector<double> want_e32 = ref("timesteps.euler." + key, "float32");
                if (spacing == S::leading && offset == 1 && n == 1000) {
                    // diffusers yields 1000 ... 1: timestep 1000 indexes past the 1000 trained ones.
                    REQUIRE(want.front() == 1000);
                    gt::require_throws_naming([&] { gmk::timesteps(spacing, 1000, n, offset); }, "steps_offset");
                    continue;
                }
                if (spacing == S::trailing && want.size() == n + 1) {
                    // numpy.arange(1000, 0, -1000/61) has 62 elements: diffusers appends a -1.
                    REQUIRE(n == 61);
                    REQUIRE(want.back() == -1);
                    REQUIRE(want_e32.back() == -1);
                    want.pop_back();
                    want_e32.pop_back();
                }
                const auto t = gmk::timesteps(spacing, 1000, n, offset);
                CHECK(as_double(t) == want);
                const auto tf = gmk::timesteps_fractional(spacing, 1000, n, offset);
                std::vector<double> want_e64 = ref("timesteps.euler." + key, "float64");
                CHECK(rel_error(tf, want_e64) <= 1e-15);
                // diffusers builds Euler's timesteps in float64 and stores them in float32: the
                // same rounding, bit for bit.
                REQUIRE(tf.size() == want_e32.size());
                for (std::size_t i = 0; i < tf.size(); ++i) CHECK(double(float(tf[i])) == want_e32[i]);
                if (spacing != S::linspace) CHECK(tf == as_double(t));
            }
        }
    }
}

TEST_CASE("timesteps: FORMULAS.md's N = 10 lists", "[schedules][timesteps]") {
    using S = gmk::timestep_spacing;
    CHECK(gmk::timesteps(S::leading, 1000, 10, 1) ==
          std::vector<std::int64_t>{901, 801, 701, 601, 501, 401, 301, 201, 101, 1});
    CHECK(gmk::timesteps(S::trailing, 1000, 10) ==
          std::vector<std::int64_t>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99});
    CHECK(gmk::timesteps(S::linspace, 1000, 10) ==
          std::vector<std::int64_t>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0});
    const auto f = gmk::timesteps_fractional(S::linspace, 1000, 10);
    CHECK(f[1] == 888.0);
    CHECK(gmk::timesteps_fractional(S::linspace, 1000, 4)[1] == 666.0);
    CHECK(gmk::timesteps_fractional(S::linspace, 1000, 5)[1] == 749.25);
    // Fractional linspace can give more steps than training timesteps; integer spacings cannot.
    CHECK(gmk::timesteps_fractional(S::linspace, 1000, 2000).size() == 2000);
    gt::require_throws_naming([] { gmk::timesteps(S::linspace, 1000, 1001); }, "steps");
    gt::require_throws_naming([] { gmk::timesteps_fractional(S::trailing, 1000, 1001); }, "steps");
    gt::require_throws_naming([] { gmk::timesteps(S::leading, 1000, 0); }, "steps");
    gt::require_throws_naming([] { gmk::timesteps(S::leading, 0, 1); }, "num_train_timesteps");
    gt::require_throws_naming([] { gmk::timesteps(S::leading, 1000, 10, -1); }, "steps_offset");
}

TEST_CASE("DDIM's alphas_cumprod at its timesteps match diffusers", "[schedules][ddim]") {
    const auto ac = sd_alphas_cumprod();
    const auto t = gmk::timesteps(gmk::timestep_spacing::leading, 1000, 50, 1);
    std::vector<double> a;
    for (auto ti : t) a.push_back(ac[std::size_t(ti)]);
    compare("alphas_cumprod", "ddim.sd.alphas.leading.50.1", a, 3e-5);  // float32 cumprod, as above
}

TEST_CASE("EulerDiscrete sigmas and timesteps match diffusers", "[schedules][euler]") {
    struct euler_case {
        const char* spacing;
        std::size_t n;
        int offset;
        const char* kind;
        const char* final;
        bool zsnr;
    };
    const euler_case cases[] = {
        {"linspace", 10, 0, "plain", "zero", false},       {"linspace", 25, 0, "plain", "zero", false},
        {"linspace", 50, 0, "plain", "zero", false},       {"leading", 25, 1, "plain", "zero", false},
        {"linspace", 10, 0, "karras", "zero", false},      {"linspace", 25, 0, "karras", "zero", false},
        {"linspace", 10, 0, "exponential", "zero", false}, {"linspace", 25, 0, "exponential", "zero", false},
        {"leading", 25, 1, "karras", "sigma_min", false},  {"linspace", 25, 0, "plain", "sigma_min", false},
        {"trailing", 25, 0, "plain", "zero", true},        {"trailing", 10, 0, "karras", "zero", true}};
    for (const auto& c : cases) {
        const std::string sp = c.spacing, kind = c.kind;
        const auto spacing = sp == "linspace" ? gmk::timestep_spacing::linspace
                             : sp == "leading" ? gmk::timestep_spacing::leading
                                               : gmk::timestep_spacing::trailing;
        const auto ts = gmk::timesteps_fractional(spacing, 1000, c.n, c.offset);
        const auto ac = sd_alphas_cumprod(c.zsnr);
        const auto grid = gmk::discrete_sigmas(
            ac, ts,
            kind == "plain" ? gmk::sigma_spacing::timesteps
                            : kind == "karras" ? gmk::sigma_spacing::karras : gmk::sigma_spacing::exponential,
            std::string(c.final) == "zero" ? gmk::final_sigma::zero : gmk::final_sigma::sigma_min);
        const std::string name = "euler.sd." + sp + "." + std::to_string(c.n) + "." + std::to_string(c.offset) + "." +
                                 kind + "." + c.final + "." + (c.zsnr ? "zsnr" : "plain");
        // diffusers' sigmas come from float32 alphas_cumprod: 1 - abar cancels near abar = 0.99915
        // (t = 0), which leaves its smallest sigmas ~1e-5 off the exact value (measured 1.3e-5).
        compare("euler sigmas", name + ".sigmas", grid.sigmas, 3e-5);
        // Timesteps relative to max(t, 1) (absolute near t = 0). Karras/exponential timesteps
        // come from float32 log-sigmas in diffusers: measured 4.5e-5 at t ~ 1.
        compare("euler timesteps", name + ".timesteps", grid.timesteps, 1e-4, 1.0);
    }
}

TEST_CASE("DPMSolverMultistep sigmas match diffusers, zero terminal SNR included", "[schedules][dpm]") {
    struct dpm_case {
        const char* spacing;
        std::size_t n;
        bool zsnr;
    };
    for (const auto& c : {dpm_case{"linspace", 20, false}, dpm_case{"trailing", 20, true}, dpm_case{"trailing", 25, true}}) {
        const std::string sp = c.spacing;
        const std::string name = "dpm.sd." + sp + "." + std::to_string(c.n) + "." + (c.zsnr ? "zsnr" : "plain");
        INFO(name);
        // DPM-Solver's linspace takes n + 1 points and drops the last (t = 0).
        std::vector<std::int64_t> t;
        if (sp == "linspace") {
            t = gmk::timesteps(gmk::timestep_spacing::linspace, 1000, c.n + 1);
            t.pop_back();
        } else {
            t = gmk::timesteps(gmk::timestep_spacing::trailing, 1000, c.n);
        }
        CHECK(as_double(t) == ref(name + ".timesteps", "float64"));
        const auto ac = sd_alphas_cumprod(c.zsnr);
        const auto td = as_double(t);
        const auto grid = gmk::discrete_sigmas(ac, td);
        if (c.zsnr) CHECK(grid.sigmas.front() == std::sqrt((1 - 0x1p-24) / 0x1p-24));
        compare("dpm sigmas", name + ".sigmas", grid.sigmas, 3e-5);  // float32 alphas_cumprod, as Euler
    }
}

TEST_CASE("flow-matching sigmas match FlowMatchEulerDiscrete (SD3, Flux, shift_terminal)", "[schedules][flow]") {
    for (std::size_t n : {1, 28, 50}) {
        for (auto st : {std::pair<double, double>{3.0, 0}, {1.0, 0}, {3.0, 0.02}}) {
            if (st.second > 0 && n == 1) continue;
            char name[96];
            std::snprintf(name, sizeof name, "flow.static.%zu.%.1f.%g", n, st.first, st.second);
            gmk::flow_options o;
            o.shift = st.first;
            o.shift_terminal = st.second;
            // diffusers' sigma_min is the float32 shift(1/T), then float64 arithmetic: measured 3e-7,
            // except shift_terminal's 1 - t cancelling near t = 1 (measured 1.2e-6 at t = 1 - 1e-3).
            compare("flow static", name, gmk::sigmas_flow(n, o), st.second > 0 ? 3e-6 : 1e-6);
        }
    }
    const double mu = gmk::flow_mu(4096);
    CHECK(rel_error(std::vector<double>{mu}, ref("flow.mu.4096", "float64")) <= 1e-15);
    CHECK(rel_error(std::vector<double>{gmk::flow_mu(1024)}, ref("flow.mu.1024", "float64")) <= 1e-15);
    for (std::size_t n : {1, 28, 50}) {
        for (auto ft : {std::pair<gmk::time_shift, double>{gmk::time_shift::exponential, 0},
                        {gmk::time_shift::linear, 0},
                        {gmk::time_shift::exponential, 0.02}}) {
            if (ft.second > 0 && n == 1) continue;
            char name[96];
            std::snprintf(name, sizeof name, "flow.dynamic.%zu.%s.%g", n,
                          ft.first == gmk::time_shift::exponential ? "exponential" : "linear", ft.second);
            gmk::flow_options o;
            o.dynamic = true;
            o.mu = mu;
            o.form = ft.first;
            o.shift_terminal = ft.second;
            // The Flux pipeline's levels linspace(1, 1/n, n).
            std::vector<double> user(n);
            for (std::size_t i = 0; i < n; ++i) user[i] = n == 1 ? 1.0 : 1.0 + double(i) * ((1.0 / double(n) - 1.0) / double(n - 1));
            user.back() = 1.0 / double(n);
            // diffusers casts the given levels to float32 and shifts them in float32: measured
            // 2.0e-6 (shift_terminal, 1 - t cancelling), 6e-7 otherwise.
            compare("flow dynamic", name, gmk::sigmas_flow(user, o), ft.second > 0 ? 5e-6 : 1e-6);
        }
    }
}

TEST_CASE("k-diffusion sigma grids match get_sigmas_*", "[schedules][k-diffusion]") {
    for (std::size_t n : {1, 2, 10, 25}) {
        const std::string k = std::to_string(n);
        // The float entries are torch's float32 linspace/pow/exp. Karras with rho = 3 from 80 to
        // 0.002: the float32 sum 80^(1/3) + ramp * (0.002^(1/3) - 80^(1/3)) cancels from 4.31 to
        // 0.126, and the cube triples that (measured 4.8e-6; rho = 7 stays within 1e-6).
        compare("k karras", "k.karras." + k + ".7", gmk::sigmas_karras(n, 0.0291675, 14.614642));
        compare("k karras", "k.karras." + k + ".3", gmk::sigmas_karras(n, 0.002, 80.0, 3.0), 1e-5);
        compare("k exponential", "k.exponential." + k, gmk::sigmas_exponential(n, 0.0291675, 14.614642));
        compare("k polyexponential", "k.polyexponential." + k + ".1", gmk::sigmas_polyexponential(n, 0.0291675, 14.614642));
        compare("k polyexponential", "k.polyexponential." + k + ".2", gmk::sigmas_polyexponential(n, 0.002, 80.0, 2.0));
        // VP: float32 exp(x) - 1 at x = 1.1e-4 (t = eps_s) keeps ~3 digits less (measured 2.1e-4).
        compare("k vp", "k.vp." + k, gmk::sigmas_vp(n), 5e-4);
    }
}

TEST_CASE("sigma <-> timestep match k-diffusion's DiscreteSchedule", "[schedules][discrete]") {
    const auto ac = sd_alphas_cumprod();
    const auto trained = gmk::sigmas_from_alphas_cumprod(ac);
    const auto s_in = ref("k.discrete.sigma_to_t.in", "float64");
    std::vector<double> t;
    for (double s : s_in) t.push_back(gmk::timestep_at_sigma(trained, s));
    compare("sigma_to_t", "k.discrete.sigma_to_t", t, 1e-6, 1.0);
    const auto t_in = ref("k.discrete.t_to_sigma.in", "float64");
    std::vector<double> s;
    for (double ti : t_in) s.push_back(gmk::sigma_at_timestep(trained, ti, gmk::sigma_interpolation::log_linear));
    compare("t_to_sigma", "k.discrete.t_to_sigma", s);
}

TEST_CASE("schedules: FORMULAS.md's quoted values", "[schedules]") {
    const auto ac = sd_alphas_cumprod();
    const auto trained = gmk::sigmas_from_alphas_cumprod(ac);
    // Quoted to 10 decimals.
    CHECK(std::fabs(trained.front() - 0.0291671582) <= 0.5e-10);
    CHECK(std::fabs(trained.back() - 14.6146412293) <= 0.5e-10);
    const auto k = gmk::sigmas_karras(10, trained.front(), trained.back());
    const double want[] = {14.6146, 9.1029, 5.4784, 3.1686, 1.7494, 0.9141, 0.4469, 0.2014, 0.0819, 0.0292, 0};
    REQUIRE(k.size() == 11);
    for (std::size_t i = 0; i < 11; ++i) CHECK(std::fabs(k[i] - want[i]) <= 0.5e-4);
}

TEST_CASE("schedules: properties", "[schedules]") {
    const auto ac = sd_alphas_cumprod();
    const auto trained = gmk::sigmas_from_alphas_cumprod(ac);
    // Round trip inside the trained range: timestep_at_sigma inverts log-linear sigma_at_timestep.
    gt::rng r(5);
    for (int i = 0; i < 200; ++i) {
        const double t = r.uniform(0, 999);
        const double s = gmk::sigma_at_timestep(trained, t, gmk::sigma_interpolation::log_linear);
        CHECK(std::fabs(gmk::timestep_at_sigma(trained, s) - t) <= 1e-9);
    }
    // Outside it, timesteps clamp to the ends.
    CHECK(gmk::timestep_at_sigma(trained, 0.0) == 0.0);
    CHECK(gmk::timestep_at_sigma(trained, 1e3) == 999.0);
    // Every grid descends strictly to its final level.
    auto descending = [](const std::vector<double>& s) {
        for (std::size_t i = 1; i < s.size(); ++i)
            if (!(s[i] < s[i - 1])) return false;
        return true;
    };
    for (std::size_t n : {1, 2, 7, 100}) {
        CHECK(descending(gmk::sigmas_karras(n, 0.002, 80)));
        CHECK(descending(gmk::sigmas_exponential(n, 0.002, 80)));
        CHECK(descending(gmk::sigmas_polyexponential(n, 0.002, 80, 3.0)));
        CHECK(descending(gmk::sigmas_vp(n)));
        CHECK(descending(gmk::sigmas_flow(n, gmk::flow_options{})));
        CHECK(gmk::sigmas_karras(n, 0.002, 80).back() == 0);
        CHECK(gmk::sigmas_karras(n, 0.002, 80).front() == Approx(80).epsilon(1e-14));
    }
    // Zero terminal SNR: abar_T = 0 before the 2^-24 floor, abar_0 kept.
    const auto b = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
    const auto z = gmk::rescale_zero_terminal_snr(b);
    CHECK(z.back() == 1.0);
    CHECK(z.front() == Approx(b.front()).epsilon(1e-12));
    const auto za = gmk::rescaled_alphas_cumprod(b);
    CHECK(za.back() == gmk::zero_terminal_snr_alphas_cumprod);
    // The float forms are the double results rounded once.
    auto rounded = [](const std::vector<double>& d, const std::vector<float>& f) {
        if (d.size() != f.size()) return false;
        for (std::size_t i = 0; i < d.size(); ++i)
            if (f[i] != float(d[i])) return false;
        return true;
    };
    CHECK(rounded(gmk::sigmas_karras(10, 0.002, 80), gmk::sigmas_karras<float>(10, 0.002, 80)));
    CHECK(rounded(gmk::sigmas_vp(10), gmk::sigmas_vp<float>(10)));
    CHECK(rounded(gmk::sigmas_flow(10, gmk::flow_options{}), gmk::sigmas_flow<float>(10, gmk::flow_options{})));
    CHECK(rounded(za, gmk::rescaled_alphas_cumprod<float>(b)));
    const auto ts = gmk::timesteps_fractional(gmk::timestep_spacing::linspace, 1000, 10);
    const auto gd = gmk::discrete_sigmas(ac, ts, gmk::sigma_spacing::karras);
    const auto gf = gmk::discrete_sigmas<float>(ac, ts, gmk::sigma_spacing::karras);
    CHECK(rounded(gd.sigmas, gf.sigmas));
    CHECK(rounded(gd.timesteps, gf.timesteps));
    // Static shift 1 is the identity; flow levels at the ends stay put.
    CHECK(gmk::flow_shift(0.3, 1.0) == 0.3);
    CHECK(gmk::flow_shift(1.0, 3.0) == 1.0);
    CHECK(gmk::flow_time_shift(0.5, 0.0) == 0.5);
}

// The settings below are the fuzz target's findings (fuzz/README.md, S1-S12): each failed here
// before its fix.
TEST_CASE("schedules: extreme settings stay exact, finite and monotone", "[schedules][extremes]") {
    auto non_increasing = [](const std::vector<double>& s) {
        for (std::size_t i = 1; i < s.size(); ++i)
            if (!(s[i] <= s[i - 1])) return false;
        return true;
    };
    auto finite = [](const std::vector<double>& s) {
        for (double x : s)
            if (!std::isfinite(x)) return false;
        return true;
    };
    SECTION("S1: timesteps up to T = 2^53, beyond it rejected") {
        const std::size_t big = gmk::max_train_timesteps;
        for (auto sp : {gmk::timestep_spacing::linspace, gmk::timestep_spacing::leading, gmk::timestep_spacing::trailing}) {
            INFO(spacing_name(sp));
            const auto t = gmk::timesteps(sp, big, 7);
            REQUIRE(t.size() == 7);
            for (std::size_t i = 0; i < t.size(); ++i) {
                CHECK(t[i] >= 0);
                CHECK(t[i] <= std::int64_t(big - 1));
                if (i > 0) CHECK(t[i] < t[i - 1]);
            }
            gt::require_throws_naming([&] { gmk::timesteps(sp, big + 1, 7); }, "num_train_timesteps");
            gt::require_throws_naming([&] { gmk::timesteps_fractional(sp, std::size_t(-1), 7); }, "num_train_timesteps");
        }
        CHECK(gmk::timesteps(gmk::timestep_spacing::trailing, big, 7).front() == std::int64_t(big - 1));
        // A steps_offset that would overflow (steps - 1) * (T / steps) + steps_offset is rejected.
        const std::ptrdiff_t huge = std::numeric_limits<std::ptrdiff_t>::max();
        gt::require_throws_naming([&] { gmk::timesteps(gmk::timestep_spacing::leading, 1000, 10, huge); },
                                  "steps_offset");
        CHECK(gmk::timesteps(gmk::timestep_spacing::leading, 1000, 10, 99).front() == 999);
        gt::require_throws_naming([&] { gmk::timesteps(gmk::timestep_spacing::leading, 1000, 10, 100); },
                                  "steps_offset");
    }
    SECTION("S2, S8: zero terminal SNR with a constant tail, and levels below 2^-24") {
        const std::vector<double> b{0.5, 0.5, 0};  // abar 0.5, 0.25, 0.25: the rescaled tail is 0
        const auto z = gmk::rescale_zero_terminal_snr(b);
        REQUIRE(finite(z));
        CHECK(z[0] == Approx(0.5).epsilon(1e-15));
        CHECK(z[1] == 1.0);
        CHECK(z[2] == 1.0);
        const double floor = gmk::zero_terminal_snr_alphas_cumprod;
        CHECK(gmk::rescaled_alphas_cumprod(b) == std::vector<double>{1 - z[0], floor, floor});
        // Linear betas rescale to abar[T - 2] = 4.2e-9 < 2^-24: held at 2^-24, abar never rises,
        // and the trained sigmas are accepted.
        const auto lin = gmk::betas(gmk::beta_schedule::linear, 1000, 0.0001, 0.02);
        const auto za = gmk::rescaled_alphas_cumprod(lin);
        CHECK(non_increasing(za));
        CHECK(za[998] == floor);
        // Above the floor the values are the cumulative product of the rescaled betas; from the
        // first level below it on, the floor.
        const auto zl = gmk::rescale_zero_terminal_snr(lin);
        double p = 1;
        std::size_t held = 0;
        for (std::size_t i = 0; i < 999; ++i) {
            p *= 1 - zl[i];
            if (p < floor) ++held;
            REQUIRE(za[i] == (p < floor ? floor : p));
        }
        CHECK(held >= 2);  // (abar[997] = 1.7e-8 and abar[998] = 4.2e-9 before the floor)
        CHECK(gmk::sigmas_from_alphas_cumprod(za).back() == std::sqrt((1 - floor) / floor));
        const std::vector<double> steep{0.3, 0.3, 0.3, 0.00017853055619134815};
        const auto zs = gmk::rescaled_alphas_cumprod(steep);
        CHECK(non_increasing(zs));
        for (double x : zs) CHECK(x >= floor);
        CHECK_NOTHROW(gmk::sigmas_from_alphas_cumprod(zs));
    }
    SECTION("S3: sigmas of abar below 1 / DBL_MAX") {
        const std::vector<double> a{1e-300, 1e-309, 5e-324};
        const auto s = gmk::sigmas_from_alphas_cumprod(a);
        CHECK(s[0] == std::sqrt((1 - 1e-300) / 1e-300));
        CHECK(s[1] == Approx(1 / std::sqrt(1e-309)).epsilon(1e-15));
        CHECK(s[2] == Approx(1 / std::sqrt(5e-324)).epsilon(1e-15));
    }
    SECTION("S4, S12: Karras grids for every rho and range, with exact ends") {
        // (the level in closed form: sigma_max ((1 - r) + r q)^rho, q = (sigma_min / sigma_max)^(1/rho))
        auto level = [](double r, double lo, double hi, double rho) {
            const long double q = std::pow((long double)lo / hi, 1 / (long double)rho);
            return double(hi * std::pow((1 - (long double)r) + r * q, (long double)rho));
        };
        struct setting {
            std::size_t n;
            double lo, hi, rho;
        };
        for (const setting& c : {setting{3, 2, 200, 0.005}, setting{3, 1e-20, 200, 1}, setting{3, 2, 200, 0.1},
                                 setting{360, 1.0213048942957384e-300, 7.5669290386756523e-300, 1.7615930418860151},
                                 setting{50, 1e-300, 1e300, 7}, setting{50, 0.002, 80, 1e-3}, setting{25, 0.002, 80, 7}}) {
            INFO(c.n << " levels from " << c.hi << " to " << c.lo << ", rho " << c.rho);
            const auto s = gmk::sigmas_karras(c.n, c.lo, c.hi, c.rho);
            REQUIRE(s.size() == c.n + 1);
            CHECK(finite(s));
            CHECK(non_increasing(s));
            CHECK(s.front() == c.hi);
            CHECK(s[c.n - 1] == c.lo);
            for (std::size_t i = 1; i + 1 < c.n; ++i) {
                CHECK(s[i] > 0);
                CHECK(s[i] == Approx(level(double(i) / double(c.n - 1), c.lo, c.hi, c.rho)).epsilon(1e-12));
            }
        }
        // rho -> infinity is log-uniform spacing (k-diffusion's form loses it: hi and lo round to 1).
        const auto k = gmk::sigmas_karras(10, 0.002, 80, 1e12), e = gmk::sigmas_exponential(10, 0.002, 80);
        for (std::size_t i = 0; i < 10; ++i) CHECK(k[i] == Approx(e[i]).epsilon(1e-9));
        // Exponential and polyexponential ends are exact too.
        CHECK(gmk::sigmas_exponential(7, 1e-300, 7e-300).front() == 7e-300);
        CHECK(gmk::sigmas_exponential(7, 1e-300, 7e-300)[6] == 1e-300);
        CHECK(gmk::sigmas_polyexponential(7, 0.0291675, 14.614642, 2)[6] == 0.0291675);
    }
    SECTION("S5: static flow shifts keep t = 1 at 1 and stay monotone") {
        CHECK(gmk::flow_shift(1, 0.24058594644083314) == 1.0);
        CHECK(gmk::flow_shift(1, 1e-17) == 1.0);
        CHECK(gmk::flow_shift(0, 1e-17) == 0.0);
        gt::rng r(12);
        for (int i = 0; i < 2000; ++i) {
            gmk::flow_options o;
            o.shift = r.uniform(0.05, 1);
            const auto s = gmk::sigmas_flow(10, o);
            REQUIRE(s.front() == 1.0);
            CHECK(non_increasing(s));
        }
        gmk::flow_options tiny;
        tiny.shift = 1e-17;
        const auto st = gmk::sigmas_flow(2, tiny);
        CHECK(finite(st));
        CHECK(st.front() == 1.0);
        gmk::flow_options huge;
        huge.shift = 3153124584.5384092;
        huge.num_train_timesteps = 3925;
        const auto sh = gmk::sigmas_flow(325, huge);
        CHECK(non_increasing(sh));
        CHECK(sh.front() == 1.0);
        // The value itself: s t / (1 + (s - 1) t) to rounding (each form rounds at most five times).
        for (double t : {0.001, 0.25, 0.5, 0.9, 0.999})
            for (double shift : {0.3, 1.0, 3.0, 1e4})
                CHECK(gmk::flow_shift(t, shift) ==
                      Approx(shift * t / (1 + (shift - 1) * t)).epsilon(10 * std::numeric_limits<double>::epsilon()));
    }
    SECTION("S6: VP sigmas where e^x overflows but the level does not") {
        const auto s = gmk::sigmas_vp(2, 1500, 0.1);
        REQUIRE(finite(s));
        CHECK(s.front() == Approx(std::exp(750.1 / 2)).epsilon(1e-13));
        gt::require_throws_naming([] { gmk::sigmas_vp(2, 3000, 0.1); }, "beta_d");
    }
    SECTION("S7: timesteps at repeated trained levels") {
        const std::vector<double> top{1, 2, 2}, bottom{1, 1, 2};
        CHECK(gmk::timestep_at_sigma(top, 2) == 2.0);
        CHECK(gmk::timestep_at_sigma(top, 3) == 2.0);
        CHECK(gmk::timestep_at_sigma(top, 1.5) == Approx(std::log(1.5) / std::log(2.0)));
        CHECK(gmk::timestep_at_sigma(bottom, 0.5) == 0.0);
        CHECK(gmk::timestep_at_sigma(bottom, 1) == 1.0);
        CHECK(gmk::timestep_at_sigma(bottom, 4) == 2.0);
    }
    SECTION("S10: final_sigma::sigma_min never above the last level") {
        const std::vector<double> two{0.99960936903944453, 0.94962890058747229}, t10{1, 0};
        for (auto spacing : {gmk::sigma_spacing::timesteps, gmk::sigma_spacing::karras, gmk::sigma_spacing::exponential})
            for (auto how : {gmk::sigma_interpolation::linear, gmk::sigma_interpolation::log_linear}) {
                const auto g = gmk::discrete_sigmas(two, t10, spacing, gmk::final_sigma::sigma_min, how);
                CHECK(g.sigmas[1] == g.sigmas[2]);
                CHECK_NOTHROW(gmk::noise_grid::vp_sigmas(g.sigmas, g.timesteps));
            }
        // Training schedules of every kind, every spacing: the grid is one a VP sampler accepts.
        for (auto bs : {gmk::beta_schedule::linear, gmk::beta_schedule::scaled_linear, gmk::beta_schedule::squaredcos_cap_v2})
            for (double end : {0.012, 0.02, 0.03}) {
                const auto ac = gmk::alphas_cumprod(gmk::betas(bs, 1000, 0.00085, end));
                for (std::size_t steps : {7, 20, 50}) {
                    const auto ts = gmk::timesteps_fractional(gmk::timestep_spacing::linspace, 1000, steps);
                    for (auto spacing : {gmk::sigma_spacing::karras, gmk::sigma_spacing::exponential})
                        for (auto how : {gmk::sigma_interpolation::linear, gmk::sigma_interpolation::log_linear}) {
                            const auto g = gmk::discrete_sigmas(ac, ts, spacing, gmk::final_sigma::sigma_min, how);
                            CHECK(g.sigmas[steps] <= g.sigmas[steps - 1]);
                            CHECK_NOTHROW(gmk::noise_grid::vp_sigmas(g.sigmas, g.timesteps));
                        }
                }
            }
    }
}

TEST_CASE("schedules: bad settings throw std::invalid_argument naming them", "[schedules]") {
    using B = gmk::beta_schedule;
    const double nan = std::nan("");
    gt::require_throws_naming([] { gmk::betas(B::linear, 1000, 0.02, 0.0001); }, "beta_end");
    gt::require_throws_naming([&] { gmk::betas(B::linear, 1000, nan, 0.02); }, "beta_start");
    gt::require_throws_naming([] { gmk::betas(B::scaled_linear, 0); }, "num_train_timesteps");
    gt::require_throws_naming([] { gmk::betas(B::linear, 10, 0.1, 1.0); }, "beta_end");
    const std::vector<double> big_beta{0.1, 1.2}, none{}, rising{0.5, 0.7}, up{10, 500}, past{1000}, abar_up{0.9, 0.95},
        sigma_down{2, 1};
    gt::require_throws_naming([&] { gmk::alphas_cumprod(big_beta); }, "betas[i]");
    gt::require_throws_naming([&] { gmk::alphas_cumprod(none); }, "betas.size()");
    gt::require_throws_naming([] { gmk::sigmas_karras(10, 0.1, 10, 0); }, "rho");
    gt::require_throws_naming([] { gmk::sigmas_karras(10, 10, 0.1); }, "sigma_max");
    gt::require_throws_naming([] { gmk::sigmas_karras(10, 0, 10); }, "sigma_min");
    gt::require_throws_naming([&] { gmk::sigmas_exponential(10, nan, 10); }, "sigma_min");
    gt::require_throws_naming([] { gmk::sigmas_polyexponential(0, 0.1, 10); }, "n");
    gt::require_throws_naming([] { gmk::sigmas_vp(10, 19.9, 0.1, 0); }, "eps_s");
    gt::require_throws_naming([] { gmk::flow_shift(0.5, 0); }, "shift");
    gmk::flow_options o;
    o.shift = -1;
    gt::require_throws_naming([&] { gmk::sigmas_flow(10, o); }, "shift");
    o = {};
    o.shift_terminal = 1;
    gt::require_throws_naming([&] { gmk::sigmas_flow(10, o); }, "shift_terminal");
    o = {};
    gt::require_throws_naming([&] { gmk::sigmas_flow(rising, o); }, "sigmas[i]");
    gt::require_throws_naming([&] { gmk::sigmas_flow(0, o); }, "n");
    const auto ac = sd_alphas_cumprod();
    const auto trained = gmk::sigmas_from_alphas_cumprod(ac);
    gt::require_throws_naming([&] { gmk::discrete_sigmas(ac, up); }, "timesteps[i]");
    gt::require_throws_naming([&] { gmk::discrete_sigmas(ac, past); }, "timestep");
    gt::require_throws_naming([&] { gmk::discrete_sigmas(ac, none); }, "timesteps.size()");
    gt::require_throws_naming([&] { gmk::sigma_at_timestep(trained, -0.5); }, "timestep");
    gt::require_throws_naming([&] { gmk::sigma_at_timestep(trained, nan); }, "timestep");
    gt::require_throws_naming([&] { gmk::sigmas_from_alphas_cumprod(abar_up); }, "alphas_cumprod[i]");
    gt::require_throws_naming([&] { gmk::timestep_at_sigma(sigma_down, 1.5); }, "trained_sigmas[i]");
}

TEST_CASE("schedules: report of the measured agreement (GMK_SCHEDULES_REPORT=1)", "[schedules][report]") {
    if (!std::getenv("GMK_SCHEDULES_REPORT")) return;
    for (const auto& [group, worst] : worst_by_group()) std::printf("%-36s max relative error %.3g\n", group.c_str(), worst);
}
