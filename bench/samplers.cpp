// gmk benchmarks, group `samplers`: the cost of one sampler step of gmk::sample, everything but
// the network: a 1 x 4 x 128 x 128 latent (65536 elements, 256 KiB of float per array) and a
// trivial denoiser (one pass: out = x * a / (a^2 + s^2), E[x0 | x] for unit-normal data, so
// each run is a real sampling whose result is checked to have a standard deviation near 1).
//
// How a step is timed. Each row runs gmk::sample as a user does (a sampler_workspace made before
// timing, sample_options at their defaults: check_finite = true) over a 1000-step grid, and one
// benchmark iteration is one step: the progress callback, which sample() calls after every step,
// asks the benchmark for the next iteration (KeepRunningBatch) and stops sampling when there is
// none. So the time column is the time per step, every step of the grid is taken in turn on a
// latent at that step's noise level (a multistep solver runs its second-order update; its one
// first-order start per 1000 steps is in the figure), and when the grid ends x is reset to the
// initial noise with timing paused and sampling starts again. sample()'s own per-call setup
// (argument and grid checks) falls on one step in 1000.
//
// Bytes per step, STREAM's convention: latent-sized arrays read or written once each (no
// write-allocate traffic), times the element size, per latent element, counting the model's
// pass. In arrays (x 4 B for float, x 8 B for double):
//   model                      read x, write out                                   2
//   first-order step           read x, out; write x, denoised                      4
//   noise (stochastic)         drawn in 2048-element pieces inside the step's pass (philox_noise
//                              has fill()): L1-resident, not counted                0
//   + history (dpmpp_2m)       read the previous denoised                          1
//   churn (euler with churn)   read x; write x (before the model)                  2
//   heun's second evaluation   predictor: read x, out, write x2, denoised (4); the model on x2
//                              (2); corrector: read x, denoised, x2, out, write x (5)
// so 6 arrays (24 B) for a first-order step and for ancestral and SDE steps, 7 for dpmpp_2m and
// dpmpp_2m_sde, 8 for euler with churn, 13 for heun (6.5 per model evaluation). Each
// row's label spells its count (B/elem) and names the triad of this file whose working set is
// the step's as its limit (arrays of 256 KiB: 2 for the model alone, 3 for a first-order step,
// 4 with one more array: the history or Heun's x2). The steps live in
// L2 (1 MiB a core on Zen 4) or just past it, where the machine/triad_* rows of
// gmk_bench_machine (12 KiB, 504 KiB, 384 MiB) do not sit; the triads here are measured by this
// executable, in the same run, with the kernel of machine.cpp.
//
// The noise fill alone (random::normal_fill of 65536 elements, what gmk::philox_noise does per
// step) is a row, so that "stochastic step <= noise fill + 1.5 x deterministic step" reads off
// the table. The peers (k-diffusion and diffusers on torch CPU, one thread, the same latent and
// denoiser) are timed by bench/peers/samplers.py.
//
// Allocation. This executable counts heap allocations (operator new is replaced below); each
// row reports those made inside its steps (allocs/step, counter and label) and those of one
// sample() call outside the steps (allocs/call).
#include <gmk/diffusion/model.hpp>
#include <gmk/diffusion/noise_levels.hpp>
#include <gmk/diffusion/sample.hpp>
#include <gmk/diffusion/samplers.hpp>
#include <gmk/random/fill.hpp>
#include <gmk/random/noise.hpp>
#include <gmk/random/philox_generator.hpp>
#include <gmk/schedules/betas.hpp>
#include <gmk/schedules/flow.hpp>
#include <gmk/schedules/sigmas.hpp>
#include <gmk/schedules/timesteps.hpp>
#include <gmk/simd/memory.hpp>
#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "common.hpp"

// ---- allocation counter ----------------------------------------------------------------------

// Every form of operator new goes through counted_alloc: malloc, aligned by hand, the block's
// start kept just before the pointer returned (portable, and one operator delete for all forms).
namespace {
std::size_t heap_allocations = 0;  // operator new calls so far (the benchmarks run on one thread)

void* counted_alloc(std::size_t n, std::size_t align) {
    ++heap_allocations;
    if (align < alignof(std::max_align_t)) align = alignof(std::max_align_t);
    void* raw = std::malloc(n + align + sizeof(void*));
    if (raw == nullptr) throw std::bad_alloc();
    const std::uintptr_t at = (reinterpret_cast<std::uintptr_t>(raw) + sizeof(void*) + align - 1) & ~(std::uintptr_t(align) - 1);
    reinterpret_cast<void**>(at)[-1] = raw;
    return reinterpret_cast<void*>(at);
}

void counted_free(void* p) noexcept {
    if (p != nullptr) std::free(static_cast<void**>(p)[-1]);
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }

namespace {

namespace simd = gmk::simd;
using B = simd::native;

constexpr std::size_t latent_size = 1 * 4 * 128 * 128;
constexpr std::size_t grid_steps = 1000;

const char* type_name(float) { return "f32"; }
const char* type_name(double) { return "f64"; }

// ---- triad (the limit) ---------------------------------------------------------------------

// machine.cpp's triad a[i] = b[i] + s * c[i] (native vectors, aligned, unrolled by four), for
// float or double.
template <class T>
void triad_kernel(T* a, const T* b, const T* c, T s, std::size_t n) {
    constexpr std::size_t L = simd::lanes<T, B>;
    const auto vs = simd::broadcast<B>(s);
    for (std::size_t i = 0; i < n; i += 4 * L) {
        simd::store_aligned(a + i, simd::fma(vs, simd::load_aligned<B>(c + i), simd::load_aligned<B>(b + i)));
        simd::store_aligned(a + i + L, simd::fma(vs, simd::load_aligned<B>(c + i + L), simd::load_aligned<B>(b + i + L)));
        simd::store_aligned(a + i + 2 * L,
                            simd::fma(vs, simd::load_aligned<B>(c + i + 2 * L), simd::load_aligned<B>(b + i + 2 * L)));
        simd::store_aligned(a + i + 3 * L,
                            simd::fma(vs, simd::load_aligned<B>(c + i + 3 * L), simd::load_aligned<B>(b + i + 3 * L)));
    }
}

// Elements per triad array for a working set of `latents` latent-sized arrays (3 triad arrays),
// a multiple of 4 vectors.
template <class T>
constexpr std::size_t triad_size(std::size_t latents) {
    constexpr std::size_t q = 4 * simd::lanes<T, B>;
    return latents * latent_size / 3 / q * q;
}

template <class T>
std::string triad_name(std::size_t latents) {
    return std::string("samplers/triad_") + type_name(T()) + "/" + std::to_string(triad_size<T>(latents));
}

template <class T>
void triad(benchmark::State& state, std::size_t latents) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    simd::aligned_vector<T> a(n, T(0)), b(n, T(1)), c(n, T(2));
    T s = T(3);
    benchmark::DoNotOptimize(s);
    for (auto _ : state) {
        triad_kernel(a.data(), b.data(), c.data(), s, n);
        benchmark::DoNotOptimize(a.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, 3.0 * sizeof(T) * n, double(n));
    state.SetLabel("limit=none triad a<-b+s*c " + std::string(type_name(T())) + ", 3 x " +
                   std::to_string(n * sizeof(T) / 1024) + " KiB: the working set of " + std::to_string(latents) +
                   " latent-sized arrays, " + simd::backend_name<B>());
}

// ---- grids, model --------------------------------------------------------------------------

// k-diffusion's Karras sigmas (VE), SD 1.x's DDPM schedule with trailing timesteps (VP), and
// rectified flow's linear t (flow), 1000 steps each, ending at sigma = 0.
const gmk::noise_grid& ve_grid() {
    static const gmk::noise_grid g = [] {
        const auto sigmas = gmk::sigmas_karras(grid_steps, 0.03, 14.6);
        return gmk::noise_grid::ve(sigmas);
    }();
    return g;
}
const gmk::noise_grid& vp_grid() {
    static const gmk::noise_grid g = [] {
        const auto betas = gmk::betas(gmk::beta_schedule::scaled_linear, 1000, 0.00085, 0.012);
        const auto ac = gmk::alphas_cumprod(betas);
        const auto ts = gmk::timesteps(gmk::timestep_spacing::trailing, 1000, grid_steps);
        return gmk::noise_grid::vp(ac, ts);
    }();
    return g;
}
const gmk::noise_grid& flow_grid() {
    static const gmk::noise_grid g = [] {
        const auto ts = gmk::sigmas_flow(grid_steps);
        return gmk::noise_grid::flow(ts);
    }();
    return g;
}

// The exact denoiser of unit-normal data, x = a x0 + s eps: E[x0 | x] = a x / (a^2 + s^2). One
// pass over the latent (read x, write out); allocates nothing.
struct gaussian_denoiser {
    template <class T>
    void operator()(const T* x, T* out, const gmk::model_call& call) const {
        const double a = call.level.alpha, s = call.level.sigma;
        const T c = static_cast<T>(a / (a * a + s * s));
        simd::map<B>(call.size(), simd::out(out), simd::in(x),
                     [c](const auto& v) { return v * std::decay_t<decltype(v)>(c); });
    }
};

auto make_denoiser() { return gmk::make_model(gmk::prediction::sample, gaussian_denoiser{}); }

template <class T>
simd::aligned_vector<T> initial_noise(const gmk::noise_level& l) {
    simd::aligned_vector<T> x(latent_size);
    gmk::philox_generator(7).randn(x.data(), x.size());
    const T scale = static_cast<T>(std::sqrt(l.alpha * l.alpha + l.sigma * l.sigma));
    for (auto& v : x) v *= scale;
    return x;
}

template <class T>
double standard_deviation(const T* x, std::size_t n) {
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        s += double(x[i]);
        s2 += double(x[i]) * double(x[i]);
    }
    const double m = s / double(n);
    return std::sqrt(std::max(s2 / double(n) - m * m, 0.0));
}

// ---- sampler steps -------------------------------------------------------------------------

struct row {
    double passes;            // latent-sized arrays read or written per iteration (a step, or a model evaluation)
    std::size_t latents;      // working set in latent-sized arrays: the triad to compare with
    const char* counted;      // which passes `passes` counts
    bool per_evaluation = false;  // heun: an iteration is a model evaluation (2 per step, 1 into sigma = 0)
    bool check_finite = true;     // sample_options::check_finite (the default: what users run)
    // Whether the row's untimed check run was done: once per row, not once per trial run that
    // Google Benchmark makes to size the iteration count.
    std::shared_ptr<bool> checked = std::make_shared<bool>(false);
};

template <class T, class Sampler, class Noise>
void sampler_steps(benchmark::State& state, Sampler sampler, const gmk::noise_grid* grid_ptr, Noise noise, row r) {
    const gmk::noise_grid& grid = *grid_ptr;
    const std::size_t n = latent_size;
    const auto x_init = initial_noise<T>(grid[0]);
    simd::aligned_vector<T> x(x_init);
    const gmk::latent<T> lat(x.data(), 1, n);
    auto model = make_denoiser();
    gmk::sampler_workspace<T> workspace;
    workspace.reserve(sampler, lat);
    gmk::sample_options options;
    options.check_finite = r.check_finite;
    // Iterations that step i counts for: 1, or its model evaluations (heun: 2, 1 into sigma = 0).
    const auto units = [&](std::size_t i) -> benchmark::IterationCount {
        return r.per_evaluation && grid[i + 1].sigma > 0 ? 2 : 1;
    };

    // Untimed, once per row: one whole run, to check that it samples: the result's standard
    // deviation is near 1 (0.70 for flow_euler's stochastic mode, x' = a' D + s' z, which
    // replaces the noise each step and so under-disperses: diffusers' stochastic_sampling).
    if (!*r.checked) {
        *r.checked = true;
        const gmk::sample_result res = gmk::sample<B>(sampler, model, grid, lat, noise, workspace, options);
        const double sd = standard_deviation(x.data(), n);
        if (res.steps_taken != grid.steps() || !(sd > 0.6 && sd < 1.2)) {
            state.SkipWithError(("the sampler did not sample: std " + std::to_string(sd) + " after " +
                                 std::to_string(res.steps_taken) + " steps")
                                    .c_str());
            return;
        }
    }

    std::size_t calls = 0, call_allocs = 0, step_allocs = 0, seen = 0;
    bool running = state.KeepRunningBatch(units(0));
    const auto progress = [&](const gmk::sample_progress<T>& p) {
        // Allocations since the previous step's callback: this step's own (the first step of a
        // call also carries sample()'s setup, counted per call below).
        const std::size_t now = heap_allocations;
        if (p.step != 0) step_allocs += now - seen;
        seen = now;
        running = state.KeepRunningBatch(units((p.step + 1) % p.steps));
        return running;
    };
    while (running) {
        state.PauseTiming();
        std::copy(x_init.begin(), x_init.end(), x.begin());
        state.ResumeTiming();
        const std::size_t before = heap_allocations, step_before = step_allocs;
        gmk::sample<B>(sampler, model, grid, lat, noise, workspace, options, progress);
        call_allocs += heap_allocations - before - (step_allocs - step_before);
        ++calls;
    }
    benchmark::DoNotOptimize(x.data());

    const double iterations = double(state.iterations());
    gmk_bench::set_stream_rates(state, r.passes * sizeof(T) * double(n), double(n));
    const double per_step = double(step_allocs) / iterations, per_call = double(call_allocs) / double(calls);
    state.counters["allocs/step"] = per_step;
    state.counters["allocs/call"] = per_call;
    char a[64];
    std::snprintf(a, sizeof a, " allocs/step=%.3g allocs/call=%.3g", per_step, per_call);
    char b[64];
    std::snprintf(b, sizeof b, " B/elem=%g = %g arrays x %zu B", r.passes * sizeof(T), r.passes, sizeof(T));
    state.SetLabel("limit=" + triad_name<T>(r.latents) + b + " (" + r.counted + ")" + a + " grid=" +
                   std::to_string(grid.steps()) + " check_finite=" + (r.check_finite ? "true" : "false"));
}

// ---- the model alone, the noise fill alone -------------------------------------------------

template <class T>
void model_alone(benchmark::State& state) {
    const std::size_t n = latent_size;
    const auto x = initial_noise<T>(gmk::noise_level{1, 1, 0});
    simd::aligned_vector<T> out(n);
    auto model = make_denoiser();
    gmk::model_call call;
    call.level = gmk::noise_level{1, 3, 3};
    call.steps = grid_steps;
    call.sample_size = n;
    for (auto _ : state) {
        model(x.data(), out.data(), call);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, 2.0 * sizeof(T) * n, double(n));
    state.SetLabel("limit=" + triad_name<T>(2) + " B/elem=" + std::to_string(2 * sizeof(T)) +
                   " (read x, write out) out = x * a/(a^2+s^2)");
}

// What gmk::philox_noise does for a step: random::normal_fill of the step's Philox stream.
template <class T>
void noise_fill(benchmark::State& state) {
    const std::size_t n = latent_size;
    simd::aligned_vector<T> z(n);
    std::uint64_t step = 0;
    const std::size_t before = heap_allocations;
    for (auto _ : state) {
        gmk::random::normal_fill<B>(gmk::random::philox_stream(42, step++), 0, z.data(), n);
        benchmark::DoNotOptimize(z.data());
        benchmark::ClobberMemory();
    }
    const std::size_t allocs = heap_allocations - before;
    gmk_bench::set_stream_rates(state, double(sizeof(T)) * n, double(n));
    state.counters["allocs/step"] = double(allocs) / double(state.iterations());
    state.SetLabel("limit=none B/elem=" + std::to_string(sizeof(T)) + " (write z) random::normal_fill, " +
                   std::to_string(n) + " normals, as gmk::philox_noise per step");
}

// ---- registration --------------------------------------------------------------------------

template <class T, class Sampler, class Noise>
void add(const std::string& what, Sampler sampler, const gmk::noise_grid& grid, Noise noise, row r, double t) {
    const std::string name = "samplers/" + what + (r.per_evaluation ? "_eval_" : "_step_") + type_name(T());
    benchmark::RegisterBenchmark(name.c_str(), sampler_steps<T, Sampler, Noise>, sampler, &grid, noise, r)->MinTime(t);
}

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    const gmk::philox_noise noise(42);
    const gmk::no_noise none;
    const auto& ve = ve_grid();
    const auto& vp = vp_grid();
    const auto& fl = flow_grid();

    // What the bytes count, per latent element (see the top of the file).
    // What the passes count: latent-sized arrays read or written once per step (see the top).
    const char* first = "model: read x write out 2; step: read x out write x den 4";
    const char* history = "model 2; step: read x out prev write x den 5";
    // philox_noise has fill(): the step draws z in 2048-element pieces inside its pass (L1), so
    // z is not a latent-sized stream.
    const char* noisy = "model 2; step: read x out write x den 4 (z in L1 pieces)";
    const char* noisy_history = "model 2; step: read x out prev write x den 5 (z in L1 pieces)";
    const char* churned = "churn: read x write x 2 (z in L1 pieces); model 2; step 4";
    const char* heun_step = "model 2; predictor: read x out write x2 den 4; model 2; corrector: read x den x2 out write x 5";
    const char* heun_eval = "half a step: 13/2 per model evaluation";

    // The limits: triads over the working set of 2 to 5 latent-sized arrays.
    // (Google Benchmark appends the Arg to the name: samplers/triad_f32/65536, as triad_name.)
    for (std::size_t latents : {2, 3, 4, 5})
        benchmark::RegisterBenchmark("samplers/triad_f32", triad<float>, latents)
            ->Arg(static_cast<std::int64_t>(triad_size<float>(latents)))
            ->MinTime(t);
    for (std::size_t latents : {3, 4})
        benchmark::RegisterBenchmark("samplers/triad_f64", triad<double>, latents)
            ->Arg(static_cast<std::int64_t>(triad_size<double>(latents)))
            ->MinTime(t);

    benchmark::RegisterBenchmark("samplers/model_f32", model_alone<float>)->MinTime(t);
    benchmark::RegisterBenchmark("samplers/noise_fill_f32", noise_fill<float>)->MinTime(t);

    gmk::ddim ddim0;
    ddim0.threshold = gmk::x0_threshold::none();
    gmk::ddim ddim1 = ddim0;
    ddim1.eta = 1;
    gmk::ddpm ddpm;
    ddpm.threshold = gmk::x0_threshold::none();
    gmk::flow_euler flow_sde;
    flow_sde.stochastic = true;
    gmk::euler euler_churn;
    euler_churn.s_churn = 1;

    // Deterministic steps.
    add<float>("ddim", ddim0, vp, none, {6, 3, first}, t);
    add<float>("euler", gmk::euler{}, ve, none, {6, 3, first}, t);
    add<float>("flow_euler", gmk::flow_euler{}, fl, none, {6, 3, first}, t);
    add<float>("probability_flow_euler", gmk::probability_flow_euler{}, ve, none, {6, 3, first}, t);
    add<float>("dpmpp_2m", gmk::dpmpp_2m{}, ve, none, {7, 4, history}, t);
    add<float>("heun", gmk::heun{}, ve, none, {13, 4, heun_step}, t);
    add<float>("heun", gmk::heun{}, ve, none, {6.5, 4, heun_eval, true}, t);
    // The same Euler step without the finiteness check, to show what the check costs.
    add<float>("euler_unchecked", gmk::euler{}, ve, none, {6, 3, first, false, false}, t);

    // Stochastic steps, with gmk::philox_noise.
    add<float>("ddpm", ddpm, vp, noise, {6, 3, noisy}, t);
    add<float>("ddim_eta1", ddim1, vp, noise, {6, 3, noisy}, t);
    add<float>("euler_ancestral", gmk::euler_ancestral{}, ve, noise, {6, 3, noisy}, t);
    add<float>("dpmpp_2m_sde", gmk::dpmpp_2m_sde{}, ve, noise, {7, 4, noisy_history}, t);
    add<float>("euler_maruyama", gmk::euler_maruyama{}, ve, noise, {6, 3, noisy}, t);
    add<float>("flow_euler_stochastic", flow_sde, fl, noise, {6, 3, noisy}, t);
    add<float>("euler_churn", euler_churn, ve, noise, {8, 3, churned}, t);
    // Churn on a VP grid: the raised level's model time is interpolated over the grid's levels.
    add<float>("euler_churn_vp", euler_churn, vp, noise, {8, 3, churned}, t);

    // Double.
    benchmark::RegisterBenchmark("samplers/noise_fill_f64", noise_fill<double>)->MinTime(t);
    add<double>("ddim", ddim0, vp, none, {6, 3, first}, t);
    add<double>("euler", gmk::euler{}, ve, none, {6, 3, first}, t);
    add<double>("euler_ancestral", gmk::euler_ancestral{}, ve, noise, {6, 3, noisy}, t);
    return true;
}();

}  // namespace
