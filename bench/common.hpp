// gmk benchmarks: helpers shared by the bench/*.cpp files (not part of the library).
//
// Conventions every benchmark follows, which bench/report.py relies on:
//   - names are "<topic>/<what>[/<n>]"; the limits measured by gmk_bench_machine are "machine/...";
//   - counters are rates: "FLOP/s", "bytes/s" (bytes the kernel must move, STREAM-style: no
//     write-allocate traffic), "items/s" (elements processed);
//   - the label holds space-separated key=value pairs that the report reads:
//       limit=<machine benchmark name> | none   the machine limit to compare the row with
//       peer=<benchmark name>                    a row to report the time ratio peer/ours against
//     Words without '=' are free text for the reader.
#pragma once

#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <utility>

namespace gmk_bench {

/// Minimum measuring time of each benchmark, in seconds: `fallback`, or the value of the
/// environment variable GMK_BENCH_MIN_TIME. A benchmark's own MinTime overrides the
/// --benchmark_min_time flag, so bench/report.py --min-time sets this variable as well.
inline double min_time(double fallback = 0.2) {
    if (const char* s = std::getenv("GMK_BENCH_MIN_TIME")) {
        char* end = nullptr;
        const double t = std::strtod(s, &end);
        if (end != s && t > 0) return t;
    }
    return fallback;
}

/// Sets the counter `name` to `per_iteration` x iterations, reported per second.
inline void set_rate(benchmark::State& state, const char* name, double per_iteration) {
    state.counters[name] = benchmark::Counter(per_iteration * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

/// Sets "bytes/s" and "items/s" for a pass over `items` elements that moves `bytes` bytes.
inline void set_stream_rates(benchmark::State& state, double bytes, double items) {
    set_rate(state, "bytes/s", bytes);
    set_rate(state, "items/s", items);
}

/// The read stream's kernel: x[0..n) (aligned, n a multiple of 16 lanes) into 16 independent add
/// chains, enough to issue two loads a cycle against a 3-4 cycle add latency, so the loads, not
/// the adds, set the pace. Returns the sum (so the reads are not optimised away).
template <class B, std::size_t... K>
float read_kernel(const float* x, std::size_t n, std::index_sequence<K...>) {
    namespace simd = gmk::simd;
    constexpr std::size_t L = simd::lanes<float, B>;
    constexpr std::size_t U = sizeof...(K);
    simd::batch<float, B> acc[U] = {simd::broadcast<B>(float(K) * 0.0f)...};
    for (std::size_t i = 0; i < n; i += U * L) ((acc[K] += simd::load_aligned<B>(x + i + K * L)), ...);
    return simd::reduce_add((acc[K] + ...));
}
template <class B>
float read_kernel(const float* x, std::size_t n) {
    return read_kernel<B>(x, n, std::make_index_sequence<16>{});
}

}  // namespace gmk_bench
