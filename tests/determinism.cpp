// Determinism: every kernel that runs on a gmk::executor gives the same bits whatever runs its
// tasks. Each module's kernels are run once on executor::serial() (the reference: one thread, in
// order) and again on OpenMP with 1, 2 and 4 threads (where the build has OpenMP), on a pool of
// three std::threads taking the tasks from the back, and on a user executor that runs them in
// reverse order on the calling thread; every output must be bitwise equal to the reference (NaN
// payloads and signs of zero included). Inputs are sized from each kernel's grain so that the
// work is split into several tasks, and the reverse executor counts them: a case whose work was
// not split fails instead of passing vacuously.
//
// Where the design guide promises more (the counter-based random streams: "the same bits for any
// split, thread count and backend"), the fills of every backend are compared with the scalar
// backend's: uniforms on every backend, normals on every backend whose fma rounds once (fill.hpp;
// the others are documented to land within 3 ulp, which tests/random_fill.cpp checks). The other
// kernels promise agreement across backends only up to rounding, which their own tests check.
//
// Executors appear in: random fills (uniform_fill, normal_fill), window (sliding_max/min/argmax/
// argmin over rows), attention (softmax_rows, flash_attention) and discrete
// (token_statistics_rows, generate, sedd_step, sedd_sample). The continuous samplers
// (gmk/diffusion) and the other random generators take no executor.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/executors.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
namespace gr = gmk::random;
namespace gd = gmk::discrete;

namespace {

// ---- executors -----------------------------------------------------------------------------

// Runs the tasks in reverse order on the calling thread; records the largest task count it was
// handed (gmk::executor only calls its function for two tasks or more).
gmk::executor reverse_executor(std::shared_ptr<std::size_t> most) {
    return gmk::executor([most](std::size_t count, gmk::task_ref task) {
        *most = std::max(*most, count);
        for (std::size_t i = count; i-- > 0;) task(i);
    });
}

struct named_executor {
    std::string name;
    gmk::executor exec;
};

// Every executor a result is compared over (the reference, executor::serial(), is not listed).
std::vector<named_executor> executors(const std::shared_ptr<std::size_t>& most) {
    std::vector<named_executor> list;
#if defined(_OPENMP)
    for (int t : {1, 2, 4}) list.push_back({"openmp(" + std::to_string(t) + ")", gmk::executor::openmp(t)});
#endif
    list.push_back({"3 std::threads from the back", gt::reverse_pool_executor(3)});
    list.push_back({"reverse order", reverse_executor(most)});
    return list;
}

// ---- results as bytes ----------------------------------------------------------------------

// The bytes of a kernel's outputs: bitwise equality is equality of these.
struct bytes {
    std::vector<unsigned char> b;

    template <class T>
    void add(const T* p, std::size_t n) {
        static_assert(std::is_trivially_copyable_v<T>, "bytes: trivially copyable values only");
        if (n == 0) return;
        // (resize and memcpy: GCC 12 warns falsely of a null memmove in an inlined range insert)
        const std::size_t at = b.size();
        b.resize(at + n * sizeof(T));
        std::memcpy(b.data() + at, p, n * sizeof(T));
    }
    template <class T>
    void add(const std::vector<T>& v) {
        add(v.data(), v.size());
    }
    template <class T>
    void add_value(const T& v) {
        add(&v, 1);
    }
    bool operator==(const bytes& o) const { return b == o.b; }
};

template <class T>
void add_stats(bytes& out, const gd::token_stats<T>& s) {
    out.add_value(s.token);
    out.add_value(s.probability);
    out.add_value(s.model_probability);
    out.add_value(s.margin);
    out.add_value(s.neg_entropy);
    out.add_value(s.max);
    out.add_value(s.log_sum_exp);
    out.add_value(s.kept);
}

// run(exec) -> bytes on the serial executor, then on every other one: each must give the
// serial bytes, and the work must have been split into at least `min_tasks` tasks.
template <class Run>
GMK_TEST_NOINLINE void across_executors(const std::string& what, Run&& run, gt::mismatch_log& log,
                                        std::size_t min_tasks = 2) {
    const bytes reference = run(gmk::executor::serial());
    auto most = std::make_shared<std::size_t>(0);
    for (const auto& e : executors(most)) {
        const bytes got = run(e.exec);
        if (!(got == reference)) {
            std::size_t at = 0;
            while (at < got.b.size() && at < reference.b.size() && got.b[at] == reference.b[at]) ++at;
            log.add(what, ": ", e.name, " differs from the serial run (first at byte ", at, " of ",
                    reference.b.size(), ")");
        }
    }
    if (*most < min_tasks) log.add(what, ": the work ran as ", *most, " task(s), expected at least ", min_tasks);
}

}  // namespace

// ---- random --------------------------------------------------------------------------------

namespace {

enum class fill_kind { uniform_closed_open, uniform_open, normal };

template <class B, class T>
void fill_with(fill_kind kind, const gr::philox_stream& s, std::uint64_t first, T* out, std::size_t n,
               const gmk::executor* exec) {
    if (kind == fill_kind::normal) {
        if (exec) gr::normal_fill<B>(s, first, out, n, *exec);
        else gr::normal_fill<B>(s, first, out, n);
        return;
    }
    const gr::interval iv = kind == fill_kind::uniform_open ? gr::interval::open : gr::interval::closed_open;
    if (exec) gr::uniform_fill<B>(s, first, out, n, iv, *exec);
    else gr::uniform_fill<B>(s, first, out, n, iv);
}

const char* kind_name(fill_kind k) {
    return k == fill_kind::normal ? "normal" : k == fill_kind::uniform_open ? "uniform (0,1)" : "uniform [0,1)";
}

}  // namespace

TEST_CASE("determinism: random fills give the same bits on every executor and every backend",
          "[determinism][random]") {
    const gr::philox_stream stream(0x5eed5eedull, 11);
    const std::uint64_t first = 1000003;  // not a multiple of a tile: chunks start mid-tile
    gt::mismatch_log log;
    gt::for_each_type<float, double>([&](auto tag) {
        using T = typename decltype(tag)::type;
        // fill.hpp splits into chunks of 256 tiles (16384 floats, 8192 doubles): three chunks here,
        // the last one ragged, each starting inside a tile (first is not a multiple of 64).
        const std::size_t grain = 256 * (std::is_same_v<T, float> ? 64 : 32);
        const std::size_t n = 2 * grain + 1237;
        for (fill_kind kind : {fill_kind::uniform_closed_open, fill_kind::uniform_open, fill_kind::normal}) {
            std::vector<T> scalar(n);
            fill_with<simd::scalar>(kind, stream, first, scalar.data(), n, nullptr);
            gt::for_each_backend([&](auto backend) {
                using B = decltype(backend);
                const std::string what = gt::label<B, T>() + " " + kind_name(kind);
                std::vector<T> whole(n);
                fill_with<B>(kind, stream, first, whole.data(), n, nullptr);
                // Across backends: the promise of fill.hpp.
                if (kind != fill_kind::normal || simd::has_fused_fma<B>) {
                    for (std::size_t i = 0; i < n; ++i)
                        if (!gt::same_bits(whole[i], scalar[i])) {
                            log.add(what, ": element ", i, " is ", gt::show(whole[i]), ", the scalar backend's ",
                                    gt::show(scalar[i]));
                            break;
                        }
                }
                // Across executors (on the scalar and the native backend): the serial executor and
                // the executor-less call agree too.
                if (!std::is_same_v<B, simd::scalar> && !std::is_same_v<B, simd::native>) return;
                across_executors(what, [&](const gmk::executor& exec) {
                    std::vector<T> x(n, std::numeric_limits<T>::quiet_NaN());
                    fill_with<B>(kind, stream, first, x.data(), n, &exec);
                    if (!std::equal(x.begin(), x.end(), whole.begin(), gt::same_bits<T>))
                        log.add(what, ": the executor overload differs from the plain call");
                    bytes out;
                    out.add(x);
                    return out;
                }, log, 3);
            });
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- window --------------------------------------------------------------------------------

namespace {

// Rows with ties, and for floating point NaN of both signs, both zeros and infinities, so that
// the choices the window kernels document (which zero of a tie, which NaN) are exercised.
template <class T>
std::vector<T> window_input(std::size_t rows, std::size_t stride, std::uint64_t seed) {
    gt::rng r(seed);
    std::vector<T> x(rows * stride);
    for (auto& v : x) {
        v = static_cast<T>(r.integer(-20, 20));
        if constexpr (std::is_floating_point_v<T>) {
            const double u = r.uniform();
            if (u < 0.04) v = (u < 0.02 ? T(1) : T(-1)) * std::numeric_limits<T>::quiet_NaN();
            else if (u < 0.12) v = u < 0.08 ? T(0) : -T(0);
            else if (u < 0.14) v = (u < 0.13 ? T(1) : T(-1)) * std::numeric_limits<T>::infinity();
        }
    }
    return x;
}

template <class B, class T>
GMK_TEST_NOINLINE void window_determinism(gt::mismatch_log& log) {
    // The row form's grain is 65536 / cols rows: 131 rows here, so 2 tasks (the second ragged).
    const std::size_t rows = 150, n = 500, stride = 509;
    const std::vector<T> x = window_input<T>(rows, stride, 41);
    const gmk::matrix_view<const T> xv(x.data(), rows, n, stride);
    const bool args = std::is_same_v<B, simd::scalar>;  // the index forms have no backend
    for (std::size_t k : {std::size_t(3), std::size_t(37)})
        for (const gmk::window_mode mode : {gmk::window_mode::valid, gmk::window_mode::trailing})
            for (const gmk::nan_policy nan : {gmk::nan_policy::propagate, gmk::nan_policy::ignore}) {
                const std::size_t m = mode == gmk::window_mode::valid ? n - k + 1 : n, ostride = m + 5;
                const std::string what = gt::label<B, T>() + " k=" + std::to_string(k) +
                                         (mode == gmk::window_mode::valid ? " valid" : " trailing") +
                                         (nan == gmk::nan_policy::ignore ? " ignore" : " propagate");
                across_executors(what + " max/min", [&](const gmk::executor& exec) {
                    std::vector<T> hi(rows * ostride, T(7)), lo(rows * ostride, T(7));
                    gmk::sliding_max<B>(xv, k, gmk::matrix_view<T>(hi.data(), rows, m, ostride), mode, nan, exec);
                    gmk::sliding_min<B>(xv, k, gmk::matrix_view<T>(lo.data(), rows, m, ostride), mode, nan, exec);
                    bytes out;
                    out.add(hi);
                    out.add(lo);
                    return out;
                }, log);
                if (args)
                    across_executors(what + " argmax/argmin", [&](const gmk::executor& exec) {
                        std::vector<std::size_t> hi(rows * ostride, 7), lo(rows * ostride, 7);
                        gmk::sliding_argmax(xv, k, gmk::matrix_view<std::size_t>(hi.data(), rows, m, ostride), mode, nan,
                                            exec);
                        gmk::sliding_argmin(xv, k, gmk::matrix_view<std::size_t>(lo.data(), rows, m, ostride), mode, nan,
                                            exec);
                        bytes out;
                        out.add(hi);
                        out.add(lo);
                        return out;
                    }, log);
                if constexpr (!std::is_floating_point_v<T>) break;  // no NaN policy for integers
            }
}

}  // namespace

TEST_CASE("determinism: sliding window rows give the same bits on every executor", "[determinism][window]") {
    gt::mismatch_log log;
    window_determinism<simd::scalar, float>(log);
    window_determinism<simd::native, float>(log);
    window_determinism<simd::native, double>(log);
    window_determinism<simd::native, std::int64_t>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- attention -----------------------------------------------------------------------------

namespace {

struct attention_case {
    const char* name;
    gmk::attention_shape shape;
    bool causal;
    long window_left;
    double softcap;
    bool bias;  // a dense bias with -inf entries and whole -inf rows
    bool mask;  // a key-padding mask per batch
    std::size_t min_tasks;
};

template <class B, class T>
GMK_TEST_NOINLINE void attention_determinism(const attention_case& c, gt::mismatch_log& log) {
    const gmk::attention_shape& s = c.shape;
    const std::size_t nq = s.batch * s.heads_q * s.seq_q * s.head_dim;
    const std::size_t nkv = s.batch * s.heads_kv * s.seq_k * s.head_dim;
    const std::size_t nrows = s.batch * s.heads_q * s.seq_q;
    gt::rng r(std::uint64_t(nq + 7 * nkv));
    std::vector<T> q(nq), k(nkv), v(nkv), bias, pad;
    for (auto& e : q) e = T(r.uniform(-2, 2));
    for (auto& e : k) e = T(r.uniform(-2, 2));
    for (auto& e : v) e = T(r.uniform(-1, 1));
    gmk::attention_params<T> p;
    p.causal = c.causal;
    p.window_left = c.window_left;
    p.softcap = c.softcap;
    if (c.bias) {
        bias.resize(nrows * s.seq_k);
        for (auto& e : bias) e = r.uniform() < 0.1 ? -std::numeric_limits<T>::infinity() : T(r.uniform(-3, 3));
        for (std::size_t row = 0; row < nrows; row += 13)  // whole rows masked by the bias
            std::fill(bias.begin() + std::ptrdiff_t(row * s.seq_k), bias.begin() + std::ptrdiff_t((row + 1) * s.seq_k),
                      -std::numeric_limits<T>::infinity());
        p.bias = bias.data();
        p.bias_strides = gmk::attention_bias_strides::dense(s.heads_q, s.seq_q, s.seq_k);
    }
    std::vector<char> keep;
    if (c.mask) {
        keep.resize(s.batch * s.seq_k);
        for (auto& e : keep) e = r.uniform() < 0.8;
        p.mask = reinterpret_cast<const bool*>(keep.data());
        p.mask_strides = gmk::attention_bias_strides::per_batch_keys(s.seq_k);
    }
    across_executors(gt::label<B, T>() + " flash_attention " + c.name, [&](const gmk::executor& exec) {
        gmk::attention_params<T> pe = p;
        pe.exec = exec;
        std::vector<T> o(nq, T(12345)), lse(nrows, T(12345));
        gmk::flash_attention<B>(q.data(), k.data(), v.data(), o.data(), lse.data(), s, pe);
        bytes out;
        out.add(o);
        out.add(lse);
        return out;
    }, log, c.min_tasks);
}

template <class B, class T>
GMK_TEST_NOINLINE void softmax_rows_determinism(gt::mismatch_log& log) {
    // softmax_rows' grain is 16384 / cols rows: 163 rows of 100, so 7 tasks.
    const std::size_t rows = 1100, cols = 100;
    std::vector<T> x = gt::uniform_vector<T>(rows * cols, -30, 30, 12);
    for (std::size_t i = 0; i < x.size(); i += 17) x[i] = -std::numeric_limits<T>::infinity();
    for (std::size_t c = 0; c < cols; ++c) x[50 * cols + c] = -std::numeric_limits<T>::infinity();  // a masked row
    for (std::size_t c = 0; c < cols; c += 2) x[51 * cols + c] = c % 4 ? T(1e4) : T(-1e4);            // huge logits
    across_executors(gt::label<B, T>() + " softmax_rows", [&](const gmk::executor& exec) {
        std::vector<T> y(rows * cols, T(3));
        gmk::softmax_rows<B>(gmk::matrix_view<const T>(x.data(), rows, cols), gmk::matrix_view<T>(y.data(), rows, cols),
                             exec);
        bytes out;
        out.add(y);
        return out;
    }, log, 7);
}

}  // namespace

TEST_CASE("determinism: attention gives the same bits on every executor", "[determinism][attention]") {
    // The three kernels of flash_attention.hpp and its split-KV merge, each with several tasks:
    //   wide:   2 x 2 (batch, kv head) x ceil(300 rows / 32) query blocks;
    //   narrow: 10 query rows per kv head (fewer than a wide micro-tile), 3 x 2 tasks;
    //   rows:   decoding (4 query rows per kv head), 3000 keys split over 5 tasks per kv head,
    //           whose partial results merge by log-sum-exp (a second parallel_for);
    //   packed: head_dim 33 (K and V padded per block), a sliding window and soft-capping.
    const attention_case cases[] = {
        {"wide causal + bias + mask", {2, 4, 2, 150, 200, 64}, true, -1, 0, true, true, 8},
        {"narrow", {3, 4, 2, 5, 300, 32}, false, -1, 0, true, false, 6},
        {"rows, split-KV", {1, 8, 2, 1, 3000, 128}, false, -1, 0, false, true, 4},
        {"packed head_dim 33, window, softcap", {2, 3, 3, 70, 90, 33}, true, 20, 15, false, false, 6},
    };
    gt::mismatch_log log;
    for (const auto& c : cases) {
        attention_determinism<simd::native, float>(c, log);
        attention_determinism<simd::native, double>(c, log);
        attention_determinism<simd::scalar, float>(c, log);
    }
    softmax_rows_determinism<simd::native, float>(log);
    softmax_rows_determinism<simd::native, double>(log);
    softmax_rows_determinism<simd::scalar, float>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- discrete ------------------------------------------------------------------------------

namespace {

// A toy language model: each position's logits depend on the tokens around it (so committed
// tokens change later steps) and on the position; one token is preferred per position (with
// probability about 0.75, so that threshold decoding commits several positions per step).
struct toy_model {
    std::size_t V;
    std::vector<double> wave;  // 2.5 sin(0.37 t), t < 4096

    explicit toy_model(std::size_t vocab) : V(vocab), wave(4096) {
        for (std::size_t t = 0; t < wave.size(); ++t) wave[t] = 2.5 * std::sin(0.37 * double(t));
    }
    template <class T>
    void operator()(const gd::token* x, std::size_t batch, std::size_t L, T* logits) const {
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t i = 0; i < L; ++i) {
                const gd::token* xs = x + b * L;
                const std::size_t left = i > 0 ? std::size_t(xs[i - 1]) : 0, right = i + 1 < L ? std::size_t(xs[i + 1]) : 0;
                const std::size_t shift = 3 * left + 7 * right + 11 * i;
                T* row = logits + (b * L + i) * V;
                for (std::size_t v = 0; v < V; ++v) row[v] = T(wave[(v + shift) % wave.size()]);
                row[(i * 31 + left) % V] += T(8.0 + double(b));
            }
    }
};

template <class B, class T>
GMK_TEST_NOINLINE void token_stats_determinism(gt::mismatch_log& log) {
    const std::size_t L = 32, V = 3001;  // token_statistics_rows: one row per task
    const std::vector<T> l = gt::uniform_vector<T>(L * V, -8, 8, 21);
    std::vector<double> u(L);
    gt::fill_uniform(u.data(), L, 0, 0.999, 22);
    const std::vector<gd::token> suppressed = {0, 17, 2999};
    gd::sampling settings[4];
    settings[1].temperature = 0.8;
    settings[1].top_p = 0.9;
    settings[2].temperature = 1.3;
    settings[2].top_k = 40;
    settings[2].suppress = suppressed;
    settings[3].temperature = 0.5;
    settings[3].top_p = 0.95;
    settings[3].top_k = 300;
    for (int si = 0; si < 4; ++si)
        across_executors(gt::label<B, T>() + " token_statistics_rows setting " + std::to_string(si),
                         [&](const gmk::executor& exec) {
                             std::vector<gd::token_stats<T>> st(L);
                             gd::token_statistics_rows<B>(gmk::matrix_view<const T>(l.data(), L, V), settings[si], u,
                                                          gmk::span<gd::token_stats<T>>(st), exec);
                             bytes out;
                             for (const auto& e : st) add_stats(out, e);
                             return out;
                         },
                         log, L);
}

template <class B, class T>
GMK_TEST_NOINLINE void generate_determinism(gt::mismatch_log& log) {
    const std::size_t V = 600;
    const gd::token M = 599;
    const std::vector<gd::token> prompt = {5, 9, 200, 3};
    std::vector<std::pair<std::string, gd::generate_options>> options;
    {
        auto o = gd::llada(V, M, 32, 16, 8, gd::llada_remasking::random);
        o.temperature = 1.3;
        o.top_k = 50;
        o.suppress = {0};
        o.cfg_scale = 0.5;
        options.emplace_back("llada random remasking T=1.3 top-k cfg", o);
    }
    {
        auto o = gd::dream(V, M, 32, 8, gd::dream_algorithm::maskgit_plus);
        o.temperature = 0.9;
        o.top_p = 0.95;
        o.alg_temperature = 0.5;
        options.emplace_back("dream maskgit_plus alg_temperature", o);
    }
    options.emplace_back("fast-dllm threshold 0.3", gd::fast_dllm(V, M, 32, 16, 0.3));
    const toy_model model(V);
    for (const auto& option : options) {
        const gd::generate_options& o = option.second;  // (clang 14 lambdas cannot capture a structured binding)
        across_executors(gt::label<B, T>() + " generate " + option.first, [&](const gmk::executor& exec) {
            bytes out;
            const auto result = gd::generate<B, T>(model, prompt, o, gd::philox_draws(77),
                                                   [&](const gd::step_info<T>& s) {
                                                       out.add(s.committed.data(), s.committed.size());
                                                       out.add(s.confidence.data(), s.confidence.size());
                                                   },
                                                   exec);
            out.add(result.tokens);
            out.add_value(result.steps);
            return out;
        }, log);
    }
}

template <class B, class T>
GMK_TEST_NOINLINE void sedd_determinism(gt::mismatch_log& log) {
    // sedd_step: 64 rows per task, 5 tasks here.
    const std::size_t L = 300, V = 40;
    const gd::token mask = 0;
    const std::vector<T> scores = gt::uniform_vector<T>(L * V, -4, 2, 31);
    std::vector<gd::token> tokens0(L);
    gt::rng r(32);
    for (auto& t : tokens0) t = r.uniform() < 0.7 ? mask : gd::token(r.integer(1, V - 1));
    const gd::loglinear_noise noise{};
    for (const double rate : {gd::sedd_rate(gd::sedd_predictor::analytic, noise, 0.6, 0.1),
                              gd::sedd_rate(gd::sedd_predictor::euler, noise, 0.3, 0.25), gd::sedd_denoise_rate})
        across_executors(gt::label<B, T>() + " sedd_step rate " + std::to_string(rate), [&](const gmk::executor& exec) {
            std::vector<T> s = scores;
            std::vector<gd::token> t = tokens0;
            const std::size_t left =
                gd::sedd_step<B>(gmk::matrix_view<T>(s.data(), L, V), gmk::span<gd::token>(t), mask, rate,
                                 gd::sedd_draws{9, 4, {}}, exec);
            bytes out;
            out.add(s);  // the mask column of the masked rows is written
            out.add(t);
            out.add_value(left);
            return out;
        }, log, 5);
    // The whole sampler: a model whose scores depend on the neighbouring tokens.
    const auto model = [&](gmk::span<const gd::token> x, gmk::matrix_view<T> ls, const gd::sedd_call& call) {
        for (std::size_t i = 0; i < L; ++i) {
            const double left = i > 0 ? double(x[i - 1]) : 0.0;
            for (std::size_t j = 0; j < V; ++j)
                ls(i, j) = T(std::cos(0.3 * double(j) + 0.2 * left + double(i)) - 3 * call.t);
        }
    };
    gd::sedd_options o;
    o.steps = 6;
    o.seed = 5;
    across_executors(gt::label<B, T>() + " sedd_sample", [&](const gmk::executor& exec) {
        std::vector<T> s(L * V);
        std::vector<gd::token> t(L, mask);
        const std::size_t left = gd::sedd_sample<B>(model, gmk::span<gd::token>(t), gmk::matrix_view<T>(s.data(), L, V),
                                                    mask, o, exec);
        bytes out;
        out.add(t);
        out.add_value(left);
        return out;
    }, log, 5);
}

}  // namespace

TEST_CASE("determinism: the masked-diffusion kernels give the same bits on every executor", "[determinism][discrete]") {
    gt::mismatch_log log;
    token_stats_determinism<simd::native, float>(log);
    token_stats_determinism<simd::native, double>(log);
    token_stats_determinism<simd::scalar, float>(log);
    generate_determinism<simd::native, float>(log);
    generate_determinism<simd::native, double>(log);
    sedd_determinism<simd::native, float>(log);
    sedd_determinism<simd::native, double>(log);
    sedd_determinism<simd::scalar, double>(log);
    GMK_REQUIRE_NO_MISMATCH(log);
}
