// Fuzz target: tiled online-softmax attention (gmk/attention/flash_attention.hpp) against the
// naive computation in double.
//
// One input is: storage and compute types (float/float, double/double, float/double), backend,
// a small shape (GQA and MQA included; seq_q or seq_k may be 0; a long-key decoding shape that
// splits the keys), the options (causal with either alignment, a sliding window, scale, softcap,
// an additive bias and a boolean mask in every layout tests/attention.cpp uses, -inf biases),
// the entry point (contiguous, explicit small tiles, strided views), an executor that runs its
// tasks in reverse order or none, and the data. Sometimes one setting is made invalid: the call
// must then throw std::invalid_argument, and a valid call must not.
//
// Error measure as tests/attention.cpp: per row, max_d |o - ref| / max_d sum_j p_j |v_jd| within
// tol + 2 delta, and |lse - ref| / max(1, |ref|) within tol + delta, where tol is the test's
// bound (2e-6 for float compute, 1e-14 plus the summation's n eps for double, 2e-7 for float
// storage with double compute) and delta bounds the rounding of the row's scores in the compute
// type ((head_dim + 4) eps times the largest |scale| sum_x |q_x k_x| + softcap + |bias| among
// the keys the row sees: the softmax passes a score error on to O at most twice), plus an
// absolute floor for what the types cannot hold: a weight e^(s_j - max) below the compute type's
// smallest normal may be flushed (at most seq_k of them, each times |v_jd| <= max |v|), and an
// output below the storage type's smallest normal is subnormal or 0 (a row whose largest weights
// fall on v = 0 has an exact output of 1e-48, which float cannot store). Rows with no key left
// must be exactly 0 with lse = -inf; outputs are sentinel-filled first.
#include <gmk/attention/flash_attention.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../tests/support/attention_cases.hpp"
#include "fuzz_input.hpp"

namespace {

using gmk::attention_bias_strides;
using gmk::attention_params;
using gmk::attention_shape;
using gmk::causal_alignment;
using gmk_fuzz::expect;

constexpr double inf = std::numeric_limits<double>::infinity();

using options = gmk_test::attention_options;
using gmk_test::layout;
using gmk_test::layout_size;

std::ptrdiff_t layout_offset(int kind, const attention_shape& s, std::size_t b, std::size_t h, std::size_t i,
                             std::size_t j) {
    attention_bias_strides x = layout(kind, s);
    if (x.is_default()) x = {0, 0, std::ptrdiff_t(s.seq_k), 1};
    return std::ptrdiff_t(b) * x.batch + std::ptrdiff_t(h) * x.head + std::ptrdiff_t(i) * x.query +
           std::ptrdiff_t(j) * x.key;
}

bool in_band(const options& o, const attention_shape& s, std::size_t i, std::size_t j) {
    const long long off = o.alignment == causal_alignment::bottom_right ? (long long)s.seq_k - (long long)s.seq_q : 0;
    const long long a = (long long)i + off, jj = (long long)j;
    if (o.causal && jj > a) return false;
    if (o.left >= 0 && jj < a - o.left) return false;
    if (o.right >= 0 && jj > a + o.right) return false;
    return true;
}

// Where the data of Q, K, V and O live: element (b, h, i, x) at b * s0 + h * s1 + i * s2 + x.
struct strides4 {
    std::ptrdiff_t s[4];
    std::size_t size;  // elements to allocate
    std::size_t at(std::size_t b, std::size_t h, std::size_t i, std::size_t x) const {
        return std::size_t(std::ptrdiff_t(b) * s[0] + std::ptrdiff_t(h) * s[1] + std::ptrdiff_t(i) * s[2]) + x;
    }
};
// Contiguous [batch, heads, seq, d], or padded (BSHD-like: heads inside positions, plus gaps).
strides4 make_layout(bool padded, std::size_t batch, std::size_t heads, std::size_t seq, std::size_t d,
                     std::size_t pad) {
    if (!padded) {
        const auto s2 = std::ptrdiff_t(d), s1 = std::ptrdiff_t(seq) * s2, s0 = std::ptrdiff_t(heads) * s1;
        return {{s0, s1, s2, 1}, batch * heads * seq * d};
    }
    const auto s1 = std::ptrdiff_t(d + pad), s2 = std::ptrdiff_t(heads) * s1 + std::ptrdiff_t(pad);
    const auto s0 = std::ptrdiff_t(seq) * s2 + std::ptrdiff_t(pad);
    return {{s0, s1, s2, 1}, batch * std::size_t(s0) + 1};
}

template <class S, class T>
struct problem {
    attention_shape shape;
    options opt;
    strides4 lq, lk;  // layouts of Q and O, of K and V
    std::vector<S> q, k, v;
    std::vector<T> bias;
    std::vector<char> mask;
};

template <class S, class T>
void decode_data(gmk_fuzz::input& in, problem<S, T>& p) {
    const attention_shape& s = p.shape;
    const double amplitude = std::array<double, 4>{1.0, 1.0, 4.0, 30.0}[in.choice(4)];
    const bool from_bytes = in.flag();
    gmk_fuzz::mix m(in.bits<std::uint64_t>());
    const auto value = [&](double amp) {
        if (from_bytes && in.left() > 0) return amp * (double(int(in.byte()) - 128) / 64.0);  // a grid: ties and zeros
        return amp * (2 * m.uniform() - 1);
    };
    p.q.assign(p.lq.size, S(0));
    p.k.assign(p.lk.size, S(0));
    p.v.assign(p.lk.size, S(0));
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_q; ++h)
            for (std::size_t i = 0; i < s.seq_q; ++i)
                for (std::size_t x = 0; x < s.head_dim; ++x) p.q[p.lq.at(b, h, i, x)] = S(value(amplitude));
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_kv; ++h)
            for (std::size_t j = 0; j < s.seq_k; ++j)
                for (std::size_t x = 0; x < s.head_dim; ++x) {
                    p.k[p.lk.at(b, h, j, x)] = S(value(amplitude));
                    p.v[p.lk.at(b, h, j, x)] = S(value(1.0));
                }
    if (p.opt.bias) {
        const std::size_t minus_inf = in.range(0, 255);  // chance (of 256) of a -inf bias
        p.bias.resize(std::max<std::size_t>(1, layout_size(p.opt.bias, s)));
        for (auto& x : p.bias) x = m.byte() < minus_inf / 4 ? T(-inf) : T(3 * (2 * m.uniform() - 1));
    }
    if (p.opt.mask) {
        const std::size_t keep = in.range(0, 256);  // chance (of 256) of attending
        p.mask.resize(std::max<std::size_t>(1, layout_size(p.opt.mask, s)));
        for (auto& x : p.mask) x = m.byte() < keep;
    }
}

// The reference for row (b, h, i): o (head_dim), lse, the magnitude max_d sum_j p_j |v_jd|,
// delta, the bound of the row's score rounding in compute type T, and floor, the absolute error
// that underflow in T and S may leave.
template <class S, class T>
void reference_row(const problem<S, T>& p, std::size_t b, std::size_t h, std::size_t i, std::vector<double>& o,
                   double& lse, double& mag, double& delta, double& floor) {
    const attention_shape& s = p.shape;
    const std::size_t g = s.heads_q / s.heads_kv, d = s.head_dim;
    const double scale = p.opt.scale != 0 ? p.opt.scale : 1.0 / std::sqrt(double(d));
    const double eps = std::numeric_limits<T>::epsilon();
    std::vector<double> sc(s.seq_k);
    double m = -inf, amax = 0;
    for (std::size_t j = 0; j < s.seq_k; ++j) {
        double dot = 0, adot = 0;
        for (std::size_t x = 0; x < d; ++x) {
            const double qx = double(p.q[p.lq.at(b, h, i, x)]), kx = double(p.k[p.lk.at(b, h / g, j, x)]);
            dot += qx * kx;
            adot += std::fabs(qx * kx);
        }
        double v = scale * dot, a = std::fabs(scale) * adot;
        if (p.opt.softcap > 0) {
            v = p.opt.softcap * std::tanh(v / p.opt.softcap);
            a += p.opt.softcap;
        }
        if (p.opt.bias) {
            const double bj = double(p.bias[std::size_t(layout_offset(p.opt.bias, s, b, h, i, j))]);
            v += bj;
            if (std::isfinite(bj)) a += std::fabs(bj);
        }
        if (p.opt.mask && !p.mask[std::size_t(layout_offset(p.opt.mask, s, b, h, i, j))]) v = -inf;
        if (!in_band(p.opt, s, i, j)) v = -inf;
        sc[j] = v;
        m = std::max(m, v);
        if (v > -inf) amax = std::max(amax, a);
    }
    double l = 0;
    for (double& x : sc) {
        x = m == -inf ? 0.0 : std::exp(x - m);
        l += x;
    }
    o.assign(d, 0.0);
    mag = 0;
    double vmax = 0;
    for (std::size_t x = 0; x < d; ++x)
        for (std::size_t j = 0; j < s.seq_k; ++j) vmax = std::max(vmax, std::fabs(double(p.v[p.lk.at(b, h / g, j, x)])));
    floor = double(s.seq_k) * double(std::numeric_limits<T>::min()) * vmax + double(std::numeric_limits<S>::min());
    for (std::size_t x = 0; x < d; ++x) {
        double acc = 0, am = 0;
        for (std::size_t j = 0; j < s.seq_k; ++j)
            if (sc[j] != 0) {
                const double vj = double(p.v[p.lk.at(b, h / g, j, x)]);
                acc += sc[j] * vj;
                am += sc[j] * std::fabs(vj);
            }
        o[x] = l > 0 ? acc / l : 0.0;
        mag = std::max(mag, l > 0 ? am / l : 0.0);
    }
    lse = l > 0 ? m + std::log(l) : -inf;
    delta = double(d + 4) * eps * amax;
}

// The default (serial) executor, or one that runs its tasks in reverse order: results must not
// depend on the order.
gmk::executor make_executor(bool reverse) {
    if (!reverse) return gmk::executor();
    return gmk::executor([](std::size_t count, gmk::task_ref task) {
        for (std::size_t t = count; t-- > 0;) task(t);
    });
}

template <class B, class S, class T>
void run(gmk_fuzz::input& in) {
    problem<S, T> p;
    attention_shape& s = p.shape;
    options& o = p.opt;
    // Shape: small, or a decoding shape with long keys (the split-KV path).
    const bool long_keys = in.byte() < 24;
    s.batch = in.range(1, 2);
    s.heads_kv = in.range(1, 3);
    const std::size_t group = in.range(1, 3);
    s.heads_q = s.heads_kv * group;
    s.head_dim = in.flag() ? in.range(1, 9) : in.range(1, 72);
    if (long_keys) {
        s.seq_q = in.range(0, 2);
        s.seq_k = in.range(900, 1300);
        s.head_dim = in.range(1, 8);
    } else {
        s.seq_q = in.range(0, 40);
        s.seq_k = in.range(0, 110);
    }
    // Keep one execution fast: the reference costs batch * heads_q * seq_q * seq_k * head_dim.
    while (s.batch * s.heads_q * s.seq_q * s.seq_k * s.head_dim > (std::size_t(1) << 16) && s.seq_q > 1) s.seq_q /= 2;
    while (s.batch * s.heads_q * s.seq_q * s.seq_k * s.head_dim > (std::size_t(1) << 16) && s.head_dim > 1)
        s.head_dim /= 2;

    const std::uint8_t what = in.byte();  // which options, as a bit set
    o.alignment = in.flag() ? causal_alignment::top_left : causal_alignment::bottom_right;
    o.causal = what & 1;
    if (what & 2) {
        o.left = long(in.range(0, 45)) - 1;
        o.right = long(in.range(0, 45)) - 1;
    }
    if (what & 4) o.bias = int(in.range(1, 5));
    if (what & 8) o.mask = int(in.range(1, 5));
    if (what & 16) o.softcap = in.log_real(0.05, 100);
    if (what & 32) o.scale = in.real(-3, 3);
    const std::size_t entry = in.choice(3);  // 0 contiguous, 1 explicit small tiles, 2 strided views
    const bool with_lse = in.byte() >= 32;
    const bool reverse = in.flag();

    // Sometimes one invalid setting: the call must throw std::invalid_argument.
    bool valid = true;
    const std::uint8_t broken = in.byte();
    attention_shape call_shape = s;
    double call_scale = o.scale, call_softcap = o.softcap;
    long call_left = o.left, call_right = o.right;
    int call_alignment = int(o.alignment);
    if (broken < 20) {
        valid = false;
        switch (broken % 8) {
            case 0:
                call_shape.head_dim = 0;
                break;
            case 1:
                call_shape.heads_kv = 0;
                break;
            case 2:
                if (s.heads_kv > 1)
                    call_shape.heads_q = s.heads_kv * group + 1;
                else
                    call_shape.heads_q = 0;
                break;
            case 3:
                call_scale = broken & 8 ? inf : std::numeric_limits<double>::quiet_NaN();
                break;
            case 4:
                call_softcap = broken & 8 ? -1.0 : inf;
                break;
            case 5:
                call_left = -2;
                break;
            case 6:
                call_right = -1 - long(in.range(1, 1000));
                break;
            default:
                call_alignment = 7;
                break;
        }
    }

    const bool padded = entry == 2;
    const std::size_t pad = padded ? in.range(0, 5) : 0;
    p.lq = make_layout(padded, s.batch, s.heads_q, s.seq_q, s.head_dim, pad);
    p.lk = make_layout(padded, s.batch, s.heads_kv, s.seq_k, s.head_dim, pad);
    decode_data(in, p);

    attention_params<T> params;
    params.scale = call_scale;
    params.causal = o.causal;
    params.alignment = static_cast<causal_alignment>(call_alignment);
    params.window_left = call_left;
    params.window_right = call_right;
    params.softcap = call_softcap;
    if (o.bias) {
        params.bias = p.bias.data();
        params.bias_strides = layout(o.bias, s);
    }
    if (o.mask) {
        params.mask = reinterpret_cast<const bool*>(p.mask.data());
        params.mask_strides = layout(o.mask, s);
    }
    params.exec = make_executor(reverse);

    const S sentinel = S(12345);
    std::vector<S> out(p.lq.size, sentinel);
    const std::size_t rows = s.batch * s.heads_q * s.seq_q;
    std::vector<T> lse(rows + 1, T(12345));
    T* lse_ptr = with_lse ? lse.data() : nullptr;
    const bool ran = gmk_fuzz::call_checked(valid, "flash_attention", [&] {
        if (entry == 1) {
            gmk::flash_attention<B>(gmk::attention_tiles<1, 1>{}, p.q.data(), p.k.data(), p.v.data(), out.data(),
                                    lse_ptr, call_shape, params);
        } else if (entry == 2) {
            gmk::attention_tensor<const S> tq{p.q.data(), {p.lq.s[0], p.lq.s[1], p.lq.s[2], 1}};
            gmk::attention_tensor<const S> tk{p.k.data(), {p.lk.s[0], p.lk.s[1], p.lk.s[2], 1}};
            gmk::attention_tensor<const S> tv{p.v.data(), {p.lk.s[0], p.lk.s[1], p.lk.s[2], 1}};
            gmk::attention_tensor<S> to{out.data(), {p.lq.s[0], p.lq.s[1], p.lq.s[2], 1}};
            gmk::flash_attention<B>(tq, tk, tv, to, lse_ptr, call_shape, params);
        } else {
            gmk::flash_attention<B>(p.q.data(), p.k.data(), p.v.data(), out.data(), lse_ptr, call_shape, params);
        }
    });
    if (!ran) return;

    // Tolerances: see the top of the file.
    double tol;
    if (std::is_same_v<T, float>)
        tol = 2e-6;
    else if (std::is_same_v<S, float>)
        tol = 2e-7;
    else
        tol = 1e-14 + double(s.seq_k) * std::numeric_limits<double>::epsilon();
    std::vector<double> ref;
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t h = 0; h < s.heads_q; ++h)
            for (std::size_t i = 0; i < s.seq_q; ++i) {
                double rlse, mag, delta, floor;
                reference_row(p, b, h, i, ref, rlse, mag, delta, floor);
                const std::size_t row = (b * s.heads_q + h) * s.seq_q + i;
                double err = 0;
                for (std::size_t x = 0; x < s.head_dim; ++x) {
                    const double got = double(out[p.lq.at(b, h, i, x)]);
                    expect(std::isfinite(got), "flash_attention ", gmk::simd::backend_name<B>(), " row ", row,
                           ": non-finite output ", got);
                    err = std::max(err, std::fabs(got - ref[x]));
                }
                const double got_lse = with_lse ? double(lse[row]) : 0.0;
                if (rlse == -inf) {
                    expect(err == 0, "flash_attention row ", row, ": fully masked row not zero (", err, ")");
                    expect(!with_lse || got_lse == -inf, "flash_attention row ", row, ": fully masked lse = ", got_lse);
                    continue;
                }
                if (mag == 0) {
                    expect(err == 0, "flash_attention row ", row, ": zero values give ", err);
                } else {
                    const double bound = tol + 2 * delta;
                    expect(err <= bound * mag + floor, "flash_attention ", gmk::simd::backend_name<B>(), " b", s.batch, " hq",
                           s.heads_q, " hkv", s.heads_kv, " sq", s.seq_q, " sk", s.seq_k, " d", s.head_dim, " causal ",
                           o.causal, " align ", int(o.alignment), " window (", o.left, ", ", o.right, ") bias ", o.bias,
                           " mask ", o.mask, " softcap ", o.softcap, " scale ", o.scale, " entry ", entry, ": row ",
                           row, " relative error ", err / mag, " > ", bound, " (absolute floor ", floor, ")");
                }
                if (with_lse)
                    expect(std::fabs(got_lse - rlse) / std::max(1.0, std::fabs(rlse)) <= tol + delta,
                           "flash_attention ", gmk::simd::backend_name<B>(), " row ", row, ": lse ", got_lse,
                           ", expected ", rlse);
            }
    // Nothing outside the outputs was written.
    if (padded) {
        std::vector<char> is_out(out.size(), 0);
        for (std::size_t b = 0; b < s.batch; ++b)
            for (std::size_t h = 0; h < s.heads_q; ++h)
                for (std::size_t i = 0; i < s.seq_q; ++i)
                    for (std::size_t x = 0; x < s.head_dim; ++x) is_out[p.lq.at(b, h, i, x)] = 1;
        for (std::size_t e = 0; e < out.size(); ++e)
            expect(is_out[e] || out[e] == sentinel, "flash_attention wrote outside O at element ", e);
    }
    expect(lse[rows] == T(12345), "flash_attention wrote past lse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    gmk_fuzz::input in(data, size);
    const std::size_t types = in.choice(3);
    gmk_fuzz::with_backend(in.byte(), [&](auto b) {
        using B = decltype(b);
        if (types == 0)
            run<B, float, float>(in);
        else if (types == 1)
            run<B, double, double>(in);
        else
            run<B, float, double>(in);
    });
    return 0;
}
