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

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

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

}  // namespace gmk_bench
