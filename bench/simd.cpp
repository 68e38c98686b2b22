// gmk benchmarks, group `simd`: the shared loops and reductions of gmk/simd/algorithm.hpp.
// Each row names in its label the machine limit (bench/machine.cpp) it should be read against:
// a reduction against the read stream of the same cache level, a map against the triad, by bytes/s.
#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <string>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;
using simd::native;

// Deterministic data in [lo, hi): the same figures from run to run.
simd::aligned_vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    simd::aligned_vector<float> x(n);
    for (auto& v : x) v = dist(rng);
    return x;
}

std::string label(const char* limit, const char* backend, const char* extra = nullptr) {
    std::string s = std::string("limit=") + limit + " backend=" + backend;
    if (extra != nullptr) s += std::string(" ") + extra;
    return s;
}

std::size_t size_arg(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

// ---- reductions: one stream read, 4 bytes per float ------------------------------------------

template <class B>
void sum_f32(benchmark::State& state, const char* limit, const char* peer) {
    const std::size_t n = size_arg(state);
    const auto x = uniform(n, -1.0f, 1.0f, 1);
    for (auto _ : state) {
        float r = simd::sum<B>(x.data(), n);
        benchmark::DoNotOptimize(r);
    }
    gmk_bench::set_stream_rates(state, 4.0 * n, static_cast<double>(n));
    state.SetLabel(label(limit, simd::backend_name<B>(), peer));
}

void max_value_f32(benchmark::State& state, const char* limit) {
    const std::size_t n = size_arg(state);
    const auto x = uniform(n, -1.0f, 1.0f, 2);
    for (auto _ : state) {
        float r = simd::max_value(x.data(), n);
        benchmark::DoNotOptimize(r);
    }
    gmk_bench::set_stream_rates(state, 4.0 * n, static_cast<double>(n));
    state.SetLabel(label(limit, simd::backend_name<native>()));
}

// argmax is a max pass then a search pass up to the maximum. The maximum is planted in the
// middle: the expected cost for a uniformly placed maximum (1.5 passes), the same every run.
// bytes/s counts the one pass over the row a caller asks for (4n).
void argmax_f32(benchmark::State& state, const char* limit) {
    const std::size_t n = size_arg(state);
    auto x = uniform(n, -1.0f, 1.0f, 3);
    x[n / 2] = 2.0f;
    for (auto _ : state) {
        std::size_t r = simd::argmax(x.data(), n);
        benchmark::DoNotOptimize(r);
    }
    gmk_bench::set_stream_rates(state, 4.0 * n, static_cast<double>(n));
    state.SetLabel(label(limit, simd::backend_name<native>(), "max_at=n/2"));
}

// ---- map ---------------------------------------------------------------------------------------

// y = a * x + b with a scalar a: two streams read, one written (12 bytes per element), the
// access pattern of the triad.
void map_axpy_f32(benchmark::State& state, const char* limit) {
    const std::size_t n = size_arg(state);
    const auto x = uniform(n, -1.0f, 1.0f, 4);
    const auto b = uniform(n, -1.0f, 1.0f, 5);
    simd::aligned_vector<float> y(n, 0.0f);
    float a = 0.5f;
    benchmark::DoNotOptimize(a);
    for (auto _ : state) {
        simd::map(n, simd::out(y.data()), simd::in(x.data(), b.data()), [a](const auto& xv, const auto& bv) {
            return simd::fma(decltype(xv + bv)(a), xv, bv);
        });
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, 12.0 * n, static_cast<double>(n));
    state.SetLabel(label(limit, simd::backend_name<native>()));
}

// y = exp(x): bound by the polynomial, not by memory, and its flop count is the library's
// business, so only items/s and no limit.
void map_exp_f32(benchmark::State& state) {
    const std::size_t n = size_arg(state);
    const auto x = uniform(n, -10.0f, 10.0f, 6);
    simd::aligned_vector<float> y(n, 0.0f);
    for (auto _ : state) {
        simd::map(n, simd::out(y.data()), simd::in(x.data()), [](const auto& v) { return simd::exp(v); });
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_rate(state, "items/s", static_cast<double>(n));
    state.SetLabel(label("none", simd::backend_name<native>()));
}

// Sizes: L1 rows 4096 floats (16 KiB) for one stream, 1024 per array (12 KiB, as machine/triad_L1)
// for three; DRAM rows move 384 MiB per pass, as machine/read_DRAM and machine/triad_DRAM do
// (12 times a 32 MiB L3): 3 x 2^25 floats in one stream, 2^25 per array in three; argmax over one
// 126464-entry vocabulary row (494 KiB, as machine/read_L2) of a diffusion LLM.
constexpr long n_L1_one_stream = 4096;
constexpr long n_L1_three_streams = 1024;
constexpr long n_DRAM_one_stream = 3L << 25;
constexpr long n_DRAM_three_streams = 1L << 25;
constexpr long n_vocabulary = 126464;

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    // The native row names the scalar row as its peer: "vs peer" is the SIMD speed-up.
    benchmark::RegisterBenchmark("simd/sum_f32", sum_f32<native>, "machine/read_L1",
                                 "peer=simd/sum_f32_scalar/4096")
        ->Arg(n_L1_one_stream)->MinTime(t);
    benchmark::RegisterBenchmark("simd/sum_f32", sum_f32<native>, "machine/read_DRAM", nullptr)
        ->Arg(n_DRAM_one_stream)->MinTime(t);
    benchmark::RegisterBenchmark("simd/sum_f32_scalar", sum_f32<simd::scalar>, "machine/read_L1", nullptr)
        ->Arg(n_L1_one_stream)->MinTime(t);
    benchmark::RegisterBenchmark("simd/max_value_f32", max_value_f32, "machine/read_L1")
        ->Arg(n_L1_one_stream)->MinTime(t);
    benchmark::RegisterBenchmark("simd/argmax_f32", argmax_f32, "machine/read_L2")
        ->Arg(n_vocabulary)->MinTime(t);
    benchmark::RegisterBenchmark("simd/map_axpy_f32", map_axpy_f32, "machine/triad_L1")
        ->Arg(n_L1_three_streams)->MinTime(t);
    benchmark::RegisterBenchmark("simd/map_axpy_f32", map_axpy_f32, "machine/triad_DRAM")
        ->Arg(n_DRAM_three_streams)->MinTime(t);
    benchmark::RegisterBenchmark("simd/map_exp_f32", map_exp_f32)->Arg(n_L1_three_streams)->MinTime(t);
    return true;
}();

}  // namespace
