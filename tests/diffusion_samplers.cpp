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
#include <gmk/schedules/flow.hpp>
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
// Not under AddressSanitizer, whose runtime owns operator new (a replacement there pairs its
// allocations with our free); the no-allocation test then says it did not count.

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GMK_TEST_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define GMK_TEST_UNDER_ASAN 1
#endif

namespace {
std::atomic<long> g_allocations{0};
#if defined(GMK_TEST_UNDER_ASAN)
constexpr bool kCountsAllocations = false;
#else
constexpr bool kCountsAllocations = true;
#endif
}  // namespace

#if !defined(GMK_TEST_UNDER_ASAN)
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

#endif  // !GMK_TEST_UNDER_ASAN

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

namespace {

template <class T>
auto simple_model(prediction p = prediction::epsilon) {
    return gmk::make_model(p, [p](const T* x, T* out, const gmk::model_call& c) {
        gaussian_output(p, c.level, x, out, c.size(), c.sample_size, c.learned_variance, kSd, golden_mu);
    });
}

gmk::noise_grid karras_grid(std::size_t N) { return gmk::noise_grid::ve(gmk::sigmas_karras(N, 0.03, 14.6, 7.0)); }

std::vector<double> initial_x(double sigma, std::uint64_t seed) {
    std::vector<double> x(kN);
    gmk::random::normal_fill(gmk::random::philox_stream(seed, 0), 0, x.data(), kN);
    for (double& v : x) v *= sigma;
    return x;
}

}  // namespace

TEST_CASE("sample: progress callback, early stop, image-to-image", "[diffusion][samplers]") {
    const gmk::noise_grid g = karras_grid(12);
    auto model = simple_model<double>();
    std::vector<std::vector<double>> states;
    std::vector<double> x = initial_x(g.front().sigma, 1);
    const auto full = gmk::sample(gmk::dpmpp_2m{}, model, g, gmk::latent<double>(x.data(), kBatch, kSample), gmk::no_noise{},
                                  {}, [&](const gmk::sample_progress<double>& p) {
                                      CHECK(p.steps == 12);
                                      CHECK(p.step == states.size());
                                      CHECK(p.level.sigma == g[p.step + 1].sigma);
                                      CHECK(p.size == kN);
                                      states.emplace_back(p.x, p.x + p.size);
                                  });
    CHECK(full.steps_taken == 12);
    CHECK(full.model_calls == 12);
    CHECK_FALSE(full.stopped);
    REQUIRE(states.size() == 12);
    CHECK(states.back() == x);
    // Stop after step 4: five steps taken, x is the state after step 4.
    std::vector<double> y = initial_x(g.front().sigma, 1);
    const auto part = gmk::sample(gmk::dpmpp_2m{}, model, g, gmk::latent<double>(y.data(), kBatch, kSample), gmk::no_noise{}, {},
                                  [](const gmk::sample_progress<double>& p) { return p.step < 4; });
    CHECK(part.steps_taken == 5);
    CHECK(part.stopped);
    CHECK(y == states[4]);
    // Resuming a first-order sampler from a state reproduces the rest of the run bit for bit.
    std::vector<double> z = states[5];
    gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(z.data(), kBatch, kSample), gmk::no_noise{}, gmk::sample_options{6});
    std::vector<double> w = initial_x(g.front().sigma, 1);
    std::vector<double> after5;
    gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(w.data(), kBatch, kSample), gmk::no_noise{}, {},
                [&](const gmk::sample_progress<double>& p) {
                    if (p.step == 5) after5.assign(p.x, p.x + p.size);
                });
    std::vector<double> v = after5;
    gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(v.data(), kBatch, kSample), gmk::no_noise{}, gmk::sample_options{6});
    CHECK(v == w);
    // Image-to-image: diffusers' start step, and add_noise = alpha x0 + sigma z.
    CHECK(gmk::img2img_start(50, 0.8) == 10);
    CHECK(gmk::img2img_start(50, 1.0) == 0);
    CHECK(gmk::img2img_start(50, 0.0) == 50);
    CHECK(gmk::img2img_start(10, 0.35) == 7);
    const gmk::noise_level level{0.8, 0.6, 500};
    const std::vector<double> image{1.0, -2.0, 0.5}, noise{0.25, 1.0, -3.0};
    std::vector<double> noisy(3);
    gmk::add_noise(level, image.data(), noise.data(), noisy.data(), 3);
    CHECK(noisy[0] == Approx(0.8 * 1.0 + 0.6 * 0.25).epsilon(1e-15));
    CHECK(noisy[1] == Approx(0.8 * -2.0 + 0.6 * 1.0).epsilon(1e-15));
    CHECK(noisy[2] == Approx(0.8 * 0.5 + 0.6 * -3.0).epsilon(1e-15));
    // A strength-0.5 img2img run starts at img2img_start's step and takes the remaining steps.
    const std::size_t start = gmk::img2img_start(g.steps(), 0.5);
    std::vector<double> img(kN), zz = initial_x(1.0, 3), xi(kN);
    for (std::size_t i = 0; i < kN; ++i) img[i] = golden_mu(i) + kSd * zz[(i * 7) % kN];
    gmk::add_noise(g[start], img.data(), zz.data(), xi.data(), kN);
    const auto r = gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(xi.data(), kBatch, kSample), gmk::no_noise{},
                               gmk::sample_options{start});
    CHECK(r.steps_taken == g.steps() - start);
}

TEST_CASE("sample: no allocation once the workspace exists, any sampler", "[diffusion][samplers]") {
    const gmk::noise_grid ve = karras_grid(8);
    const auto abar = gmk::alphas_cumprod(gmk::betas(gmk::beta_schedule::linear, 1000, 1e-4, 0.02));
    const gmk::noise_grid vp = gmk::noise_grid::vp(abar, gmk::timesteps(gmk::timestep_spacing::leading, 1000, 8));
    gmk::sampler_workspace<float> ws;
    std::vector<float> x(kN);
    auto model = simple_model<float>();
    gmk::philox_noise noise(5);
    long worst = 0;
    const auto run = [&](const auto& s, const gmk::noise_grid& g) {
        for (int pass = 0; pass < 2; ++pass) {  // the first pass may grow the workspace
            for (std::size_t i = 0; i < kN; ++i) x[i] = float(g.front().sigma) * float(std::sin(double(i)));
            const long before = g_allocations.load();
            gmk::sample(s, model, g, gmk::latent<float>(x.data(), kBatch, kSample), noise, ws);
            if (pass == 1) worst = std::max(worst, g_allocations.load() - before);
        }
    };
    run(gmk::ddpm{gmk::ddpm_variance::fixed_small, gmk::x0_threshold::dynamic(0.995, 1.5)}, vp);
    run(gmk::ddim{0.5}, vp);
    run(gmk::euler{}, ve);
    run(euler_with(churn_of(1, 0, 1e9, 1, true)), ve);
    run(ancestral(1), ve);
    run(heun_with(churn_of(1, 0, 1e9, 1, true)), ve);
    run(gmk::dpmpp_2m{}, ve);
    run(sde(1, gmk::dpm_solver_type::heun), ve);
    run(gmk::euler_maruyama{}, ve);
    run(gmk::probability_flow_euler{}, vp);
    if (!kCountsAllocations) WARN("allocations are not counted under AddressSanitizer");
    CHECK(worst == 0);
}

TEST_CASE("sample: a model that writes NaN is reported with its step", "[diffusion][samplers]") {
    const gmk::noise_grid g = karras_grid(10);
    for (int kind = 0; kind < 2; ++kind) {
        auto bad = gmk::make_model(prediction::epsilon, [kind](const double* x, double* out, const gmk::model_call& c) {
            gaussian_output(prediction::epsilon, c.level, x, out, c.size(), c.sample_size, false, kSd, golden_mu);
            if (c.step == 3) out[kind == 0 ? 17 : c.size() - 1] = kind == 0 ? std::nan("") : std::numeric_limits<double>::infinity();
        });
        std::vector<double> x = initial_x(g.front().sigma, 2);
        try {
            gmk::sample(gmk::dpmpp_2m{}, bad, g, gmk::latent<double>(x.data(), kBatch, kSample), gmk::no_noise{});
            FAIL("no exception");
        } catch (const gmk::non_finite_error& e) {
            CHECK(e.step() == 3);
            CHECK(e.model_output());
            CHECK(std::string(e.what()).find("step 3") != std::string::npos);
        }
    }
    // An update that overflows (float: a huge but finite epsilon, times sigma ~ 5) names the update.
    auto huge = gmk::make_model(prediction::epsilon, [](const float*, float* out, const gmk::model_call& c) {
        std::fill(out, out + c.size(), c.step == 2 ? 3e38f : 0.5f);
    });
    std::vector<float> xf(kN, 1.0f);
    try {
        gmk::sample(gmk::euler{}, huge, g, gmk::latent<float>(xf.data(), kBatch, kSample), gmk::no_noise{});
        FAIL("no exception");
    } catch (const gmk::non_finite_error& e) {
        CHECK(e.step() == 2);
        CHECK_FALSE(e.model_output());
    }
    // check_finite = false skips the check.
    std::vector<double> x = initial_x(g.front().sigma, 2);
    auto nan_model = gmk::make_model(prediction::epsilon, [](const double*, double* out, const gmk::model_call& c) {
        std::fill(out, out + c.size(), std::nan(""));
    });
    gmk::sample_options unchecked;
    unchecked.check_finite = false;
    CHECK_NOTHROW(gmk::sample(gmk::euler{}, nan_model, g, gmk::latent<double>(x.data(), kBatch, kSample), gmk::no_noise{}, unchecked));
    CHECK(std::isnan(x[0]));
}

TEST_CASE("sample: bad input is rejected naming the setting", "[diffusion][samplers]") {
    const gmk::noise_grid g = karras_grid(6);
    auto model = simple_model<double>();
    std::vector<double> x = initial_x(g.front().sigma, 4);
    const gmk::latent<double> lat(x.data(), kBatch, kSample);
    using gt::require_throws_naming;
    require_throws_naming([&] { gmk::sample(gmk::ddim{-0.1}, model, g, lat, gmk::no_noise{}); }, "eta");
    require_throws_naming([&] { gmk::sample(gmk::ddim{1.5}, model, g, lat, gmk::no_noise{}); }, "eta");
    require_throws_naming([&] { gmk::sample(ancestral(-1), model, g, lat, gmk::no_noise{}); }, "eta");
    require_throws_naming([&] { gmk::sample(sde(-0.5, gmk::dpm_solver_type::midpoint), model, g, lat, gmk::no_noise{}); }, "eta");
    require_throws_naming([&] { gmk::sample(euler_with(churn_of(-1, 0, 1, 1, false)), model, g, lat, gmk::no_noise{}); }, "s_churn");
    require_throws_naming([&] { gmk::sample(euler_with(churn_of(1, 2, 1, 1, false)), model, g, lat, gmk::no_noise{}); }, "s_tmax");
    require_throws_naming([&] { gmk::sample(gmk::ddpm{gmk::ddpm_variance::fixed_small, gmk::x0_threshold::clip(0)}, model, g, lat, gmk::no_noise{}); },
                          "threshold.range");
    require_throws_naming([&] { gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(nullptr, kBatch, kSample), gmk::no_noise{}); }, "x.data");
    require_throws_naming([&] { gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(x.data(), 0, kSample), gmk::no_noise{}); }, "x.batch");
    require_throws_naming([&] { gmk::sample(gmk::euler{}, model, g, gmk::latent<double>(x.data(), kBatch, 0), gmk::no_noise{}); }, "x.sample_size");
    require_throws_naming([&] { gmk::sample(gmk::euler{}, model, g, lat, gmk::no_noise{}, gmk::sample_options{6}); }, "options.start_step");
    // a stochastic sampler without a noise source
    require_throws_naming([&] { gmk::sample(ancestral(1), model, g, lat, gmk::no_noise{}); }, "noise");
    // a Brownian source built for another size
    gmk::brownian_noise<double> tree(0.03, 14.6, kN + 1, 1);
    require_throws_naming([&] { gmk::sample(ancestral(1), model, g, lat, tree); }, "n");
    // grids: empty, one level, non-monotone sigmas
    require_throws_naming([] { gmk::noise_grid::ve(std::vector<double>{}); }, "sigmas.size()");
    require_throws_naming([] { gmk::noise_grid::ve(std::vector<double>{1.0}); }, "sigmas.size()");
    require_throws_naming([] { gmk::noise_grid::ve(std::vector<double>{1.0, 2.0, 0.0}); }, "sigma");
    // an epsilon model at alpha = 0 (a flow grid's first level); heun in sigma coordinates and
    // the SDE samplers there
    const gmk::noise_grid flow = gmk::noise_grid::flow(std::vector<double>{1.0, 0.5, 0.0});
    require_throws_naming([&] { gmk::sample(gmk::flow_euler{}, model, flow, lat, gmk::no_noise{}); }, "grid[start_step].alpha");
    auto velocity = simple_model<double>(prediction::flow_velocity);
    gmk::heun sigma_heun;
    sigma_heun.coordinates = gmk::ode_coordinates::sigma;
    require_throws_naming([&] { gmk::sample(sigma_heun, velocity, flow, lat, gmk::no_noise{}); }, "grid[i].alpha");
    require_throws_naming([&] { gmk::sample(gmk::euler_maruyama{}, velocity, flow, lat, gmk::philox_noise(1)); }, "grid[i].alpha");
    CHECK_NOTHROW(gmk::sample(gmk::flow_heun{}, velocity, flow, lat, gmk::no_noise{}));
    // level_at needs a known process
    const gmk::noise_grid general(std::vector<gmk::noise_level>{{0.9, 0.9, 1}, {0.95, 0.3, 0}});
    CHECK(general.kind() == gmk::noise_grid::process::general);
    require_throws_naming([&] { general.level_at(1.0); }, "grid");
}

TEST_CASE("samplers: a first level with alpha = 0 (flow t = 1) is a valid start", "[diffusion][samplers]") {
    // Every sampler that allows it takes the first step from pure noise as DDIM does:
    // x' = (s'/s) x + a' D (no NaN from lambda = -inf).
    const gmk::noise_grid flow = gmk::noise_grid::flow(gmk::sigmas_flow(10));
    REQUIRE(flow.front().alpha == 0);
    auto velocity = simple_model<double>(prediction::flow_velocity);
    std::vector<double> first_ddim;
    const auto first_step = [&](const auto& s) {
        std::vector<double> x = initial_x(1.0, 8);
        gmk::sample(s, velocity, flow, gmk::latent<double>(x.data(), kBatch, kSample), gmk::philox_noise(3), {},
                    [](const gmk::sample_progress<double>&) { return false; });
        return x;
    };
    first_ddim = first_step(gmk::ddim{0, gmk::x0_threshold::none()});
    CHECK(relative_error(first_step(gmk::dpmpp_2m{}), first_ddim) <= 1e-15);
    CHECK(relative_error(first_step(gmk::euler{}), first_ddim) <= 1e-15);
    CHECK(relative_error(first_step(gmk::flow_euler{}), first_ddim) <= 1e-15);
    CHECK(relative_error(first_step(ancestral(0)), first_ddim) <= 1e-15);
    for (std::size_t steps : {10, 20}) {
        const gmk::noise_grid g = gmk::noise_grid::flow(gmk::sigmas_flow(steps));
        std::vector<double> x = initial_x(1.0, 8);
        CHECK_NOTHROW(gmk::sample(gmk::dpmpp_2m{}, velocity, g, gmk::latent<double>(x.data(), kBatch, kSample), gmk::no_noise{}));
    }
}

TEST_CASE("noise_grid: the process and the levels off the grid", "[diffusion][samplers]") {
    const gmk::noise_grid ve = karras_grid(5);
    CHECK(ve.kind() == gmk::noise_grid::process::ve);
    CHECK(ve.level_at(2.5).alpha == 1.0);
    CHECK(ve.level_at(2.5).model_time == 2.5);  // ve(sigmas): model_time = sigma
    const gmk::noise_grid flow = gmk::noise_grid::flow(std::vector<double>{1.0, 0.6, 0.2, 0.0});
    CHECK(flow.kind() == gmk::noise_grid::process::flow);
    const gmk::noise_level f = flow.level_at(1.0);  // t = 1/2
    CHECK(f.alpha == Approx(0.5));
    CHECK(f.sigma == Approx(0.5));
    CHECK(f.model_time == Approx(500));
    const std::vector<double> sig{14.6, 3.0, 0.5, 0.0}, times{999, 600, 200};
    const gmk::noise_grid vp = gmk::noise_grid::vp_sigmas(sig, times);
    CHECK(vp.kind() == gmk::noise_grid::process::vp);
    CHECK(vp.ratio(1) == Approx(3.0).epsilon(1e-14));
    const gmk::noise_level v = vp.level_at(std::sqrt(3.0 * 0.5));  // halfway in log sigma
    CHECK(v.alpha * v.alpha + v.sigma * v.sigma == Approx(1.0).epsilon(1e-14));
    CHECK(v.model_time == Approx(400).epsilon(1e-12));  // linear in log sigma between 600 and 200
    // recognised from bare levels
    std::vector<gmk::noise_level> levels;
    for (const auto& l : vp) levels.push_back(l);
    CHECK(gmk::noise_grid(levels).kind() == gmk::noise_grid::process::vp);
}

// ---- guidance -------------------------------------------------------------------------------

TEST_CASE("guidance: classifier-free guidance and its rescale, by hand and against diffusers", "[diffusion][guidance]") {
    const std::vector<double> u{1.0, -2.0, 0.5, 4.0}, c{3.0, 1.0, 0.5, -4.0};
    std::vector<double> out(4);
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gmk::classifier_free_guidance<B>(u.data(), c.data(), out.data(), 4, 7.5);
        CHECK(out == std::vector<double>{16.0, 20.5, 0.5, -56.0});  // u + 7.5 (c - u), exact here
        gmk::classifier_free_guidance<B>(u.data(), c.data(), out.data(), 4, 7.5, gmk::cfg_formulation::original);
        CHECK(out == std::vector<double>{18.0, 23.5, 0.5, -64.0});  // 8.5 c - 7.5 u
    });
    // rescale by hand: one sample, cond std 2 (unbiased), guided std 4, phi 0.5 -> factor 0.75
    std::vector<double> guided{-6.0, -2.0, 2.0, 6.0}, cond{-3.0, -1.0, 1.0, 3.0};  // std 5.164, 2.582
    gmk::guidance_rescale(guided.data(), cond.data(), 1, 4, 0.5);
    const double f = 0.5 * 0.5 + 0.5;
    CHECK(guided[0] == Approx(-6.0 * f).epsilon(1e-15));
    CHECK(guided[3] == Approx(6.0 * f).epsilon(1e-15));
    // diffusers' rescale_noise_cfg (tests/golden/samplers.txt, cfg.rescale.*)
    gmk_test::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto t) {
            using T = typename decltype(t)::type;
            const std::string d = std::is_same_v<T, float> ? "float32" : "float64";
            const auto un = entry<T>("cfg.rescale." + d + ".uncond"), text = entry<T>("cfg.rescale." + d + ".text");
            const auto cfg = entry<T>("cfg.rescale." + d + ".cfg"), rescaled = entry<T>("cfg.rescale." + d + ".rescaled");
            std::vector<T> g(un.size());
            gmk::classifier_free_guidance<B>(un.data(), text.data(), g.data(), g.size(), 7.5);
            const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
            if (!(relative_error(g, cfg) <= tol)) log.add(gt::label<B, T>(), " cfg: ", relative_error(g, cfg));
            gmk::guidance_rescale<B>(g.data(), text.data(), 2, g.size() / 2, 0.7);
            if (!(relative_error(g, rescaled) <= 4 * tol)) log.add(gt::label<B, T>(), " rescale: ", relative_error(g, rescaled));
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
    gt::require_throws_naming([&] { gmk::guidance_rescale(guided.data(), cond.data(), 1, 4, 1.5); }, "phi");
    gt::require_throws_naming([&] { gmk::guidance_rescale(guided.data(), cond.data(), 1, 1, 0.5); }, "sample_size");
}

TEST_CASE("guidance: the guided model adaptor and classifier guidance", "[diffusion][guidance]") {
    int cond_calls = 0, uncond_calls = 0;
    auto cond = gmk::make_model(prediction::epsilon, [&](const double* x, double* out, const gmk::model_call& c) {
        ++cond_calls;
        for (std::size_t i = 0; i < c.size(); ++i) out[i] = x[i] + 1;
    });
    auto uncond = gmk::make_model(prediction::epsilon, [&](const double* x, double* out, const gmk::model_call& c) {
        ++uncond_calls;
        for (std::size_t i = 0; i < c.size(); ++i) out[i] = 0.5 * x[i];
    });
    gmk::cfg_options o;
    o.scale = 3;
    o.start = 0.25;
    o.stop = 0.75;
    auto guided = gmk::make_guided<double>(cond, uncond, o, kN);
    CHECK(guided.predicts() == prediction::epsilon);
    std::vector<double> x(kN), out(kN);
    for (std::size_t i = 0; i < kN; ++i) x[i] = double(i) * 0.1 - 2;
    gmk::model_call call;
    call.batch = kBatch;
    call.sample_size = kSample;
    call.steps = 8;
    call.level = {1.0, 2.0, 2.0};
    for (std::size_t step = 0; step < 8; ++step) {
        call.step = step;
        guided(x.data(), out.data(), call);
        const bool on = step >= 2 && step < 6;
        CHECK(guided.guides(step, 8) == on);
        for (std::size_t i = 0; i < kN; i += 13) {
            const double cv = x[i] + 1, uv = 0.5 * x[i];
            CHECK(out[i] == Approx(on ? uv + 3 * (cv - uv) : cv).epsilon(1e-14));
        }
    }
    CHECK(cond_calls == 8);
    CHECK(uncond_calls == 4);
    // rescale inside the adaptor equals the element-wise kernels
    o.rescale = 0.7;
    o.start = 0;
    o.stop = 1;
    auto rescaled = gmk::make_guided<double>(cond, uncond, o, kN);
    rescaled(x.data(), out.data(), call);
    std::vector<double> cv(kN), uv(kN), want(kN);
    for (std::size_t i = 0; i < kN; ++i) cv[i] = x[i] + 1, uv[i] = 0.5 * x[i];
    gmk::classifier_free_guidance(uv.data(), cv.data(), want.data(), kN, 3.0);
    gmk::guidance_rescale(want.data(), cv.data(), kBatch, kSample, 0.7);
    CHECK(relative_error(out, want) <= 1e-14);
    // mismatched predictions, a call larger than the buffer
    auto v_model = gmk::make_model(prediction::v, [](const double*, double*, const gmk::model_call&) {});
    gt::require_throws_naming([&] { gmk::make_guided<double>(cond, v_model, o, kN); }, "uncond.predicts()");
    auto small = gmk::make_guided<double>(cond, uncond, o, kN - 1);
    gt::require_throws_naming([&] { small(x.data(), out.data(), call); }, "call.output_size()");

    // Classifier guidance shifts the score by scale * grad, whatever the parameterisation:
    // x0 gains (s^2 / a) k g and eps loses s k g.
    for (prediction p : {prediction::epsilon, prediction::sample, prediction::v, prediction::flow_velocity}) {
        for (const gmk::noise_level l : {gmk::noise_level{1.0, 3.0, 3.0}, gmk::noise_level{0.8, 0.6, 1.0}, gmk::noise_level{0.3, 0.7, 0.7}}) {
            auto base = simple_model<double>(p);
            auto grad = [](const double* xi, double* g, const gmk::model_call& c) {
                for (std::size_t i = 0; i < c.size(); ++i) g[i] = std::cos(xi[i]);
            };
            auto cg = gmk::make_classifier_guided<double>(base, grad, 2.5, kN);
            gmk::model_call mc;
            mc.batch = kBatch;
            mc.sample_size = kSample;
            mc.level = l;
            std::vector<double> o0(kN), o1(kN), x00(kN), e0(kN), x01(kN), e1(kN);
            base(x.data(), o0.data(), mc);
            cg(x.data(), o1.data(), mc);
            gmk::to_x0_eps(p, l, x.data(), o0.data(), x00.data(), e0.data(), kN);
            gmk::to_x0_eps(p, l, x.data(), o1.data(), x01.data(), e1.data(), kN);
            for (std::size_t i = 0; i < kN; i += 7) {
                const double g = std::cos(x[i]);
                CHECK(x01[i] - x00[i] == Approx(l.sigma * l.sigma / l.alpha * 2.5 * g).margin(1e-12));
                CHECK(e1[i] - e0[i] == Approx(-l.sigma * 2.5 * g).margin(1e-12));
            }
        }
    }
}

namespace {
// philox_noise seen only through operator() (whole-array draws).
struct whole_only {
    gmk::philox_noise p;
    template <class T>
    void operator()(T* out, std::size_t n, const gmk::noise_request& r) const {
        p(out, n, r);
    }
};
}  // namespace

TEST_CASE("sample: noise drawn piece by piece equals the whole-array draw", "[diffusion][samplers]") {
    // philox_noise offers fill(): samplers draw it in L1-sized pieces inside their pass and skip
    // unused draws. The same source seen only through operator() gives the same bits.
    const gmk::noise_grid ve = karras_grid(7);
    const std::size_t batch = 3, size = 5000;  // pieces of 2048 do not divide it
    std::vector<float> a(batch * size), b(batch * size);
    auto model = gmk::make_model(prediction::epsilon, [](const float* x, float* out, const gmk::model_call& c) {
        for (std::size_t i = 0; i < c.size(); ++i) out[i] = 0.5f * x[i] + 0.01f * float(i % 7);
    });
    gt::mismatch_log log;
    const auto compare = [&](const char* name, const auto& s) {
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = float(ve.front().sigma) * std::sin(float(i));
        gmk::sample(s, model, ve, gmk::latent<float>(a.data(), batch, size), gmk::philox_noise(9));
        gmk::sample(s, model, ve, gmk::latent<float>(b.data(), batch, size), whole_only{gmk::philox_noise(9)});
        for (std::size_t i = 0; i < a.size(); ++i)
            if (!gt::same_bits(a[i], b[i])) {
                log.add(name, " element ", i, ": ", gt::show(a[i]), " vs ", gt::show(b[i]));
                break;
            }
    };
    compare("ddim eta 0.7", gmk::ddim{0.7, gmk::x0_threshold::none()});
    compare("ddpm", gmk::ddpm{gmk::ddpm_variance::fixed_small, gmk::x0_threshold::none()});
    compare("euler_ancestral", ancestral(1));
    compare("euler churn", euler_with(churn_of(3, 0.1, 10, 1.01, true)));
    compare("heun churn", heun_with(churn_of(3, 0.1, 10, 1.01, true)));
    compare("dpmpp_2m_sde", sde(0.8, gmk::dpm_solver_type::heun));
    compare("euler_maruyama", gmk::euler_maruyama{});
    compare("flow_euler stochastic", gmk::flow_euler{true});
    GMK_REQUIRE_NO_MISMATCH(log);
}
