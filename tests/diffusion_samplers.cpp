// Tests of gmk/diffusion/samplers.hpp, sample.hpp, model.hpp and guidance.hpp.
//
//   - golden trajectories: every case of tests/golden/samplers.txt (diffusers' schedulers and
//     k-diffusion's samplers run by tests/golden/samplers.py on an analytic Gaussian model with
//     recorded noise) is re-run through gmk::sample with the same model, grid and noise, on every
//     backend, in float and double: the final sample agrees to 1e-5 (float) and 1e-10 (double)
//     relative to the largest element, the model is called as often, and the noise is drawn as
//     often (or, where the reference draws once more on its last step without using it, once
//     less); with torch_cpu_generator the k-diffusion draws are the reference's own;
//   - convergence order of the deterministic samplers on the probability-flow ODE of Gaussian
//     data, whose solution is known in closed form;
//   - the stochastic samplers reproduce a 2-D Gaussian mixture (moments and an energy distance),
//     and a wrong sampler (noise scaled by 1.3) fails the same test;
//   - the loop: progress and early stop, image-to-image, no allocation inside sample(), NaN from
//     the model reported with its step, bad input;
//   - guidance: classifier-free guidance and its rescale against hand-computed values and
//     diffusers' rescale_noise_cfg, the guided-model adaptor, classifier guidance.
#include <gmk/diffusion/guidance.hpp>
#include <gmk/diffusion/model.hpp>
#include <gmk/diffusion/sample.hpp>
#include <gmk/diffusion/samplers.hpp>
#include <gmk/random/noise.hpp>
#include <gmk/random/torch_cpu.hpp>
#include <gmk/schedules/betas.hpp>
#include <gmk/schedules/sigmas.hpp>
#include <gmk/schedules/timesteps.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace gt = gmk_test;
using gmk::prediction;

// ---- allocation counting (this test binary's operator new) ----------------------------------

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// GCC inlines these into std::allocator and then sees free() of a pointer from operator new: the
// pair is consistent (both go through malloc), so the warning does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
    ++g_allocations;
    const std::size_t a = std::size_t(align);
    if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a + (size ? 0 : a))) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) { return operator new(size, align); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

// ---- the analytic Gaussian model of tests/golden/samplers.py ---------------------------------

constexpr std::size_t kBatch = 2, kSample = 48, kN = kBatch * kSample;
constexpr double kSd = 0.6;

double golden_mu(std::size_t i) { return 0.3 * std::sin(0.7 * double(i)) + 0.1; }

// The model output of prediction p at `level` for x (the golden script's formulas, in double).
template <class T>
void gaussian_output(prediction p, const gmk::noise_level& l, const T* x, T* out, std::size_t n, std::size_t ss,
                     bool learned_variance, double sd, double (*mu)(std::size_t)) {
    const double a = l.alpha, s = l.sigma, k = a * sd * sd / (a * a * sd * sd + s * s);
    for (std::size_t i = 0; i < n; ++i) {
        const double xi = double(x[i]), m = mu(i);
        const double D = m + k * (xi - a * m);
        const double eps = (xi - a * D) / s;
        double o = D;
        switch (p) {
            case prediction::epsilon: o = eps; break;
            case prediction::sample: o = D; break;
            case prediction::v: o = a * eps - s * D; break;
            case prediction::flow_velocity: o = eps - D; break;
        }
        if (learned_variance) {
            const std::size_t b = i / ss, j = i % ss;
            out[b * 2 * ss + j] = T(o);
            out[b * 2 * ss + ss + j] = T(0.8 * std::tanh(xi));
        } else {
            out[i] = T(o);
        }
    }
}

template <class T>
auto golden_model(prediction p) {
    return gmk::make_model(p, [p](const T* x, T* out, const gmk::model_call& c) {
        gaussian_output(p, c.level, x, out, c.size(), c.sample_size, c.learned_variance, kSd, golden_mu);
    });
}

// Noise from a recorded table, in order; counts the draws.
template <class T>
struct table_noise {
    const std::vector<T>* table;
    std::size_t draws = 0;
    template <class U>
    void operator()(U* out, std::size_t n, const gmk::noise_request&) {
        static_assert(std::is_same_v<U, T>, "table_noise: dtype");
        if ((draws + 1) * n > table->size()) throw std::runtime_error("table_noise: more draws than recorded");
        std::copy_n(table->data() + draws * n, n, out);
        ++draws;
    }
};

// ---- golden cases ---------------------------------------------------------------------------

using any_sampler = std::variant<gmk::ddpm, gmk::ddim, gmk::euler, gmk::euler_ancestral, gmk::heun, gmk::flow_heun,
                                 gmk::flow_euler, gmk::dpmpp_2m, gmk::dpmpp_2m_sde>;

struct golden_sampler_case {
    const char* name;
    prediction predicts;
    any_sampler sampler;
    bool reference_draws_on_last_step;  // diffusers: one unused draw more than gmk makes
};

gmk::churn churn_of(double s_churn, double s_tmin, double s_tmax, double s_noise, bool draw_unused) {
    gmk::churn c;
    c.s_churn = s_churn;
    c.s_tmin = s_tmin;
    c.s_tmax = s_tmax;
    c.s_noise = s_noise;
    c.draw_unused_noise = draw_unused;
    return c;
}
gmk::euler euler_with(const gmk::churn& c) {
    gmk::euler e;
    static_cast<gmk::churn&>(e) = c;
    return e;
}
gmk::heun heun_with(const gmk::churn& c) {
    gmk::heun h;
    static_cast<gmk::churn&>(h) = c;
    return h;
}
gmk::dpmpp_2m_sde sde(double eta, gmk::dpm_solver_type solver) {
    gmk::dpmpp_2m_sde s;
    s.eta = eta;
    s.solver = solver;
    return s;
}
gmk::dpmpp_2m dpm2m(gmk::dpm_solver_type solver = gmk::dpm_solver_type::midpoint, bool euler_at_final = false) {
    gmk::dpmpp_2m s;
    s.solver = solver;
    s.euler_at_final = euler_at_final;
    return s;
}
gmk::euler_ancestral ancestral(double eta) {
    gmk::euler_ancestral s;
    s.eta = eta;
    return s;
}

std::vector<golden_sampler_case> golden_sampler_cases() {
    using gmk::x0_threshold;
    using S = gmk::dpm_solver_type;
    const double inf = std::numeric_limits<double>::infinity();
    return {
        {"kd.euler", prediction::sample, euler_with(churn_of(0, 0, inf, 1, true)), false},
        {"kd.euler_churn", prediction::sample, euler_with(churn_of(2, 0.05, 10, 1.003, true)), false},
        {"kd.euler_ancestral", prediction::sample, ancestral(1), false},
        {"kd.euler_ancestral_eta0.5", prediction::sample, ancestral(0.5), false},
        {"kd.heun", prediction::sample, heun_with(churn_of(0, 0, inf, 1, true)), false},
        {"kd.heun_edm", prediction::sample, heun_with(churn_of(40, 0.05, 50, 1.003, true)), false},
        {"kd.dpmpp_2m", prediction::sample, dpm2m(), false},
        {"kd.dpmpp_2m_sde", prediction::sample, sde(1, S::midpoint), false},
        {"kd.dpmpp_2m_sde_heun", prediction::sample, sde(1, S::heun), false},
        {"kd.dpmpp_2m_sde_eta0.5", prediction::sample, sde(0.5, S::midpoint), false},
        {"df.ddpm_fixed_small", prediction::epsilon, gmk::ddpm{gmk::ddpm_variance::fixed_small, x0_threshold::clip(1)}, false},
        {"df.ddpm_fixed_large_v", prediction::v, gmk::ddpm{gmk::ddpm_variance::fixed_large, x0_threshold::none()}, false},
        {"df.ddpm_learned_range", prediction::epsilon, gmk::ddpm{gmk::ddpm_variance::learned_range, x0_threshold::clip(1)}, false},
        {"df.ddpm_threshold", prediction::sample, gmk::ddpm{gmk::ddpm_variance::fixed_small, x0_threshold::dynamic(0.995, 1.5)}, false},
        {"df.ddim_eta0", prediction::epsilon, gmk::ddim{0, x0_threshold::none()}, false},
        {"df.ddim_eta0.5_v", prediction::v, gmk::ddim{0.5, x0_threshold::none()}, false},
        {"df.ddim_eta1_clip", prediction::epsilon, gmk::ddim{1, x0_threshold::clip(1)}, false},
        {"df.euler", prediction::epsilon, gmk::euler{}, false},
        {"df.euler_karras_v", prediction::v, gmk::euler{}, false},
        {"df.euler_ancestral", prediction::epsilon, ancestral(1), true},
        {"df.heun", prediction::epsilon, gmk::heun{}, false},
        {"df.dpmpp_2m", prediction::epsilon, dpm2m(), false},
        {"df.dpmpp_2m_heun", prediction::epsilon, dpm2m(S::heun), false},
        {"df.dpmpp_2m_v_karras", prediction::v, dpm2m(), false},
        {"df.dpmpp_2m_sde", prediction::epsilon, sde(1, S::midpoint), true},
        {"df.dpmpp_2m_sigma_min", prediction::epsilon, dpm2m(), false},
        {"df.dpmpp_2m_sigma_min_20", prediction::epsilon, dpm2m(), false},
        {"df.dpmpp_2m_euler_at_final", prediction::epsilon, dpm2m(S::midpoint, true), false},
        {"df.flow_euler", prediction::flow_velocity, gmk::flow_euler{}, false},
        {"df.flow_euler_stochastic", prediction::flow_velocity, gmk::flow_euler{true}, true},
        {"df.flow_heun", prediction::flow_velocity, gmk::flow_heun{}, false},
    };
}

const gt::golden_file& sampler_golden() {
    static const gt::golden_file g = gt::read_golden("samplers.txt");
    return g;
}

template <class T>
std::vector<T> entry(const std::string& name) {
    for (const auto& c : sampler_golden().cases) {
        if (c.op != name) continue;
        const auto& call = c.calls.at(0);
        std::vector<T> v(call.index.size());
        for (std::size_t j = 0; j < v.size(); ++j) {
            if (c.dtype == "float64") v[j] = T(call.value<double>(j));
            else v[j] = T(call.value<float>(j));
        }
        return v;
    }
    throw std::runtime_error("no golden entry " + name);
}

gmk::noise_grid grid_of(const std::vector<double>& triples) {
    std::vector<gmk::noise_level> levels(triples.size() / 3);
    for (std::size_t i = 0; i < levels.size(); ++i) levels[i] = {triples[3 * i], triples[3 * i + 1], triples[3 * i + 2]};
    return gmk::noise_grid(std::move(levels));
}

// max |a - b| / max |b|
template <class T>
double relative_error(const std::vector<T>& a, const std::vector<T>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::fabs(double(a[i]) - double(b[i])));
        den = std::max(den, std::fabs(double(b[i])));
        if (std::isnan(double(a[i]))) return std::numeric_limits<double>::infinity();
    }
    return num / den;
}

struct golden_run {
    std::vector<double> final_x;
    std::size_t draws = 0, model_calls = 0;
};

template <class B, class T>
GMK_TEST_NOINLINE void check_golden_case(const golden_sampler_case& gc, gt::mismatch_log& log, double& worst) {
    const std::string d = std::is_same_v<T, float> ? "float32" : "float64";
    const std::string base = std::string(gc.name) + "." + d + ".";
    const gmk::noise_grid grid = grid_of(entry<double>(base + "levels"));
    const double x_scale = entry<double>(base + "x_scale").at(0);
    const std::vector<T> noise = entry<T>(base + "noise");
    const std::vector<T> want = entry<T>(base + "final");
    const std::size_t draws = std::size_t(entry<double>(base + "draws").at(0));
    const std::size_t nfe = std::size_t(entry<double>(base + "nfe").at(0));
    std::vector<T> x = entry<T>(base + "x_init");
    for (T& v : x) v = T(double(v) * x_scale);
    table_noise<T> source{&noise};
    auto model = golden_model<T>(gc.predicts);
    const gmk::sample_result r = std::visit(
        [&](const auto& s) {
            return gmk::sample<B>(s, model, grid, gmk::latent<T>(x.data(), kBatch, kSample), source);
        },
        gc.sampler);
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
    const double e = relative_error(x, want);
    worst = std::max(worst, e);
    const std::string what = gt::label<B, T>() + " " + gc.name;
    if (!(e <= tol)) log.add(what, ": final sample relative error ", e, " > ", tol);
    if (r.model_calls != nfe) log.add(what, ": ", r.model_calls, " model calls, reference ", nfe);
    const std::size_t want_draws = gc.reference_draws_on_last_step ? draws - 1 : draws;
    if (source.draws != want_draws) log.add(what, ": ", source.draws, " noise draws, expected ", want_draws);
}

}  // namespace

TEST_CASE("samplers: golden trajectories of diffusers and k-diffusion, every backend", "[diffusion][samplers][golden]") {
    gt::mismatch_log log;
    double worst_float = 0, worst_double = 0;
    const auto cases = golden_sampler_cases();
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        for (const auto& gc : cases) {
            check_golden_case<B, float>(gc, log, worst_float);
            check_golden_case<B, double>(gc, log, worst_double);
        }
    });
    if (std::getenv("GMK_DIFFUSION_REPORT"))
        std::printf("golden samplers: worst relative error float %.3g, double %.3g\n", worst_float, worst_double);
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("samplers: a torch_cpu_generator seeded as the reference draws the reference's noise", "[diffusion][samplers][golden]") {
    // The recorded draws of every case that draws are torch.randn(96) calls on a generator seeded
    // with the case's seed (k-diffusion: torch.manual_seed; diffusers: torch.Generator): the
    // generator source gives them bit for bit, and then the whole run without the table. Float:
    // torch's AVX2/AVX512 kernel (the default); double: torch's double path is the libm kernel.
    gt::mismatch_log log;
    std::size_t checked = 0;
    for (const auto& gc : golden_sampler_cases()) {
        for (const char* d : {"float32", "float64"}) {
            const std::string base = std::string(gc.name) + "." + d + ".";
            const std::size_t draws = std::size_t(entry<double>(base + "draws").at(0));
            if (draws == 0) continue;
            const auto seed = std::uint64_t(entry<double>(base + "seed").at(0));
            const auto run = [&](auto t) {
                using T = typename decltype(t)::type;
                const std::vector<T> table = entry<T>(base + "noise");
                const auto kernel = std::is_same_v<T, float> ? gmk::torch_cpu_kernel::avx2 : gmk::torch_cpu_kernel::libm;
                gmk::torch_cpu_generator g(seed, kernel);
                std::vector<T> z(kN);
                for (std::size_t k = 0; k < draws; ++k) {
                    g.randn(z.data(), kN);
                    for (std::size_t i = 0; i < kN; ++i)
                        if (!gt::same_bits(z[i], table[k * kN + i])) {
                            log.add(base, " draw ", k, " element ", i, ": ", gt::show(z[i]), " != ", gt::show(table[k * kN + i]));
                            return;
                        }
                }
                gmk::torch_cpu_generator g2(seed, kernel);
                std::vector<T> x = entry<T>(base + "x_init");
                const double x_scale = entry<double>(base + "x_scale").at(0);
                for (T& v : x) v = T(double(v) * x_scale);
                auto model = golden_model<T>(gc.predicts);
                std::visit([&](const auto& s) {
                    gmk::sample(s, model, grid_of(entry<double>(base + "levels")), gmk::latent<T>(x.data(), kBatch, kSample),
                                gmk::generator_noise<gmk::torch_cpu_generator>(g2));
                }, gc.sampler);
                const double e = relative_error(x, entry<T>(base + "final"));
                if (!(e <= (std::is_same_v<T, float> ? 1e-5 : 1e-10))) log.add(base, " with the generator: relative error ", e);
                ++checked;
            };
            if (std::string(d) == "float32") run(gt::type_tag<float>{});
            else run(gt::type_tag<double>{});
        }
    }
    INFO(checked << " cases checked");
    CHECK(checked >= 36);
    GMK_REQUIRE_NO_MISMATCH(log);
}

namespace {

// ---- convergence order on the probability-flow ODE of Gaussian data -------------------------

double mu_fixed(std::size_t i) { return 0.5 - 0.1 * double(i % 5); }

// Grids of N steps that end above sigma = 0 (a final step into 0 is first order for every sampler
// and would cap the order at 1).
gmk::noise_grid order_grid(const std::string& kind, std::size_t N) {
    std::vector<gmk::noise_level> levels(N + 1);
    for (std::size_t i = 0; i <= N; ++i) {
        const double u = double(i) / double(N);
        if (kind == "ve") {  // Karras, 20 -> 0.05
            const double r = std::pow(std::pow(20.0, 1 / 7.0) + u * (std::pow(0.05, 1 / 7.0) - std::pow(20.0, 1 / 7.0)), 7.0);
            levels[i] = {1.0, r, r};
        } else if (kind == "vp") {  // continuous VP (beta 0.1 .. 20), t = 1 .. 0.01
            const double t = 1 - u * 0.99;
            const double abar = std::exp(-(0.1 * t + 0.5 * 19.9 * t * t));
            levels[i] = {std::sqrt(abar), std::sqrt(1 - abar), t};
        } else {  // flow, t = 0.98 .. 0.02
            const double t = 0.98 - u * 0.96;
            levels[i] = {1 - t, t, t};
        }
    }
    return gmk::noise_grid(std::move(levels));
}

// The exact solution of the probability-flow ODE from (x0 at level 0) to level N: with y = x / a,
// r = s / a, y(r) = mu + sqrt(sd^2 + r^2) / sqrt(sd^2 + r_0^2) (y_0 - mu).
double exact_flow(const gmk::noise_grid& g, double x, double mu, double sd) {
    const double r0 = g.ratio(0), r1 = g.ratio(g.steps());
    const double y = mu + std::sqrt(sd * sd + r1 * r1) / std::sqrt(sd * sd + r0 * r0) * (x / g.front().alpha - mu);
    return g.back().alpha * y;
}

template <class Sampler>
double order_error(const Sampler& s, const std::string& kind, std::size_t N, prediction p) {
    const gmk::noise_grid g = order_grid(kind, N);
    const std::size_t n = 8;
    std::vector<double> x(n), x_init(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = x_init[i] = g.front().sigma * (double(i) - 3.5) * 0.7 + g.front().alpha * mu_fixed(i);
    auto model = gmk::make_model(p, [p](const double* xi, double* out, const gmk::model_call& c) {
        gaussian_output(p, c.level, xi, out, c.size(), c.sample_size, false, kSd, mu_fixed);
    });
    gmk::sample<gmk::simd::scalar>(s, model, g, gmk::latent<double>(x.data(), n), gmk::no_noise{});
    double e = 0;
    for (std::size_t i = 0; i < n; ++i) e = std::max(e, std::fabs(x[i] - exact_flow(g, x_init[i], mu_fixed(i), kSd)));
    return e;
}

template <class Sampler>
void check_order(const char* name, const Sampler& s, const std::string& kind, prediction p, double lo, double hi,
                 gt::mismatch_log& log) {
    const double e1 = order_error(s, kind, 32, p), e2 = order_error(s, kind, 64, p), e3 = order_error(s, kind, 128, p);
    const double order = 0.5 * (std::log2(e1 / e2) + std::log2(e2 / e3));
    if (std::getenv("GMK_DIFFUSION_REPORT"))
        std::printf("order %-24s %-4s errors %.3e %.3e %.3e order %.2f\n", name, kind.c_str(), e1, e2, e3, order);
    if (!(order >= lo && order <= hi)) log.add(name, " on ", kind, ": order ", order, " not in [", lo, ", ", hi, "]");
}

}  // namespace

TEST_CASE("samplers: convergence order on the probability-flow ODE of Gaussian data", "[diffusion][samplers][order]") {
    gt::mismatch_log log;
    gmk::dpmpp_2m heun2m;
    heun2m.solver = gmk::dpm_solver_type::heun;
    heun2m.lower_order_final = false;
    gmk::dpmpp_2m mid2m;
    mid2m.lower_order_final = false;
    gmk::heun heun_flow;
    heun_flow.coordinates = gmk::ode_coordinates::flow;
    gmk::heun heun_sigma;
    heun_sigma.coordinates = gmk::ode_coordinates::sigma;
    const gmk::ddim ddim0{0, gmk::x0_threshold::none()};
    for (const std::string kind : {"ve", "vp", "flow"}) {
        for (prediction p : {prediction::epsilon, prediction::v}) {
            check_order("euler", gmk::euler{}, kind, p, 0.8, 1.3, log);
            check_order("ddim", ddim0, kind, p, 0.8, 1.3, log);
            check_order("flow_euler", gmk::flow_euler{}, kind, p, 0.8, 1.3, log);
            check_order("probability_flow_euler", gmk::probability_flow_euler{}, kind, p, 0.8, 1.3, log);
            check_order("heun (sigma)", heun_sigma, kind, p, 1.7, 2.4, log);
            check_order("heun (flow)", heun_flow, kind, p, 1.7, 2.4, log);
            check_order("dpmpp_2m midpoint", mid2m, kind, p, 1.7, 2.4, log);
            check_order("dpmpp_2m heun", heun2m, kind, p, 1.7, 2.4, log);
        }
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

namespace {

// ---- a 2-D Gaussian mixture with its exact denoiser -----------------------------------------

struct mixture {
    std::vector<double> weight, mx, my, sd;

    // E[x0 | x] at level (a, s) for each 2-D point of x (batch of points, sample_size 2).
    void denoise(const gmk::noise_level& l, const double* x, double* d, std::size_t points) const {
        const double a = l.alpha, s = l.sigma;
        const std::size_t K = weight.size();
        std::vector<double> logw(K);
        for (std::size_t p = 0; p < points; ++p) {
            const double px = x[2 * p], py = x[2 * p + 1];
            double top = -std::numeric_limits<double>::infinity();
            for (std::size_t k = 0; k < K; ++k) {
                const double v = a * a * sd[k] * sd[k] + s * s;
                const double dx = px - a * mx[k], dy = py - a * my[k];
                logw[k] = std::log(weight[k]) - std::log(v) - (dx * dx + dy * dy) / (2 * v);
                top = std::max(top, logw[k]);
            }
            double total = 0, ex = 0, ey = 0;
            for (std::size_t k = 0; k < K; ++k) {
                const double w = std::exp(logw[k] - top);
                const double v = a * a * sd[k] * sd[k] + s * s, g = a * sd[k] * sd[k] / v;
                total += w;
                ex += w * (mx[k] + g * (px - a * mx[k]));
                ey += w * (my[k] + g * (py - a * my[k]));
            }
            d[2 * p] = ex / total;
            d[2 * p + 1] = ey / total;
        }
    }

    std::vector<double> draw(std::size_t points, std::uint64_t seed) const {
        std::vector<double> z(2 * points), u(points), out(2 * points);
        gmk::random::normal_fill(gmk::random::philox_stream(seed, 1), 0, z.data(), z.size());
        gmk::random::uniform_fill(gmk::random::philox_stream(seed, 2), 0, u.data(), u.size());
        for (std::size_t p = 0; p < points; ++p) {
            std::size_t k = 0;
            for (double c = weight[0]; u[p] >= c && k + 1 < weight.size(); c += weight[++k]) {
            }
            out[2 * p] = mx[k] + sd[k] * z[2 * p];
            out[2 * p + 1] = my[k] + sd[k] * z[2 * p + 1];
        }
        return out;
    }
};

const mixture& test_mixture() {
    static const mixture m{{0.5, 0.3, 0.2}, {-2.0, 2.0, 0.0}, {0.0, 0.5, 2.0}, {0.3, 0.5, 0.4}};
    return m;
}

// Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between two 2-D point sets (Szekely & Rizzo).
double energy_distance(const std::vector<double>& a, const std::vector<double>& b) {
    const auto mean_dist = [](const std::vector<double>& p, const std::vector<double>& q) {
        double s = 0;
        for (std::size_t i = 0; i < p.size(); i += 2)
            for (std::size_t j = 0; j < q.size(); j += 2) s += std::hypot(p[i] - q[j], p[i + 1] - q[j + 1]);
        return s / double(p.size() / 2) / double(q.size() / 2);
    };
    return 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b);
}

// Per-component statistics: each point goes to the component of highest posterior weight (the
// components are far apart: mislabelled points are rare); proportions, means and the pooled
// variance per component.
struct component_stats {
    std::vector<double> share, mx, my, var;
};
component_stats component_stats_of(const mixture& mix, const std::vector<double>& p) {
    const std::size_t K = mix.weight.size(), n = p.size() / 2;
    component_stats c{std::vector<double>(K), std::vector<double>(K), std::vector<double>(K), std::vector<double>(K)};
    std::vector<std::size_t> label(n);
    std::vector<double> count(K);
    for (std::size_t i = 0; i < n; ++i) {
        double best = -std::numeric_limits<double>::infinity();
        for (std::size_t k = 0; k < K; ++k) {
            const double dx = p[2 * i] - mix.mx[k], dy = p[2 * i + 1] - mix.my[k], v = mix.sd[k] * mix.sd[k];
            const double lw = std::log(mix.weight[k] / v) - (dx * dx + dy * dy) / (2 * v);
            if (lw > best) best = lw, label[i] = k;
        }
        count[label[i]] += 1;
        c.mx[label[i]] += p[2 * i];
        c.my[label[i]] += p[2 * i + 1];
    }
    for (std::size_t k = 0; k < K; ++k) {
        c.share[k] = count[k] / double(n);
        c.mx[k] /= std::max(count[k], 1.0);
        c.my[k] /= std::max(count[k], 1.0);
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = label[i];
        const double dx = p[2 * i] - c.mx[k], dy = p[2 * i + 1] - c.my[k];
        c.var[k] += (dx * dx + dy * dy) / (2 * std::max(count[k] - 1, 1.0));
    }
    return c;
}

constexpr std::size_t kPoints = 8000;

template <class Sampler, class Noise>
std::vector<double> sample_mixture(const Sampler& s, const gmk::noise_grid& g, Noise&& noise, std::uint64_t seed) {
    const mixture& mix = test_mixture();
    std::vector<double> x(2 * kPoints), zero(2 * kPoints, 0.0);
    gmk::random::normal_fill(gmk::random::philox_stream(seed, 99), 0, x.data(), x.size());
    gmk::add_noise(g.front(), zero.data(), x.data(), x.data(), x.size());
    auto model = gmk::make_model(prediction::sample, [&mix](const double* xi, double* out, const gmk::model_call& c) {
        mix.denoise(c.level, xi, out, c.batch);
    });
    gmk::sample(s, model, g, gmk::latent<double>(x.data(), kPoints, 2), noise);
    return x;
}

gmk::noise_grid mixture_ve(std::size_t N) { return gmk::noise_grid::ve(gmk::sigmas_karras(N, 0.002, 80.0, 7.0)); }
gmk::noise_grid mixture_vp(std::size_t N) {
    const auto abar = gmk::alphas_cumprod(gmk::betas(gmk::beta_schedule::linear, 1000, 1e-4, 0.02));
    return gmk::noise_grid::vp(abar, gmk::timesteps(gmk::timestep_spacing::trailing, 1000, N));
}
gmk::noise_grid mixture_flow(std::size_t N) {
    std::vector<double> t(N + 1);
    for (std::size_t i = 0; i <= N; ++i) t[i] = 1 - double(i) / double(N);
    return gmk::noise_grid::flow(t);
}

}  // namespace

TEST_CASE("samplers: every stochastic sampler reproduces a 2-D Gaussian mixture", "[diffusion][samplers][mixture]") {
    // Bounds from the sampling error of kPoints points (a correct sampler fails them with
    // probability ~1e-4 per statistic), plus 3% of each component's variance and 0.01 of its
    // mean for the discretisation error of the step counts used; the energy distance (on the
    // first 2000 points) against 4x the largest distance between independent true samples.
    // First-order stochastic samplers lose variance as O(1 / N) (measured here: DDPM 0.82 of
    // it at 100 steps, 0.93 at 400, 0.97 at 1000; Euler-ancestral 0.94, 0.96, 0.99 at 200, 400,
    // 1000), so the step counts below are where that error is under a few per cent.
    const mixture& mix = test_mixture();
    constexpr std::size_t kEnergy = 2000;
    const auto head = [](const std::vector<double>& p) { return std::vector<double>(p.begin(), p.begin() + 2 * kEnergy); };
    double floor = 0;
    for (std::uint64_t k = 0; k < 3; ++k)
        floor = std::max(floor, energy_distance(head(mix.draw(kPoints, 100 + k)), head(mix.draw(kPoints, 200 + k))));
    const double bound = 4 * floor;
    const std::vector<double> reference = head(mix.draw(kPoints, 300));
    gt::mismatch_log log;
    const auto check = [&](const char* name, const std::vector<double>& pts, bool expect_pass) {
        const component_stats c = component_stats_of(mix, pts);
        const double ed = energy_distance(head(pts), reference);
        std::string why;
        for (std::size_t k = 0; k < mix.weight.size(); ++k) {
            const double w = mix.weight[k], nk = w * double(kPoints), v = mix.sd[k] * mix.sd[k];
            if (std::fabs(c.share[k] - w) > 4 * std::sqrt(w * (1 - w) / double(kPoints)))
                why += " share[" + std::to_string(k) + "] " + std::to_string(c.share[k]);
            if (std::hypot(c.mx[k] - mix.mx[k], c.my[k] - mix.my[k]) > 5 * mix.sd[k] / std::sqrt(nk) + 0.01)
                why += " mean[" + std::to_string(k) + "] " + std::to_string(c.mx[k]) + "," + std::to_string(c.my[k]);
            if (std::fabs(c.var[k] / v - 1) > 4.5 / std::sqrt(nk) + 0.03)
                why += " variance ratio[" + std::to_string(k) + "] " + std::to_string(c.var[k] / v);
        }
        if (!(ed <= bound)) why += " energy distance " + std::to_string(ed);
        if (std::getenv("GMK_DIFFUSION_REPORT")) {
            std::printf("mixture %-36s energy %.2e (bound %.2e) variance ratios", name, ed, bound);
            for (std::size_t k = 0; k < c.var.size(); ++k) std::printf(" %.3f", c.var[k] / (mix.sd[k] * mix.sd[k]));
            std::printf(" shares %.3f %.3f %.3f%s\n", c.share[0], c.share[1], c.share[2], why.c_str());
        }
        if (why.empty() != expect_pass) log.add(name, expect_pass ? " does not reproduce the mixture:" : " (a wrong sampler) passes", why);
    };
    gmk::philox_noise noise(11);
    gmk::ddpm ddpm_small{gmk::ddpm_variance::fixed_small, gmk::x0_threshold::none()};
    gmk::ddpm ddpm_large{gmk::ddpm_variance::fixed_large, gmk::x0_threshold::none()};
    check("ddpm fixed_small, 400 steps", sample_mixture(ddpm_small, mixture_vp(400), noise, 1), true);
    check("ddpm fixed_large, 1000 steps", sample_mixture(ddpm_large, mixture_vp(1000), noise, 2), true);
    check("ddim eta 1, 400 steps", sample_mixture(gmk::ddim{1, gmk::x0_threshold::none()}, mixture_vp(400), noise, 3), true);
    check("euler_ancestral, 200 steps", sample_mixture(ancestral(1), mixture_ve(200), noise, 4), true);
    check("euler churn 40, 400 steps", sample_mixture(euler_with(churn_of(40, 0, 1e9, 1, false)), mixture_ve(400), noise, 5), true);
    check("heun EDM churn 40, 100 steps", sample_mixture(heun_with(churn_of(40, 0.05, 50, 1.003, true)), mixture_ve(100), noise, 6), true);
    check("dpmpp_2m_sde midpoint, 50 steps", sample_mixture(sde(1, gmk::dpm_solver_type::midpoint), mixture_ve(50), noise, 7), true);
    check("dpmpp_2m_sde heun, 50 steps", sample_mixture(sde(1, gmk::dpm_solver_type::heun), mixture_ve(50), noise, 8), true);
    {
        gmk::brownian_noise<double> tree(0.002, 80.0, 2 * kPoints, 12);
        check("dpmpp_2m_sde, Brownian-tree noise", sample_mixture(sde(1, gmk::dpm_solver_type::midpoint), mixture_ve(50), tree, 9), true);
    }
    // diffusers' stochastic flow Euler replaces the noise by a fresh draw at every step, x' = a' D
    // + s' z: the multistep sampler of consistency models, which shrinks each component (its
    // variance here ends near half the true one, and stays there as the steps grow). It matches
    // diffusers (golden test) but is not a sampler of the data; the stochastic samplers that are
    // run on the same flow grid.
    check("flow_euler stochastic (shrinks), 100 steps", sample_mixture(gmk::flow_euler{true}, mixture_flow(100), noise, 10), false);
    check("flow_euler stochastic (shrinks), 400 steps", sample_mixture(gmk::flow_euler{true}, mixture_flow(400), noise, 15), false);
    check("euler_ancestral on a flow grid, 200 steps", sample_mixture(ancestral(1), mixture_flow(200), noise, 16), true);
    check("ddim eta 1 on a flow grid, 200 steps", sample_mixture(gmk::ddim{1, gmk::x0_threshold::none()}, mixture_flow(200), noise, 17), true);
    check("dpmpp_2m_sde on a flow grid, 100 steps", sample_mixture(sde(1, gmk::dpm_solver_type::midpoint), mixture_flow(100), noise, 18), true);
    check("euler_maruyama VE, 500 steps", sample_mixture(gmk::euler_maruyama{}, mixture_ve(500), noise, 11), true);
    check("euler_maruyama VP, 500 steps", sample_mixture(gmk::euler_maruyama{}, mixture_vp(500), noise, 12), true);
    // A wrong sampler: ancestral noise 30% too strong.
    gmk::euler_ancestral loud = ancestral(1);
    loud.s_noise = 1.3;
    check("euler_ancestral s_noise 1.3 (wrong)", sample_mixture(loud, mixture_ve(50), noise, 13), false);
    gmk::dpmpp_2m_sde half = sde(0.5, gmk::dpm_solver_type::midpoint);
    half.s_noise = 0.6;
    check("dpmpp_2m_sde s_noise 0.6 (wrong)", sample_mixture(half, mixture_ve(50), noise, 14), false);
    GMK_REQUIRE_NO_MISMATCH(log);
}
