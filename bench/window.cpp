// gmk benchmarks, group `window`: sliding-window maximum over n = 10^7 floats (one core), beside
// a naive O(n k) loop and the std::deque algorithm (LeetCode 239's textbook answer, the peer),
// and the streaming deques in pushes per second. The window/algorithm/* rows time each batch
// algorithm alone: they are the measurements behind the thresholds documented in
// gmk/window/sliding_extremum.hpp (detail::window::brute_force_below).
#include <gmk/window/monotonic_deque.hpp>
#include <gmk/window/sliding_extremum.hpp>
#include <gmk/simd/memory.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <random>
#include <string>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;
namespace gw = gmk::detail::window;
using simd::native;

constexpr long n_rows = 10'000'000;

template <class T>
simd::aligned_vector<T> uniform(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    simd::aligned_vector<T> x(n);
    for (auto& v : x) v = static_cast<T>(dist(rng));
    return x;
}

std::size_t k_arg(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

// 'valid' mode moves 4 bytes in and 4 out per element: read against the DRAM read stream.
void sliding_max_f32(benchmark::State& state) {
    const std::size_t n = n_rows, k = k_arg(state);
    const auto x = uniform<float>(n, 1);
    simd::aligned_vector<float> out(n - k + 1);
    for (auto _ : state) {
        gmk::sliding_max(x.data(), n, k, out.data(), out.size());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, 8.0 * n, double(n));
    state.SetLabel("limit=machine/read_DRAM metric=bytes/s backend=" + std::string(simd::backend_name<native>()) +
                   " peer=window/std_deque_f32/" + std::to_string(k) + " peer=window/naive_f32/" + std::to_string(k));
}

// Every window scanned: k - 1 comparisons per output. Shorter rows for large k keep a run short;
// items/s is per element all the same.
void naive_f32(benchmark::State& state) {
    const std::size_t k = k_arg(state), n = std::min<std::size_t>(n_rows, 400'000'000 / k);
    const auto x = uniform<float>(n, 1);
    simd::aligned_vector<float> out(n - k + 1);
    for (auto _ : state) {
        for (std::size_t j = 0; j + k <= n; ++j) {
            float m = x[j];
            for (std::size_t d = 1; d < k; ++d) m = std::max(m, x[j + d]);
            out[j] = m;
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_rate(state, "items/s", double(n));
    state.SetLabel("limit=none n=" + std::to_string(n));
}

// The textbook monotonic deque on std::deque of indices.
void std_deque_f32(benchmark::State& state) {
    const std::size_t n = n_rows, k = k_arg(state);
    const auto x = uniform<float>(n, 1);
    simd::aligned_vector<float> out(n - k + 1);
    for (auto _ : state) {
        std::deque<std::size_t> dq;
        for (std::size_t i = 0; i < n; ++i) {
            if (!dq.empty() && dq.front() + k <= i) dq.pop_front();
            while (!dq.empty() && x[dq.back()] <= x[i]) dq.pop_back();
            dq.push_back(i);
            if (i + 1 >= k) out[i + 1 - k] = x[dq.front()];
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_rate(state, "items/s", double(n));
    state.SetLabel("limit=none");
}

// Streaming: one push and one read of the extremum per element.
void streaming_deque_f32(benchmark::State& state) {
    const std::size_t n = n_rows, k = k_arg(state);
    const auto x = uniform<float>(n, 1);
    gmk::monotonic_deque<float> dq(k);
    for (auto _ : state) {
        dq.clear();
        float acc = 0;
        for (std::size_t i = 0; i < n; ++i) {
            dq.push(x[i]);
            acc += dq.front();
        }
        benchmark::DoNotOptimize(acc);
    }
    gmk_bench::set_rate(state, "items/s", double(n));
    state.SetLabel("limit=none pushes");
}

void streaming_minmax_f32(benchmark::State& state) {
    const std::size_t n = n_rows, k = k_arg(state);
    const auto x = uniform<float>(n, 1);
    gmk::monotonic_minmax<float> mm(k);
    for (auto _ : state) {
        mm.clear();
        float acc = 0;
        for (std::size_t i = 0; i < n; ++i) {
            mm.push(x[i]);
            acc += mm.max() - mm.min();
        }
        benchmark::DoNotOptimize(acc);
    }
    gmk_bench::set_rate(state, "items/s", double(n));
    state.SetLabel("limit=none pushes Lemire");
}

// One batch algorithm alone, for the thresholds.
template <class T, class B, bool BruteForce>
void algorithm(benchmark::State& state) {
    const std::size_t n = n_rows, k = k_arg(state);
    const auto x = uniform<T>(n, 1);
    simd::aligned_vector<T> out(n - k + 1);
    using Op = gw::extremum<true, gmk::nan_policy::propagate>;
    for (auto _ : state) {
        if constexpr (BruteForce) gw::valid_brute_force<B, Op>(x.data(), n, k, out.data());
        else gw::valid_van_herk<B, Op>(x.data(), n, k, out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_rate(state, "items/s", double(n));
    state.SetLabel("limit=none");
}

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    for (long k : {3, 16, 64, 256, 1024, 4096}) {
        benchmark::RegisterBenchmark("window/sliding_max_f32", sliding_max_f32)->Arg(k)->MinTime(t);
        benchmark::RegisterBenchmark("window/std_deque_f32", std_deque_f32)->Arg(k)->MinTime(t);
        benchmark::RegisterBenchmark("window/naive_f32", naive_f32)->Arg(k)->MinTime(t);
        benchmark::RegisterBenchmark("window/streaming_deque_f32", streaming_deque_f32)->Arg(k)->MinTime(t);
    }
    benchmark::RegisterBenchmark("window/streaming_minmax_f32", streaming_minmax_f32)->Arg(1024)->MinTime(t);
    // van Herk across lanes needs k >= L (16 floats, 8 doubles with AVX-512).
    for (long k : {8, 12, 16, 24, 32, 64}) {
        benchmark::RegisterBenchmark("window/algorithm/brute_force_f32", algorithm<float, native, true>)->Arg(k)->MinTime(t);
        if (k >= 16) benchmark::RegisterBenchmark("window/algorithm/van_herk_f32", algorithm<float, native, false>)->Arg(k)->MinTime(t);
        benchmark::RegisterBenchmark("window/algorithm/brute_force_f64", algorithm<double, native, true>)->Arg(k / 2)->MinTime(t);
        if (k / 2 >= 8) benchmark::RegisterBenchmark("window/algorithm/van_herk_f64", algorithm<double, native, false>)->Arg(k / 2)->MinTime(t);
    }
    for (long k : {2, 4, 6, 8, 12}) {
        benchmark::RegisterBenchmark("window/algorithm/brute_force_f32_scalar", algorithm<float, simd::scalar, true>)->Arg(k)->MinTime(t);
        benchmark::RegisterBenchmark("window/algorithm/van_herk_f32_scalar", algorithm<float, simd::scalar, false>)->Arg(k)->MinTime(t);
    }
    return true;
}();

}  // namespace
