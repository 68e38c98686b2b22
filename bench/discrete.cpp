// gmk benchmarks, group `discrete`: the token statistics of one step of the masked
// discrete-diffusion sampler (gmk::discrete::token_statistics_rows) over L = 256 rows of LLaDA's
// vocabulary V = 126464 float32 logits, beside this machine's read bandwidth measured by this
// executable in the same run.
//
// Rows:
//   discrete/read_f32/<MiB>MiB/threads:<n>          one read stream over the logits (the limit)
//   discrete/token_stats/<setting>/threads:<n>      token_statistics_rows on n threads
// Settings (draws by inverse CDF, one uniform per row, at T > 0):
//   T0               temperature 0: argmax, its probability, margin, entropy
//   T1               a draw at T = 1
//   T0.7             a draw at T = 0.7; the untempered model probability as well, so two
//                    exponentials per element
//   T0.7_topp0.95    the same with Dream's top-p 0.95
//   T0_topk50        temperature 0 with top-k 50
//   T0.2_topp0.95    Dream's setting of bench/peers/discrete.py's dream_step_T0.2_topp0.95
//
// The logits (L x V, 123.5 MiB: far past any L3, so every pass over them comes from DRAM) are
// drawn once: normal with standard deviation 3 (as bench/peers/discrete.py draws them) plus, per
// row, three peaked tokens at random positions, the first 12 to 24 above the mean, the next two
// 1 to 4 below the one before (confident rows and undecided ones); fixed seed. Writing them touches
// every page before timing, and one iteration reads all of them, so no iteration finds them in
// cache. One iteration is one sampler step: 256 rows. Rates: bytes/s = L * V * 4 bytes per
// iteration (the logits read once; the 256 results written are not counted), items/s = L * V.
//
// The limit of every row is the read stream over the same logits buffer on the same executor
// (gmk_bench::read_kernel, thread t reading the t-th half), label metric=bytes/s; report.py's
// "of limit" is then the fraction of DRAM read bandwidth measured in the same run. Each T > 0 or
// filtered row names the T0 row of its thread count as peer=, so its "vs peer" is T0's time over
// its own (the inverse of the T>0 / T0 time ratio); each two-thread row names its one-thread row
// first (the speed-up). The torch peers of the whole step (LLaDA's and Dream's per-step sampler
// math, one thread) are timed by bench/peers/discrete.py, which reads report.py's --json output.
//
// Threads: as bench/attention.cpp: gmk::executor::serial() for one thread; for two,
// gmk::executor::openmp(2) when built with OpenMP (bench/CMakeLists.txt links it where the
// compiler has it), a std::thread executor otherwise. Every row is timed in real time. The
// two-thread rows need two otherwise idle cores.
//
// Each row's results are checked once (untimed) on 8 rows against a double-precision reference
// (max, log-sum-exp; at T = 0 the argmax; the probability of the chosen token under q; the
// margin and entropy; the kept set of the filters); a mismatch fails the row. The label gives the
// largest relative error found.
#include <gmk/core/parallel.hpp>
#include <gmk/core/view.hpp>
#include <gmk/discrete/token_stats.hpp>
#include <gmk/random/philox_generator.hpp>
#include <gmk/simd/memory.hpp>
#include <gmk/simd/simd.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;
namespace discrete = gmk::discrete;
using B = simd::native;

constexpr std::size_t rows = 256;     // L: positions of one block
constexpr std::size_t vocab = 126464;  // V: LLaDA's vocabulary
constexpr std::size_t elements = rows * vocab;
constexpr double step_bytes = double(sizeof(float)) * double(elements);

// ---- executors (as bench/attention.cpp) ----------------------------------------------------

using gmk_bench::executor_name;
using gmk_bench::make_executor;
using gmk_bench::threads_suffix;

// ---- the logits ----------------------------------------------------------------------------

struct inputs {
    simd::aligned_vector<float> logits;
    std::vector<double> uniforms;  // one per row, for the draws at T > 0
};

const inputs& the_inputs() {
    static const std::unique_ptr<inputs> in = [] {
        auto p = std::make_unique<inputs>();
        p->logits.resize(elements);
        gmk::philox_generator gen(8);
        gen.randn(p->logits.data(), elements);
        for (float& x : p->logits) x *= 3.0f;
        // Three peaked tokens per row: positions and heights from uniforms.
        std::vector<double> u(rows * 6);
        gen.rand(u.data(), u.size());
        for (std::size_t r = 0; r < rows; ++r) {
            const double* ur = u.data() + 6 * r;
            float* row = p->logits.data() + r * vocab;
            double h = 12.0 + 12.0 * ur[3];
            for (std::size_t j = 0; j < 3; ++j) {
                row[std::min(vocab - 1, std::size_t(ur[j] * double(vocab)))] = float(h);
                h -= 1.0 + 3.0 * ur[4 + (j % 2)];
            }
        }
        p->uniforms.resize(rows);
        gen.rand(p->uniforms.data(), rows);
        return p;
    }();
    return *in;
}

// ---- limit: the read stream over the logits ------------------------------------------------

std::string read_name(int threads) {
    char mib[16];
    std::snprintf(mib, sizeof mib, "%.1f", step_bytes / double(1 << 20));
    return "discrete/read_f32/" + std::string(mib) + "MiB" + threads_suffix(threads);
}

void read_stream(benchmark::State& state, int threads) {
    constexpr std::size_t quantum = 16 * simd::lanes<float, B>;
    const std::size_t per = elements / std::size_t(threads);
    if (elements % std::size_t(threads) != 0 || per % quantum != 0) {
        state.SkipWithError("read: each thread's slice must be a multiple of 16 vectors");
        return;
    }
    const float* x = the_inputs().logits.data();
    const gmk::executor exec = make_executor(threads);
    float sums[8] = {};
    auto task = [&](std::size_t t) { sums[t] = gmk_bench::read_kernel<B>(x + t * per, per); };
    for (auto _ : state) {
        exec.run(static_cast<std::size_t>(threads), gmk::task_ref(task));
        benchmark::DoNotOptimize(sums);
    }
    gmk_bench::set_stream_rates(state, step_bytes, double(elements));
    state.SetLabel("limit=none read stream over the " + std::to_string(rows) + " x " + std::to_string(vocab) +
                   " float logits, " + simd::backend_name<B>() + ", exec=" + executor_name(threads));
}

// ---- the check -----------------------------------------------------------------------------

// The largest relative error of the row's statistics against a double reference, or a negative
// number: -1 when the result is wrong in kind (a token that is not the argmax at T = 0, a kept
// count that breaks the filter's rule).
double row_error(const float* l, const discrete::sampling& s, const discrete::token_stats<float>& got) {
    const double t = s.temperature > 0 ? s.temperature : 1.0;
    const std::size_t top = std::size_t(std::max_element(l, l + vocab) - l);
    const double m = l[top];
    // Tokens in the filters' order: logit descending, index ascending.
    std::vector<std::size_t> order(vocab);
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    std::vector<double> w(vocab);
    double total = 0, raw = 0;
    for (std::size_t v = 0; v < vocab; ++v) {
        w[v] = std::exp((double(l[v]) - m) / t);
        total += w[v];
        raw += std::exp(double(l[v]) - m);
    }
    // The kept prefix of `order`: every token whose preceding mass is at most top_p, then top-k.
    std::size_t kept = vocab;
    if (s.top_p < 1) {
        double cum = 0;
        kept = 0;
        while (kept < vocab && (kept == 0 || cum <= s.top_p * total)) cum += w[order[kept++]];
        // Accept the kernel's count when it is one off at a boundary that float weights decide.
        if (got.kept != kept) {
            double before = 0;
            for (std::size_t i = 0; i + 1 < got.kept; ++i) before += w[order[i]];
            const double next = before + w[order[got.kept - 1]];
            if (std::abs(before / total - s.top_p) > 1e-5 && std::abs(next / total - s.top_p) > 1e-5) return -1;
            kept = got.kept;
        }
    }
    if (s.top_k > 0 && s.top_k < kept) kept = s.top_k;
    if (got.kept != kept) return -1;
    double kept_total = 0, sy = 0;
    for (std::size_t i = 0; i < kept; ++i) kept_total += w[order[i]];
    for (std::size_t i = 0; i < kept; ++i) {
        const double q = w[order[i]] / kept_total;
        if (q > 0) sy += q * std::log(q);
    }
    if (s.temperature == 0 && got.token != top) return -1;
    const auto rank = std::find(order.begin(), order.begin() + std::ptrdiff_t(kept), got.token);
    if (rank == order.begin() + std::ptrdiff_t(kept)) return -1;  // drawn outside the kept set
    const double want_p = w[got.token] / kept_total;
    const double want_model = std::exp(double(l[got.token]) - m) / raw;
    const double want_margin = kept >= 2 ? (w[order[0]] - w[order[1]]) / kept_total : 1.0;
    const auto rel = [](double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); };
    double e = 0;
    e = std::max(e, rel(got.max, m));
    e = std::max(e, rel(got.log_sum_exp, m + std::log(raw)));
    e = std::max(e, rel(got.probability, want_p));
    e = std::max(e, rel(got.model_probability, want_model));
    e = std::max(e, std::abs(got.margin - want_margin));                 // absolute: margins may be ~0
    e = std::max(e, std::abs(got.neg_entropy - sy) / std::max(1.0, -sy));  // relative past 1 nat
    return e;
}

constexpr double tolerance = 1e-5;  // float results of double-accumulated sums

double max_error(const discrete::sampling& s, const std::vector<discrete::token_stats<float>>& out) {
    const inputs& in = the_inputs();
    double worst = 0;
    for (std::size_t r = 0; r < rows; r += rows / 8) {
        const double e = row_error(in.logits.data() + r * vocab, s, out[r]);
        if (e < 0) return -1;
        worst = std::max(worst, e);
    }
    return worst;
}

// ---- rows ----------------------------------------------------------------------------------

struct setting {
    std::string tag;
    discrete::sampling s;
};

std::string stats_name(const setting& c, int threads) { return "discrete/token_stats/" + c.tag + threads_suffix(threads); }

struct row_state {
    std::shared_ptr<double> error = std::make_shared<double>(-2);  // -2: not checked yet
};

std::string error_text(double e) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " max_rel_err=%.2g", e);
    return buf;
}

std::string describe(const discrete::sampling& s) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "T=%g top_p=%g top_k=%zu", s.temperature, s.top_p, s.top_k);
    return buf;
}

void token_stats(benchmark::State& state, setting c, int threads, row_state rs) {
    const inputs& in = the_inputs();
    std::vector<discrete::token_stats<float>> out(rows);
    const gmk::executor exec = make_executor(threads);
    const gmk::matrix_view<const float> logits(in.logits.data(), rows, vocab);
    const gmk::span<const double> uniforms(in.uniforms.data(), rows);
    const gmk::span<discrete::token_stats<float>> results(out.data(), rows);
    const auto run = [&] { discrete::token_statistics_rows<B>(logits, c.s, uniforms, results, exec); };
    run();
    if (*rs.error == -2) *rs.error = max_error(c.s, out);
    if (!(*rs.error >= 0 && *rs.error <= tolerance)) {
        state.SkipWithError(*rs.error < 0 ? "wrong token or kept set" : ("wrong statistics:" + error_text(*rs.error)).c_str());
        return;
    }
    for (auto _ : state) {
        run();
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    gmk_bench::set_stream_rates(state, step_bytes, double(elements));
    std::string peers;
    if (threads > 1) peers += " peer=" + stats_name(c, 1);
    if (c.tag != "T0") peers += " peer=" + stats_name(setting{"T0", {}}, threads);
    std::size_t kept = 0;
    for (const auto& r : out) kept += r.kept;
    state.SetLabel("limit=" + read_name(threads) + " metric=bytes/s" + peers + error_text(*rs.error) + " " +
                   describe(c.s) + " L=" + std::to_string(rows) + " V=" + std::to_string(vocab) +
                   " mean_kept=" + std::to_string(kept / rows) + " exec=" + executor_name(threads) +
                   " backend=" + simd::backend_name<B>());
}

// ---- registration --------------------------------------------------------------------------

discrete::sampling make(double temperature, double top_p = 1, std::size_t top_k = 0) {
    discrete::sampling s;
    s.temperature = temperature;
    s.top_p = top_p;
    s.top_k = top_k;
    return s;
}

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    const int thread_counts[] = {1, 2};
    for (int n : thread_counts)
        benchmark::RegisterBenchmark(read_name(n).c_str(), read_stream, n)->MinTime(t)->UseRealTime();
    const setting settings[] = {
        {"T0", make(0)},
        {"T1", make(1)},
        {"T0.7", make(0.7)},
        {"T0.7_topp0.95", make(0.7, 0.95)},
        {"T0_topk50", make(0, 1, 50)},
        {"T0.2_topp0.95", make(0.2, 0.95)},
    };
    for (const auto& c : settings)
        for (int n : thread_counts)
            benchmark::RegisterBenchmark(stats_name(c, n).c_str(), token_stats, c, n, row_state{})
                ->MinTime(t)
                ->UseRealTime();
    return true;
}();

}  // namespace
