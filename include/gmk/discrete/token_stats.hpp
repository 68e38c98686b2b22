// gmk: per-position token statistics over a vocabulary row, the kernel of the masked
// discrete-diffusion sampler (include/gmk/discrete/).
//
// For one row of logits l[0..V) and a sampling setting (temperature T, Dream's top-p and top-k,
// suppressed token ids) token_statistics() returns the chosen token (argmax at T = 0, a draw from
// q = softmax(filter(l / T)) otherwise), its probability under q, its probability under the
// model's own softmax(l), the top-1 / top-2 margin and the negative entropy of q, the row maximum
// and log-sum-exp.
//
// How the row is read. The row is cut into chunks that fit in L1 (4096 floats or more, at most
// 256 chunks). Each chunk is read twice: once from memory for its maximum and its two largest
// values per lane, once from L1 for sum exp((l - c) / T) and sum exp(.)(l - c) / T relative to
// the chunk maximum c. Chunk results are combined exactly (one rescaling per chunk), so the whole
// row streams through once from memory, the next chunk prefetched while this one's exponentials
// are computed. Floats take exponentials in base 2 (simd::exp2_nonpositive: about half the
// operations of a general exp, relative error below 2e-7); doubles use simd::exp.
//
// Sampling (T > 0), three ways (token_sampling):
//   inverse_cdf       one uniform u per row: the token is the first v whose cumulative weight
//                     exceeds u * W (weights exp((l_v - max) / T) in index order, W their sum).
//                     The chunk sums are kept, so only the chunk holding the token is read again.
//                     Exact inversion of q up to the rounding of the weights. The fast default.
//   exponential_race  argmax_v q_v / E_v over V exponential variates E_v: what torch.multinomial
//                     does for one sample (and so Dream's Categorical(probs).sample()); given the
//                     same E it picks the same token. V draws per row.
//   gumbel_float64    LLaDA's add_gumbel_noise: argmax_v exp(l_v) / (-log u_v)^T in double, over
//                     V uniforms u_v. Given torch's uniforms it picks LLaDA's token. V draws per row.
// Both race forms are Gumbel-max (-log E is a standard Gumbel variate), so all three sample q.
//
// Filters (Dream's order: temperature, then top-p, then top-k). Tokens are ordered by logit,
// ties by index. top-p keeps every token whose preceding mass in that order is at most top_p
// (so the smallest prefix whose mass exceeds top_p; the first token always stays); top-k keeps
// the tokens whose logit is at least the k-th largest (ties at the k-th value all stay). Both
// keep a prefix of the order, so together they keep the shorter one. top-p's cut is exact to the
// rounding of the row's mass (a float row sum carries a few 1e-7 of it, as Dream's float32
// cumulative sum does): tokens lighter than that at the boundary may fall either way. top-p sorts only the
// tokens heavy enough to matter, top-k keeps a k-entry heap (see filter_cut); the kept tokens
// are then summed again.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/ops.hpp"

namespace gmk::discrete {

/// A token id. 32 bits hold every vocabulary in use (LLaDA's has 126,464 entries).
using token = std::int32_t;

/// How token_statistics() draws a token at temperature > 0 (see the file comment).
enum class token_sampling {
    inverse_cdf,       ///< one uniform per row; the fast default
    exponential_race,  ///< argmax q_v / E_v over V exponential variates (torch.multinomial, Dream)
    gumbel_float64,    ///< argmax exp(l_v) / (-log u_v)^T in double over V uniforms (LLaDA)
};

/// The distribution a token is drawn from: q = softmax(filter(l / T)).
struct sampling {
    double temperature = 0;      ///< T >= 0; 0 takes the argmax (and q = softmax(l))
    double top_p = 1;            ///< in (0, 1]; 1 keeps every token
    std::size_t top_k = 0;       ///< 0 keeps every token
    span<const token> suppress;  ///< token ids never chosen (as logits of -inf); strictly increasing
};

/// The random input of one row's draw (unused at T = 0).
struct token_draw {
    token_sampling method = token_sampling::inverse_cdf;
    double uniform = 0.5;               ///< inverse_cdf: u in [0, 1)
    const double* per_token = nullptr;  ///< exponential_race: E_v > 0; gumbel_float64: u_v in (0, 1); V values
};

/// What token_statistics() finds for one row. Probabilities are of the chosen token.
template <class T>
struct token_stats {
    std::size_t token = 0;    ///< argmax at T = 0 (lowest index among ties), else the draw
    T probability = 0;        ///< q(token), q = softmax(filter(l / T)) (T = 0: T taken as 1)
    T model_probability = 0;  ///< softmax(l)(token): the model's, untempered and unfiltered
    T margin = 0;             ///< q1 - q2 of the two largest probabilities of q
    T neg_entropy = 0;        ///< sum_v q_v log q_v (<= 0; 0 for a one-hot q)
    T max = 0;                ///< max_v l_v
    T log_sum_exp = 0;        ///< log sum_v exp(l_v)
    std::size_t kept = 0;     ///< tokens the filters keep (unfiltered: vocab minus the suppressed)
};

namespace detail::vocab {

template <class T>
inline constexpr T neg_inf = -std::numeric_limits<T>::infinity();

// Weights are exp((l - c) / T) = 2^y with y = (l - c) * scale, scale = log2(e) / T for floats,
// or e^y with scale = 1 / T for doubles (simd::exp). Float exponents are clamped at -126 first
// (simd::exp2_in_range): a weight below 2^-126 of the row maximum counts as 2^-126, which no
// float sum of fewer than 2^100 weights can see, and the clamped y is what the entropy sum
// multiplies (so -inf logits add 0 * y = 0, never NaN). The draws skip -inf logits explicitly.
template <class T>
inline constexpr double unit = std::is_same_v<T, float> ? 1.4426950408889634 : 1.0;  // log2(e) or 1

template <class V>
GMK_INLINE V clamp_exponent(const V& y) noexcept {
    using T = typename V::value_type;
    if constexpr (std::is_same_v<T, float>) return simd::max(y, V(T(-126)));  // NaN stays NaN
    else return simd::max(y, V(std::numeric_limits<T>::lowest()));
}

template <class V>
GMK_INLINE V weight(const V& yc) noexcept {  // yc = clamp_exponent(y)
    if constexpr (std::is_same_v<typename V::value_type, float>) return simd::exp2_in_range(yc);
    else return simd::exp(yc);
}

template <class T>
T weight_scalar(T y) noexcept {
    using V = simd::batch<T, simd::scalar>;
    return weight(clamp_exponent(V(y))).value;
}

inline constexpr std::size_t max_chunks = 256;

template <class T>
std::size_t chunk_size(std::size_t vocab) noexcept {
    const std::size_t least = std::is_same_v<T, float> ? 4096 : 2048;
    const std::size_t even = (vocab + max_chunks - 1) / max_chunks;
    return std::max(least, (even + 63) / 64 * 64);
}

// One chunk relative to its own maximum c: s = sum w, sy = sum w y, raw = sum exp(l - c) (when
// the tempered and raw weights differ), in the scale of `unit`.
template <class T>
struct chunk_sum {  // no initialisers: a row's array of them is filled as the row is read
    T max;
    double s, sy, raw;
};

// The kept-set cut: keep l > value, or l == value with index <= index.
template <class T>
struct cut {
    T value = neg_inf<T>;
    std::size_t index = std::numeric_limits<std::size_t>::max();
    bool before(const cut& o) const noexcept { return value > o.value || (value == o.value && index < o.index); }
};

// Calls f(first, count) for the runs of [lo, hi) between suppressed ids (sorted).
template <class F>
void for_each_run(std::size_t lo, std::size_t hi, span<const token> suppress, F&& f) {
    const token* s = std::lower_bound(suppress.begin(), suppress.end(), static_cast<token>(lo));
    std::size_t at = lo;
    for (; s != suppress.end() && static_cast<std::size_t>(*s) < hi; ++s) {
        const std::size_t id = static_cast<std::size_t>(*s);
        if (id > at) f(at, id - at);
        at = id + 1;
    }
    if (at < hi) f(at, hi - at);
}

// Per-lane maximum and second largest of x[0..n) in two independent pairs (even and odd
// vectors: the max/min chains are latency-bound with one): m2 = max(m2, min(m1, x)),
// m1 = max(m1, x).
template <class B, class T>
GMK_INLINE void top2_lanes(const T* x, std::size_t n, simd::batch<T, B> (&m1)[2], simd::batch<T, B> (&m2)[2]) noexcept {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const auto take = [&](const V& v, std::size_t u) {
        m2[u] = simd::max(m2[u], simd::min(m1[u], v));
        m1[u] = simd::max(m1[u], v);
    };
    std::size_t at = 0;
    for (; at + 2 * L <= n; at += 2 * L) {
        take(simd::load<B>(x + at), 0);
        take(simd::load<B>(x + at + L), 1);
    }
    if (at + L <= n) {
        take(simd::load<B>(x + at), 0);
        at += L;
    }
    if (at < n) {
        alignas(64) T buf[L];
        for (std::size_t k = 0; k < L; ++k) buf[k] = at + k < n ? x[at + k] : neg_inf<T>;
        take(simd::load<B>(buf), 1);
    }
}

// Adds the weights of x[0..n) (global index `first`) relative to c to the accumulators: s, sy
// (and raw when Dual). Four vectors per trip, each with its own accumulators: the exponentials
// overlap, and each partial sum takes at most a quarter of a chunk's lanes. Filtered keeps only
// the tokens before the cut k.
template <class B, bool Dual, bool Filtered, class T>
GMK_INLINE void weigh(const T* x, std::size_t n, std::size_t first, T c, T scale, T raw_scale, const cut<T>& k,
                      const T* ahead, simd::batch<T, B> (&acc)[4][3]) noexcept {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const V cv(c), sc(scale), rsc(raw_scale);
    const auto one = [&](const V& l0, std::size_t at, V (&a)[3]) {
        V l = l0;
        if constexpr (Filtered) {
            const V idx = simd::iota<T, B>(T(0)) + V(static_cast<T>(first + at));
            const auto keep = (l > V(k.value)) | ((l == V(k.value)) & (idx <= V(static_cast<T>(k.index))));
            l = simd::select(keep, l, V(neg_inf<T>));
        }
        const V d = l - cv;
        const V y = clamp_exponent(d * sc);
        const V w = weight(y);
        a[0] = a[0] + w;
        a[1] = simd::fma(w, y, a[1]);
        if constexpr (Dual) a[2] = a[2] + weight(clamp_exponent(d * rsc));
    };
    std::size_t at = 0;
    for (; at + 4 * L <= n; at += 4 * L) {
        simd::prefetch(ahead + at, 4 * L * sizeof(T));  // the next chunk, while this one computes
        for (std::size_t u = 0; u < 4; ++u) one(simd::load<B>(x + at + u * L), at + u * L, acc[u]);
    }
    for (; at < n; at += L) {  // (constant indices only: the accumulators stay in registers)
        if (at + L <= n) {
            one(simd::load<B>(x + at), at, acc[0]);
        } else {
            alignas(64) T buf[L];
            for (std::size_t j = 0; j < L; ++j) buf[j] = at + j < n ? x[at + j] : neg_inf<T>;
            one(simd::load<B>(buf), at, acc[0]);
        }
    }
}

// The weights of x[0..n) (n <= 64, global index `first`) relative to c into out: 0 for -inf
// logits and, when filtered, for tokens past the cut k (the draw never picks a token of weight 0).
template <class B, class T>
void block_weights(const T* x, std::size_t n, std::size_t first, T c, T scale, bool filtered, const cut<T>& k,
                   T* out) noexcept {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    alignas(64) T buf[L];
    for (std::size_t at = 0; at < n; at += L) {
        const T* src = x + at;
        if (at + L > n) {
            for (std::size_t j = 0; j < L; ++j) buf[j] = at + j < n ? x[at + j] : neg_inf<T>;
            src = buf;
        }
        const V l = simd::load<B>(src);
        auto keep = l > V(neg_inf<T>);
        if (filtered) {
            const V idx = simd::iota<T, B>(T(0)) + V(static_cast<T>(first + at));
            keep = keep & ((l > V(k.value)) | ((l == V(k.value)) & (idx <= V(static_cast<T>(k.index)))));
        }
        const V w = simd::select(keep, weight(clamp_exponent((l - V(c)) * V(scale))), V(T(0)));
        if (at + L <= n) {
            simd::store(out + at, w);
        } else {
            simd::store(buf, w);
            for (std::size_t j = 0; at + j < n; ++j) out[at + j] = buf[j];
        }
    }
}

// Top two of a set of lane values (with multiplicity), merged into (t1, t2).
template <class T>
void merge_top2(T v, T& t1, T& t2) noexcept {
    if (v > t1) {
        t2 = t1;
        t1 = v;
    } else if (v > t2) {
        t2 = v;
    }
}

// The whole-row pass: chunk sums into `chunks` (relative to each chunk's maximum), the row's
// top two values and the argmax. Returns the number of chunks.
template <class B, bool Dual, bool Filtered, class T>
std::size_t row_pass(const T* x, std::size_t vocab, span<const token> suppress, T scale, T raw_scale,
                     const cut<T>& k, chunk_sum<T>* chunks, T& top1, T& top2, std::size_t& arg) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const std::size_t C = chunk_size<T>(vocab);
    std::size_t nc = 0;
    top1 = top2 = neg_inf<T>;
    arg = 0;
    for (std::size_t lo = 0; lo < vocab; lo += C, ++nc) {
        const std::size_t hi = std::min(vocab, lo + C);
        V m1[2] = {V(neg_inf<T>), V(neg_inf<T>)}, m2[2] = {V(neg_inf<T>), V(neg_inf<T>)};
        for_each_run(lo, hi, suppress, [&](std::size_t a, std::size_t n) { top2_lanes<B>(x + a, n, m1, m2); });
        alignas(64) T lanes[4][L];
        simd::store(lanes[0], m1[0]);
        simd::store(lanes[1], m2[0]);
        simd::store(lanes[2], m1[1]);
        simd::store(lanes[3], m2[1]);
        T c1 = neg_inf<T>, c2 = neg_inf<T>;
        for (const auto& l : lanes)
            for (T v : l) merge_top2(v, c1, c2);
        chunk_sum<T>& cs = chunks[nc];
        cs = chunk_sum<T>{c1, 0, 0, 0};
        if (c1 == neg_inf<T>) {  // nothing finite here (a NaN among -inf still poisons the row)
            for_each_run(lo, hi, suppress, [&](std::size_t a, std::size_t n) {
                if (simd::find_first<B>(n, simd::in(x + a), [](const auto& v) { return simd::isnan(v); }) < n)
                    cs.s = std::numeric_limits<double>::quiet_NaN();
            });
            continue;
        }
        if (c1 > top1) {  // a new row maximum: its first occurrence in this chunk
            std::size_t found = hi;
            for_each_run(lo, hi, suppress, [&](std::size_t a, std::size_t n) {
                if (found != hi) return;
                const std::size_t i = simd::find_first<B>(n, simd::in(x + a), [c1](const auto& v) {
                    return v == std::decay_t<decltype(v)>(c1);
                });
                if (i < n) found = a + i;
            });
            arg = found;
        }
        merge_top2(c1, top1, top2);
        merge_top2(c2, top1, top2);
        V acc[4][3];
        for (auto& a : acc)
            for (auto& v : a) v = V(T(0));
        for_each_run(lo, hi, suppress, [&](std::size_t a, std::size_t n) {
            weigh<B, Dual, Filtered>(x + a, n, a, c1, scale, raw_scale, k, x + a + C, acc);
        });
        const auto total = [&](std::size_t j) { return double(simd::reduce_add((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]))); };
        cs.s = total(0);
        cs.sy = total(1);
        if constexpr (Dual) cs.raw = total(2);
    }
    return nc;
}

// Row totals from the chunk sums, relative to the row maximum m: s, sy (units of `unit`), raw.
template <class T>
struct row_sum {
    double s = 0, sy = 0, raw = 0;
};

template <class T>
row_sum<T> combine(const chunk_sum<T>* chunks, std::size_t nc, T m, double scale, double raw_scale,
                   double* chunk_weight) {
    row_sum<T> r;
    for (std::size_t c = 0; c < nc; ++c) {
        const chunk_sum<T>& cs = chunks[c];
        if (cs.s == 0 && cs.raw == 0) {
            if (chunk_weight) chunk_weight[c] = 0;
            continue;
        }
        const double delta = (double(cs.max) - double(m)) * scale;  // <= 0, in `unit`
        const double f = std::is_same_v<T, float> ? std::exp2(delta) : std::exp(delta);
        // A chunk of weight 0 adds nothing (delta may be -inf at a vanishing T), unless it holds
        // a NaN, which must reach the sum: the caller reports such rows.
        if (f > 0 || !(cs.s == cs.s)) {
            r.s += f * cs.s;
            r.sy += f * (cs.sy + delta * cs.s);
        }
        r.raw += cs.raw * (std::is_same_v<T, float> ? std::exp2((double(cs.max) - double(m)) * raw_scale)
                                                     : std::exp((double(cs.max) - double(m)) * raw_scale));
        if (chunk_weight) chunk_weight[c] = f * cs.s;
    }
    return r;
}

// The thread's scratch for the filters: the candidates of the top-p walk and the top-k heap.
template <class T>
struct filter_scratch {
    static constexpr std::size_t bins = 2048;
    std::vector<std::pair<T, std::size_t>> members;
    std::vector<T> heap;
    std::vector<double> mass;
    std::vector<std::size_t> count;

    static filter_scratch& local() {
        thread_local filter_scratch s;
        return s;
    }
};

// Calls f(v, i) for every finite logit, not suppressed, that is > floor; the vector compare
// skips the rest (nearly all of a row, for a high floor). floor is read before every vector, so
// f may raise it.
template <class B, class T, class F>
void for_each_above(const T* x, std::size_t vocab, span<const token> suppress, const T& floor, F&& f) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    for_each_run(0, vocab, suppress, [&](std::size_t a, std::size_t n) {
        std::size_t at = a;
        for (; at + L <= a + n; at += L)
            if (simd::any(simd::load<B>(x + at) > V(floor)))
                for (std::size_t j = at; j < at + L; ++j)
                    if (x[j] > floor) f(x[j], j);
        for (; at < a + n; ++at)
            if (x[at] > floor) f(x[at], at);
    });
}

// The cut of Dream's top-p then top-k on the row and the number of tokens it keeps; ties in
// index order. Weights are w_v = exp((l_v - m) / T), w_total their sum.
//   top-p: a token whose weight is below theta = (1 - top_p) w_total / (2 V) lies past the cut
//   (all such tokens together weigh less than half the mass top-p removes), so only the tokens
//   at or above it are sorted and walked: few, for the peaked rows of a language model (many:
//   they are binned by weight first and only the bin holding the cut is sorted).
//   top-k: the k-th largest logit by a k-entry min-heap, fed only by the vector lanes above
//   its current minimum.
template <class B, class T>
cut<T> filter_cut(const T* x, std::size_t vocab, span<const token> suppress, T m, double inv_t, double w_total,
                  double top_p, std::size_t top_k, std::size_t& kept) {
    filter_scratch<T>& fs = filter_scratch<T>::local();
    // The row pass's scale, held finite in T as token_statistics holds it (an infinite one would
    // weigh the maximum 0 * inf = NaN).
    const double sc = std::min(inv_t * unit<T>, double(std::numeric_limits<T>::max()));
    const auto weight_of = [&](T v) { return double(weight_scalar(T((v - m) * T(sc)))); };
    const auto order = [](const auto& p, const auto& q) { return p.first > q.first || (p.first == q.first && p.second < q.second); };
    cut<T> best;  // keeps everything
    std::size_t best_rank = std::numeric_limits<std::size_t>::max();
    if (top_p < 1) {
        const double theta = (1 - top_p) * w_total / (2 * double(vocab));
        const double floor_d = double(m) + std::log(theta) / inv_t;  // weight(floor) = theta
        const T floor = floor_d > double(std::numeric_limits<T>::lowest()) ? T(floor_d) : neg_inf<T>;
        fs.members.clear();
        for_each_above<B>(x, vocab, suppress, std::nextafter(floor, neg_inf<T>), [&](T v, std::size_t i) { fs.members.emplace_back(v, i); });
        const double target = top_p * w_total;
        double cum = 0;
        std::size_t rank = 0;
        auto first = fs.members.begin(), last = fs.members.end();
        if (fs.members.size() > 4096) {
            // Many candidates (a flat row): bin them by weight (8 bins per unit of (m - l) / T),
            // keep the bins wholly before the crossing, and sort only the bin it falls in.
            auto& mass = fs.mass;
            auto& count = fs.count;
            mass.assign(fs.bins, 0.0);
            count.assign(fs.bins, 0);
            const auto bin = [&](T v) {
                const double b = (double(m) - double(v)) * inv_t * 8;
                return b < double(fs.bins - 1) ? std::size_t(b) : fs.bins - 1;
            };
            for (const auto& [v, i] : fs.members) {
                mass[bin(v)] += weight_of(v);
                ++count[bin(v)];
            }
            std::size_t b = 0;
            for (; b + 1 < fs.bins && cum + mass[b] <= target; ++b) {
                cum += mass[b];
                rank += count[b];
            }
            last = std::partition(first, last, [&](const auto& p) { return bin(p.first) == b; });
        }
        std::sort(first, last, order);
        for (auto it = first; it != last; ++it) {
            if (cum > target) break;  // the first token whose preceding mass exceeds top_p: cut before it
            best = {it->first, it->second};
            ++rank;
            cum += weight_of(it->first);
        }
        if (cum > target) best_rank = rank;
        else best = cut<T>{};  // the walk never passed top_p (rounding at top_p near 1): no cut
    }
    if (top_k > 0 && top_k < best_rank) {
        auto& h = fs.heap;  // min-heap of the k largest logits seen
        h.clear();
        const auto greater = std::greater<T>();
        T least = neg_inf<T>;  // the heap's minimum once full: the vector compare skips what is below
        for_each_above<B>(x, vocab, suppress, least, [&](T v, std::size_t) {
            if (h.size() < top_k) {
                h.push_back(v);
                std::push_heap(h.begin(), h.end(), greater);
            } else if (v > h.front()) {
                std::pop_heap(h.begin(), h.end(), greater);
                h.back() = v;
                std::push_heap(h.begin(), h.end(), greater);
            }
            if (h.size() == top_k) least = h.front();
        });
        if (h.size() == top_k) {
            const T kth = h.front();
            std::size_t ties = 0;  // tokens with a logit >= the k-th: top-k keeps them all
            for_each_above<B>(x, vocab, suppress, std::nextafter(kth, neg_inf<T>), [&](T, std::size_t) { ++ties; });
            const cut<T> c{kth, std::numeric_limits<std::size_t>::max()};
            if (c.before(best)) {
                best = c;
                best_rank = ties;
            }
        }
    }
    if (best_rank == std::numeric_limits<std::size_t>::max()) {  // no cut: every finite token
        best_rank = 0;
        for_each_above<B>(x, vocab, suppress, neg_inf<T>, [&](T, std::size_t) { ++best_rank; });
    }
    kept = best_rank;
    return best;
}

}  // namespace detail::vocab

/// Throws std::invalid_argument unless `s` is a valid setting for a vocabulary of `vocab`
/// tokens (T >= 0 finite, top_p in (0, 1], suppressed ids strictly increasing in [0, vocab)).
inline void check_sampling(const sampling& s, std::size_t vocab, const char* function) {
    check_argument(std::isfinite(s.temperature) && s.temperature >= 0, function, "sampling.temperature",
                   s.temperature, "must be finite and >= 0");
    check_argument(s.top_p > 0 && s.top_p <= 1, function, "sampling.top_p", s.top_p, "must lie in (0, 1]");
    check_pointer(s.suppress.data(), s.suppress.size(), function, "sampling.suppress");
    for (std::size_t i = 0; i < s.suppress.size(); ++i) {
        check_argument(s.suppress[i] >= 0 && static_cast<std::size_t>(s.suppress[i]) < vocab, function,
                       "sampling.suppress[i]", s.suppress[i], "must be a token id in [0, vocab)");
        check_argument(i == 0 || s.suppress[i] > s.suppress[i - 1], function, "sampling.suppress[i]",
                       s.suppress[i], "must be strictly increasing");
    }
}

/// The statistics of one row l[0..vocab) under `s`, drawing the token with `draw` at T > 0.
/// Rows with a NaN or +inf logit give token = the index of the first such logit and NaN
/// statistics; a row with no finite logit left gives max = log_sum_exp = -inf, kept = 0 and NaN
/// probabilities. Arguments are checked (vocab >= 1; with a float row, vocab < 2^24).
template <class B = simd::native, class T>
token_stats<T> token_statistics(const T* logits, std::size_t vocab, const sampling& s = {}, const token_draw& draw = {}) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gmk::discrete: T must be float or double");
    using namespace detail::vocab;
    constexpr const char* fn = "discrete::token_statistics";
    check_argument(vocab >= 1, fn, "vocab", vocab, "must be at least 1");
    check_argument(std::is_same_v<T, double> || vocab < (std::size_t(1) << 24), fn, "vocab", vocab,
                   "must be below 2^24 for float rows (token indices are compared in float lanes)");
    check_pointer(logits, vocab, fn, "logits");
    check_sampling(s, vocab, fn);
    const bool sample = s.temperature > 0;
    if (sample) {
        check_argument(draw.method == token_sampling::inverse_cdf || draw.per_token != nullptr, fn,
                       "draw.per_token", 0, "must point to vocab draws for the race methods");
        check_argument(draw.method != token_sampling::inverse_cdf || (draw.uniform >= 0 && draw.uniform < 1), fn,
                       "draw.uniform", draw.uniform, "must lie in [0, 1)");
    }
    constexpr T nan = std::numeric_limits<T>::quiet_NaN();
    // 1 / T, held finite: a temperature so small that its reciprocal overflows (double below
    // 5.6e-309, or float scales below 4e-39) is the T -> 0 limit, one-hot on the maxima.
    const double inv_t = sample ? std::min(1.0 / s.temperature, std::numeric_limits<double>::max()) : 1.0;
    const bool dual = sample && s.temperature != 1.0;
    const T scale = T(std::min(inv_t * unit<T>, double(std::numeric_limits<T>::max()))), raw_scale = T(unit<T>);

    chunk_sum<T> chunks[max_chunks];
    T top1, top2;
    std::size_t arg;
    const cut<T> all;
    const std::size_t nc = dual ? row_pass<B, true, false>(logits, vocab, s.suppress, scale, raw_scale, all, chunks, top1, top2, arg)
                                : row_pass<B, false, false>(logits, vocab, s.suppress, scale, raw_scale, all, chunks, top1, top2, arg);
    token_stats<T> r;
    const T m = top1;
    r.max = m;
    if (m == neg_inf<T>) {
        r.log_sum_exp = neg_inf<T>;
        r.probability = r.model_probability = r.margin = r.neg_entropy = nan;
        return r;
    }
    double chunk_weight[max_chunks];
    row_sum<T> tot = combine(chunks, nc, m, scale, raw_scale, chunk_weight);
    if (!(tot.s == tot.s) || !(tot.raw == tot.raw) || m == std::numeric_limits<T>::infinity()) {
        // NaN or +inf somewhere: report the first such logit.
        std::size_t i = 0;
        for_each_run(0, vocab, s.suppress, [&](std::size_t a, std::size_t n) {
            for (std::size_t j = a; j < a + n && i == 0; ++j)
                if (logits[j] != logits[j] || logits[j] == std::numeric_limits<T>::infinity()) i = j + 1;
        });
        r.token = i > 0 ? i - 1 : arg;
        r.probability = r.model_probability = r.margin = r.neg_entropy = r.log_sum_exp = nan;
        return r;
    }
    const double raw_total = dual ? tot.raw : tot.s;
    r.log_sum_exp = T(double(m) + std::log(raw_total));

    // Filters: find the cut, then weigh the kept tokens again: a short list of them (top-k, the
    // top-p of a peaked row) directly, many in a second pass over the row.
    const bool filtered = s.top_p < 1 || (s.top_k > 0 && s.top_k < vocab);
    cut<T> k;
    constexpr std::size_t short_list = 4096;
    bool listed = false;
    auto& list = filter_scratch<T>::local().members;
    const auto weight_of = [&](std::size_t v) {  // exp((l_v - m) / T) in double
        return std::exp((double(logits[v]) - double(m)) * inv_t);
    };
    constexpr double ln_unit = std::is_same_v<T, float> ? 0.6931471805599453 : 1.0;
    if (filtered) {
        k = filter_cut<B>(logits, vocab, s.suppress, m, inv_t, tot.s, s.top_p, s.top_k, r.kept);
        listed = r.kept <= short_list;
        if (listed) {  // the kept tokens in index order, weighed in double
            list.clear();
            for_each_above<B>(logits, vocab, s.suppress, std::nextafter(k.value, neg_inf<T>), [&](T v, std::size_t i) {
                if (v > k.value || i <= k.index) list.emplace_back(v, i);
            });
            tot.s = tot.sy = 0;
            for (const auto& [v, i] : list) {
                const double y = (double(v) - double(m)) * inv_t, e = std::exp(y);
                if (e > 0) {  // (y may be -inf at a vanishing T: 0 * -inf)
                    tot.s += e;
                    tot.sy += e * y / ln_unit;
                }
            }
        } else {
            T f1, f2;
            std::size_t fa;
            const std::size_t n2 = row_pass<B, false, true>(logits, vocab, s.suppress, scale, raw_scale, k, chunks, f1, f2, fa);
            const row_sum<T> kept = combine(chunks, n2, m, scale, raw_scale, chunk_weight);
            tot.s = kept.s;
            tot.sy = kept.sy;
        }
    } else {
        r.kept = vocab - s.suppress.size();
    }
    const double w = tot.s;

    // The token.
    if (!sample) {
        r.token = arg;
    } else if (draw.method == token_sampling::inverse_cdf && listed) {
        const double target = draw.uniform * w;
        double cum = 0;
        r.token = list.back().second;  // (rounding put the target past the end)
        for (const auto& [v, i] : list)
            if ((cum += weight_of(i)) > target) {
                r.token = i;
                break;
            }
    } else if (draw.method == token_sampling::inverse_cdf) {
        const double target = draw.uniform * w;
        double cum = 0;
        std::size_t c = 0, last = nc;
        for (; c < nc; ++c) {
            if (chunk_weight[c] > 0) last = c;
            if (chunk_weight[c] > 0 && cum + chunk_weight[c] > target) break;
            cum += chunk_weight[c];
        }
        if (c == nc && last != nc) {  // rounding put the target past the end: the last chunk with
            c = last;                 // weight, whose walk then ends on its last kept token
            cum -= chunk_weight[c];
        }
        const std::size_t C = chunk_size<T>(vocab);
        const std::size_t lo = c * C, hi = std::min(vocab, lo + C);
        const double f = chunk_weight[c] / chunks[c].s;  // the chunk's weights are f * exp2(y)
        const double local = target - cum;
        double run = 0;
        std::size_t pick = vocab, last_pos = vocab;
        // Blocks of 64 weights computed in vectors; a block is walked token by token only when
        // the target falls in it.
        constexpr std::size_t block = 64;
        alignas(64) T wb[block];
        for_each_run(lo, hi, s.suppress, [&](std::size_t a, std::size_t n) {
            for (std::size_t b0 = a; b0 < a + n && pick == vocab; b0 += block) {
                const std::size_t m = std::min(block, a + n - b0);
                block_weights<B>(logits + b0, m, b0, chunks[c].max, scale, filtered, k, wb);
                double sum = 0;
                for (std::size_t j = 0; j < m; ++j) sum += double(wb[j]);
                if (run + f * sum <= local) {  // not in this block
                    run += f * sum;
                    for (std::size_t j = m; j-- > 0;)
                        if (wb[j] > 0) {
                            last_pos = b0 + j;
                            break;
                        }
                    continue;
                }
                for (std::size_t j = 0; j < m && pick == vocab; ++j) {
                    if (!(wb[j] > 0)) continue;
                    last_pos = b0 + j;
                    run += f * double(wb[j]);
                    if (run > local) pick = b0 + j;
                }
            }
        });
        r.token = pick != vocab ? pick : (last_pos != vocab ? last_pos : arg);
    } else {
        // The races, over the kept tokens in index order; the first maximum wins.
        double best = -1;
        std::size_t pick = arg;
        const bool race = draw.method == token_sampling::exponential_race;
        const auto enter = [&](std::size_t i) {
            const double key = race ? double(T(weight_of(i) / w) / T(draw.per_token[i]))  // q_v / E_v, in T as torch
                                    : std::exp(double(logits[i])) / std::pow(-std::log(draw.per_token[i]), s.temperature);
            if (key > best) {
                best = key;
                pick = i;
            }
        };
        if (listed) {
            for (const auto& [v, i] : list) enter(i);
        } else {
            for_each_run(0, vocab, s.suppress, [&](std::size_t a, std::size_t n) {
                for (std::size_t i = a; i < a + n; ++i)
                    if (!filtered || logits[i] > k.value || (logits[i] == k.value && i <= k.index)) enter(i);
            });
        }
        r.token = pick;
    }

    // Probabilities, margin, entropy.
    const double wt = weight_of(r.token);
    r.probability = T(wt / w);
    r.model_probability = T(std::exp(double(logits[r.token]) - double(m)) / raw_total);
    const double second = r.kept >= 2 ? std::exp((double(top2) - double(m)) * inv_t) : 0.0;
    r.margin = T((1.0 - second) / w);
    r.neg_entropy = T(std::min(0.0, tot.sy * ln_unit / w - std::log(w)));
    return r;
}

/// token_statistics() of every row of `logits` (rows contiguous) into out[r], the draws
/// by inverse CDF from uniforms[r] (one per row; ignored and may be empty at T = 0). Rows are
/// spread over `exec`; the results do not depend on it.
template <class B = simd::native, class T>
void token_statistics_rows(matrix_view<const T> logits, const sampling& s, span<const double> uniforms,
                           span<token_stats<T>> out, const executor& exec = executor()) {
    constexpr const char* fn = "discrete::token_statistics_rows";
    check_argument(logits.rows_contiguous(), fn, "logits.col_stride()", logits.col_stride(), "must be 1");
    check_argument(out.size() == logits.rows(), fn, "out.size()", out.size(), "must equal logits.rows()");
    check_argument(s.temperature == 0 || uniforms.size() == logits.rows(), fn, "uniforms.size()", uniforms.size(),
                   "must equal logits.rows() at temperature > 0");
    check_argument(logits.cols() >= 1, fn, "logits.cols()", logits.cols(), "must be at least 1");
    check_sampling(s, logits.cols(), fn);
    parallel_for(0, logits.rows(), 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t r = lo; r < hi; ++r) {
            token_draw d;
            if (s.temperature > 0) d.uniform = uniforms[r];
            out[r] = token_statistics<B>(&logits(r, 0), logits.cols(), s, d);
        }
    }, exec);
}

}  // namespace gmk::discrete
