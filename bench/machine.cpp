// gmk benchmarks, group `machine`: this machine's own limits, measured in the same run as the
// kernels. Absolute times drift on a shared machine; a kernel's throughput as a fraction of a
// limit measured minutes apart holds much better. bench/report.py prints those fractions.
//
//   machine/fma_peak_f32, machine/fma_peak_f64   FMA throughput of one core (FLOP/s)
//   machine/triad_L1, _L2, _DRAM                 a[i] = b[i] + s * c[i] at three working sets
//   machine/read_L1, _L2, _DRAM                  one stream read (the limit of reductions, which
//                                                write nothing and so outrun the triad)
//
// Both use the native backend's vectors directly (not gmk::simd::map), so a limit does not
// depend on the code it is meant to judge.
#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <utility>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;
using B = simd::native;

// ---- FMA peak --------------------------------------------------------------------------------

// Independent dependency chains: a core keeps (FMA latency x FMA pipes) FMAs in flight, 4 x 2 = 8
// on Zen 4/5 and Skylake/Ice Lake, 5 x 2 = 10 on Haswell. 16 chains leave margin and, with the two
// operands, fit AVX-512's 32 vector registers; AVX2 has 16, so it gets 12.
#if defined(__AVX512F__)
constexpr std::size_t fma_chains = 16;
#else
constexpr std::size_t fma_chains = 12;
#endif
// FMA steps per chain per benchmark iteration: long enough that the loop and the escape of the
// accumulators at the end of an iteration cost nothing measurable.
constexpr std::size_t fma_steps = 1024;

// One FMA step on every chain, spelled out by the pack expansion so the accumulators stay in
// registers whatever the compiler's unrolling heuristics.
template <class V, std::size_t... K>
inline void fma_step(V (&acc)[sizeof...(K)], const V& a, const V& b, std::index_sequence<K...>) {
    ((acc[K] = simd::fma(acc[K], a, b)), ...);
}

template <class T>
void fma_peak(benchmark::State& state, const char* what) {
    using V = simd::batch<T, B>;
    // acc <- acc * a + b converges to b / (1 - a): no overflow, no subnormals. a and b pass
    // through DoNotOptimize so the compiler cannot know them, and FMA is not associative, so
    // every step must run in order.
    T a = T(0.999);
    T b = T(0.001);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
    const V va = simd::broadcast<B>(a);
    const V vb = simd::broadcast<B>(b);
    V acc[fma_chains];
    for (std::size_t k = 0; k < fma_chains; ++k) acc[k] = simd::broadcast<B>(static_cast<T>(k));
    for (auto _ : state) {
        for (std::size_t s = 0; s < fma_steps; ++s)
            fma_step(acc, va, vb, std::make_index_sequence<fma_chains>{});
        // The results escape once per iteration: the chains cannot be dropped as dead code.
        for (auto& v : acc) benchmark::DoNotOptimize(v);
    }
    constexpr double flops_per_iteration =
        2.0 * static_cast<double>(simd::lanes<T, B>) * fma_chains * fma_steps;
    gmk_bench::set_rate(state, "FLOP/s", flops_per_iteration);
    state.SetLabel(std::string(what) + " FMA peak, one core: " + std::to_string(fma_chains) +
                   " chains of " + simd::backend_name<B>() + " x " +
                   std::to_string(simd::lanes<T, B>) + " lanes");
}

// ---- triad -----------------------------------------------------------------------------------

// a[i] = b[i] + s * c[i] for n elements, n a multiple of 4 vectors, arrays aligned. Unrolled by
// four so the loop overhead does not hide the load/store limit of the L1 case.
void triad_kernel(float* a, const float* b, const float* c, float s, std::size_t n) {
    constexpr std::size_t L = simd::lanes<float, B>;
    const auto vs = simd::broadcast<B>(s);
    for (std::size_t i = 0; i < n; i += 4 * L) {
        simd::store_aligned(a + i, simd::fma(vs, simd::load_aligned<B>(c + i), simd::load_aligned<B>(b + i)));
        simd::store_aligned(a + i + L, simd::fma(vs, simd::load_aligned<B>(c + i + L),
                                                 simd::load_aligned<B>(b + i + L)));
        simd::store_aligned(a + i + 2 * L, simd::fma(vs, simd::load_aligned<B>(c + i + 2 * L),
                                                     simd::load_aligned<B>(b + i + 2 * L)));
        simd::store_aligned(a + i + 3 * L, simd::fma(vs, simd::load_aligned<B>(c + i + 3 * L),
                                                     simd::load_aligned<B>(b + i + 3 * L)));
    }
}

std::string kib(std::size_t bytes) {
    return bytes >= (std::size_t(1) << 20) ? std::to_string(bytes >> 20) + " MiB"
                                           : std::to_string(bytes >> 10) + " KiB";
}

// n elements per array, 3 arrays. The arrays are written once (value-initialised) before timing,
// so no page fault is timed; the same three arrays are reused by every iteration.
void triad(benchmark::State& state, std::size_t n, const char* level) {
    constexpr std::size_t L = simd::lanes<float, B>;
    if (n % (4 * L) != 0) {
        state.SkipWithError("triad: n must be a multiple of 4 vectors");
        return;
    }
    simd::aligned_vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
    float s = 3.0f;
    benchmark::DoNotOptimize(s);
    for (auto _ : state) {
        triad_kernel(a.data(), b.data(), c.data(), s, n);
        // a escapes after every pass: its stores are observable and cannot be elided or merged.
        benchmark::DoNotOptimize(a.data());
        benchmark::ClobberMemory();
    }
    // STREAM's convention: 3 arrays x 4 bytes per element (the write-allocate read of a is not
    // counted, as in STREAM and as in every kernel's bytes/s).
    gmk_bench::set_stream_rates(state, 3.0 * sizeof(float) * n, static_cast<double>(n));
    state.SetLabel(std::string("triad a<-b+s*c float, 3 x ") + kib(n * sizeof(float)) + " (" +
                   level + "), " + simd::backend_name<B>());
}

// ---- read stream -----------------------------------------------------------------------------

// Reads x[0..n) with gmk_bench::read_kernel (16 independent add chains).
void read(benchmark::State& state, std::size_t n, const char* level) {
    constexpr std::size_t L = simd::lanes<float, B>;
    if (n % (16 * L) != 0) {
        state.SkipWithError("read: n must be a multiple of 16 vectors");
        return;
    }
    simd::aligned_vector<float> x(n, 1.0f);
    for (auto _ : state) {
        float r = gmk_bench::read_kernel<B>(x.data(), n);
        benchmark::DoNotOptimize(r);
    }
    gmk_bench::set_stream_rates(state, double(sizeof(float)) * n, static_cast<double>(n));
    state.SetLabel(std::string("read stream float, ") + kib(n * sizeof(float)) + " (" + level +
                   "), " + simd::backend_name<B>());
}

// Working sets: L1 12 KiB (fits every L1d of 32 KiB and up), L2 504 KiB (past L1, inside a 1 MiB
// L2 and the 512 KiB a kernel row of L2 size such as argmax over a 126464-entry vocabulary uses),
// DRAM 384 MiB (12x a 32 MiB L3).
constexpr std::size_t triad_n_L1 = 1024;
constexpr std::size_t triad_n_L2 = 43008;
constexpr std::size_t triad_n_DRAM = std::size_t(1) << 25;

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    benchmark::RegisterBenchmark("machine/fma_peak_f32", fma_peak<float>, "fp32")->MinTime(t);
    benchmark::RegisterBenchmark("machine/fma_peak_f64", fma_peak<double>, "fp64")->MinTime(t);
    benchmark::RegisterBenchmark("machine/triad_L1", triad, triad_n_L1, "L1")->MinTime(t);
    benchmark::RegisterBenchmark("machine/triad_L2", triad, triad_n_L2, "L2")->MinTime(t);
    benchmark::RegisterBenchmark("machine/triad_DRAM", triad, triad_n_DRAM, "DRAM")->MinTime(t);
    // One stream of the same total bytes as the triad at each level.
    benchmark::RegisterBenchmark("machine/read_L1", read, 3 * triad_n_L1, "L1")->MinTime(t);
    benchmark::RegisterBenchmark("machine/read_L2", read, 3 * triad_n_L2, "L2")->MinTime(t);
    benchmark::RegisterBenchmark("machine/read_DRAM", read, 3 * triad_n_DRAM, "DRAM")->MinTime(t);
    return true;
}();

}  // namespace
