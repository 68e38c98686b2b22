// gmk benchmarks, group `diffusion`: the element-wise kernels a sampler step runs between two
// network calls. A parameterisation reads x and the model output and writes x0_hat and eps_hat
// (16 bytes per float element): read against the triad stream at the same working-set size.
#include <gmk/diffusion/parameterization.hpp>
#include <gmk/diffusion/thresholding.hpp>
#include <gmk/simd/memory.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <string>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;

simd::aligned_vector<float> normal(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist;
    simd::aligned_vector<float> x(n);
    for (auto& v : x) v = dist(rng);
    return x;
}

template <class B>
void to_x0_eps_f32(benchmark::State& state, gmk::prediction p, const char* limit) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto x = normal(n, 1), out = normal(n, 2);
    simd::aligned_vector<float> x0(n), eps(n);
    const gmk::noise_level level{0.8, 0.6, 500.0};
    for (auto _ : state) {
        gmk::to_x0_eps<B>(p, level, x.data(), out.data(), x0.data(), eps.data(), n);
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, 16.0 * n, double(n));
    state.SetLabel(std::string("limit=") + limit + " backend=" + simd::backend_name<B>() + " prediction=" +
                   gmk::prediction_name(p));
}

// Dynamic thresholding of a batch of 4 SD latents (4 x 64 x 64 each): a quantile by selection
// per sample, then a clamp and scale.
void dynamic_threshold_f32(benchmark::State& state) {
    const std::size_t batch = 4, size = 4 * 64 * 64;
    const auto init = normal(batch * size, 3);
    simd::aligned_vector<float> x0(batch * size), scratch(size);
    for (auto _ : state) {
        state.PauseTiming();
        std::copy(init.begin(), init.end(), x0.begin());
        state.ResumeTiming();
        gmk::dynamic_threshold(x0.data(), batch, size, scratch.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_rate(state, "items/s", double(batch * size));
    state.SetLabel("limit=none ratio=0.995");
}

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    // 2^14 floats: 4 arrays of 64 KiB, an L2 working set (machine/triad_L2 moves 3 x 128 KiB);
    // 2^24: 256 MiB, DRAM.
    benchmark::RegisterBenchmark("diffusion/to_x0_eps_f32/epsilon", to_x0_eps_f32<simd::native>,
                                 gmk::prediction::epsilon, "machine/triad_L2")
        ->Arg(1 << 14)->MinTime(t);
    benchmark::RegisterBenchmark("diffusion/to_x0_eps_f32/v", to_x0_eps_f32<simd::native>, gmk::prediction::v,
                                 "machine/triad_L2")
        ->Arg(1 << 14)->MinTime(t);
    benchmark::RegisterBenchmark("diffusion/to_x0_eps_f32/epsilon", to_x0_eps_f32<simd::native>,
                                 gmk::prediction::epsilon, "machine/triad_DRAM")
        ->Arg(1 << 24)->MinTime(t);
    benchmark::RegisterBenchmark("diffusion/dynamic_threshold_f32", dynamic_threshold_f32)->MinTime(t);
    return true;
}();

}  // namespace
