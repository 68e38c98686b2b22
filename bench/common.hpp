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

#include <gmk/core/parallel.hpp>
#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

/// The executor of the `threads:N` rows: serial, OpenMP's, or a pool of std::threads taking
/// tasks one at a time from a shared counter (a thread start costs some 20-50 us: small beside
/// the rows' milliseconds); its name for the labels, and the rows' name suffix.
inline gmk::executor make_executor(int threads) {
    if (threads <= 1) return gmk::executor::serial();
#if defined(_OPENMP)
    return gmk::executor::openmp(threads);
#else
    return gmk::executor([threads](std::size_t count, gmk::task_ref task) {
        std::atomic<std::size_t> next{0};
        const auto work = [&] {
            for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) task(i);
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < threads; ++t) pool.emplace_back(work);
        work();
        for (auto& t : pool) t.join();
    });
#endif
}

inline std::string executor_name(int threads) {
    if (threads <= 1) return "serial";
#if defined(_OPENMP)
    return "openmp(" + std::to_string(threads) + ")";
#else
    return "std::thread(" + std::to_string(threads) + ")";
#endif
}

inline std::string threads_suffix(int threads) { return "/threads:" + std::to_string(threads); }

}  // namespace gmk_bench
