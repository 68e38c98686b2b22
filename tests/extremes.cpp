// Extremes: the kernels at the edges of their input range. The design guide's promise is that
// numerics are defined for every finite input and for the infinities masks use: no NaN where the
// mathematics has a finite answer, the documented result where it has none, and no crash.
//
//   - samplers (gmk::sample over every sampler of samplers.hpp) on Karras grids spanning sigma =
//     1e-4 .. 1e4 (VE, and the same noise-to-signal ratios on a VP grid, where alpha falls to 1e-4):
//       * on Gaussian data (the exact denoiser): finite everywhere; float within 1e-4 sd of double
//         on the same path (same start, same noise); double on the exact step recursion (derived
//         from samplers.hpp's formulas, noise included) for the samplers whose steps on Gaussian
//         data are short to write down;
//       * with a model output of +-1e30 (constant, or alternating in sign between elements and
//         steps), in float and double, for epsilon, sample and v prediction: the exact answer is
//         finite in every case (|x| stays below about sigma_max 1e30 = 1e34 < FLT_MAX), so
//         gmk::sample must finish with a finite x; and where the exact answer is known it must be
//         met: a sample-prediction model's last output is the final x, bit for bit (clamped to
//         +-1 under clip_sample or dynamic thresholding); a constant epsilon c moves x by -c S with
//         S known per sampler family on the VE grid (sigma_0 for the ODE solvers, the DDPM
//         posterior's sum for the ancestral ones, ...);
//       * where the exact answer overflows (a learned-range variance channel of +1e30: std =
//         e^(1e29); float steps from sigma 1e10 with epsilon 1e30), gmk::non_finite_error names
//         the step and says the model output was finite; the same run in double, whose answer is
//         representable, finishes and is right.
//   - attention: rows masked entirely by a bias of -inf (no boolean mask) in each kernel (wide,
//     narrow, decoding, split-KV), rows whose only key has a score of -1e4, rows whose running
//     maximum jumps from -inf to -1e4 to +1e4 across key blocks, and splits of a split-KV row that
//     see nothing; logits of +-1e4 under soft-capping; the same in double; softmax_rows over
//     rows of -inf, one-hot rows and ties at +-1e4. (tests/attention.cpp covers fully masked rows
//     from causal bands, boolean masks, seq_k = 0 and windows, and +-1e4 without soft-capping.)
//   - sliding windows over all-equal rows (both zeros, infinities, the ends of each type's range,
//     subnormals), all-NaN rows (either sign, and the row form) and alternating
//     rows (period 2, and blocks as wide as a vector), against the naive reference of
//     window_sliding.cpp and the NaN policy of sliding_extremum.hpp; the streaming deques on
//     all-equal and alternating streams.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"
#include "support/window_reference.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
using gmk::prediction;

// =============================================================================================
// samplers
// =============================================================================================

namespace {

using any_sampler = std::variant<gmk::ddpm, gmk::ddim, gmk::euler, gmk::euler_ancestral, gmk::heun, gmk::flow_heun,
                                 gmk::flow_euler, gmk::dpmpp_2m, gmk::dpmpp_2m_sde, gmk::euler_maruyama,
                                 gmk::probability_flow_euler>;

// What a run on a VE grid (alpha = 1) gives in exact arithmetic for a constant epsilon output c:
// x_N = x_0 - c S (plus noise of order sigma_0 for the stochastic samplers, which is 1e-30 of
// c S at c = 1e30). With D = x - s c at every level:
enum class eps_sum {
    none,       // not checked (churn raises the level, flow coordinates, the SDE's second-order term, clipped D)
    ode,        // S = s_0: dx/ds = c; first-order steps x' = x - (s - s') c telescope, Heun is exact for a
                //   constant slope, DPM-Solver++(2M)'s correction D - D_prev is 0
    posterior,  // S = sum_i (s_i^2 - s_{i+1}^2) / s_i: the DDPM posterior mean x - (s^2 - s'^2) / s c (ddpm,
                //   ddim eta 1, euler_ancestral eta 1 whose r_down = s'^2 / s, euler_maruyama)
    pf_euler,   // S = sum_{i < N-1} (s_i^2 - s_{i+1}^2) / (2 s_i) + s_{N-1}: half the score step, then the
                //   denoising step x' = D
    sigmas,     // S = sum_i s_i: stochastic flow Euler x' = D + s' z
};

// A step on Gaussian data N(mu, sd^2) at VE levels is linear in e = x - mu: D - mu = k e with
// k = sd^2 / (sd^2 + s^2), and e' = g e + std z. The samplers whose g and std this test derives
// from samplers.hpp's formulas (s, s' the step's levels; the step into s' = 0 is x' = D, g = k):
enum class chain {
    none,            // not derived here (churn, thresholds, flow coordinates, multistep)
    first_order,     // g = s'/s + (1 - s'/s) k
    posterior,       // g = s'^2/s^2 + (1 - s'^2/s^2) k, std = s' sqrt(s^2 - s'^2) / s (ddpm fixed_small,
                     //   ddim eta 1, euler_ancestral eta 1)
    euler_maruyama,  // the same g, std = sqrt(s^2 - s'^2)
    pf_euler,        // g = 1 - (1 - k) (s^2 - s'^2) / (2 s^2)
    heun,            // g = 1 + (s' - s)/2 [(1 - k) / s + g1 (1 - k') / s'], g1 the first-order g, k' at s'
};

struct sampler_case {
    const char* name;
    any_sampler sampler;
    eps_sum eps;
    double clip;  // the final D is clamped to +-clip (clip_sample or dynamic thresholding); 0: none
    chain gauss;
};

gmk::churn churn_of(double s_churn, double s_tmin, double s_tmax, double s_noise) {
    gmk::churn c;
    c.s_churn = s_churn;
    c.s_tmin = s_tmin;
    c.s_tmax = s_tmax;
    c.s_noise = s_noise;
    return c;
}
template <class S>
S with_churn(const gmk::churn& c) {
    S s;
    static_cast<gmk::churn&>(s) = c;
    return s;
}
gmk::euler_ancestral ancestral(double eta) {
    gmk::euler_ancestral s;
    s.eta = eta;
    return s;
}
gmk::dpmpp_2m dpm2m(gmk::dpm_solver_type solver) {
    gmk::dpmpp_2m s;
    s.solver = solver;
    return s;
}

std::vector<sampler_case> sampler_cases() {
    using th = gmk::x0_threshold;
    using V = gmk::ddpm_variance;
    const gmk::churn edm = churn_of(20, 0.05, 50, 1.003);
    gmk::dpmpp_2m_sde sde;
    sde.eta = 1;
    return {
        {"ddpm fixed_small", gmk::ddpm{V::fixed_small, th::none()}, eps_sum::posterior, 0, chain::posterior},
        {"ddpm fixed_large clip", gmk::ddpm{V::fixed_large, th::clip(1)}, eps_sum::none, 1, chain::none},
        {"ddpm dynamic threshold", gmk::ddpm{V::fixed_small, th::dynamic(0.995, 1.5)}, eps_sum::none, 1, chain::none},
        {"ddpm learned_range", gmk::ddpm{V::learned_range, th::none()}, eps_sum::posterior, 0, chain::none},
        {"ddim eta 0", gmk::ddim{0, th::none()}, eps_sum::ode, 0, chain::first_order},
        {"ddim eta 0 clip", gmk::ddim{0, th::clip(1)}, eps_sum::none, 1, chain::none},
        {"ddim eta 1", gmk::ddim{1, th::none()}, eps_sum::posterior, 0, chain::posterior},
        {"euler", gmk::euler{}, eps_sum::ode, 0, chain::first_order},
        {"euler churn", with_churn<gmk::euler>(edm), eps_sum::none, 0, chain::none},
        {"euler_ancestral", ancestral(1), eps_sum::posterior, 0, chain::posterior},
        {"heun", gmk::heun{}, eps_sum::ode, 0, chain::heun},
        {"heun churn", with_churn<gmk::heun>(edm), eps_sum::none, 0, chain::none},
        {"flow_heun", gmk::flow_heun{}, eps_sum::none, 0, chain::none},
        {"flow_euler", gmk::flow_euler{}, eps_sum::ode, 0, chain::first_order},
        {"flow_euler stochastic", gmk::flow_euler{true}, eps_sum::sigmas, 0, chain::none},
        {"dpmpp_2m", dpm2m(gmk::dpm_solver_type::midpoint), eps_sum::ode, 0, chain::none},
        {"dpmpp_2m heun", dpm2m(gmk::dpm_solver_type::heun), eps_sum::ode, 0, chain::none},
        {"dpmpp_2m_sde", sde, eps_sum::none, 0, chain::none},
        {"euler_maruyama", gmk::euler_maruyama{}, eps_sum::posterior, 0, chain::euler_maruyama},
        {"probability_flow_euler", gmk::probability_flow_euler{}, eps_sum::pf_euler, 0, chain::pf_euler},
    };
}

// The data of the Gaussian model: element i ~ N(mu(i), sd^2).
constexpr double kSd = 0.6;
double data_mu(std::size_t i) {
    static const std::vector<double> mu = [] {
        std::vector<double> m(4096);
        for (std::size_t j = 0; j < m.size(); ++j) m[j] = 0.3 * std::sin(0.7 * double(j)) + 0.1;
        return m;
    }();
    return mu[i % mu.size()];
}

// The exact output of prediction p at level (a, s) for Gaussian data (D the posterior mean).
double gaussian_output(prediction p, const gmk::noise_level& l, double x, double mu) {
    const double a = l.alpha, s = l.sigma, k = a * kSd * kSd / (a * a * kSd * kSd + s * s);
    const double D = mu + k * (x - a * mu);
    const double eps = (x - a * D) / s;
    switch (p) {
        case prediction::epsilon: return eps;
        case prediction::sample: return D;
        case prediction::v: return a * eps - s * D;
        case prediction::flow_velocity: return eps - D;
    }
    return D;
}

// What the test model writes.
struct model_output {
    enum kind_t { gaussian, constant, alternating } kind = gaussian;
    double value = 0;     // constant: every element; alternating: +value or -value by element and step
    double variance = 0;  // the variance channel, when the sampler asks for one (learned_range)
};

// A model writing `what`; keeps its last prediction channel in *last.
template <class T>
auto test_model(prediction p, model_output what, std::vector<T>* last) {
    return gmk::make_model(p, [p, what, last](const T* x, T* out, const gmk::model_call& c) {
        const std::size_t ss = c.sample_size, os = c.output_sample_size();
        last->resize(c.size());
        for (std::size_t b = 0; b < c.batch; ++b)
            for (std::size_t j = 0; j < ss; ++j) {
                const std::size_t i = b * ss + j;
                double o = what.value;
                if (what.kind == model_output::gaussian) o = gaussian_output(p, c.level, double(x[i]), data_mu(i));
                else if (what.kind == model_output::alternating && (i + c.step) % 2 == 1) o = -what.value;
                out[b * os + j] = (*last)[i] = T(o);
                if (c.learned_variance) out[b * os + ss + j] = T(what.variance);
            }
    });
}

template <class T>
struct run_outcome {
    std::vector<T> x;
    bool non_finite = false;  // gmk::non_finite_error was thrown
    std::size_t step = 0;
    bool model_output_flag = false;
    std::string error;  // any other exception
};

// The n standard normals of step `step`, in double: the same numbers for float and double runs
// (and for the test's own chain).
std::vector<double> step_normals(std::size_t step, std::size_t n) {
    std::vector<double> z(n);
    gmk::random::normal_fill(gmk::random::philox_stream(2024, step), 0, z.data(), n);
    return z;
}
struct shared_noise {
    template <class T>
    void operator()(T* out, std::size_t n, const gmk::noise_request& r) const {
        const std::vector<double> z = step_normals(r.step, n);
        for (std::size_t i = 0; i < n; ++i) out[i] = T(z[i]);
    }
};

template <class B, class T, class Model>
GMK_TEST_NOINLINE run_outcome<T> run_sampler(const any_sampler& s, Model& model, const gmk::noise_grid& g,
                                             std::vector<T> x, std::size_t batch) {
    run_outcome<T> r;
    try {
        std::visit([&](const auto& sampler) {
            gmk::sample<B>(sampler, model, g, gmk::latent<T>(x.data(), batch, x.size() / batch), shared_noise{});
        }, s);
    } catch (const gmk::non_finite_error& e) {
        r.non_finite = true;
        r.step = e.step();
        r.model_output_flag = e.model_output();
    } catch (const std::exception& e) {
        r.error = e.what();
    }
    r.x = std::move(x);
    return r;
}

// x at the first level: a mu + sqrt(a^2 sd^2 + s^2) z, the exact marginal of the data; values
// of float, so that float and double runs start from the same x.
template <class T>
std::vector<T> initial_x(const gmk::noise_level& l, std::size_t n, std::uint64_t seed) {
    std::vector<double> z(n);
    gmk::random::normal_fill(gmk::random::philox_stream(seed, 1), 0, z.data(), n);
    std::vector<T> x(n);
    const double spread = std::sqrt(l.alpha * l.alpha * kSd * kSd + l.sigma * l.sigma);
    for (std::size_t i = 0; i < n; ++i) x[i] = T(float(l.alpha * data_mu(i) + spread * z[i]));
    return x;
}

template <class T>
bool all_finite(const std::vector<T>& x) {
    return std::all_of(x.begin(), x.end(), [](T v) { return std::isfinite(v); });
}

const char* prediction_label(prediction p) { return gmk::prediction_name(p); }

// Karras sigmas over 1e-4 .. 1e4 (then 0): VE, and a VP grid with the same noise-to-signal ratios.
constexpr std::size_t kSteps = 40;
const std::vector<double>& wide_sigmas() {
    static const std::vector<double> s = gmk::sigmas_karras(kSteps, 1e-4, 1e4);
    return s;
}
gmk::noise_grid wide_ve() { return gmk::noise_grid::ve(wide_sigmas()); }
gmk::noise_grid wide_vp() { return gmk::noise_grid::vp_sigmas(wide_sigmas(), wide_sigmas()); }

// S of eps_sum for the VE grid (long double).
long double eps_factor(eps_sum kind, const gmk::noise_grid& g) {
    const std::size_t N = g.steps();
    long double S = 0;
    for (std::size_t i = 0; i < N; ++i) {
        const long double s = g[i].sigma, sn = g[i + 1].sigma;
        switch (kind) {
            case eps_sum::ode: return g[0].sigma;
            case eps_sum::posterior: S += (s * s - sn * sn) / s; break;
            case eps_sum::pf_euler: S += i + 1 < N ? (s * s - sn * sn) / (2 * s) : s; break;
            case eps_sum::sigmas: S += s; break;
            case eps_sum::none: return 0;
        }
    }
    return S;
}

// The final x of `c` on a VE grid from x0, stepped in long double with the noise the run draws.
std::vector<long double> exact_chain(chain c, const gmk::noise_grid& g, const std::vector<double>& x0) {
    const std::size_t n = x0.size(), N = g.steps();
    const long double v = (long double)kSd * kSd;
    std::vector<long double> e(n);
    for (std::size_t i = 0; i < n; ++i) e[i] = x0[i] - data_mu(i);
    for (std::size_t step = 0; step < N; ++step) {
        const long double s = g[step].sigma, sn = g[step + 1].sigma, k = v / (v + s * s), kn = v / (v + sn * sn);
        long double gain = k, sd = 0;
        if (sn > 0) {
            const long double q = sn / s, g1 = q + (1 - q) * k;
            switch (c) {
                case chain::first_order: gain = g1; break;
                case chain::posterior: gain = q * q + (1 - q * q) * k; sd = sn * std::sqrt(s * s - sn * sn) / s; break;
                case chain::euler_maruyama: gain = q * q + (1 - q * q) * k; sd = std::sqrt(s * s - sn * sn); break;
                case chain::pf_euler: gain = 1 - (1 - k) * (s * s - sn * sn) / (2 * s * s); break;
                case chain::heun: gain = 1 + (sn - s) / 2 * ((1 - k) / s + g1 * (1 - kn) / sn); break;
                case chain::none: break;
            }
        }
        const std::vector<double> z = sd > 0 ? step_normals(step, n) : std::vector<double>(n, 0.0);
        for (std::size_t i = 0; i < n; ++i) e[i] = gain * e[i] + sd * z[i];
    }
    for (std::size_t i = 0; i < n; ++i) e[i] += data_mu(i);
    return e;
}

// One run on Gaussian data: the final x (empty, and logged, when the run failed or x is not finite).
template <class B, class T>
GMK_TEST_NOINLINE std::vector<double> gaussian_run(const sampler_case& sc, prediction p, const gmk::noise_grid& g,
                                                   const std::string& what, gt::mismatch_log& log) {
    constexpr std::size_t batch = 2, ss = 1024, n = batch * ss;
    std::vector<T> last;
    auto model = test_model<T>(p, {model_output::gaussian, 0, 0.3}, &last);
    const run_outcome<T> r = run_sampler<B, T>(sc.sampler, model, g, initial_x<T>(g[0], n, 3), batch);
    if (!r.error.empty() || r.non_finite || !all_finite(r.x)) {
        log.add(what, ": ", r.error.empty() ? (r.non_finite ? "non_finite_error" : "a non-finite x") : r.error.c_str(),
                r.non_finite ? " at step " + std::to_string(r.step) : std::string());
        return {};
    }
    return std::vector<double>(r.x.begin(), r.x.end());
}

// max_i |a_i - b_i| / sd
template <class U>
double deviation(const std::vector<double>& a, const std::vector<U>& b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])) / kSd);
    return worst;
}

template <class B, class T>
GMK_TEST_NOINLINE void huge_output(const sampler_case& sc, prediction p, model_output out, const gmk::noise_grid& g,
                                   const char* grid_name, bool ve, gt::mismatch_log& log) {
    constexpr std::size_t batch = 2, ss = 64, n = batch * ss;
    const std::string what = gt::label<B, T>() + " " + sc.name + " " + prediction_label(p) + " " + grid_name +
                             (out.kind == model_output::alternating ? " alternating " : " constant ") +
                             std::to_string(out.value);
    std::vector<T> last;
    auto model = test_model<T>(p, out, &last);
    const std::vector<T> x0 = initial_x<T>(g[0], n, 5);
    const run_outcome<T> r = run_sampler<B, T>(sc.sampler, model, g, x0, batch);
    // The exact answer is finite (see the top of the file): the run must finish with a finite x.
    if (!r.error.empty() || r.non_finite || !all_finite(r.x)) {
        log.add(what, ": ", r.error.empty() ? (r.non_finite ? "non_finite_error" : "a non-finite x") : r.error.c_str(),
                r.non_finite ? " at step " + std::to_string(r.step) : std::string());
        return;
    }
    if (p == prediction::sample) {
        // The last step (into sigma = 0) returns D, the model's output (clamped), exactly.
        for (std::size_t i = 0; i < n; ++i) {
            const T want = sc.clip > 0 ? std::min(std::max(last[i], T(-sc.clip)), T(sc.clip)) : last[i];
            if (!gt::same_bits(r.x[i], want)) {
                log.add(what, ": x[", i, "] = ", gt::show(r.x[i]), ", the last output (clamped) is ", gt::show(want));
                return;
            }
        }
    }
    if (p == prediction::epsilon && ve && out.kind == model_output::constant && sc.eps != eps_sum::none) {
        const long double c = out.value, S = eps_factor(sc.eps, g);
        const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
        for (std::size_t i = 0; i < n; ++i) {
            const long double want = (long double)x0[i] - c * S;
            const double rel = double(std::fabs((long double)r.x[i] - want) / std::fabs(c * S));
            if (!(rel <= tol)) {
                log.add(what, ": x[", i, "] = ", gt::show(r.x[i]), ", exact ", double(want), " (relative ", rel, ")");
                return;
            }
        }
    }
}

}  // namespace

TEST_CASE("extremes: every sampler over sigma 1e-4 .. 1e4 on Gaussian data", "[extremes][diffusion]") {
    // Every sampler, prediction and grid: finite throughout; float within 1e-4 sd of double on the
    // same path (the same start and noise: no precision lost at sigma 1e4, where x is 1e4 and D is
    // O(1), nor at 1e-4); on the VE grid, double within 1e-12 sd of the step recursion of the
    // samplers whose recursion is derived above (chain), noise included.
    gt::mismatch_log log;
    const gmk::noise_grid ve = wide_ve(), vp = wide_vp();
    REQUIRE(ve[0].sigma == Approx(1e4));
    REQUIRE(ve[kSteps - 1].sigma == Approx(1e-4));
    REQUIRE(vp[0].alpha == Approx(1e-4).epsilon(1e-6));
    const std::vector<double> x0 = initial_x<double>(ve[0], 2048, 3);
    double worst_float = 0, worst_chain = 0;
    for (const auto& sc : sampler_cases()) {
        const std::vector<long double> exact = sc.gauss == chain::none ? std::vector<long double>() : exact_chain(sc.gauss, ve, x0);
        for (prediction p : {prediction::epsilon, prediction::sample, prediction::v})
            for (const auto* grid : {&ve, &vp}) {
                const std::string what = std::string(sc.name) + " " + prediction_label(p) + (grid == &ve ? " VE" : " VP");
                const auto xf = gaussian_run<simd::native, float>(sc, p, *grid, "float " + what, log);
                const auto xd = gaussian_run<simd::native, double>(sc, p, *grid, "double " + what, log);
                if (xf.empty() || xd.empty()) continue;
                const double df = deviation(xf, xd);
                worst_float = std::max(worst_float, df);
                if (!(df <= 1e-4)) log.add(what, ": float is ", df, " sd from double");
                if (grid == &ve && !exact.empty()) {
                    const double dc = deviation(xd, exact);
                    worst_chain = std::max(worst_chain, dc);
                    if (!(dc <= 1e-12)) log.add(what, ": double is ", dc, " sd from the step recursion");
                }
            }
    }
    INFO("largest deviations: float from double " << worst_float << " sd, double from the recursion " << worst_chain << " sd");
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: every sampler with a model output of +-1e30 over sigma 1e-4 .. 1e4", "[extremes][diffusion]") {
    gt::mismatch_log log;
    const gmk::noise_grid ve = wide_ve(), vp = wide_vp();
    const model_output outputs[] = {{model_output::constant, 1e30, 0.3},
                                    {model_output::constant, -1e30, 0.3},
                                    {model_output::alternating, 1e30, -0.4}};
    for (const auto& sc : sampler_cases())
        for (prediction p : {prediction::epsilon, prediction::sample, prediction::v})
            for (const auto& out : outputs) {
                huge_output<simd::native, float>(sc, p, out, ve, "VE", true, log);
                huge_output<simd::native, double>(sc, p, out, ve, "VE", true, log);
                huge_output<simd::native, float>(sc, p, out, vp, "VP", false, log);
                huge_output<simd::scalar, float>(sc, p, out, ve, "VE", true, log);
            }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: updates that overflow are reported as non_finite_error; in double they are exact",
          "[extremes][diffusion]") {
    // A learned-range variance channel of +1e30: log std^2 = f log sigma_ts^2 + (1 - f) log small
    // with f = (v + 1) / 2 = 5e29 (the channel is meant to lie in [-1, 1]) extrapolates to std =
    // e^(about 1e29), which no format holds: step 0 must be reported, the model output being
    // finite. At -1e30 the same formula gives std = e^(-1e29), which rounds to 0: the run finishes
    // and a sample-prediction model's last output is the answer.
    const gmk::noise_grid ve = wide_ve();
    const gmk::ddpm learned{gmk::ddpm_variance::learned_range, gmk::x0_threshold::none()};
    const auto check_learned = [&](auto tag) {
        using T = typename decltype(tag)::type;
        INFO(gt::type_name<T>());
        std::vector<T> last;
        auto up = test_model<T>(prediction::sample, {model_output::constant, 0.5, 1e30}, &last);
        const auto r = run_sampler<simd::native, T>(learned, up, ve, initial_x<T>(ve[0], 128, 9), 2);
        CHECK(r.error.empty());
        CHECK(r.non_finite);
        CHECK(r.step == 0);
        CHECK_FALSE(r.model_output_flag);
        auto down = test_model<T>(prediction::sample, {model_output::constant, 0.5, -1e30}, &last);
        const auto d = run_sampler<simd::native, T>(learned, down, ve, initial_x<T>(ve[0], 128, 9), 2);
        CHECK(d.error.empty());
        CHECK_FALSE(d.non_finite);
        CHECK(std::all_of(d.x.begin(), d.x.end(), [](T v) { return v == T(0.5); }));
    };
    check_learned(gt::type_tag<float>{});
    check_learned(gt::type_tag<double>{});

    // An epsilon of 1e30 from sigma 1e10: the first step moves x by about -(s_0 - s_1) 1e30 = -3e39
    // (and D = x - s_0 1e30 = -1e40): beyond float, within double. Float reports step 0 and a
    // finite model output; double finishes at the ODE's answer x_0 - s_0 1e30.
    const gmk::noise_grid far = gmk::noise_grid::ve(gmk::sigmas_karras(20, 1e-4, 1e10));
    std::vector<float> lastf;
    auto eps_f = test_model<float>(prediction::epsilon, {model_output::constant, 1e30, 0}, &lastf);
    const auto rf = run_sampler<simd::native, float>(gmk::euler{}, eps_f, far, initial_x<float>(far[0], 128, 10), 2);
    CHECK(rf.error.empty());
    CHECK(rf.non_finite);
    CHECK(rf.step == 0);
    CHECK_FALSE(rf.model_output_flag);
    std::vector<double> lastd;
    auto eps_d = test_model<double>(prediction::epsilon, {model_output::constant, 1e30, 0}, &lastd);
    const std::vector<double> x0 = initial_x<double>(far[0], 128, 10);
    // Euler and DPM-Solver++(2M) telescope to rounding. Heun's corrector weighs the second
    // evaluation by dt / (2 s'), and D2 = x2 - s' 1e30 is rounded to eps |x2| = 1e24 before it: on
    // this grid's step from 35.6 to 1e-4 that is 1.8e5 times 1e24, 3e-12 of x (k-diffusion's
    // (x2 - D2) / s' loses the same: the denoised form holds x - D only to eps |x|).
    const auto heun_bound = [&] {
        double r = 0;
        for (std::size_t i = 0; i + 2 < far.size(); ++i) r = std::max(r, far[i].sigma / far[i + 1].sigma);
        return 2 * std::numeric_limits<double>::epsilon() * r;
    }();
    const std::pair<any_sampler, double> runs[] = {
        {gmk::euler{}, 1e-14}, {gmk::dpmpp_2m{}, 1e-14}, {gmk::heun{}, heun_bound}};
    for (const auto& [s, bound] : runs) {
        const auto rd = run_sampler<simd::native, double>(s, eps_d, far, x0, 2);
        CHECK(rd.error.empty());
        CHECK_FALSE(rd.non_finite);
        double worst = 0;
        for (std::size_t i = 0; i < x0.size(); ++i)
            worst = std::max(worst, std::fabs(rd.x[i] - (x0[i] - far[0].sigma * 1e30)) / 1e40);
        INFO(std::visit([](const auto& smp) { return std::string(smp.name); }, s));
        CHECK(worst <= bound);
    }
}

// =============================================================================================
// attention
// =============================================================================================

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// A problem with a dense bias [batch, heads_q, seq_q, seq_k] (-inf where masked), in compute type T.
template <class T>
struct attention_problem {
    gmk::attention_shape s;
    std::vector<T> q, k, v, bias;
    double scale = 0, softcap = 0;
    std::size_t rows() const { return s.batch * s.heads_q * s.seq_q; }

    attention_problem(const gmk::attention_shape& shape, double amplitude, std::uint64_t seed) : s(shape) {
        gt::rng r(seed);
        q.resize(s.batch * s.heads_q * s.seq_q * s.head_dim);
        k.resize(s.batch * s.heads_kv * s.seq_k * s.head_dim);
        v.resize(k.size());
        for (auto& x : q) x = T(amplitude * r.uniform(-1, 1));
        for (auto& x : k) x = T(amplitude * r.uniform(-1, 1));
        for (auto& x : v) x = T(r.uniform(-1, 1));
        bias.assign(rows() * s.seq_k, T(0));
    }
    gmk::attention_params<T> params() const {
        gmk::attention_params<T> p;
        p.exec = gmk::executor::serial();  // threads are tests/determinism.cpp's subject
        p.scale = scale;
        p.softcap = softcap;
        p.bias = bias.data();
        p.bias_strides = gmk::attention_bias_strides::dense(s.heads_q, s.seq_q, s.seq_k);
        return p;
    }
};

struct attention_reference {
    std::vector<double> o, lse, mag, size;  // size: per row, the largest scale sum |q k| + |bias| over finite scores
};

// The naive computation in double, from the definitions in flash_attention.hpp.
template <class T>
attention_reference reference(const attention_problem<T>& pb) {
    const auto& s = pb.s;
    const std::size_t d = s.head_dim, g = s.heads_q / s.heads_kv;
    const double scale = pb.scale != 0 ? pb.scale : 1 / std::sqrt(double(d));
    attention_reference ref;
    ref.o.assign(pb.q.size(), 0.0);
    ref.lse.assign(pb.rows(), -inf);
    ref.mag.assign(pb.rows(), 0.0);
    ref.size.assign(pb.rows(), 0.0);
    std::vector<double> sc(s.seq_k);
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_q; ++h)
            for (std::size_t i = 0; i < s.seq_q; ++i) {
                const std::size_t row = (b * s.heads_q + h) * s.seq_q + i;
                const T* qr = pb.q.data() + row * d;
                double m = -inf;
                for (std::size_t j = 0; j < s.seq_k; ++j) {
                    const std::size_t kv = ((b * s.heads_kv + h / g) * s.seq_k + j) * d;
                    double dot = 0, abs_dot = 0;
                    for (std::size_t x = 0; x < d; ++x) {
                        dot += double(qr[x]) * double(pb.k[kv + x]);
                        abs_dot += std::fabs(double(qr[x]) * double(pb.k[kv + x]));
                    }
                    double v = scale * dot;
                    if (pb.softcap > 0) v = pb.softcap * std::tanh(v / pb.softcap);
                    const double bj = double(pb.bias[row * s.seq_k + j]);
                    v += bj;
                    sc[j] = v;
                    m = std::max(m, v);
                    if (std::isfinite(v)) ref.size[row] = std::max(ref.size[row], scale * abs_dot + std::fabs(bj));
                }
                if (m == -inf) continue;  // fully masked: O = 0, lse = -inf
                double l = 0;
                for (double& x : sc) l += (x = std::exp(x - m));
                for (std::size_t x = 0; x < d; ++x) {
                    double acc = 0, mag = 0;
                    for (std::size_t j = 0; j < s.seq_k; ++j) {
                        const double vj = double(pb.v[((b * s.heads_kv + h / g) * s.seq_k + j) * d + x]);
                        acc += sc[j] * vj;
                        mag += sc[j] * std::fabs(vj);
                    }
                    ref.o[row * d + x] = acc / l;
                    ref.mag[row] = std::max(ref.mag[row], mag / l);
                }
                ref.lse[row] = m + std::log(l);
            }
    return ref;
}

// Per row: fully masked rows exactly O = 0 and lse = -inf; others finite, within
// tol + size_rel * size of the reference (relative to the row's magnitude), lse likewise.
template <class T>
void compare(const std::vector<T>& o, const std::vector<T>& lse, const attention_reference& ref, std::size_t d,
             double tol, double size_rel, const std::string& what, gt::mismatch_log& log) {
    for (std::size_t row = 0; row < ref.lse.size(); ++row) {
        if (ref.lse[row] == -inf) {
            bool zero = lse[row] == -std::numeric_limits<T>::infinity();
            for (std::size_t x = 0; x < d; ++x) zero = zero && o[row * d + x] == T(0);
            if (!zero) log.add(what, " row ", row, ": fully masked, o[0] = ", gt::show(o[row * d]), ", lse = ", gt::show(lse[row]));
            continue;
        }
        double err = 0;
        bool finite = std::isfinite(lse[row]);
        for (std::size_t x = 0; x < d; ++x) {
            finite = finite && std::isfinite(o[row * d + x]);
            err = std::max(err, std::fabs(double(o[row * d + x]) - ref.o[row * d + x]));
        }
        if (!finite) {
            log.add(what, " row ", row, ": non-finite output (o[0] = ", gt::show(o[row * d]), ", lse = ", gt::show(lse[row]), ")");
            continue;
        }
        const double bound = tol + size_rel * ref.size[row];
        if (!(err / ref.mag[row] <= bound)) log.add(what, " row ", row, ": relative error ", err / ref.mag[row], " > ", bound);
        const double le = std::fabs(double(lse[row]) - ref.lse[row]) / std::max(1.0, std::fabs(ref.lse[row]));
        if (!(le <= bound)) log.add(what, " row ", row, ": lse ", double(lse[row]), ", expected ", ref.lse[row]);
    }
}

template <class B, class T>
std::pair<std::vector<T>, std::vector<T>> run_attention(const attention_problem<T>& pb) {
    std::vector<T> o(pb.q.size(), T(12345)), lse(pb.rows(), T(12345));
    gmk::flash_attention<B>(pb.q.data(), pb.k.data(), pb.v.data(), o.data(), lse.data(), pb.s, pb.params());
    return {o, lse};
}

// Row patterns of the bias, by row index (the kernels see -inf, -1e4 and +1e4 in every position
// of a key block and across blocks):
//   0  every key -inf                                  O = 0, lse = -inf (never NaN)
//   1  one key finite, with bias -1e4                  O = v_j, lse = score_j - 1e4
//   2  the first half -inf, then +1e4 on every 7th key, 0 elsewhere
//   3  +1e4, -1e4, -inf repeating
//   4  +1e4 on the first tenth, -1e4 after (the maximum comes first)
//   5  -1e4 everywhere but +1e4 on the last key (the running maximum jumps at the end; the earlier
//      sums are rescaled by e^-2e4 = 0)
//   6  -1e4 everywhere (a uniform shift: the softmax of the plain scores)
//   7  the plain scores
// The only-key position of pattern 1, per row.
std::size_t only_key(std::size_t row, std::size_t seq_k) { return (row * 37 + 11) % seq_k; }

template <class T>
void bias_patterns(attention_problem<T>& pb) {
    const std::size_t nk = pb.s.seq_k;
    const T big = T(1e4), ninf = -std::numeric_limits<T>::infinity();
    for (std::size_t row = 0; row < pb.rows(); ++row) {
        T* b = pb.bias.data() + row * nk;
        for (std::size_t j = 0; j < nk; ++j) {
            switch (row % 8) {
                case 0: b[j] = ninf; break;
                case 1: b[j] = j == only_key(row, nk) ? -big : ninf; break;
                case 2: b[j] = j < nk / 2 ? ninf : (j % 7 == 0 ? big : T(0)); break;
                case 3: b[j] = j % 3 == 0 ? big : j % 3 == 1 ? -big : ninf; break;
                case 4: b[j] = j < nk / 10 ? big : -big; break;
                case 5: b[j] = j + 1 == nk ? big : -big; break;
                case 6: b[j] = -big; break;
                default: b[j] = T(0); break;
            }
        }
    }
}

template <class T>
GMK_TEST_NOINLINE void masked_and_huge(const gmk::attention_shape& shape, const char* name, gt::mismatch_log& log) {
    attention_problem<T> pb(shape, 1.0, shape.seq_k * 31 + shape.seq_q);
    bias_patterns(pb);
    const attention_reference ref = reference(pb);
    const bool is_float = std::is_same_v<T, float>;
    const std::size_t d = shape.head_dim, g = shape.heads_q / shape.heads_kv;
    gt::for_each_backend([&](auto backend) {
        using B = decltype(backend);
        const auto [o, lse] = run_attention<B>(pb);
        const std::string what = gt::label<B, T>() + " " + name;
        // Scores of magnitude M carry a rounding of about 2^-24 M in float (2^-53 M in double),
        // which the softmax passes on (flash_attention.hpp): the bound grows with the row's scores.
        compare(o, lse, ref, d, is_float ? 2e-6 : 1e-13, is_float ? 0x1p-22 : 0x1p-51, what, log);
        // Pattern 1: the one key gets all the weight, the -inf keys none.
        for (std::size_t row = 1; row < pb.rows(); row += 8) {
            const std::size_t h = row / shape.seq_q % shape.heads_q, b = row / (shape.seq_q * shape.heads_q);
            const T* vj = pb.v.data() + ((b * shape.heads_kv + h / g) * shape.seq_k + only_key(row, shape.seq_k)) * d;
            for (std::size_t x = 0; x < d; ++x)
                if (!(std::fabs(o[row * d + x] - vj[x]) <= 4 * std::numeric_limits<T>::epsilon() * std::fabs(vj[x]))) {
                    log.add(what, " row ", row, ": the only key's value ", gt::show(vj[x]), ", got ", gt::show(o[row * d + x]));
                    break;
                }
        }
    });
}

template <class T>
GMK_TEST_NOINLINE void softcapped_huge_logits(const gmk::attention_shape& shape, double cap, const char* name,
                                              gt::mismatch_log& log) {
    // q, k of magnitude 50, scale 1, head_dim 16: raw scores up to about +-1e4, soft-capped to
    // +-cap (tanh saturates: the largest scores tie at the cap); every 5th row masked entirely by
    // the bias, and every 3rd key of the others.
    attention_problem<T> pb(shape, 50.0, shape.seq_k + 7);
    pb.scale = 1;
    pb.softcap = cap;
    for (std::size_t row = 0; row < pb.rows(); ++row)
        for (std::size_t j = 0; j < shape.seq_k; ++j)
            if (row % 5 == 0 || j % 3 == 0) pb.bias[row * shape.seq_k + j] = -std::numeric_limits<T>::infinity();
    const attention_reference ref = reference(pb);
    double largest = 0;
    for (double sz : ref.size) largest = std::max(largest, sz);
    if (!(largest > 5e3)) log.add(name, ": the raw scores reach only ", largest);  // as large as intended
    const bool is_float = std::is_same_v<T, float>;
    gt::for_each_backend([&](auto backend) {
        using B = decltype(backend);
        const auto [o, lse] = run_attention<B>(pb);
        compare(o, lse, ref, shape.head_dim, is_float ? 2e-6 : 1e-13, is_float ? 0x1p-22 : 0x1p-51,
                gt::label<B, T>() + " " + name + " softcap " + std::to_string(cap), log);
    });
}

}  // namespace

TEST_CASE("extremes: attention with -inf bias masks and +-1e4 logits in every kernel", "[extremes][attention]") {
    // wide: 140 query rows per kv head; narrow: 10; decoding: 4 rows (one position, 4 heads per kv
    // head) over 300 keys, and over 2500 keys split in 4 (the partial results of a row merge by
    // log-sum-exp, and some splits of a row see no key at all).
    const struct {
        gmk::attention_shape shape;
        const char* name;
    } shapes[] = {{{1, 2, 1, 70, 260, 64}, "wide"},
                  {{2, 4, 2, 5, 300, 32}, "narrow"},
                  {{2, 4, 1, 1, 300, 64}, "decoding"},
                  {{2, 4, 1, 1, 2500, 64}, "decoding split-KV"}};
    gt::mismatch_log log;
    for (const auto& s : shapes) {
        masked_and_huge<float>(s.shape, s.name, log);
        masked_and_huge<double>(s.shape, s.name, log);
    }
    for (double cap : {30.0, 50.0}) {
        softcapped_huge_logits<float>({1, 2, 1, 40, 150, 16}, cap, "wide", log);
        softcapped_huge_logits<float>({2, 4, 1, 1, 2100, 16}, cap, "decoding split-KV", log);
        softcapped_huge_logits<double>({1, 2, 1, 40, 150, 16}, cap, "wide", log);
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: softmax_rows and log_sum_exp over -inf rows, one-hot rows and ties at +-1e4", "[extremes][attention]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            const std::string at = gt::label<B, T>();
            const T ninf = -std::numeric_limits<T>::infinity(), big = T(1e4);
            const std::size_t cols = 37, rows = 4;
            std::vector<T> x(rows * cols);
            for (std::size_t j = 0; j < cols; ++j) {
                x[0 * cols + j] = ninf;                                  // masked row
                x[1 * cols + j] = j == 7 ? -big : ninf;                  // one finite entry, at -1e4
                x[2 * cols + j] = j % 5 == 1 ? big : -big;               // 7 tied maxima, the rest 2e4 below
                x[3 * cols + j] = j % 4 == 0 ? ninf : j % 3 ? big : -big;  // ties at 1e4 among -inf and -1e4
            }
            std::vector<T> y(rows * cols, T(9));
            gmk::softmax_rows<B>(gmk::matrix_view<const T>(x.data(), rows, cols), gmk::matrix_view<T>(y.data(), rows, cols),
                                 gmk::executor::serial());
            for (std::size_t r = 0; r < rows; ++r) {
                std::size_t ties = 0;
                for (std::size_t j = 0; j < cols; ++j) ties += x[r * cols + j] == big;
                for (std::size_t j = 0; j < cols; ++j) {
                    const T xi = x[r * cols + j], yi = y[r * cols + j];
                    // e^-2e4 and e^-inf are 0 (correctly rounded); the tied maxima share the weight.
                    T want = T(0);
                    if (r == 1 && j == 7) want = T(1);
                    else if (ties > 0 && xi == big) want = T(1) / T(ties);
                    const bool ok = want == T(0) ? gt::same_bits(yi, T(0))
                                                 : std::fabs(yi - want) <= 2 * std::numeric_limits<T>::epsilon() * want;
                    if (!ok) log.add(at, " row ", r, " column ", j, ": ", gt::show(yi), ", expected ", gt::show(want));
                }
                const T lse = gmk::log_sum_exp<B>(x.data() + r * cols, cols);
                const T want = r == 0 ? ninf : r == 1 ? -big : big + T(std::log(double(ties)));
                const bool ok = r == 0 ? lse == ninf : std::fabs(lse - want) <= 2 * std::numeric_limits<T>::epsilon() * big;
                if (!ok) log.add(at, " row ", r, ": log_sum_exp ", gt::show(lse), ", expected ", gt::show(want));
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// =============================================================================================
// sliding windows
// =============================================================================================

namespace {

template <class T>
using lim = std::numeric_limits<T>;
using gmk::nan_policy;
using gmk::window_mode;
using gt::naive_arg;
using gt::naive_extremum;
using gt::same_extremum;

std::vector<std::size_t> windows(std::size_t n) {
    std::vector<std::size_t> ks;
    for (std::size_t k : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 149})
        if (k <= n) ks.push_back(k);
    ks.push_back(n);
    std::sort(ks.begin(), ks.end());
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    return ks;
}

// One input: every k, both modes, both policies, max and min on every backend against the naive
// reference (computed once), the index forms as well. For a row of one value c (`constant`) the
// reference is in closed form and exact: every window gives c, bit for bit (the sign of a zero
// included: a window of -0 alone holds no +0), at the window's first index.
template <class T>
GMK_TEST_NOINLINE void check_window_input(const std::vector<T>& x, const std::string& what, const T* constant,
                                          gt::mismatch_log& log) {
    const bool exact = constant != nullptr;
    const std::size_t n = x.size();
    for (std::size_t k : windows(n))
        for (const window_mode mode : {window_mode::valid, window_mode::trailing})
            for (const nan_policy nan : {nan_policy::propagate, nan_policy::ignore}) {
                const std::size_t m = mode == window_mode::valid ? n - k + 1 : n;
                std::vector<T> hi(m), lo(m);
                std::vector<std::size_t> ahi(m), alo(m);
                for (std::size_t j = 0; j < m; ++j) {
                    const std::size_t e = mode == window_mode::valid ? j + k - 1 : j, a = e + 1 >= k ? e + 1 - k : 0;
                    if (constant) {
                        hi[j] = lo[j] = *constant;
                        ahi[j] = alo[j] = a;
                        continue;
                    }
                    hi[j] = naive_extremum<true>(x.data(), a, e, nan);
                    lo[j] = naive_extremum<false>(x.data(), a, e, nan);
                    ahi[j] = naive_arg<true>(x.data(), a, e, nan);
                    alo[j] = naive_arg<false>(x.data(), a, e, nan);
                }
                const std::string config = what + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                                           (mode == window_mode::valid ? " valid" : " trailing") +
                                           (nan == nan_policy::ignore ? " ignore" : " propagate");
                gt::for_each_backend([&](auto b) {
                    using B = decltype(b);
                    std::vector<T> gh(m + 2, T(42)), gl(m + 2, T(42));
                    gmk::sliding_max<B>(x.data(), n, k, gh.data(), m, mode, nan);
                    gmk::sliding_min<B>(x.data(), n, k, gl.data(), m, mode, nan);
                    for (std::size_t j = 0; j < m; ++j) {
                        const bool ok = exact ? gt::same_value(gh[j], hi[j]) && gt::same_value(gl[j], lo[j])
                                              : same_extremum(gh[j], hi[j]) && same_extremum(gl[j], lo[j]);
                        if (!ok) {
                            log.add(gt::label<B, T>(), " ", config, " j=", j, ": max ", gt::show(gh[j]), " min ",
                                    gt::show(gl[j]), ", expected ", gt::show(hi[j]), " and ", gt::show(lo[j]));
                            return;
                        }
                    }
                    if (!(gh[m] == T(42) && gh[m + 1] == T(42) && gl[m] == T(42) && gl[m + 1] == T(42)))
                        log.add(gt::label<B, T>(), " ", config, ": wrote past the outputs");
                });
                std::vector<std::size_t> gah(m), gal(m);
                gmk::sliding_argmax(x.data(), n, k, gah.data(), m, mode, nan);
                gmk::sliding_argmin(x.data(), n, k, gal.data(), m, mode, nan);
                if (gah != ahi || gal != alo) log.add(gt::type_name<T>(), " ", config, ": argmax/argmin differ from the reference");
                if constexpr (!std::is_floating_point_v<T>) break;  // no NaN policy for integers
            }
}

template <class T>
GMK_TEST_NOINLINE void all_equal_rows(gt::mismatch_log& log) {
    std::vector<T> values = {T(0), lim<T>::max(), lim<T>::lowest()};
    if constexpr (std::is_floating_point_v<T>) {
        const T more[] = {-T(0), T(1.5), lim<T>::infinity(), -lim<T>::infinity(), lim<T>::denorm_min(),
                          -lim<T>::denorm_min(), lim<T>::min()};
        values.insert(values.end(), std::begin(more), std::end(more));
    } else {
        values.push_back(T(-1));
    }
    for (T c : values)
        for (std::size_t n : {std::size_t(150), std::size_t(1000)})
            check_window_input(std::vector<T>(n, c), std::string("all ") + gt::show(c), &c, log);
}

template <class T>
GMK_TEST_NOINLINE void alternating_rows(gt::mismatch_log& log) {
    struct pair_pattern {
        const char* name;
        T a, b;
    };
    std::vector<pair_pattern> pairs = {{"min/max", lim<T>::lowest(), lim<T>::max()}, {"0/-1", T(0), T(-1)},
                                       {"1/-1", T(1), T(-1)}};
    if constexpr (std::is_floating_point_v<T>) {
        const T nan = lim<T>::quiet_NaN(), infty = lim<T>::infinity();
        const pair_pattern more[] = {{"+inf/-inf", infty, -infty}, {"NaN/1", nan, T(1)},    {"1/NaN", T(1), nan},
                                     {"NaN/-inf", nan, -infty},    {"+0/-0", T(0), -T(0)}, {"-NaN/NaN", -nan, nan}};
        pairs.insert(pairs.end(), std::begin(more), std::end(more));
    }
    for (const auto& p : pairs) {
        // Period 2, and blocks of 4, 8, 16 and 17 equal values (as wide as the vectors of every
        // backend, and one more).
        for (std::size_t block : {1, 4, 8, 16, 17}) {
            std::vector<T> x(150);
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i / block) % 2 ? p.b : p.a;
            check_window_input(x, std::string("alternating ") + p.name + " blocks of " + std::to_string(block), static_cast<const T*>(nullptr), log);
        }
    }
}

template <class T>
GMK_TEST_NOINLINE void all_nan_rows(gt::mismatch_log& log) {
    const T nan = lim<T>::quiet_NaN();
    check_window_input(std::vector<T>(150, nan), "all NaN", static_cast<const T*>(nullptr), log);
    check_window_input(std::vector<T>(150, -nan), "all -NaN", static_cast<const T*>(nullptr), log);
    // The row form: every window NaN, every index the window's first.
    const std::size_t rows = 40, n = 1000;
    std::vector<T> x(rows * n);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 3) ? nan : -nan;
    const gmk::matrix_view<const T> xv(x.data(), rows, n);
    for (std::size_t k : {std::size_t(1), std::size_t(16), std::size_t(333)})
        for (const window_mode mode : {window_mode::valid, window_mode::trailing})
            for (const nan_policy policy : {nan_policy::propagate, nan_policy::ignore}) {
                const std::size_t m = mode == window_mode::valid ? n - k + 1 : n;
                std::vector<T> hi(rows * m, T(0)), lo(rows * m, T(0));
                std::vector<std::size_t> ahi(rows * m, 7), alo(rows * m, 7);
                const gmk::executor exec = gmk::executor::serial();
                gmk::sliding_max(xv, k, gmk::matrix_view<T>(hi.data(), rows, m), mode, policy, exec);
                gmk::sliding_min(xv, k, gmk::matrix_view<T>(lo.data(), rows, m), mode, policy, exec);
                gmk::sliding_argmax(xv, k, gmk::matrix_view<std::size_t>(ahi.data(), rows, m), mode, policy, exec);
                gmk::sliding_argmin(xv, k, gmk::matrix_view<std::size_t>(alo.data(), rows, m), mode, policy, exec);
                for (std::size_t i = 0; i < rows * m; ++i) {
                    const std::size_t j = i % m, first = mode == window_mode::valid ? j : (j + 1 >= k ? j + 1 - k : 0);
                    if (!(gt::is_nan(hi[i]) && gt::is_nan(lo[i]) && ahi[i] == first && alo[i] == first)) {
                        log.add(gt::type_name<T>(), " all-NaN rows k=", k, mode == window_mode::valid ? " valid" : " trailing",
                                policy == nan_policy::ignore ? " ignore" : " propagate", " output ", i, ": ", gt::show(hi[i]),
                                " / ", gt::show(lo[i]), " at ", ahi[i], " / ", alo[i], ", expected NaN at ", first);
                        break;
                    }
                }
            }
}

// The streaming filters, push by push, against the batch trailing windows; ties are kept, so
// an all-equal stream fills the ring, which must stay within the window.
template <class T>
void streams(const std::vector<T>& x, const char* what, gt::mismatch_log& log) {
    for (std::size_t k : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(8), std::size_t(17), x.size()})
        gt::check_stream(x, k, what, log);
}

template <class T>
GMK_TEST_NOINLINE void deque_streams(gt::mismatch_log& log) {
    const std::size_t n = 200;
    streams(std::vector<T>(n, T(3)), "all equal", log);
    streams(std::vector<T>(n, lim<T>::lowest()), "all lowest", log);
    std::vector<T> alt(n), ends(n), blocks(n);
    for (std::size_t i = 0; i < n; ++i) {
        alt[i] = i % 2 ? T(1) : T(-1);
        ends[i] = i % 2 ? lim<T>::max() : lim<T>::lowest();
        blocks[i] = (i / 5) % 2 ? T(2) : T(-2);
    }
    streams(alt, "alternating 1/-1", log);
    streams(ends, "alternating lowest/max", log);
    streams(blocks, "alternating blocks of 5", log);
}

}  // namespace

TEST_CASE("extremes: sliding windows over all-equal rows give that value and the window's first index",
          "[extremes][window]") {
    gt::mismatch_log log;
    all_equal_rows<float>(log);
    all_equal_rows<double>(log);
    all_equal_rows<std::int32_t>(log);
    all_equal_rows<std::int64_t>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: sliding windows over alternating rows equal the naive reference", "[extremes][window]") {
    gt::mismatch_log log;
    alternating_rows<float>(log);
    alternating_rows<double>(log);
    alternating_rows<std::int32_t>(log);
    alternating_rows<std::int64_t>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: sliding windows over all-NaN rows give NaN and the window's first index", "[extremes][window]") {
    gt::mismatch_log log;
    all_nan_rows<float>(log);
    all_nan_rows<double>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("extremes: streaming deques over all-equal and alternating streams", "[extremes][window]") {
    gt::mismatch_log log;
    deque_streams<float>(log);
    deque_streams<double>(log);
    deque_streams<std::int32_t>(log);
    deque_streams<std::int64_t>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}
