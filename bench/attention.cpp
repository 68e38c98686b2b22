// gmk benchmarks, group `attention`: gmk::flash_attention in float32, beside a naive Eigen
// attention (the peer) and this machine's limits measured by this executable in the same run.
//
// Rows (Q, K, V, O row-major contiguous, [batch, heads, seq, head_dim]; random normal inputs):
//   attention/flash_f32/s<seq>_d<d>[_causal]/threads:<n>   prefill, batch 1, one head, seq_q = seq_k
//   attention/naive_eigen_f32/s<seq>_d<d>[_causal]         the peer, one thread
//   attention/flash_f32/decode_<heads>_k<seq_k>_d128/threads:<n>   seq_q = 1 (one decode step)
//   attention/naive_eigen_f32/decode_<heads>_k<seq_k>_d128
//   attention/fma_peak_f32/threads:<n>        the FMA peak of n cores: the prefill rows' limit
//   attention/read_f32/<MiB>/threads:<n>      one read stream over the decode rows' K and V bytes
//
// FLOPs, the convention of FlashAttention's papers: 4 * seq_q * seq_k * head_dim per query head
// (two matrix products of 2 * seq_q * seq_k * d each; the softmax's exponentials are not
// counted), half of that when causal. So "of limit" is the share of the FMA peak spent on
// useful products, and the causal rows compare with the others.
//
// The naive peer is what one writes with Eigen: S = Q K^T (Eigen's GEMM, single-threaded:
// EIGEN_DONT_PARALLELIZE), the softmax of each row of S in place (max, exp, sum, divide; causal
// rows take only their visible prefix and zero the rest), then O = P V. S is a workspace made
// before timing (64 MiB at seq 4096). For decode the query heads that share a K/V head (GQA)
// are one matrix, so K and V are read once per K/V head as in gmk's kernel. Each flash row's
// label names the naive row of the same shape as peer= (report.py: "vs peer" = the peer's time /
// ours), and each two-thread row names the one-thread row as well, so its "vs peer" starts with
// the speed-up.
//
// Threads. One-thread rows run gmk's kernel on gmk::executor::serial(); two-thread rows on
// gmk::executor::openmp(2) when this executable is built with OpenMP (bench/CMakeLists.txt links
// it where the compiler has it) and on a std::thread executor otherwise; the label says which.
// Every row is timed in real (wall-clock) time, one-thread rows too, so speed-ups are ratios of
// like times. Their limits are measured on the same executor: n tasks of the FMA loop or of the
// read stream over 1/n of the bytes each. The two-thread rows need two otherwise idle cores: a
// core shared with another process stalls every barrier for a scheduler time slice (a few ms).
// attention/fma_peak_f32/threads:2 shows it: read the speed-ups only when that row is close to
// twice attention/fma_peak_f32/threads:1.
//
// Decode (seq_q = 1) reads each K/V row once and does 2 FLOPs per byte read: memory-bound. Those
// rows report bytes/s (K and V, plus Q and O) against a read stream over the same bytes
// (metric=bytes/s), and FLOP/s besides. Shapes: 32 query heads over 8 K/V heads (Llama-3-8B's
// GQA), seq_k 4096 (K + V = 32 MiB) and 32768 (256 MiB), and one head of seq_k 32768 (32 MiB),
// whose only parallelism is splitting the keys.
//
// Every row's output is checked once (untimed) against a double-precision reference on 16 query
// rows (all of them for decode); a mismatch fails the row. The label gives the error found.
//
// torch.nn.functional.scaled_dot_product_attention on the same shapes (one thread) is timed by
// bench/peers/attention.py.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE  // the peer runs on one thread even in an OpenMP build
#endif

#include <gmk/attention/flash_attention.hpp>
#include <gmk/core/parallel.hpp>
#include <gmk/random/philox_generator.hpp>
#include <gmk/simd/memory.hpp>
#include <gmk/simd/simd.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common.hpp"

namespace {

namespace simd = gmk::simd;
using B = simd::native;

// ---- executors -----------------------------------------------------------------------------

using gmk_bench::executor_name;
using gmk_bench::make_executor;
using gmk_bench::threads_suffix;

// ---- limits: FMA peak and read stream (machine.cpp's kernels), on n threads ------------------

#if defined(__AVX512F__)
constexpr std::size_t fma_chains = 16;
#else
constexpr std::size_t fma_chains = 12;
#endif
// FMA steps per chain per task: some 100 us, so an executor's start is lost in it.
constexpr std::size_t fma_steps = 1024 * 64;

template <class V, std::size_t... K>
inline void fma_step(V (&acc)[sizeof...(K)], const V& a, const V& b, std::index_sequence<K...>) {
    ((acc[K] = simd::fma(acc[K], a, b)), ...);
}

void fma_task() {
    using V = simd::batch<float, B>;
    float a = 0.999f, b = 0.001f;
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
    const V va = simd::broadcast<B>(a), vb = simd::broadcast<B>(b);
    V acc[fma_chains];
    for (std::size_t k = 0; k < fma_chains; ++k) acc[k] = simd::broadcast<B>(static_cast<float>(k));
    for (std::size_t s = 0; s < fma_steps; ++s) fma_step(acc, va, vb, std::make_index_sequence<fma_chains>{});
    for (auto& v : acc) benchmark::DoNotOptimize(v);
}

void fma_peak(benchmark::State& state, int threads) {
    const gmk::executor exec = make_executor(threads);
    auto task = [](std::size_t) { fma_task(); };
    for (auto _ : state) exec.run(static_cast<std::size_t>(threads), gmk::task_ref(task));
    const double flops = 2.0 * double(simd::lanes<float, B>) * fma_chains * fma_steps * threads;
    gmk_bench::set_rate(state, "FLOP/s", flops);
    state.SetLabel("limit=none fp32 FMA peak of " + std::to_string(threads) + " core(s): " +
                   std::to_string(fma_chains) + " chains of " + simd::backend_name<B>() + " x " +
                   std::to_string(simd::lanes<float, B>) + " lanes, exec=" + executor_name(threads));
}


constexpr std::size_t read_quantum = 16 * simd::lanes<float, B>;

std::string read_name(std::size_t bytes, int threads) {
    return "attention/read_f32/" + std::to_string(bytes >> 20) + "MiB" + threads_suffix(threads);
}

// Reads `bytes` (a multiple of 16 vectors per thread), thread t its t-th slice.
void read_stream(benchmark::State& state, std::size_t bytes, int threads) {
    const std::size_t n = bytes / sizeof(float), per = n / std::size_t(threads);
    if (per % read_quantum != 0) {
        state.SkipWithError("read: each thread's slice must be a multiple of 16 vectors");
        return;
    }
    simd::aligned_vector<float> x(n, 1.0f);
    const gmk::executor exec = make_executor(threads);
    float sums[8] = {};
    auto task = [&](std::size_t t) { sums[t] = gmk_bench::read_kernel<B>(x.data() + t * per, per); };
    for (auto _ : state) {
        exec.run(static_cast<std::size_t>(threads), gmk::task_ref(task));
        benchmark::DoNotOptimize(sums);
    }
    gmk_bench::set_stream_rates(state, double(bytes), double(n));
    state.SetLabel("limit=none read stream float, " + std::to_string(bytes >> 20) +
                   " MiB (the K and V of the decode rows), " + simd::backend_name<B>() + ", exec=" +
                   executor_name(threads));
}

// ---- problems ------------------------------------------------------------------------------

struct problem {
    gmk::attention_shape shape;
    bool causal = false;

    std::size_t q_size() const { return shape.batch * shape.heads_q * shape.seq_q * shape.head_dim; }
    std::size_t kv_size() const { return shape.batch * shape.heads_kv * shape.seq_k * shape.head_dim; }
    // 4 * seq_q * seq_k * d per query head, half when causal.
    double flops() const {
        const auto& s = shape;
        return 4.0 * double(s.batch * s.heads_q) * double(s.seq_q) * double(s.seq_k) * double(s.head_dim) *
               (causal ? 0.5 : 1.0);
    }
    // K and V read once, Q read and O written.
    double bytes() const { return sizeof(float) * (2.0 * double(kv_size()) + 2.0 * double(q_size())); }
    bool decode() const { return shape.seq_q == 1; }
    std::string tag() const {
        const auto& s = shape;
        if (decode())
            return "decode_h" + std::to_string(s.heads_q) +
                   (s.heads_kv != s.heads_q ? "kv" + std::to_string(s.heads_kv) : std::string()) + "_k" +
                   std::to_string(s.seq_k) + "_d" + std::to_string(s.head_dim);
        return "s" + std::to_string(s.seq_q) + "_d" + std::to_string(s.head_dim) + (causal ? "_causal" : "");
    }
    std::string describe() const {
        const auto& s = shape;
        return "batch=" + std::to_string(s.batch) + " heads_q=" + std::to_string(s.heads_q) +
               " heads_kv=" + std::to_string(s.heads_kv) + " seq_q=" + std::to_string(s.seq_q) +
               " seq_k=" + std::to_string(s.seq_k) + " d=" + std::to_string(s.head_dim) +
               " causal=" + (causal ? "bottom_right" : "no");
    }
};

problem prefill(std::size_t seq, std::size_t d, bool causal) {
    problem p;
    p.shape.seq_q = p.shape.seq_k = seq;
    p.shape.head_dim = d;
    p.causal = causal;
    return p;
}

problem decode(std::size_t heads_q, std::size_t heads_kv, std::size_t seq_k) {
    problem p;
    p.shape.heads_q = heads_q;
    p.shape.heads_kv = heads_kv;
    p.shape.seq_q = 1;
    p.shape.seq_k = seq_k;
    p.shape.head_dim = 128;
    return p;
}

// The inputs of the most recent shape: the rows of one shape are registered together, so each
// shape's inputs (up to 256 MiB) are drawn once, and only one shape's are held at a time.
struct inputs {
    gmk::attention_shape shape;
    simd::aligned_vector<float> q, k, v;
};

const inputs& inputs_for(const problem& p) {
    static std::unique_ptr<inputs> held;
    const auto& s = p.shape;
    if (!held || held->shape.batch != s.batch || held->shape.heads_q != s.heads_q || held->shape.heads_kv != s.heads_kv ||
        held->shape.seq_q != s.seq_q || held->shape.seq_k != s.seq_k || held->shape.head_dim != s.head_dim) {
        held.reset();
        auto in = std::make_unique<inputs>();
        in->shape = s;
        in->q.resize(p.q_size());
        in->k.resize(p.kv_size());
        in->v.resize(p.kv_size());
        gmk::philox_generator gen(11);
        gen.randn(in->q.data(), in->q.size());
        gen.randn(in->k.data(), in->k.size());
        gen.randn(in->v.data(), in->v.size());
        held = std::move(in);
    }
    return *held;
}

// Last key that query i sees (bottom-right aligned causal mask), or seq_k - 1.
std::size_t last_key(const problem& p, std::size_t i) {
    const auto& s = p.shape;
    if (!p.causal) return s.seq_k - 1;
    const long j = long(i) + long(s.seq_k) - long(s.seq_q);
    return j < 0 ? std::size_t(-1) : std::min<std::size_t>(std::size_t(j), s.seq_k - 1);
}

// The largest |o - reference| over 16 query rows of every (batch, head), the reference in double.
double max_error(const problem& p, const inputs& in, const float* o) {
    const auto& s = p.shape;
    const std::size_t d = s.head_dim, group = s.heads_q / s.heads_kv;
    const double scale = 1.0 / std::sqrt(double(d));
    double worst = 0;
    std::vector<double> w(s.seq_k), acc(d);
    for (std::size_t bh = 0; bh < s.batch * s.heads_q; ++bh) {
        const std::size_t b = bh / s.heads_q, h = bh % s.heads_q, kvh = b * s.heads_kv + h / group;
        const float* kb = in.k.data() + kvh * s.seq_k * d;
        const float* vb = in.v.data() + kvh * s.seq_k * d;
        const std::size_t step = std::max<std::size_t>(1, s.seq_q / 16);
        for (std::size_t i = step / 2; i < s.seq_q; i += step) {
            const float* qi = in.q.data() + (bh * s.seq_q + i) * d;
            const std::size_t last = last_key(p, i);
            if (last == std::size_t(-1)) continue;
            double m = -std::numeric_limits<double>::infinity(), l = 0;
            for (std::size_t j = 0; j <= last; ++j) {
                double dot = 0;
                for (std::size_t c = 0; c < d; ++c) dot += double(qi[c]) * double(kb[j * d + c]);
                w[j] = dot * scale;
                m = std::max(m, w[j]);
            }
            std::fill(acc.begin(), acc.end(), 0.0);
            for (std::size_t j = 0; j <= last; ++j) {
                const double e = std::exp(w[j] - m);
                l += e;
                for (std::size_t c = 0; c < d; ++c) acc[c] += e * double(vb[j * d + c]);
            }
            const float* oi = o + (bh * s.seq_q + i) * d;
            for (std::size_t c = 0; c < d; ++c) worst = std::max(worst, std::abs(double(oi[c]) - acc[c] / l));
        }
    }
    return worst;
}

// Largest error accepted: float accumulation over seq_k terms of outputs of size ~1.
constexpr double tolerance = 2e-4;

// ---- the naive Eigen peer ------------------------------------------------------------------

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using const_map = Eigen::Map<const row_matrix>;
using mut_map = Eigen::Map<row_matrix>;

// For each K/V head: the rows of its query heads as one matrix Q (group * seq_q x d); S = Q K^T,
// softmax of each row (the causal prefix only), O = P V. s: (group * seq_q) x seq_k.
void naive_attention(const problem& p, const inputs& in, float* o, row_matrix& s) {
    const auto& sh = p.shape;
    const auto d = Eigen::Index(sh.head_dim), sk = Eigen::Index(sh.seq_k);
    const std::size_t group = sh.heads_q / sh.heads_kv;
    const auto rows = Eigen::Index(group * sh.seq_q);
    const float scale = 1.0f / std::sqrt(float(sh.head_dim));
    for (std::size_t kvh = 0; kvh < sh.batch * sh.heads_kv; ++kvh) {
        const const_map q(in.q.data() + kvh * std::size_t(rows * d), rows, d);
        const const_map k(in.k.data() + kvh * std::size_t(sk * d), sk, d);
        const const_map v(in.v.data() + kvh * std::size_t(sk * d), sk, d);
        mut_map out(o + kvh * std::size_t(rows * d), rows, d);
        s.noalias() = q * k.transpose();
        for (Eigen::Index r = 0; r < rows; ++r) {
            const std::size_t last = last_key(p, std::size_t(r) % sh.seq_q);
            const Eigen::Index n = last == std::size_t(-1) ? 0 : Eigen::Index(last) + 1;
            auto row = s.row(r);
            if (n > 0) {
                auto head = row.head(n);
                const float m = head.maxCoeff();
                head = ((head.array() - m) * scale).exp();
                head /= head.sum();
            }
            row.tail(sk - n).setZero();
        }
        out.noalias() = s * v;
    }
}

// ---- rows ----------------------------------------------------------------------------------

struct row_state {
    // Whether the row's output was checked: once per row, not once per trial run that Google
    // Benchmark makes to size the iteration count.
    std::shared_ptr<double> error = std::make_shared<double>(-1);
};

std::string flash_name(const problem& p, int threads) { return "attention/flash_f32/" + p.tag() + threads_suffix(threads); }
std::string naive_name(const problem& p) { return "attention/naive_eigen_f32/" + p.tag(); }

std::string error_text(double e) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " max_err=%.2g", e);
    return buf;
}

// The rates and the label's limit, metric and shape for a row of problem p.
void finish(benchmark::State& state, const problem& p, int threads, const std::string& extra) {
    gmk_bench::set_rate(state, "FLOP/s", p.flops());
    std::string limit;
    if (p.decode()) {
        gmk_bench::set_rate(state, "bytes/s", p.bytes());
        limit = "limit=" + read_name(std::size_t(2 * p.kv_size() * sizeof(float)), threads) + " metric=bytes/s";
    } else {
        limit = "limit=attention/fma_peak_f32" + threads_suffix(threads);
    }
    state.SetLabel(limit + extra + " " + p.describe());
}

bool check(benchmark::State& state, const row_state& r, const problem& p, const inputs& in, const float* o) {
    if (*r.error < 0) *r.error = max_error(p, in, o);
    if (!(*r.error <= tolerance)) {
        state.SkipWithError(("wrong output:" + error_text(*r.error)).c_str());
        return false;
    }
    return true;
}

void flash(benchmark::State& state, problem p, int threads, row_state r) {
    const inputs& in = inputs_for(p);
    simd::aligned_vector<float> o(p.q_size());
    gmk::attention_params<float> params;
    params.causal = p.causal;
    params.exec = make_executor(threads);
    const auto run = [&] {
        gmk::flash_attention(in.q.data(), in.k.data(), in.v.data(), o.data(), static_cast<float*>(nullptr), p.shape,
                             params);
    };
    run();
    if (!check(state, r, p, in, o.data())) return;
    for (auto _ : state) {
        run();
        benchmark::DoNotOptimize(o.data());
        benchmark::ClobberMemory();
    }
    std::string peers = " peer=" + naive_name(p);
    if (threads > 1) peers = " peer=" + flash_name(p, 1) + peers;
    finish(state, p, threads, peers + error_text(*r.error) + " exec=" + executor_name(threads) + " backend=" +
                                  simd::backend_name<B>());
}

void naive(benchmark::State& state, problem p, row_state r) {
    const inputs& in = inputs_for(p);
    simd::aligned_vector<float> o(p.q_size());
    const std::size_t group = p.shape.heads_q / p.shape.heads_kv;
    row_matrix s(Eigen::Index(group * p.shape.seq_q), Eigen::Index(p.shape.seq_k));
    naive_attention(p, in, o.data(), s);
    if (!check(state, r, p, in, o.data())) return;
    for (auto _ : state) {
        naive_attention(p, in, o.data(), s);
        benchmark::DoNotOptimize(o.data());
        benchmark::ClobberMemory();
    }
    finish(state, p, 1, error_text(*r.error) + " Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." +
                            std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION) +
                            " S=QK^T, softmax rows, O=PV");
}

// ---- registration --------------------------------------------------------------------------

[[maybe_unused]] const bool registered = [] {
    const double t = gmk_bench::min_time();
    const int thread_counts[] = {1, 2};

    for (int n : thread_counts)
        benchmark::RegisterBenchmark(("attention/fma_peak_f32" + threads_suffix(n)).c_str(), fma_peak, n)
            ->MinTime(t)
            ->UseRealTime();

    const auto add = [&](const problem& p) {
        benchmark::RegisterBenchmark(naive_name(p).c_str(), naive, p, row_state{})->MinTime(t)->UseRealTime();
        for (int n : thread_counts)
            benchmark::RegisterBenchmark(flash_name(p, n).c_str(), flash, p, n, row_state{})->MinTime(t)->UseRealTime();
    };
    for (std::size_t seq : {1024, 4096})
        for (std::size_t d : {64, 128})
            for (bool causal : {false, true}) add(prefill(seq, d, causal));

    // Decode: the read limits of the K/V bytes, then the rows.
    const problem decodes[] = {decode(32, 8, 4096), decode(1, 1, 32768), decode(32, 8, 32768)};
    std::vector<std::size_t> sizes;
    for (const auto& p : decodes) sizes.push_back(2 * p.kv_size() * sizeof(float));
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    for (std::size_t bytes : sizes)
        for (int n : thread_counts)
            benchmark::RegisterBenchmark(read_name(bytes, n).c_str(), read_stream, bytes, n)->MinTime(t)->UseRealTime();
    for (const auto& p : decodes) add(p);
    return true;
}();

}  // namespace
