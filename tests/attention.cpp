// Tests of gmk/attention/online_softmax.hpp, gmk/attention/flash_attention.hpp and
// gmk/attention/eigen.hpp.
//
// The reference is the naive computation in double: S = scale * Q K^T (soft-capped, biased,
// masked), a softmax per row, O = P V, lse = log sum exp S, written from the definitions in
// flash_attention.hpp (and FORMULAS.md, Attention), on the same inputs.
//
// Error measure, per query row r: e_r = max_d |o_rd - ref_rd| / max_d sum_j p_rj |v_jd|, the
// row's largest error relative to the magnitude of the weighted sum that makes it (p the
// reference softmax). Where V does not cancel (v >= 0) the denominator is max_d |ref_rd|; where
// it does (a random V averaged over many keys, or head_dim 1), it keeps e_r a measure of the
// arithmetic rather than of the cancellation, which no floating-point sum can undo. Rows whose
// reference is exactly zero (every key masked) must be exactly zero, with lse exactly -inf. The
// log-sum-exp: |lse - lse_ref| / max(1, |lse_ref|). Bounds: 2e-6 for float compute (the issue's
// bound; the kernel measures below 1e-6 up to 4096 keys), 1e-14 for double compute. With logits
// of magnitude M the scores themselves carry a rounding of about 2^-24 M (float), which the
// softmax passes on unchanged: the test of logits of 1e4 adds 2^-22 M to the bound. Half and
// bfloat16 storage: the largest absolute error over the whole output no more than twice that of
// the naive computation done in the storage type (FlashAttention's criterion: Q, K, V, S, P and O
// rounded to it, products accumulated in float).
#include <gmk/attention/eigen.hpp>
#include <gmk/gmk.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "support/attention_cases.hpp"
#include "support/catch.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gt = gmk_test;
using gmk::attention_bias_strides;
using gmk::attention_params;
using gmk::attention_shape;
using gmk::causal_alignment;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// ---- the reference -------------------------------------------------------------------------

struct result {
    std::vector<double> o;     // [batch, heads_q, seq_q, head_dim]
    std::vector<double> lse;   // [batch, heads_q, seq_q]
    std::vector<double> mag;   // per row: max_d sum_j p_j |v_jd|, the scale of its errors
    std::vector<double> smax;  // per row: the largest finite |score|
};

std::size_t q_index(const attention_shape& s, std::size_t b, std::size_t h, std::size_t i) {
    return (b * s.heads_q + h) * s.seq_q + i;
}
std::size_t kv_index(const attention_shape& s, std::size_t b, std::size_t h, std::size_t j) {
    return (b * s.heads_kv + h) * s.seq_k + j;
}
std::ptrdiff_t bias_offset(const attention_bias_strides& st, const attention_shape& s, std::size_t b, std::size_t h,
                           std::size_t i, std::size_t j) {
    attention_bias_strides x = st;
    if (x.batch == 0 && x.head == 0 && x.query == 0 && x.key == 0) x = {0, 0, std::ptrdiff_t(s.seq_k), 1};
    return std::ptrdiff_t(b) * x.batch + std::ptrdiff_t(h) * x.head + std::ptrdiff_t(i) * x.query +
           std::ptrdiff_t(j) * x.key;
}

// Whether query i sees key j through the causal and window rules alone.
template <class T>
bool in_band(const attention_params<T>& p, const attention_shape& s, std::size_t i, std::size_t j) {
    const long long off = p.alignment == causal_alignment::bottom_right ? (long long)s.seq_k - (long long)s.seq_q : 0;
    const long long a = (long long)i + off, jj = (long long)j;
    if (p.causal && jj > a) return false;
    if (p.window_left >= 0 && jj < a - p.window_left) return false;
    if (p.window_right >= 0 && jj > a + p.window_right) return false;
    return true;
}

// The scores of row (b, h, i) in double (-inf where masked).
template <class S, class T>
void reference_scores(const std::vector<S>& q, const std::vector<S>& k, const attention_shape& s,
                      const attention_params<T>& p, std::size_t b, std::size_t h, std::size_t i,
                      std::vector<double>& sc) {
    const std::size_t g = s.heads_q / s.heads_kv, d = s.head_dim;
    const double scale = p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(d));
    sc.assign(s.seq_k, 0.0);
    const S* qr = q.data() + q_index(s, b, h, i) * d;
    for (std::size_t j = 0; j < s.seq_k; ++j) {
        const S* kr = k.data() + kv_index(s, b, h / g, j) * d;
        double dot = 0;
        for (std::size_t x = 0; x < d; ++x) dot += double(qr[x]) * double(kr[x]);
        double v = scale * dot;
        if (p.softcap > 0) v = p.softcap * std::tanh(v / p.softcap);
        if (p.bias) v += double(p.bias[bias_offset(p.bias_strides, s, b, h, i, j)]);
        if (p.mask && !p.mask[bias_offset(p.mask_strides, s, b, h, i, j)]) v = -inf;
        if (!in_band(p, s, i, j)) v = -inf;
        sc[j] = v;
    }
}

// The reference for the rows of `positions` (all when empty); other rows are left at NaN.
template <class S, class T>
result reference(const std::vector<S>& q, const std::vector<S>& k, const std::vector<S>& v, const attention_shape& s,
                 const attention_params<T>& p, std::vector<std::size_t> positions = {}) {
    if (positions.empty())
        for (std::size_t i = 0; i < s.seq_q; ++i) positions.push_back(i);
    const std::size_t g = s.heads_q / s.heads_kv, d = s.head_dim;
    result r;
    r.o.assign(s.batch * s.heads_q * s.seq_q * d, std::nan(""));
    r.lse.assign(s.batch * s.heads_q * s.seq_q, std::nan(""));
    r.mag.assign(r.lse.size(), 0.0);
    r.smax.assign(r.lse.size(), 0.0);
    std::vector<double> sc;
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_q; ++h)
            for (std::size_t i : positions) {
                reference_scores(q, k, s, p, b, h, i, sc);
                double m = -inf;
                const std::size_t row = q_index(s, b, h, i);
                for (double x : sc) {
                    m = std::max(m, x);
                    if (std::isfinite(x)) r.smax[row] = std::max(r.smax[row], std::fabs(x));
                }
                double l = 0;
                for (double& x : sc) {
                    x = m == -inf ? 0.0 : std::exp(x - m);
                    l += x;
                }
                double* orow = r.o.data() + row * d;
                for (std::size_t x = 0; x < d; ++x) {
                    double acc = 0, mag = 0;
                    for (std::size_t j = 0; j < s.seq_k; ++j)
                        if (sc[j] != 0) {
                            const double vj = double(v[kv_index(s, b, h / g, j) * d + x]);
                            acc += sc[j] * vj;
                            mag += sc[j] * std::fabs(vj);
                        }
                    orow[x] = l > 0 ? acc / l : 0.0;
                    r.mag[row] = std::max(r.mag[row], l > 0 ? mag / l : 0.0);
                }
                r.lse[q_index(s, b, h, i)] = l > 0 ? m + std::log(l) : -inf;
            }
    return r;
}

// ---- comparisons ---------------------------------------------------------------------------

// Checks `o` and `lse` against `ref` on the rows it holds (non-NaN lse), errors measured against
// the row magnitudes of `scale` (the reference; `ref` by default) with the bound
// tol + score_rel * (largest |score| of the row); returns the largest row error seen.
template <class S, class T>
double compare(const std::vector<S>& o, const std::vector<T>& lse, const result& ref, const attention_shape& s,
               double tol, const std::string& what, gt::mismatch_log& log, const result* scale = nullptr,
               double score_rel = 0) {
    const std::size_t d = s.head_dim;
    if (!scale) scale = &ref;
    double worst = 0;
    for (std::size_t row = 0; row < ref.lse.size(); ++row) {
        if (std::isnan(ref.lse[row])) continue;
        double mx = 0, err = 0;
        bool finite = true;
        for (std::size_t x = 0; x < d; ++x) {
            const double got = double(o[row * d + x]), want = ref.o[row * d + x];
            if (!std::isfinite(got)) finite = false;
            mx = std::max(mx, std::fabs(want));
            err = std::max(err, std::fabs(got - want));
        }
        if (!finite) {
            log.add(what, " row ", row, ": non-finite output");
            continue;
        }
        const double bound = tol + score_rel * scale->smax[row];
        if (mx == 0 && scale->mag[row] == 0) {
            if (err != 0) log.add(what, " row ", row, ": fully masked row not zero (", err, ")");
            if (!(lse[row] == -std::numeric_limits<T>::infinity()))
                log.add(what, " row ", row, ": fully masked row lse = ", double(lse[row]), ", expected -inf");
            continue;
        }
        const double rel = err / scale->mag[row];
        worst = std::max(worst, rel);
        if (!(rel <= bound)) log.add(what, " row ", row, ": relative error ", rel, " > ", bound);
        const double le = std::fabs(double(lse[row]) - ref.lse[row]) / std::max(1.0, std::fabs(ref.lse[row]));
        if (!(le <= bound)) log.add(what, " row ", row, ": lse ", double(lse[row]), ", expected ", ref.lse[row]);
    }
    return worst;
}

template <class T>
bool same_bits_all(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!gt::same_value(a[i], b[i])) return false;
    return true;
}

// ---- cases --------------------------------------------------------------------------------

using options = gt::attention_options;
using gt::layout;
using gt::layout_size;

std::string describe(const attention_shape& s, const options& o) {
    std::string t = "b" + std::to_string(s.batch) + " hq" + std::to_string(s.heads_q) + " hkv" +
                    std::to_string(s.heads_kv) + " sq" + std::to_string(s.seq_q) + " sk" + std::to_string(s.seq_k) +
                    " d" + std::to_string(s.head_dim);
    if (o.causal) t += o.alignment == causal_alignment::top_left ? " causal-tl" : " causal-br";
    if (o.left >= 0 || o.right >= 0) t += " window(" + std::to_string(o.left) + "," + std::to_string(o.right) + ")";
    if (o.softcap > 0) t += " softcap";
    if (o.scale != 0) t += " scale";
    if (o.bias) t += " bias" + std::to_string(o.bias);
    if (o.mask) t += " mask" + std::to_string(o.mask);
    return t;
}

// One problem: inputs in storage S, options in compute T.
template <class S, class T>
struct problem {
    attention_shape shape;
    options opt;
    std::vector<S> q, k, v;
    std::vector<T> bias;
    std::vector<char> mask;  // bool, kept as char: std::vector<bool> has no data()

    problem(const attention_shape& s, const options& o, std::uint64_t seed, double amplitude = 1.0) : shape(s), opt(o) {
        const std::size_t nq = s.batch * s.heads_q * s.seq_q * s.head_dim;
        const std::size_t nk = s.batch * s.heads_kv * s.seq_k * s.head_dim;
        gt::rng r(seed);
        q.resize(nq);
        k.resize(nk);
        v.resize(nk);
        for (auto& x : q) x = static_cast<S>(amplitude * r.uniform(-1, 1));
        for (auto& x : k) x = static_cast<S>(amplitude * r.uniform(-1, 1));
        for (auto& x : v) x = static_cast<S>(r.uniform(-1, 1));
        if (o.bias) {
            bias.resize(std::max<std::size_t>(1, layout_size(o.bias, s)));
            for (auto& x : bias) x = static_cast<T>(r.uniform(-3, 3));
        }
        if (o.mask) {
            mask.resize(std::max<std::size_t>(1, layout_size(o.mask, s)));
            for (auto& x : mask) x = r.uniform() < 0.7;
        }
    }
    attention_params<T> params(gmk::executor exec = gmk::executor()) const {
        attention_params<T> p;
        p.scale = opt.scale;
        p.causal = opt.causal;
        p.alignment = opt.alignment;
        p.window_left = opt.left;
        p.window_right = opt.right;
        p.softcap = opt.softcap;
        if (opt.bias) {
            p.bias = bias.data();
            p.bias_strides = layout(opt.bias, shape);
        }
        if (opt.mask) {
            p.mask = reinterpret_cast<const bool*>(mask.data());
            p.mask_strides = layout(opt.mask, shape);
        }
        p.exec = std::move(exec);
        return p;
    }
    std::size_t rows() const { return shape.batch * shape.heads_q * shape.seq_q; }
};

// The kernel's output for a problem: o (sentinel-filled first, so unwritten outputs show) and lse.
template <class S, class T>
struct output {
    std::vector<S> o;
    std::vector<T> lse;
};

template <class B, class S, class T>
GMK_TEST_NOINLINE output<S, T> run(const problem<S, T>& pb, gmk::executor exec = gmk::executor()) {
    output<S, T> out;
    out.o.assign(pb.q.size(), static_cast<S>(12345.0f));
    out.lse.assign(pb.rows(), T(12345));
    gmk::flash_attention<B>(pb.q.data(), pb.k.data(), pb.v.data(), out.o.data(), out.lse.data(), pb.shape,
                            pb.params(std::move(exec)));
    return out;
}

// A result (for compare) from another run's output.
template <class S, class T>
result as_result(const output<S, T>& out) {
    result r;
    for (const auto& x : out.o) r.o.push_back(double(x));
    for (const auto& x : out.lse) r.lse.push_back(double(x));
    return r;
}

// Random small cases: odd lengths, head_dim not a multiple of any vector width, seq_q != seq_k,
// GQA and MQA, and every masking option alone and together.
std::vector<std::pair<attention_shape, options>> random_cases(std::size_t count, std::uint64_t seed) {
    gt::rng r(seed);
    const std::size_t dims[] = {1, 2, 3, 5, 8, 13, 16, 17, 31, 33, 64, 72, 128};
    std::vector<std::pair<attention_shape, options>> cases;
    for (std::size_t c = 0; c < count; ++c) {
        attention_shape s;
        s.batch = std::size_t(r.integer(1, 2));
        s.heads_kv = std::size_t(r.integer(1, 2));
        s.heads_q = s.heads_kv * std::size_t(r.integer(1, 3));
        s.seq_q = std::size_t(c % 3 == 0 ? r.integer(1, 2) : r.integer(1, 70));  // decoding too
        s.seq_k = std::size_t(r.integer(1, 110));
        s.head_dim = dims[r.integer(0, 12)];
        options o;
        const int what = int(c % 8);
        o.alignment = r.uniform() < 0.5 ? causal_alignment::top_left : causal_alignment::bottom_right;
        if (what == 1 || what == 7) o.causal = true;
        if (what == 2 || what == 7) {
            o.left = long(r.integer(-1, 20));
            o.right = long(r.integer(-1, 20));
        }
        if (what == 3 || what == 7) o.bias = int(r.integer(1, 5));
        if (what == 4 || what == 7) o.mask = int(r.integer(1, 5));
        if (what == 5) o.softcap = r.uniform(2, 30);
        if (what == 6) o.scale = r.uniform(0.05, 2);
        cases.emplace_back(s, o);
    }
    return cases;
}

}  // namespace

// ---- online softmax ------------------------------------------------------------------------

TEST_CASE("online_softmax: softmax, log_sum_exp and the state against a long double reference", "[attention]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
            gt::rng r(7);
            for (std::size_t n : {1, 2, 3, 7, 16, 17, 100, 1000}) {
                for (double amplitude : {1.0, 50.0, 1e4}) {
                    std::vector<T> x(n);
                    for (auto& e : x) e = static_cast<T>(r.uniform(-amplitude, amplitude));
                    if (n > 4) x[n / 3] = -std::numeric_limits<T>::infinity();  // a masked element
                    long double m = -INFINITY, l = 0;
                    for (T e : x) m = std::max<long double>(m, e);
                    for (T e : x) l += std::exp((long double)e - m);
                    const long double lse = m + std::log(l);
                    const T got = gmk::log_sum_exp<B>(x.data(), n);
                    if (!(std::fabs((long double)got - lse) <= tol * std::max<long double>(1, std::fabs(lse))))
                        log.add(gt::label<B, T>(), " log_sum_exp n=", n, " amp=", amplitude, ": ", got, " vs ",
                                (double)lse);
                    std::vector<T> y(n);
                    gmk::softmax<B>(x.data(), n, y.data());
                    for (std::size_t i = 0; i < n; ++i) {
                        // exp passes on the rounding of x - max, relative eps |x - max|.
                        const long double want = std::exp((long double)x[i] - lse);
                        const long double arg = std::isinf(x[i]) ? 0 : std::fabs((long double)x[i] - lse);
                        const long double rel = tol + 2 * std::numeric_limits<T>::epsilon() * arg;
                        if (!(std::fabs((long double)y[i] - want) <= rel * want + std::numeric_limits<T>::min()))
                            log.add(gt::label<B, T>(), " softmax n=", n, " amp=", amplitude, " i=", i, ": ", y[i],
                                    " vs ", (double)want);
                    }
                    // The state of a row is the merge of the states of its pieces, in any order.
                    const std::size_t cut = n / 2;
                    auto merged = gmk::softmax_stats<B>(x.data() + cut, n - cut);
                    merged.merge(gmk::softmax_stats<B>(x.data(), cut));
                    gmk::online_softmax_state<T> pushed;
                    for (T e : x) pushed.push(e);
                    for (const T v : {merged.log_sum_exp(), pushed.log_sum_exp()})
                        if (!(std::fabs((long double)v - lse) <= tol * std::max<long double>(1, std::fabs(lse))))
                            log.add(gt::label<B, T>(), " merged/pushed state n=", n, ": ", v, " vs ", (double)lse);
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("online_softmax: fully masked rows, -inf, NaN and huge values", "[attention]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        gt::for_each_type<float, double>([&](auto t) {
            using B = decltype(b);
            using T = typename decltype(t)::type;
            using lim = std::numeric_limits<T>;
            const std::string at = gt::label<B, T>();
            // A row of -inf only (fully masked): zeros and -inf, no NaN.
            std::vector<T> masked(37, -lim::infinity()), y(37, T(5));
            gmk::softmax<B>(masked.data(), masked.size(), y.data());
            for (T e : y)
                if (!(e == T(0))) log.add(at, " fully masked softmax gave ", e);
            if (!(gmk::log_sum_exp<B>(masked.data(), masked.size()) == -lim::infinity())) log.add(at, " masked lse");
            if (!(gmk::log_sum_exp<B>(masked.data(), 0) == -lim::infinity())) log.add(at, " empty lse");
            const auto st = gmk::softmax_stats<B>(masked.data(), masked.size());
            if (!(st.max == -lim::infinity() && st.sum == T(0))) log.add(at, " masked state");
            gmk::online_softmax_state<T> s = st;
            s.merge(gmk::online_softmax_state<T>{});
            if (!(s.log_sum_exp() == -lim::infinity() && s.weight(T(1)) == T(0))) log.add(at, " merged empty state");
            // Huge magnitudes: no overflow; the largest wins.
            std::vector<T> big = {T(1e4), T(-1e4), T(1e4) - T(1), lim::max() / 2, T(3)};
            gmk::softmax<B>(big.data(), big.size(), y.data());
            if (!(y[3] == T(1) && y[0] == T(0) && y[1] == T(0))) log.add(at, " huge values: ", y[3], " ", y[0]);
            const T lb = gmk::log_sum_exp<B>(big.data(), 3);
            const T want = T(1e4) + std::log1p(std::exp(T(-1)));
            if (!(std::fabs(lb - want) <= 4 * lim::epsilon() * want)) log.add(at, " lse of 1e4: ", lb, " vs ", want);
            // NaN anywhere: NaN everywhere.
            std::vector<T> with_nan = {T(1), lim::quiet_NaN(), T(2), -lim::infinity()};
            gmk::softmax<B>(with_nan.data(), with_nan.size(), y.data());
            for (std::size_t i = 0; i < with_nan.size(); ++i)
                if (!gt::is_nan(y[i])) log.add(at, " NaN row gave ", y[i], " at ", i);
            if (!gt::is_nan(gmk::log_sum_exp<B>(with_nan.data(), with_nan.size()))) log.add(at, " NaN lse");
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("online_softmax: softmax_rows is the row-by-row softmax on any executor", "[attention]") {
    const std::size_t rows = 300, cols = 77;
    const auto x = gt::uniform_vector<float>(rows * cols, -20, 20, 3);
    std::vector<float> serial(rows * cols), threaded(rows * cols), one(cols);
    gmk::softmax_rows(gmk::matrix_view<const float>(x.data(), rows, cols), gmk::matrix_view<float>(serial.data(), rows, cols));
    gmk::softmax_rows(gmk::matrix_view<const float>(x.data(), rows, cols),
                      gmk::matrix_view<float>(threaded.data(), rows, cols), gt::threaded_executor(2));
    REQUIRE(same_bits_all(serial, threaded));
    gmk::softmax(x.data() + 5 * cols, cols, one.data());
    REQUIRE(std::equal(one.begin(), one.end(), serial.begin() + 5 * cols));
    gt::require_throws_naming([&] {
        gmk::softmax_rows(gmk::matrix_view<const float>(x.data(), rows, cols), gmk::matrix_view<float>(serial.data(), rows - 1, cols));
    }, "out.rows()");
}

// ---- flash attention: accuracy -------------------------------------------------------------

TEST_CASE("flash_attention (float) matches the double reference and the scalar backend on random cases",
          "[attention]") {
    gt::mismatch_log log;
    const auto cases = random_cases(48, 11);
    std::vector<output<float, float>> scalar_out;
    for (std::size_t c = 0; c < cases.size(); ++c)
        scalar_out.push_back(run<simd::scalar>(problem<float, float>(cases[c].first, cases[c].second, 100 + c)));
    double worst = 0, worst_vs_scalar = 0;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        for (std::size_t c = 0; c < cases.size(); ++c) {
            const problem<float, float> pb(cases[c].first, cases[c].second, 100 + c);
            const auto out = run<B>(pb);
            const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params());
            const std::string what = std::string(simd::backend_name<B>()) + " " + describe(pb.shape, pb.opt);
            worst = std::max(worst, compare(out.o, out.lse, ref, pb.shape, 2e-6, what, log));
            worst_vs_scalar = std::max(worst_vs_scalar, compare(out.o, out.lse, as_result(scalar_out[c]), pb.shape, 2e-6,
                                                                what + " vs scalar", log, &ref));
        }
    });
    INFO("largest row error: " << worst << " against the reference, " << worst_vs_scalar << " against scalar");
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention (double) matches the double reference on random cases", "[attention]") {
    gt::mismatch_log log;
    const auto cases = random_cases(32, 12);
    double worst = 0;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        for (std::size_t c = 0; c < cases.size(); ++c) {
            const problem<double, double> pb(cases[c].first, cases[c].second, 200 + c);
            const auto out = run<B>(pb);
            const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params());
            worst = std::max(worst, compare(out.o, out.lse, ref, pb.shape, 1e-14,
                                            std::string(simd::backend_name<B>()) + " " + describe(pb.shape, pb.opt), log));
        }
    });
    INFO("largest row error: " << worst);
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: mixed storage and compute types", "[attention]") {
    gt::mismatch_log log;
    const auto cases = random_cases(16, 13);
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const problem<float, double> fd(cases[c].first, cases[c].second, 300 + c);
        const auto a = run<simd::native>(fd);
        compare(a.o, a.lse, reference(fd.q, fd.k, fd.v, fd.shape, fd.params()), fd.shape, 2e-7,
                "float storage, double compute " + describe(fd.shape, fd.opt), log);
        const problem<double, float> df(cases[c].first, cases[c].second, 300 + c);
        const auto e = run<simd::native>(df);
        compare(e.o, e.lse, reference(df.q, df.k, df.v, df.shape, df.params()), df.shape, 2e-6,
                "double storage, float compute " + describe(df.shape, df.opt), log);
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: long sequences (up to 4096) within 2e-6 on the native backend", "[attention]") {
    gt::mismatch_log log;
    struct big {
        attention_shape s;
        options o;
    };
    options causal_tl;
    causal_tl.causal = true;
    causal_tl.alignment = causal_alignment::top_left;
    options causal_br;
    causal_br.causal = true;
    options window;
    window.left = 700;
    window.right = 100;
    const big cases[] = {
        {{1, 1, 1, 4096, 4096, 64}, options{}},
        {{1, 1, 1, 4096, 4096, 128}, causal_br},
        {{1, 2, 1, 1000, 4096, 80}, window},
        {{1, 8, 2, 1, 4096, 128}, options{}},  // decoding: the split-KV path
        {{1, 4, 4, 3, 4001, 64}, causal_tl},
    };
    double worst = 0;
    for (const auto& c : cases) {
        const problem<float, float> pb(c.s, c.o, 17);
        const auto out = run<simd::native>(pb);
        // The reference on a few rows: the first, the last and some in between.
        std::vector<std::size_t> pos;
        for (std::size_t i = 0; i < c.s.seq_q; i += std::max<std::size_t>(1, c.s.seq_q / 24)) pos.push_back(i);
        pos.push_back(c.s.seq_q - 1);
        std::sort(pos.begin(), pos.end());
        pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
        const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params(), pos);
        worst = std::max(worst, compare(out.o, out.lse, ref, pb.shape, 2e-6, describe(c.s, c.o), log));
    }
    INFO("largest row error: " << worst);
    GMK_REQUIRE_NO_MISMATCH(log);
}

namespace {

// The naive computation in storage precision (FlashAttention's test criterion): S, P and O
// rounded to S, products accumulated in float.
template <class S>
std::vector<double> naive_in_storage(const problem<S, float>& pb) {
    const auto& s = pb.shape;
    const std::size_t g = s.heads_q / s.heads_kv, d = s.head_dim;
    const float scale = float(1.0 / std::sqrt(double(d)));
    const auto params = pb.params();
    std::vector<double> o(pb.q.size());
    std::vector<float> p(s.seq_k);
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_q; ++h)
            for (std::size_t i = 0; i < s.seq_q; ++i) {
                const S* qr = pb.q.data() + q_index(s, b, h, i) * d;
                float m = -std::numeric_limits<float>::infinity();
                for (std::size_t j = 0; j < s.seq_k; ++j) {
                    const S* kr = pb.k.data() + kv_index(s, b, h / g, j) * d;
                    float dot = 0;
                    for (std::size_t x = 0; x < d; ++x) dot += float(qr[x]) * float(kr[x]);
                    p[j] = in_band(params, s, i, j) ? float(S(dot * scale)) : -std::numeric_limits<float>::infinity();
                    m = std::max(m, p[j]);
                }
                float l = 0;
                for (auto& x : p) {
                    x = std::exp(x - m);
                    l += x;
                }
                for (auto& x : p) x = float(S(x / l));
                for (std::size_t x = 0; x < d; ++x) {
                    float acc = 0;
                    for (std::size_t j = 0; j < s.seq_k; ++j) acc += p[j] * float(pb.v[kv_index(s, b, h / g, j) * d + x]);
                    o[q_index(s, b, h, i) * d + x] = double(S(acc));
                }
            }
    return o;
}

template <class S>
GMK_TEST_NOINLINE void check_low_precision(const char* name, gt::mismatch_log& log) {
    const attention_shape shapes[] = {{1, 2, 1, 100, 300, 64}, {2, 3, 3, 33, 77, 40}, {1, 1, 1, 513, 513, 128}};
    for (const auto& s : shapes)
        for (const bool causal : {false, true}) {
            options o;
            o.causal = causal;
            const problem<S, float> pb(s, o, 5);
            const auto out = run<simd::native>(pb);
            const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params());
            const auto naive = naive_in_storage(pb);
            double err = 0, naive_err = 0;
            for (std::size_t i = 0; i < ref.o.size(); ++i) {
                err = std::max(err, std::fabs(double(out.o[i]) - ref.o[i]));
                naive_err = std::max(naive_err, std::fabs(naive[i] - ref.o[i]));
            }
            if (!(err <= 2 * naive_err) || !(naive_err > 0))
                log.add(name, " ", describe(s, o), ": error ", err, ", naive computation in ", name, " ", naive_err);
            // lse is float: it is checked at the float bound.
            for (std::size_t r = 0; r < ref.lse.size(); ++r)
                if (!(std::fabs(double(out.lse[r]) - ref.lse[r]) <= 2e-6 * std::max(1.0, std::fabs(ref.lse[r]))))
                    log.add(name, " ", describe(s, o), ": lse row ", r, ": ", out.lse[r], " vs ", ref.lse[r]);
        }
}

}  // namespace

TEST_CASE("flash_attention: float16 and bfloat16 storage within twice the naive error in that storage",
          "[attention]") {
    // The vector widening path knows both formats by their bits (else a scalar path runs).
    using gmk::detail::attention::detect_format;
    using gmk::detail::attention::format;
    REQUIRE(detect_format<Eigen::half, float>() == format::ieee_half);
    REQUIRE(detect_format<Eigen::bfloat16, float>() == format::bfloat16);
    REQUIRE(detect_format<Eigen::bfloat16, double>() == format::bfloat16);
    REQUIRE(detect_format<float, float>() == format::other);
    REQUIRE(detect_format<std::int16_t, float>() == format::other);
    gt::mismatch_log log;
    check_low_precision<Eigen::half>("float16", log);
    check_low_precision<Eigen::bfloat16>("bfloat16", log);
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- flash attention: defined numerics -----------------------------------------------------

TEST_CASE("flash_attention: fully masked rows give O = 0 and lse = -inf, never NaN", "[attention]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        const std::string at = simd::backend_name<B>();
        // Bottom-right causal with more queries than keys: the first seq_q - seq_k rows see nothing.
        {
            options o;
            o.causal = true;
            const problem<float, float> pb({1, 2, 1, 50, 20, 24}, o, 1);
            const auto out = run<B>(pb);
            compare(out.o, out.lse, reference(pb.q, pb.k, pb.v, pb.shape, pb.params()), pb.shape, 2e-6, at + " causal-br", log);
            for (std::size_t r = 0; r < 30; ++r)
                if (!(out.lse[r] == -std::numeric_limits<float>::infinity())) log.add(at, " row ", r, " lse ", out.lse[r]);
        }
        // A mask with whole rows false, and a bias of -inf over whole rows and scattered.
        {
            options o;
            o.mask = 2;
            o.bias = 2;
            problem<float, float> pb({2, 2, 2, 40, 70, 17}, o, 2);
            gt::rng r(3);
            for (std::size_t row = 0; row < pb.rows(); ++row) {
                const double u = r.uniform();
                for (std::size_t j = 0; j < 70; ++j) {
                    if (u < 0.2) pb.mask[row * 70 + j] = 0;
                    if (u > 0.8 || r.uniform() < 0.3) pb.bias[row * 70 + j] = -std::numeric_limits<float>::infinity();
                }
            }
            const auto out = run<B>(pb);
            compare(out.o, out.lse, reference(pb.q, pb.k, pb.v, pb.shape, pb.params()), pb.shape, 2e-6, at + " mask/bias -inf", log);
        }
        // No keys at all.
        {
            const problem<float, float> pb({1, 3, 1, 9, 0, 8}, options{}, 4);
            const auto out = run<B>(pb);
            for (std::size_t i = 0; i < out.o.size(); ++i)
                if (!(out.o[i] == 0.0f)) log.add(at, " seq_k = 0: o[", i, "] = ", out.o[i]);
            for (float x : out.lse)
                if (!(x == -std::numeric_limits<float>::infinity())) log.add(at, " seq_k = 0: lse ", x);
        }
        // A window that rows past the keys miss (top-left, window (0, 0), seq_q > seq_k).
        {
            options o;
            o.alignment = causal_alignment::top_left;
            o.left = o.right = 0;
            const problem<float, float> pb({1, 1, 1, 30, 12, 5}, o, 5);
            const auto out = run<B>(pb);
            compare(out.o, out.lse, reference(pb.q, pb.k, pb.v, pb.shape, pb.params()), pb.shape, 2e-6, at + " window(0,0)", log);
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: logits of +-1e4 are stable", "[attention]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        // Scores up to about 1e4 from the data (q, k of magnitude 30, d = 64, scale 1 / 8 ...).
        options o;
        o.scale = 1.0;
        const problem<float, float> pb({1, 2, 1, 37, 93, 16}, o, 6, 50.0);
        const auto out = run<B>(pb);
        compare(out.o, out.lse, reference(pb.q, pb.k, pb.v, pb.shape, pb.params()), pb.shape, 2e-6,
                std::string(simd::backend_name<B>()) + " scores 1e4", log);
        // ... and from a bias of +-1e4 over ordinary scores, with softcap off and on.
        for (double cap : {0.0, 2e4}) {
            options ob;
            ob.bias = 2;
            ob.softcap = cap;
            problem<float, float> pbb({1, 1, 1, 41, 130, 24}, ob, 7);
            gt::rng r(8);
            for (auto& x : pbb.bias) x = float(r.uniform() < 0.5 ? -1e4 : 1e4) + float(r.uniform(-5, 5));
            const auto outb = run<B>(pbb);
            const auto ref = reference(pbb.q, pbb.k, pbb.v, pbb.shape, pbb.params());
            compare(outb.o, outb.lse, ref, pbb.shape, 2e-6, std::string(simd::backend_name<B>()) + " bias 1e4", log,
                    nullptr, std::ldexp(1.0, -22));
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: blocks no row sees are not computed (NaN there never reaches O)", "[attention]") {
    // With BlockQ = 32 and BlockK = 48, rows [0, 64) of a top-left causal problem read keys
    // [0, 96) at most; keys from 96 on hold NaN in K and V. A mask hiding keys [48, 96) from every
    // row (NaN there too) skips that block as well.
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        options o;
        o.causal = true;
        o.alignment = causal_alignment::top_left;
        o.mask = 1;
        problem<float, float> pb({1, 1, 1, 160, 160, 20}, o, 9);
        std::fill(pb.mask.begin(), pb.mask.end(), char(1));
        for (std::size_t i = 0; i < 160; ++i)
            for (std::size_t j = 48; j < 96; ++j) pb.mask[i * 160 + j] = 0;
        problem<float, float> nan = pb;
        for (std::size_t j = 48; j < 160; ++j)
            for (std::size_t x = 0; x < 20; ++x) {
                nan.k[j * 20 + x] = std::numeric_limits<float>::quiet_NaN();
                nan.v[j * 20 + x] = std::numeric_limits<float>::quiet_NaN();
            }
        output<float, float> out;
        out.o.assign(nan.q.size(), 0.0f);
        out.lse.assign(nan.rows(), 0.0f);
        gmk::flash_attention<B>(gmk::attention_tiles<32, 48>{}, nan.q.data(), nan.k.data(), nan.v.data(), out.o.data(),
                                out.lse.data(), nan.shape, nan.params());
        // Rows [0, 96) only read keys the NaN does not touch once masked blocks are skipped.
        const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params());
        result head;
        // (a copy, then NaN past the first rows: GCC 12 warns of a null memmove, falsely, when the
        // xsimd 14 build inlines assign() from iterators into an empty vector here)
        head.o = ref.o;
        head.lse = ref.lse;
        std::fill(head.o.begin() + 96 * 20, head.o.end(), std::nan(""));
        std::fill(head.lse.begin() + 96, head.lse.end(), std::nan(""));
        compare(out.o, out.lse, head, pb.shape, 2e-6, std::string(simd::backend_name<B>()) + " skipped blocks", log, &ref);
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

// ---- flash attention: structure ------------------------------------------------------------

TEST_CASE("flash_attention: bitwise the same on 1 and 2 threads, and on any BlockQ", "[attention]") {
    gt::mismatch_log log;
    const attention_shape shapes[] = {{2, 4, 2, 300, 257, 64}, {1, 8, 1, 1, 3000, 128}, {1, 4, 2, 2, 2100, 40},
                                      {3, 2, 2, 130, 130, 33}};
    for (const auto& s : shapes)
        for (int variant = 0; variant < 3; ++variant) {
            options o;
            if (variant == 1) o.causal = true;
            if (variant == 2) {
                o.left = 90;
                o.mask = 4;
                o.bias = 3;
            }
            const problem<float, float> pb(s, o, 10);
            const auto one = run<simd::native>(pb);
            const auto two = run<simd::native>(pb, gt::threaded_executor(2));
            if (!same_bits_all(one.o, two.o) || !same_bits_all(one.lse, two.lse))
                log.add(describe(s, o), ": 1 and 2 threads differ");
            if (s.seq_q > 1) {  // not the split-KV path: a row's result does not depend on BlockQ
                output<float, float> other;
                other.o.assign(pb.q.size(), 0.0f);
                other.lse.assign(pb.rows(), 0.0f);
                gmk::flash_attention(gmk::attention_tiles<32, 0>{}, pb.q.data(), pb.k.data(), pb.v.data(),
                                     other.o.data(), other.lse.data(), pb.shape, pb.params());
                if (!same_bits_all(one.o, other.o) || !same_bits_all(one.lse, other.lse))
                    log.add(describe(s, o), ": BlockQ 32 and the default differ");
            }
            compare(one.o, one.lse, reference(pb.q, pb.k, pb.v, pb.shape, pb.params()), s, 2e-6, describe(s, o), log);
        }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: GQA and MQA equal the same heads with K and V repeated", "[attention]") {
    gt::mismatch_log log;
    for (const std::size_t kv : {1, 2}) {
        options o;
        o.causal = true;
        const attention_shape s{2, 4, kv, 45, 61, 24};
        const problem<float, float> pb(s, o, 12);
        attention_shape full = s;
        full.heads_kv = s.heads_q;
        problem<float, float> rep(full, o, 12);
        rep.q = pb.q;
        const std::size_t g = s.heads_q / kv, n = s.seq_k * s.head_dim;
        for (std::size_t b = 0; b < s.batch; ++b)
            for (std::size_t h = 0; h < s.heads_q; ++h)
                for (std::size_t x = 0; x < n; ++x) {
                    rep.k[(b * s.heads_q + h) * n + x] = pb.k[(b * kv + h / g) * n + x];
                    rep.v[(b * s.heads_q + h) * n + x] = pb.v[(b * kv + h / g) * n + x];
                }
        const auto a = run<simd::native>(pb), c = run<simd::native>(rep);
        if (!same_bits_all(a.o, c.o) || !same_bits_all(a.lse, c.lse)) log.add("heads_kv = ", kv, ": differs from repeated K/V");
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: strided views (BSHD layout) equal the contiguous call", "[attention]") {
    const attention_shape s{2, 4, 2, 37, 53, 40};
    options o;
    o.causal = true;
    const problem<float, float> pb(s, o, 13);
    const auto want = run<simd::native>(pb);
    // The same tensors as [batch, seq, heads, dim] (PyTorch's default layout before transpose).
    const auto to_bshd = [&](const std::vector<float>& x, std::size_t heads, std::size_t seq) {
        std::vector<float> y(x.size());
        for (std::size_t b = 0; b < s.batch; ++b)
            for (std::size_t h = 0; h < heads; ++h)
                for (std::size_t i = 0; i < seq; ++i)
                    for (std::size_t d = 0; d < s.head_dim; ++d)
                        y[((b * seq + i) * heads + h) * s.head_dim + d] = x[((b * heads + h) * seq + i) * s.head_dim + d];
        return y;
    };
    const auto q = to_bshd(pb.q, s.heads_q, s.seq_q), k = to_bshd(pb.k, s.heads_kv, s.seq_k),
               v = to_bshd(pb.v, s.heads_kv, s.seq_k);
    std::vector<float> o_bshd(q.size()), lse(pb.rows());
    const auto strides = [&](std::size_t heads, std::size_t seq) {
        const auto d = std::ptrdiff_t(s.head_dim), h = std::ptrdiff_t(heads);
        return std::array<std::ptrdiff_t, 4>{std::ptrdiff_t(seq) * h * d, d, h * d, 1};
    };
    const auto sq = strides(s.heads_q, s.seq_q), sk = strides(s.heads_kv, s.seq_k);
    gmk::attention_tensor<const float> tq{q.data(), {sq[0], sq[1], sq[2], 1}}, tk{k.data(), {sk[0], sk[1], sk[2], 1}},
        tv{v.data(), {sk[0], sk[1], sk[2], 1}};
    gmk::attention_tensor<float> to{o_bshd.data(), {sq[0], sq[1], sq[2], 1}};
    gmk::flash_attention(tq, tk, tv, to, lse.data(), s, pb.params());
    REQUIRE(same_bits_all(o_bshd, to_bshd(want.o, s.heads_q, s.seq_q)));
    REQUIRE(same_bits_all(lse, want.lse));
    gmk::attention_tensor<float> bad = to;
    bad.strides[3] = 2;
    gt::require_throws_naming([&] { gmk::flash_attention(tq, tk, tv, bad, lse.data(), s, pb.params()); }, "o.strides[3]");
}

TEST_CASE("flash_attention: tile sizes as template parameters", "[attention]") {
    gt::mismatch_log log;
    const problem<float, float> pb({1, 2, 1, 150, 333, 48}, options{}, 14);
    const auto ref = reference(pb.q, pb.k, pb.v, pb.shape, pb.params());
    const auto check = [&](auto tiles, const char* name) {
        output<float, float> out;
        out.o.assign(pb.q.size(), 0.0f);
        out.lse.assign(pb.rows(), 0.0f);
        gmk::flash_attention(tiles, pb.q.data(), pb.k.data(), pb.v.data(), out.o.data(), out.lse.data(), pb.shape,
                             pb.params());
        compare(out.o, out.lse, ref, pb.shape, 2e-6, name, log);
    };
    check(gmk::attention_tiles<>{}, "default");
    check(gmk::attention_tiles<16, 12>{}, "16 x 12");
    check(gmk::attention_tiles<100, 50>{}, "100 x 50");
    check(gmk::attention_tiles<256, 512>{}, "256 x 512");
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("flash_attention: Eigen matrices, one head", "[attention][eigen]") {
    using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const attention_shape s{1, 1, 1, 29, 41, 19};
    options o;
    o.causal = true;
    const problem<float, float> pb(s, o, 15);
    const auto want = run<simd::native>(pb);
    const Eigen::Map<const M> q(pb.q.data(), 29, 19), k(pb.k.data(), 41, 19), v(pb.v.data(), 41, 19);
    M out;
    Eigen::VectorXf lse(29);
    gmk::flash_attention(q, k, v, out, lse.data(), pb.params());
    REQUIRE(out.rows() == 29);
    REQUIRE(out.cols() == 19);
    REQUIRE(std::equal(want.o.begin(), want.o.end(), out.data()));
    REQUIRE(std::equal(want.lse.begin(), want.lse.end(), lse.data()));
    // Default options into a map of existing storage.
    std::vector<float> buffer(29 * 19);
    gmk::flash_attention(q, k, v, Eigen::Map<M>(buffer.data(), 29, 19));
    const problem<float, float> plain(s, options{}, 15);
    REQUIRE(std::equal(buffer.begin(), buffer.end(), run<simd::native>(plain).o.begin()));
    // Column-major operands have strided rows: rejected.
    const Eigen::MatrixXf col_major = q;
    gt::require_throws_naming([&] { gmk::flash_attention(col_major, k, v, out); }, "q.col_stride");
    gt::require_throws_naming([&] { gmk::flash_attention(q, k.leftCols(18), v, out); }, "k.cols()");
}

// ---- flash attention: bad input ------------------------------------------------------------

TEST_CASE("flash_attention: bad arguments throw std::invalid_argument naming them", "[attention]") {
    const problem<float, float> pb({1, 4, 2, 5, 7, 8}, options{}, 16);
    std::vector<float> o(pb.q.size()), lse(pb.rows());
    float* lp = lse.data();
    const auto call = [&](attention_shape s, const attention_params<float>& p, const float* q, const float* k,
                          const float* v, float* out) {
        return [=] { gmk::flash_attention(q, k, v, out, lp, s, p); };
    };
    const auto p = pb.params();
    auto s = pb.shape;
    s.heads_q = 3;
    gt::require_throws_naming(call(s, p, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "shape.heads_q");
    s = pb.shape;
    s.heads_kv = 0;
    gt::require_throws_naming(call(s, p, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "shape.heads_kv");
    s = pb.shape;
    s.heads_q = 0;
    gt::require_throws_naming(call(s, p, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "shape.heads_q");
    s = pb.shape;
    s.head_dim = 0;
    gt::require_throws_naming(call(s, p, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "shape.head_dim");
    gt::require_throws_naming(call(pb.shape, p, nullptr, pb.k.data(), pb.v.data(), o.data()), "q");
    gt::require_throws_naming(call(pb.shape, p, pb.q.data(), nullptr, pb.v.data(), o.data()), "k");
    gt::require_throws_naming(call(pb.shape, p, pb.q.data(), pb.k.data(), nullptr, o.data()), "v");
    gt::require_throws_naming(call(pb.shape, p, pb.q.data(), pb.k.data(), pb.v.data(), nullptr), "o");
    auto bad = p;
    bad.window_left = -2;
    gt::require_throws_naming(call(pb.shape, bad, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "params.window_left");
    bad = p;
    bad.window_right = -5;
    gt::require_throws_naming(call(pb.shape, bad, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "params.window_right");
    bad = p;
    bad.scale = std::numeric_limits<double>::quiet_NaN();
    gt::require_throws_naming(call(pb.shape, bad, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "params.scale");
    bad = p;
    bad.softcap = -1;
    gt::require_throws_naming(call(pb.shape, bad, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "params.softcap");
    bad = p;
    bad.alignment = static_cast<causal_alignment>(7);
    gt::require_throws_naming(call(pb.shape, bad, pb.q.data(), pb.k.data(), pb.v.data(), o.data()), "params.alignment");
    // Empty problems are fine: nothing to compute, no pointer needed.
    s = pb.shape;
    s.seq_q = 0;
    REQUIRE_NOTHROW(call(s, p, nullptr, pb.k.data(), pb.v.data(), nullptr)());
    s = pb.shape;
    s.batch = 0;
    REQUIRE_NOTHROW(call(s, p, nullptr, nullptr, nullptr, nullptr)());
}
