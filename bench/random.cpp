// gmk benchmarks, group `random`: normal and uniform fills of gmk's Philox stream, the
// torch-compatible generators, and Brownian-tree increments. Compute-bound (a fill writes 4 or
// 8 bytes per element, far below the write bandwidth), so rows carry no machine limit; the
// ratios are to std::normal_distribution over std::mt19937 measured in the same run.
#include <gmk/random/noise.hpp>
#include <gmk/random/philox_generator.hpp>
#include <gmk/random/torch_cpu.hpp>
#include <gmk/random/torch_cuda.hpp>
#include <gmk/simd/memory.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <string>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;

constexpr long n_noise = 1L << 20;  // a 1024 x 1024 latent, or 16 SD latents of 4 x 128 x 128

std::size_t size_arg(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

template <class T>
void finish(benchmark::State& state, T* out, std::size_t n, const std::string& label) {
    benchmark::DoNotOptimize(out);
    gmk_bench::set_rate(state, "items/s", static_cast<double>(n));
    state.SetLabel("limit=none " + label);
}

template <class B, class T>
void philox_randn(benchmark::State& state, const char* peer) {
    const std::size_t n = size_arg(state);
    simd::aligned_vector<T> x(n);
    gmk::philox_generator g(42);
    for (auto _ : state) {
        g.randn<B>(x.data(), n);
        benchmark::ClobberMemory();
    }
    finish(state, x.data(), n, std::string("backend=") + simd::backend_name<B>() + (peer ? std::string(" ") + peer : ""));
}

template <class T>
void philox_rand(benchmark::State& state) {
    const std::size_t n = size_arg(state);
    simd::aligned_vector<T> x(n);
    gmk::philox_generator g(42);
    for (auto _ : state) {
        g.rand(x.data(), n);
        benchmark::ClobberMemory();
    }
    finish(state, x.data(), n, "peer=random/rand_f32_std_mt19937/1048576");
}

template <class Generator, class T>
void torch_randn(benchmark::State& state, Generator g, const char* extra) {
    const std::size_t n = size_arg(state);
    simd::aligned_vector<T> x(n);
    for (auto _ : state) {
        g.randn(x.data(), n);
        benchmark::ClobberMemory();
    }
    finish(state, x.data(), n, std::string("peer=random/randn_f32_std_mt19937/1048576 ") + extra);
}

// The C++ standard library's way: std::normal_distribution (libstdc++: the Marsaglia polar
// method) or std::uniform_real_distribution over std::mt19937.
template <class Distribution>
void std_fill_f32(benchmark::State& state, const char* what) {
    const std::size_t n = size_arg(state);
    simd::aligned_vector<float> x(n);
    std::mt19937 engine(42);
    Distribution dist;
    for (auto _ : state) {
        for (auto& v : x) v = dist(engine);
        benchmark::ClobberMemory();
    }
    finish(state, x.data(), n, what);
}

// One SDE step's noise from a Brownian tree, as a sampler draws it through brownian_noise:
// (W(s') - W(s)) / sqrt(s - s') for an SD latent of 4 x 64 x 64 at depth 32, sigmas walking down
// a geometric grid (W(s) is the previous step's end: one tree descent per step).
void brownian_step_f32(benchmark::State& state) {
    const std::size_t n = size_arg(state);
    const double smin = 0.0292, smax = 14.6146;
    gmk::brownian_noise<float> noise(smin, smax, n, 42);
    simd::aligned_vector<float> x(n);
    double s = smax;
    std::size_t step = 0;
    for (auto _ : state) {
        const double next = s * 0.8 > smin ? s * 0.8 : smin;
        noise(x.data(), n, gmk::noise_request{step++, s, next});
        s = next > smin ? next : smax;
        benchmark::ClobberMemory();
    }
    finish(state, x.data(), n, "depth=32 peer=random/randn_f32_philox/16384");
}

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    const char* vs_std = "peer=random/randn_f32_std_mt19937/1048576";
    benchmark::RegisterBenchmark("random/randn_f32_philox", philox_randn<simd::native, float>, vs_std)
        ->Arg(n_noise)->MinTime(t);
    // An SD latent (4 x 64 x 64): the size a sampler step draws, and the Brownian step's peer.
    benchmark::RegisterBenchmark("random/randn_f32_philox", philox_randn<simd::native, float>, nullptr)
        ->Arg(16384)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f32_philox_scalar", philox_randn<simd::scalar, float>, vs_std)
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f64_philox", philox_randn<simd::native, double>, vs_std)
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/rand_f32_philox", philox_rand<float>)->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f32_std_mt19937", std_fill_f32<std::normal_distribution<float>>,
                                 "std::normal_distribution<float>(std::mt19937)")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/rand_f32_std_mt19937", std_fill_f32<std::uniform_real_distribution<float>>,
                                 "std::uniform_real_distribution<float>(std::mt19937)")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f32_torch_cpu", torch_randn<gmk::torch_cpu_generator, float>,
                                 gmk::torch_cpu_generator(42), "torch.randn(float32,cpu)")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f64_torch_cpu", torch_randn<gmk::torch_cpu_generator, double>,
                                 gmk::torch_cpu_generator(42), "torch.randn(float64,cpu)")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f32_torch_cuda", torch_randn<gmk::torch_cuda_generator, float>,
                                 gmk::torch_cuda_generator(42), "torch.randn(float32,cuda),A1111_layout")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f32_torch_cuda_h200", torch_randn<gmk::torch_cuda_generator, float>,
                                 gmk::torch_cuda_generator(42, {132, 2048}), "torch.randn(float32,cuda),H200_layout")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/randn_f64_torch_cuda", torch_randn<gmk::torch_cuda_generator, double>,
                                 gmk::torch_cuda_generator(42), "torch.randn(float64,cuda)")
        ->Arg(n_noise)->MinTime(t);
    benchmark::RegisterBenchmark("random/brownian_step_f32", brownian_step_f32)->Arg(16384)->MinTime(t);
    return true;
}();

}  // namespace
