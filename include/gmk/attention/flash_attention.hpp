// gmk: tiled online-softmax attention, forward pass (FlashAttention-2, T. Dao, arXiv 2307.08691),
// on the CPU and on every backend.
//
//   O = softmax(scale * Q K^T [+ bias] [masked]) V,   lse = log sum_j exp(scores)
//
//   gmk::attention_shape shape{batch, heads_q, heads_kv, seq_q, seq_k, head_dim};
//   gmk::attention_params<float> p;  p.causal = true;
//   gmk::flash_attention(q, k, v, o, lse, shape, p);        // lse may be nullptr
//
// Layout: Q and O are [batch, heads_q, seq_q, head_dim], K and V [batch, heads_kv, seq_k,
// head_dim], row-major and contiguous for the pointer overload; gmk::attention_tensor gives any
// strides for batch, head and position (the head_dim stride must be 1). lse is
// [batch, heads_q, seq_q], contiguous. Query head h reads key/value head h / (heads_q / heads_kv)
// (grouped-query and multi-query attention, without copying K or V).
//
// Types: S is the storage type of Q, K, V and O (float, double, Eigen::half, Eigen::bfloat16 or
// any type with static_cast to and from T); T is the compute type (float or double), deduced from
// attention_params<T>. Everything is accumulated in T: Q, K and V are converted on the fly
// (half and bfloat16 to float are exact), O is rounded to S once at the end. The overloads
// without params use attention_compute_t<S>: double for double storage, float otherwise.
//
// Scores, in this order (as FlashAttention-2 and Gemma 2 apply them):
//   s = scale * q.k                          scale = 1 / sqrt(head_dim) when params.scale is 0
//   s = softcap * tanh(s / softcap)          when params.softcap > 0 (logit soft-capping)
//   s = s + bias[b, h, i, j]                 when params.bias is set
//   s = -inf where mask[b, h, i, j] is false, or outside the causal / sliding-window band.
// The band: with a = i + offset the query's aligned position (offset = 0 for
// causal_alignment::top_left, as PyTorch's is_causal; seq_k - seq_q for bottom_right, as
// FlashAttention-2), key j is kept when a - window_left <= j <= a + window_right (an extent of
// -1 is unbounded) and, when causal, j <= a. The alignment applies to the window too (as in
// FlashAttention-2). Bias and mask are indexed by the query head.
//
// Numerics (defined for every input; see also gmk/attention/online_softmax.hpp):
//   - a row with no key left (every score -inf: masked, outside the band, seq_k = 0) gives O = 0
//     and lse = -inf. FlashAttention-2 gives O = 0 and lse = +inf there, PyTorch's CPU SDPA
//     O = 0 and lse = 0 (FORMULAS.md): -inf is the log of the empty sum, and it merges correctly.
//   - -inf scores never produce NaN; scores of any finite magnitude are safe (exponents are taken
//     against the running row maximum, so every exp is of a number <= 0): logits of +-1e4 and
//     beyond give the softmax of the exact (rounded) scores.
//   - NaN in Q, K, V or the bias makes NaN the rows that attend to it; because tiles are
//     computed whole, a NaN in K or V may also reach other rows of the same (batch, kv head) for
//     which it is masked. A +inf score (a +inf bias) gives NaN rows (inf - inf).
//
// Algorithm. Rows of one (batch, kv head) are the seq_q x (heads_q / heads_kv) query rows that
// read it; blocks of BlockQ such rows are the tasks of parallel_for (with their heads stacked, the
// K and V blocks a group reads are read once for all its heads). Each task runs over the key
// blocks of BlockK its rows can see (blocks outside the causal / window band, and blocks a boolean
// mask hides entirely, are skipped before anything is computed), keeping per query row the running
// max m and sum l and rescaling O once per key block (FORMULAS.md, Attention):
//   S^T = K Q^T (queries in vector lanes), m' = max(m, colmax S^T), P^T = exp(S^T - m'),
//   l = e^(m - m') l + colsum P^T, O^T = e^(m - m') O^T + V^T P^T; finally O = O^T^T / l.
// Queries sit in the vector lanes: the QK^T micro-kernel broadcasts elements of K rows against
// vectors of (pre-scaled, transposed) queries and the PV micro-kernel elements of V rows against
// vectors of P, so neither K nor V needs a transpose or a copy (they are packed only to convert
// a storage type, or to pad the last key block and a head_dim that is not a multiple of the PV
// tile), and the running max and sum are lane-wise, without horizontal reductions.
// Decoding (all rows of a (batch, kv head) in one block, few such blocks, long keys) splits the
// keys over several tasks whose normalised partial outputs merge by log-sum-exp. The split and
// every block depend on the shape only, never on the executor: results are bitwise the same on
// any number of threads.
//
// Memory: each thread keeps one scratch buffer of a few tiles (about (2 head_dim + BlockK) x
// BlockQ + 2 BlockK x head_dim elements of T; thread_local, grown on first use and reused after),
// and a split-KV call a buffer of the partial outputs (at most split_target_tasks blocks of
// BlockQ x head_dim) on the calling thread: nothing is ever proportional to seq_q x seq_k, and
// nothing is allocated once the buffers have grown.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../simd/backend.hpp"
#include "../simd/memory.hpp"
#include "../simd/ops.hpp"
#include "online_softmax.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace gmk {

/// The sizes of an attention call: Q and O [batch, heads_q, seq_q, head_dim], K and V
/// [batch, heads_kv, seq_k, head_dim]. heads_q must be a multiple of heads_kv.
struct attention_shape {
    std::size_t batch = 1, heads_q = 1, heads_kv = 1, seq_q = 0, seq_k = 0, head_dim = 0;
};

/// Where the causal diagonal (and the sliding window) sits when seq_q != seq_k.
enum class causal_alignment {
    top_left,     ///< query i sees keys j <= i (PyTorch's is_causal)
    bottom_right  ///< query i sees keys j <= i + seq_k - seq_q (FlashAttention-2, KV caches)
};

/// Element strides of a bias or mask indexed [batch, head, query, key]; a stride of 0 broadcasts
/// over that index. All zero (the default) means one contiguous seq_q x seq_k matrix shared by
/// every batch and head, i.e. {0, 0, seq_k, 1}.
struct attention_bias_strides {
    std::ptrdiff_t batch = 0, head = 0, query = 0, key = 0;

    /// A contiguous [batch, heads_q, seq_q, seq_k] array.
    static attention_bias_strides dense(std::size_t heads_q, std::size_t seq_q, std::size_t seq_k) noexcept {
        const auto sk = static_cast<std::ptrdiff_t>(seq_k), sq = static_cast<std::ptrdiff_t>(seq_q);
        return {static_cast<std::ptrdiff_t>(heads_q) * sq * sk, sq * sk, sk, 1};
    }
    /// One contiguous seq_q x seq_k matrix per head, shared by the batch.
    static attention_bias_strides per_head(std::size_t seq_q, std::size_t seq_k) noexcept {
        const auto sk = static_cast<std::ptrdiff_t>(seq_k);
        return {0, static_cast<std::ptrdiff_t>(seq_q) * sk, sk, 1};
    }
    /// A key-padding row per batch ([batch, 1, 1, seq_k]).
    static attention_bias_strides per_batch_keys(std::size_t seq_k) noexcept {
        return {static_cast<std::ptrdiff_t>(seq_k), 0, 0, 1};
    }
    bool is_default() const noexcept { return batch == 0 && head == 0 && query == 0 && key == 0; }
};

/// Options of an attention call; T is the compute type (float or double).
template <class T>
struct attention_params {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gmk::attention_params: the compute type T must be float or double");
    double scale = 0;                                     ///< 0: 1 / sqrt(head_dim)
    bool causal = false;
    causal_alignment alignment = causal_alignment::bottom_right;
    long window_left = -1, window_right = -1;             ///< sliding window extents, -1 = unbounded
    const T* bias = nullptr;                              ///< additive bias [b, h, i, j] or null
    attention_bias_strides bias_strides{};
    const bool* mask = nullptr;                           ///< boolean mask, true = attend, or null
    attention_bias_strides mask_strides{};
    double softcap = 0;                                   ///< s = softcap * tanh(s / softcap); 0 = off
    executor exec = executor();                           ///< runs the tasks (serial by default)
};

/// A strided [batch, head, position, dim] view of Q, K, V or O: element (b, h, i, d) at
/// data[b * strides[0] + h * strides[1] + i * strides[2] + d * strides[3]], strides[3] == 1.
template <class S>
struct attention_tensor {
    S* data = nullptr;
    std::ptrdiff_t strides[4] = {0, 0, 0, 1};
};

/// The contiguous [d0, d1, d2, d3] tensor at data.
template <class S>
attention_tensor<S> contiguous_attention_tensor(S* data, std::size_t d1, std::size_t d2, std::size_t d3) noexcept {
    const auto s2 = static_cast<std::ptrdiff_t>(d3), s1 = static_cast<std::ptrdiff_t>(d2) * s2;
    return {data, {static_cast<std::ptrdiff_t>(d1) * s1, s1, s2, 1}};
}

/// The default compute type of storage S: double for double, float otherwise.
template <class S>
using attention_compute_t = std::conditional_t<std::is_same_v<std::remove_const_t<S>, double>, double, float>;

/// Tile sizes: BlockQ query rows per task, BlockK keys per step; 0 picks the tuned default of the
/// backend. BlockQ is rounded up to the query micro-tile, BlockK to the key micro-tile.
template <std::size_t BlockQ = 0, std::size_t BlockK = 0>
struct attention_tiles {
    static constexpr std::size_t block_q = BlockQ;
    static constexpr std::size_t block_k = BlockK;
};

/// Decoding splits the keys when fewer than this many (batch, kv head, query block) tasks would
/// run (and each split keeps at least split_min_keys keys); see the top of the file.
inline constexpr std::size_t attention_split_target_tasks = 64;
inline constexpr std::size_t attention_split_min_keys = 512;

namespace detail::attention {

template <class T>
struct identity {
    using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;

template <class T>
constexpr T neg_inf() noexcept {
    return -std::numeric_limits<T>::infinity();
}

// ---- tile geometry -------------------------------------------------------------------------

template <class B>
constexpr std::size_t vector_registers() noexcept {
    if constexpr (std::is_same_v<B, simd::scalar>) {
        return 16;
    } else {
#if defined(__x86_64__) || defined(__i386__)
        if constexpr (std::is_base_of_v<xsimd::avx512f, B>) return 32;
#endif
#if defined(__aarch64__)
        if constexpr (std::is_base_of_v<xsimd::neon64, B>) return 32;
#endif
        return 16;
    }
}

// The micro-tiles of backend B for compute type T. QK^T: RK keys (broadcast) x CQ vectors of
// queries, PV: RD dimensions (broadcast) x CQ vectors of queries, RK * CQ and RD * CQ
// accumulators. With 32 vector registers, 24 and 16 accumulators (the FMA latency times the two
// FMA pipes needs at least 8 in flight) leave room for the operands; with 16 registers, 8.
// Measured on Zen 5 (AVX-512, data in L1, fraction of the FMA peak): QK^T 4 x 6 and 2 x 12:
// 0.97; PV 4 x 4: 0.75 (four vector loads per 16 FMAs are too many), 2 x 8: 0.97.
template <class B, class T>
struct geometry {
    static constexpr std::size_t L = simd::lanes<T, B>;
    static constexpr bool wide = vector_registers<B>() >= 32;
    static constexpr std::size_t CQ = 2;
    static constexpr std::size_t RK = wide ? 12 : 4;
    static constexpr std::size_t RD = wide ? 8 : 4;
    // Defaults: 64 query rows (at least one micro-tile) and 96 / 64 keys per block (tuned with the
    // single-core driver on Zen 5, see the bench).
    static constexpr std::size_t default_block_q = std::max<std::size_t>(CQ * L, 64);
    static constexpr std::size_t default_block_k = wide ? 16 * RK : 16 * RK;
};

constexpr std::size_t round_up(std::size_t x, std::size_t m) noexcept { return (x + m - 1) / m * m; }

template <std::size_t... I, class F>
GMK_INLINE void unroll_impl(std::index_sequence<I...>, F& f) {
    (f(std::integral_constant<std::size_t, I>{}), ...);
}
// f(integral_constant<0>) ... f(integral_constant<N - 1>), spelled out so the accumulator arrays
// of the micro-kernels stay in registers whatever the compiler's unrolling heuristics.
template <std::size_t N, class F>
GMK_INLINE void unroll(F&& f) {
    unroll_impl(std::make_index_sequence<N>{}, f);
}

// ---- storage conversion --------------------------------------------------------------------

// The 16-bit storage formats the converter knows by their bits (Eigen::half, Eigen::bfloat16 or
// any 2-byte type that converts like them): detected once per call by converting a few bit
// patterns, so this header needs no Eigen include. Both widen to float exactly, so any method
// of conversion gives the same bits.
enum class format { other, ieee_half, bfloat16 };

template <class S, class T>
format detect_format() {
    if constexpr (sizeof(S) != 2 || !std::is_trivially_copyable_v<S>) {
        return format::other;
    } else {
        const auto as_float = [](std::uint16_t bits) {
            S s;
            std::memcpy(static_cast<void*>(&s), &bits, 2);
            return static_cast<float>(static_cast<T>(s));
        };
        if (as_float(0x3C00) == 1.0f && as_float(0xC100) == -2.5f && as_float(0x0001) == 0x1p-24f) return format::ieee_half;
        if (as_float(0x3F80) == 1.0f && as_float(0xC020) == -2.5f && as_float(0x0001) == 0x1p-133f) return format::bfloat16;
        return format::other;
    }
}

// dst[0..n) = src[0..n) converted to T, times `factor` when Scale (the products round once).
template <bool Scale, class S, class T>
void convert_row(const S* src, T* dst, std::size_t n, format f, T factor) {
    std::size_t i = 0;
    if constexpr (sizeof(S) == 2 && std::is_same_v<T, float>) {
#if defined(__AVX512F__)
        if (f == format::ieee_half || f == format::bfloat16) {
            for (; i + 16 <= n; i += 16) {
                const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
                __m512 x = f == format::ieee_half ? _mm512_cvtph_ps(h)
                                                  : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
                if (Scale) x = _mm512_mul_ps(x, _mm512_set1_ps(factor));
                _mm512_storeu_ps(dst + i, x);
            }
        }
#elif defined(__AVX2__) && defined(__F16C__)
        if (f == format::ieee_half || f == format::bfloat16) {
            for (; i + 8 <= n; i += 8) {
                const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
                __m256 x = f == format::ieee_half ? _mm256_cvtph_ps(h)
                                                  : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
                if (Scale) x = _mm256_mul_ps(x, _mm256_set1_ps(factor));
                _mm256_storeu_ps(dst + i, x);
            }
        }
#endif
    }
    if constexpr (sizeof(S) == 2) {
        if (f == format::bfloat16) {
            // bfloat16 is the high half of a float: widening is a shift (vectorised by the compiler).
            for (; i < n; ++i) {
                std::uint16_t b;
                std::memcpy(&b, src + i, 2);
                const std::uint32_t u = std::uint32_t(b) << 16;
                float x;
                std::memcpy(&x, &u, 4);
                dst[i] = Scale ? static_cast<T>(x) * factor : static_cast<T>(x);
            }
            return;
        }
    }
    (void)f;
    for (; i < n; ++i) dst[i] = Scale ? static_cast<T>(src[i]) * factor : static_cast<T>(src[i]);
}

// ---- the call ------------------------------------------------------------------------------

// Everything a task needs, resolved once per call.
template <class S, class T>
struct problem {
    const S* q;
    const S* k;
    const S* v;
    S* o;
    T* lse;
    std::ptrdiff_t qs[4], ks[4], vs[4], os[4];
    attention_shape shape;
    std::size_t group;  // heads_q / heads_kv: query heads per kv head
    std::size_t rows;   // query rows per (batch, kv head): seq_q * group
    T scale;    // scale * score_unit: Q is multiplied by it
    T softcap;
    bool band;                  // causal or a window: rows see an interval of keys
    long long offset;           // aligned position a = i + offset
    long long left, right;      // band extents (-1: unbounded); right = 0 when causal
    const T* bias;
    attention_bias_strides bs;
    const bool* mask;
    attention_bias_strides ms;
    format fmt;
    // blocking
    std::size_t block_q, block_k, nqb, nsplit;
    T* part_o;    // split-KV partial outputs [task][block_q][dp], normalised
    T* part_lse;  // [task][block_q]
    std::size_t dp;  // head_dim rounded up to the PV micro-tile
    const executor* exec;

    // The keys [lo, hi) row at position i sees (lo >= hi: none).
    GMK_INLINE void keys_of(std::size_t i, long long& lo, long long& hi) const noexcept {
        const long long nk = static_cast<long long>(shape.seq_k);
        if (!band) {
            lo = 0;
            hi = nk;
            return;
        }
        const long long a = static_cast<long long>(i) + offset;
        lo = left < 0 ? 0 : std::min(nk, std::max(0LL, a - left));
        hi = right < 0 ? nk : std::min(nk, std::max(0LL, a + right + 1));
    }
};

// Per-task scratch carved from one thread_local buffer.
template <class T>
struct workspace {
    T* qt;          // [d][bq]   Q^T * scale
    T* ot;          // [dp][bq]  O^T accumulators
    T* st;          // [bk][bq]  S^T, then P^T
    T* kc;          // [bk][d]   packed K rows
    T* vc;          // [bk][dp]  packed V rows
    T* row;         // [d]       one converted row
    T* m;           // [bq] running max
    T* l;           // [bq] running sum (lane-wise)
    T* alpha;       // [bq] rescale factor of the current block
    T* lo;          // [bq] first key of the block a row sees (block-relative)
    T* hi;          // [bq] one past the last
    long long* klo; // [bq] the keys [klo, khi) a row sees (absolute)
    long long* khi;
    std::size_t* pos;   // [bq] query position of the row
    std::size_t* head;  // [bq] query head of the row
};

template <class Tag>
inline unsigned char* thread_scratch(std::size_t bytes) {
    thread_local simd::aligned_vector<unsigned char> buffer;
    if (buffer.size() < bytes) {
        buffer = simd::aligned_vector<unsigned char>();
        buffer.resize(bytes);
    }
    return buffer.data();
}
struct task_tag {};
struct split_tag {};

template <class T>
workspace<T> carve(std::size_t d, std::size_t dp, std::size_t bq, std::size_t bk) {
    const auto bytes_of = [](std::size_t n, std::size_t size) { return round_up(n * size, 64); };
    const std::size_t tn = bytes_of(d * bq, sizeof(T)) + bytes_of(dp * bq, sizeof(T)) + bytes_of(bk * bq, sizeof(T)) +
                           bytes_of(bk * d, sizeof(T)) + bytes_of(bk * dp, sizeof(T)) + bytes_of(d, sizeof(T)) +
                           5 * bytes_of(bq, sizeof(T)) + 2 * bytes_of(bq, sizeof(long long)) +
                           2 * bytes_of(bq, sizeof(std::size_t));
    unsigned char* p = thread_scratch<task_tag>(tn);
    const auto take = [&p, &bytes_of](std::size_t n, auto* type) {
        using U = std::remove_pointer_t<decltype(type)>;
        U* r = reinterpret_cast<U*>(p);
        p += bytes_of(n, sizeof(U));
        return r;
    };
    workspace<T> w{};
    w.qt = take(d * bq, static_cast<T*>(nullptr));
    w.ot = take(dp * bq, static_cast<T*>(nullptr));
    w.st = take(bk * bq, static_cast<T*>(nullptr));
    w.kc = take(bk * d, static_cast<T*>(nullptr));
    w.vc = take(bk * dp, static_cast<T*>(nullptr));
    w.row = take(d, static_cast<T*>(nullptr));
    w.m = take(bq, static_cast<T*>(nullptr));
    w.l = take(bq, static_cast<T*>(nullptr));
    w.alpha = take(bq, static_cast<T*>(nullptr));
    w.lo = take(bq, static_cast<T*>(nullptr));
    w.hi = take(bq, static_cast<T*>(nullptr));
    w.klo = take(bq, static_cast<long long*>(nullptr));
    w.khi = take(bq, static_cast<long long*>(nullptr));
    w.pos = take(bq, static_cast<std::size_t*>(nullptr));
    w.head = take(bq, static_cast<std::size_t*>(nullptr));
    return w;
}

// ---- micro-kernels -------------------------------------------------------------------------

// st[r][c] (RK rows of keys, CQ vectors of queries, row stride lds) = sum_dd k_r[dd] * qt[dd][c]
// over dd < d (D when D > 0): RK * CQ accumulators, per step CQ vector loads and RK broadcasts.
template <class B, class T, std::size_t CQ, std::size_t RK, std::size_t D>
GMK_INLINE void qk_tile(const T* qt, std::size_t ldq, const T* const* krow, std::size_t d, T* st, std::size_t lds) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    V acc[RK][CQ];
    unroll<RK>([&](auto r) { unroll<CQ>([&](auto c) { acc[r][c] = V(T(0)); }); });
    const T* kp[RK];
    unroll<RK>([&](auto r) { kp[r] = krow[r]; });
    const std::size_t n = D > 0 ? D : d;
    for (std::size_t dd = 0; dd < n; ++dd) {
        const T* qrow = qt + dd * ldq;
        V qv[CQ];
        unroll<CQ>([&](auto c) { qv[c] = simd::load_aligned<B>(qrow + c * L); });
        unroll<RK>([&](auto r) {
            const V kb = simd::broadcast<B>(kp[r][dd]);
            unroll<CQ>([&](auto c) { acc[r][c] = simd::fma(kb, qv[c], acc[r][c]); });
        });
    }
    unroll<RK>([&](auto r) { unroll<CQ>([&](auto c) { simd::store_aligned(st + r * lds + c * L, acc[r][c]); }); });
}

// ot[r][c] (RD rows of dimensions, CQ vectors of queries, row stride ldo) =
//   alpha[c] * ot[r][c] + (sum_{j < nk} v[j][r] * pt[j][c])
template <class B, class T, std::size_t CQ, std::size_t RD>
GMK_INLINE void pv_tile(const T* pt, std::size_t ldp, std::size_t nk, const T* v, std::size_t ldv, T* ot,
                        std::size_t ldo, const T* alpha) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    // The block's sum starts from zero and joins O once at the end: blocked summation, whose
    // rounding error grows as sqrt(seq_k * BlockK) rather than seq_k (a sequential sum over
    // 4096 keys loses about 5e-6 relative to the output; blocks of 96, about 1e-6).
    V acc[RD][CQ];
    unroll<RD>([&](auto r) { unroll<CQ>([&](auto c) { acc[r][c] = V(T(0)); }); });
    for (std::size_t j = 0; j < nk; ++j) {
        const T* prow = pt + j * ldp;
        const T* vrow = v + j * ldv;
        V pv[CQ];
        unroll<CQ>([&](auto c) { pv[c] = simd::load_aligned<B>(prow + c * L); });
        unroll<RD>([&](auto r) {
            const V vb = simd::broadcast<B>(vrow[r]);
            unroll<CQ>([&](auto c) { acc[r][c] = simd::fma(vb, pv[c], acc[r][c]); });
        });
    }
    unroll<CQ>([&](auto c) {
        const V a = simd::load_aligned<B>(alpha + c * L);
        unroll<RD>([&](auto r) {
            T* p = ot + r * ldo + c * L;
            simd::store_aligned(p, simd::fma(simd::load_aligned<B>(p), a, acc[r][c]));
        });
    });
}

// tanh lane by lane (xsimd's, or std::tanh on the scalar backend).
template <class V>
GMK_INLINE V tanh_v(const V& x) noexcept {
    if constexpr (V::size == 1 && std::is_same_v<V, simd::scalar_batch<typename V::value_type>>) return std::tanh(x.value);
    else return xsimd::tanh(x);
}

// Float scores are kept in base 2: Q is pre-scaled by scale * log2(e), so that P = 2^(s - m) and
// lse = ln 2 * m + log l. 2^x for x <= 0 takes a rounding to the nearest integer k, a degree-6
// polynomial of the rest (Cephes exp2f, relative error below 2e-7) and an exponent add: about
// half the operations of a general exp, and the same bits on every backend with a fused FMA.
// Double scores stay natural (simd::exp).
template <class T>
inline constexpr bool base2 = std::is_same_v<T, float>;
template <class T>
constexpr T score_unit() noexcept {  // scores are natural scores times this
    return base2<T> ? T(1.4426950408889634) : T(1);
}
template <class T>
constexpr T natural_unit() noexcept {  // natural scores are scores times this
    return base2<T> ? T(0.6931471805599453) : T(1);
}

// 2^x for float x <= 0, -inf (0) and NaN (NaN); results below 2^-125 are flushed to 0 (they
// weigh less than 2^-125 against the row maximum's 1 in the softmax sum).
template <class V>
GMK_INLINE V exp2_nonpositive(const V& x) noexcept {
    using T = typename V::value_type;
    static_assert(std::is_same_v<T, float>, "exp2_nonpositive: float only");
    const V xc = simd::max(x, V(T(-126)));      // -inf -> -126; NaN stays NaN
    const V magic(T(0x1.8p23));                  // x + 1.5 * 2^23 rounds x to an integer k
    const V t = xc + magic;                      // ... held in the low bits of t
    const V f = xc - (t - magic);                // x - k, in [-1/2, 1/2]
    V p(T(1.535336188319500e-4));
    p = simd::fma(p, f, V(T(1.339887440266574e-3)));
    p = simd::fma(p, f, V(T(9.618437357674640e-3)));
    p = simd::fma(p, f, V(T(5.550332471162809e-2)));
    p = simd::fma(p, f, V(T(2.402264791363012e-1)));
    p = simd::fma(p, f, V(T(6.931472028550421e-1)));
    p = simd::fma(p, f, V(T(1)));                // 2^f
    // 2^k 2^f: add k to the exponent field (unsigned: the wrap-around is the subtraction).
    const auto k = simd::bitcast<std::uint32_t>(t) << 23;
    const V r = simd::bitcast<T>(simd::bitcast<std::uint32_t>(p) + k);
    return simd::select(x < V(T(-125)), V(T(0)), r);
}

// e^x (double) or 2^x (float) for x <= 0: the weight of a score x below the running max.
template <class V>
GMK_INLINE V exp_score(const V& x) noexcept {
    if constexpr (base2<typename V::value_type>) return exp2_nonpositive(x);
    else return simd::exp(x);
}

// The online-softmax step of one key block for the query vectors [0, nvec): the block's column
// maxima of S^T (after the band mask when `band`), the new running max, P^T = exp(S^T - m') in
// place, l = alpha l + colsum P^T, alpha = exp(m - m').
template <class B, class T>
void softmax_block(T* st, std::size_t ld, std::size_t nk, std::size_t nvec, const workspace<T>& w, bool band) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const V minus_inf(neg_inf<T>());
    for (std::size_t u = 0; u < nvec; ++u) {
        const std::size_t q0 = u * L;
        T* col = st + q0;
        V mt = minus_inf;
        if (band) {
            const V lo = simd::load_aligned<B>(w.lo + q0), hi = simd::load_aligned<B>(w.hi + q0);
            for (std::size_t j = 0; j < nk; ++j) {
                const V jv(static_cast<T>(j));
                const V s = simd::select((lo <= jv) & (jv < hi), simd::load_aligned<B>(col + j * ld), minus_inf);
                simd::store_aligned(col + j * ld, s);
                mt = simd::max(mt, s);
            }
        } else {
            // Two chains: the max has a latency of a few cycles.
            V mt2 = minus_inf;
            std::size_t j = 0;
            for (; j + 2 <= nk; j += 2) {
                mt = simd::max(mt, simd::load_aligned<B>(col + j * ld));
                mt2 = simd::max(mt2, simd::load_aligned<B>(col + (j + 1) * ld));
            }
            if (j < nk) mt = simd::max(mt, simd::load_aligned<B>(col + j * ld));
            mt = simd::max(mt, mt2);
        }
        const V mo = simd::load_aligned<B>(w.m + q0);
        const V mn = simd::max(mo, mt);
        // Against 0 where no finite score has been seen yet (-inf - -inf would be NaN).
        const V mu = simd::select(mn == minus_inf, V(T(0)), mn);
        const V a = exp_score(mo - mu);
        V sum(T(0)), sum2(T(0));
        std::size_t j = 0;
        for (; j + 2 <= nk; j += 2) {
            const V p = exp_score(simd::load_aligned<B>(col + j * ld) - mu);
            const V p2 = exp_score(simd::load_aligned<B>(col + (j + 1) * ld) - mu);
            simd::store_aligned(col + j * ld, p);
            simd::store_aligned(col + (j + 1) * ld, p2);
            sum = sum + p;
            sum2 = sum2 + p2;
        }
        if (j < nk) {
            const V p = exp_score(simd::load_aligned<B>(col + j * ld) - mu);
            simd::store_aligned(col + j * ld, p);
            sum = sum + p;
        }
        simd::store_aligned(w.l + q0, simd::fma(simd::load_aligned<B>(w.l + q0), a, sum + sum2));
        simd::store_aligned(w.m + q0, mn);
        simd::store_aligned(w.alpha + q0, a);
    }
}

// The task of rows [qb * bq, ...) of (batch b, kv head kvh), keys of split `split`.
template <class B, class S, class T, std::size_t CQ, std::size_t D>
void run_task(const problem<S, T>& pr, std::size_t b, std::size_t kvh, std::size_t qb, std::size_t split,
              std::size_t task) {
    using G = geometry<B, T>;
    using V = simd::batch<T, B>;
    constexpr std::size_t L = G::L, RK = G::RK, RD = G::RD;
    const std::size_t d = pr.shape.head_dim, dp = pr.dp;
    const std::size_t bq = pr.block_q, bk = pr.block_k;
    const workspace<T> w = carve<T>(d, dp, bq, bk);

    // Rows of the block: row r is query position pos, head kvh * group + g, stacked as pos * group + g.
    const std::size_t r0 = qb * bq;
    const std::size_t nr = std::min(bq, pr.rows - r0);
    const std::size_t nvec = round_up(nr, CQ * L) / L;  // query vectors computed
    const std::size_t bw = nvec * L;                    // lanes computed (<= bq)
    long long ulo = std::numeric_limits<long long>::max(), uhi = std::numeric_limits<long long>::min();
    for (std::size_t r = 0; r < nr; ++r) {
        w.pos[r] = (r0 + r) / pr.group;
        w.head[r] = kvh * pr.group + (r0 + r) % pr.group;
        pr.keys_of(w.pos[r], w.klo[r], w.khi[r]);
        if (w.klo[r] < w.khi[r]) {
            ulo = std::min(ulo, w.klo[r]);
            uhi = std::max(uhi, w.khi[r]);
        }
    }
    if (ulo >= uhi) ulo = uhi = 0;  // every row fully masked
    // Key blocks sit at multiples of bk, whatever the rows: a row's result then depends on its
    // own data only (not on which rows share its block, nor on BlockQ), as long as the keys are
    // not split. This split's share of the blocks the rows see:
    const long long bkl = static_cast<long long>(bk);
    const long long blk_lo = ulo / bkl, blk_hi = (uhi + bkl - 1) / bkl;
    const long long nblocks = blk_hi - blk_lo, ns = static_cast<long long>(pr.nsplit), sp = static_cast<long long>(split);
    const long long k_begin = (blk_lo + sp * nblocks / ns) * bkl;
    const long long k_end = std::min(uhi, (blk_lo + (sp + 1) * nblocks / ns) * bkl);

    // Q^T, scaled; lanes past the rows are zero.
    std::fill(w.qt, w.qt + d * bq, T(0));
    for (std::size_t r = 0; r < nr; ++r) {
        const S* qrow = pr.q + static_cast<std::ptrdiff_t>(b) * pr.qs[0] + static_cast<std::ptrdiff_t>(w.head[r]) * pr.qs[1] +
                        static_cast<std::ptrdiff_t>(w.pos[r]) * pr.qs[2];
        convert_row<true>(qrow, w.row, d, pr.fmt, pr.scale);
        for (std::size_t dd = 0; dd < d; ++dd) w.qt[dd * bq + r] = w.row[dd];
    }
    std::fill(w.ot, w.ot + dp * bq, T(0));
    std::fill(w.m, w.m + bq, neg_inf<T>());
    std::fill(w.l, w.l + bq, T(0));

    const S* kbase = pr.k + static_cast<std::ptrdiff_t>(b) * pr.ks[0] + static_cast<std::ptrdiff_t>(kvh) * pr.ks[1];
    const S* vbase = pr.v + static_cast<std::ptrdiff_t>(b) * pr.vs[0] + static_cast<std::ptrdiff_t>(kvh) * pr.vs[1];
    constexpr bool same_type = std::is_same_v<S, T>;
    const T* krow[RK];

    for (long long j0 = k_begin; j0 < k_end; j0 += static_cast<long long>(bk)) {
        const std::size_t nk = static_cast<std::size_t>(std::min<long long>(static_cast<long long>(bk), k_end - j0));
        const std::size_t ju = static_cast<std::size_t>(j0);

        // A block the mask hides from every row is skipped before anything is computed.
        if (pr.mask) {
            bool any = false;
            for (std::size_t r = 0; r < nr && !any; ++r) {
                const bool* mrow = pr.mask + static_cast<std::ptrdiff_t>(b) * pr.ms.batch +
                                   static_cast<std::ptrdiff_t>(w.head[r]) * pr.ms.head +
                                   static_cast<std::ptrdiff_t>(w.pos[r]) * pr.ms.query +
                                   static_cast<std::ptrdiff_t>(ju) * pr.ms.key;
                for (std::size_t j = 0; j < nk; ++j)
                    if (mrow[static_cast<std::ptrdiff_t>(j) * pr.ms.key]) {
                        any = true;
                        break;
                    }
            }
            if (!any) continue;
        }

        // K and V rows: read in place, or packed (converted, and padded to whole micro-tiles). A
        // block whose count is not a multiple of RK computes the scores of the keys after it
        // where they exist (and ignores them), so only the last block of the keys is packed.
        const std::size_t nkp = round_up(nk, RK);
        const bool pack = !same_type || dp != d || ju + nkp > pr.shape.seq_k;
        const T* kptr;
        std::size_t ldk;
        const T* vptr;
        std::size_t ldv;
        if (pack) {
            for (std::size_t j = 0; j < nk; ++j) {
                convert_row<false>(kbase + static_cast<std::ptrdiff_t>(ju + j) * pr.ks[2], w.kc + j * d, d, pr.fmt, T(1));
                convert_row<false>(vbase + static_cast<std::ptrdiff_t>(ju + j) * pr.vs[2], w.vc + j * dp, d, pr.fmt, T(1));
                std::fill(w.vc + j * dp + d, w.vc + (j + 1) * dp, T(0));
            }
            std::fill(w.kc + nk * d, w.kc + nkp * d, T(0));
            kptr = w.kc;
            ldk = d;
            vptr = w.vc;
            ldv = dp;
        } else {
            if constexpr (same_type) {
                kptr = kbase + static_cast<std::ptrdiff_t>(ju) * pr.ks[2];
                ldk = static_cast<std::size_t>(pr.ks[2]);
                vptr = vbase + static_cast<std::ptrdiff_t>(ju) * pr.vs[2];
                ldv = static_cast<std::size_t>(pr.vs[2]);
            }
        }

        // S^T = K Q^T for the block.
        for (std::size_t g = 0; g < nvec; g += CQ)
            for (std::size_t jj = 0; jj < nkp; jj += RK) {
                unroll<RK>([&](auto r) { krow[r] = kptr + (jj + r) * ldk; });
                qk_tile<B, T, CQ, RK, D>(w.qt + g * L, bq, krow, d, w.st + jj * bq + g * L, bq);
            }

        // Soft-capping, bias and mask.
        if (pr.softcap > T(0)) {
            const V cap(pr.softcap * score_unit<T>()), inv(T(1) / (pr.softcap * score_unit<T>()));
            for (std::size_t j = 0; j < nk; ++j)
                for (std::size_t u = 0; u < nvec; ++u) {
                    T* p = w.st + j * bq + u * L;
                    simd::store_aligned(p, cap * tanh_v(simd::load_aligned<B>(p) * inv));
                }
        }
        if (pr.bias) {
            for (std::size_t r = 0; r < nr; ++r) {
                const T* brow = pr.bias + static_cast<std::ptrdiff_t>(b) * pr.bs.batch +
                                static_cast<std::ptrdiff_t>(w.head[r]) * pr.bs.head +
                                static_cast<std::ptrdiff_t>(w.pos[r]) * pr.bs.query +
                                static_cast<std::ptrdiff_t>(ju) * pr.bs.key;
                for (std::size_t j = 0; j < nk; ++j)
                    w.st[j * bq + r] += brow[static_cast<std::ptrdiff_t>(j) * pr.bs.key] * score_unit<T>();
            }
        }
        if (pr.mask) {
            for (std::size_t r = 0; r < nr; ++r) {
                const bool* mrow = pr.mask + static_cast<std::ptrdiff_t>(b) * pr.ms.batch +
                                   static_cast<std::ptrdiff_t>(w.head[r]) * pr.ms.head +
                                   static_cast<std::ptrdiff_t>(w.pos[r]) * pr.ms.query +
                                   static_cast<std::ptrdiff_t>(ju) * pr.ms.key;
                for (std::size_t j = 0; j < nk; ++j)
                    if (!mrow[static_cast<std::ptrdiff_t>(j) * pr.ms.key]) w.st[j * bq + r] = neg_inf<T>();
            }
        }
        // The band within the block: rows that do not see all of it get their interval (the
        // block may start before the first key a row sees, never after the end of the split).
        bool partial = false;
        if (pr.band) {
            const long long nkl = static_cast<long long>(nk);
            for (std::size_t r = 0; r < bw; ++r) {
                long long lo = 0, hi = nkl;
                if (r < nr) {
                    lo = std::min(nkl, std::max(0LL, w.klo[r] - j0));
                    hi = std::max(0LL, std::min(nkl, w.khi[r] - j0));
                    if (lo >= hi) lo = hi = 0;
                    if (lo != 0 || hi != nkl) partial = true;
                }
                w.lo[r] = static_cast<T>(lo);
                w.hi[r] = static_cast<T>(hi);
            }
        }
        softmax_block<B, T>(w.st, bq, nk, nvec, w, partial);

        // O^T = alpha O^T + V^T P^T.
        for (std::size_t g = 0; g < nvec; g += CQ)
            for (std::size_t d0 = 0; d0 < dp; d0 += RD)
                pv_tile<B, T, CQ, RD>(w.st + g * L, bq, nk, vptr + d0, ldv, w.ot + d0 * bq + g * L, bq, w.alpha + g * L);
    }

    // O = O^T^T / l, lse = m + log l: to the output, or to this split's partial.
    for (std::size_t r = 0; r < nr; ++r) {
        const T l = w.l[r];
        const bool empty = l == T(0);
        const T lse = empty ? neg_inf<T>() : w.m[r] * natural_unit<T>() + std::log(l);
        if (pr.nsplit == 1) {
            S* orow = pr.o + static_cast<std::ptrdiff_t>(b) * pr.os[0] + static_cast<std::ptrdiff_t>(w.head[r]) * pr.os[1] +
                      static_cast<std::ptrdiff_t>(w.pos[r]) * pr.os[2];
            for (std::size_t dd = 0; dd < d; ++dd) orow[dd] = static_cast<S>(empty ? T(0) : w.ot[dd * bq + r] / l);
            if (pr.lse)
                pr.lse[(b * pr.shape.heads_q + w.head[r]) * pr.shape.seq_q + w.pos[r]] = lse;
        } else {
            T* prow = pr.part_o + (task * bq + r) * dp;
            for (std::size_t dd = 0; dd < d; ++dd) prow[dd] = empty ? T(0) : w.ot[dd * bq + r] / l;
            pr.part_lse[task * bq + r] = lse;
        }
    }
}

// Merges the nsplit partial results of rows [qb * bq, ...) of (b, kvh) by log-sum-exp.
template <class S, class T>
void merge_splits(const problem<S, T>& pr, std::size_t b, std::size_t kvh, std::size_t qb, std::size_t task0) {
    const std::size_t d = pr.shape.head_dim, bq = pr.block_q, ns = pr.nsplit;
    const std::size_t r0 = qb * bq, nr = std::min(bq, pr.rows - r0);
    for (std::size_t r = 0; r < nr; ++r) {
        const std::size_t pos = (r0 + r) / pr.group, head = kvh * pr.group + (r0 + r) % pr.group;
        online_softmax_state<T> total;
        for (std::size_t s = 0; s < ns; ++s) {
            const T x = pr.part_lse[(task0 + s) * bq + r];
            if (x != neg_inf<T>()) total.merge({x, T(1)});
        }
        const T lse = total.log_sum_exp();
        S* orow = pr.o + static_cast<std::ptrdiff_t>(b) * pr.os[0] + static_cast<std::ptrdiff_t>(head) * pr.os[1] +
                  static_cast<std::ptrdiff_t>(pos) * pr.os[2];
        for (std::size_t dd = 0; dd < d; ++dd) {
            T acc = T(0);
            if (lse != lse) {
                acc = lse;
            } else if (lse != neg_inf<T>()) {
                for (std::size_t s = 0; s < ns; ++s) {
                    const T x = pr.part_lse[(task0 + s) * bq + r];
                    if (x != neg_inf<T>()) acc += std::exp(x - lse) * pr.part_o[((task0 + s) * bq + r) * pr.dp + dd];
                }
            }
            orow[dd] = static_cast<S>(acc);
        }
        if (pr.lse) pr.lse[(b * pr.shape.heads_q + head) * pr.shape.seq_q + pos] = lse;
    }
}

template <class B, class S, class T, std::size_t CQ, std::size_t D>
void run_all(const problem<S, T>& pr) {
    const std::size_t nbk = pr.shape.batch * pr.shape.heads_kv;
    const std::size_t ntasks = nbk * pr.nqb * pr.nsplit;
    parallel_for(0, ntasks, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t t = lo; t < hi; ++t) {
            const std::size_t split = t % pr.nsplit, rest = t / pr.nsplit;
            const std::size_t qb = rest % pr.nqb, bkv = rest / pr.nqb;
            run_task<B, S, T, CQ, D>(pr, bkv / pr.shape.heads_kv, bkv % pr.shape.heads_kv, qb, split, t);
        }
    }, *pr.exec);
    if (pr.nsplit == 1) return;
    parallel_for(0, nbk * pr.nqb, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t t = lo; t < hi; ++t) {
            const std::size_t qb = t % pr.nqb, bkv = t / pr.nqb;
            merge_splits(pr, bkv / pr.shape.heads_kv, bkv % pr.shape.heads_kv, qb, t * pr.nsplit);
        }
    }, *pr.exec);
}

// Picks the micro-tile width (CQ vectors, or 1 for blocks of fewer rows) and the head_dim fast path.
template <class B, class S, class T>
void dispatch(const problem<S, T>& pr, bool narrow) {
    using G = geometry<B, T>;
    const std::size_t d = pr.shape.head_dim;
    if (narrow) {
        run_all<B, S, T, 1, 0>(pr);
    } else if (d == 64) {
        run_all<B, S, T, G::CQ, 64>(pr);
    } else if (d == 128) {
        run_all<B, S, T, G::CQ, 128>(pr);
    } else {
        run_all<B, S, T, G::CQ, 0>(pr);
    }
}

inline void check_view_stride(std::ptrdiff_t stride, const char* name) {
    check_argument(stride == 1, "flash_attention", name, stride, "must be 1 (head_dim elements contiguous)");
}

template <class B, class Tiles, class S, class T>
void flash_attention(const S* q, const std::ptrdiff_t (&qs)[4], const S* k, const std::ptrdiff_t (&ks)[4], const S* v,
                     const std::ptrdiff_t (&vs)[4], S* o, const std::ptrdiff_t (&os)[4], T* lse,
                     const attention_shape& shape, const attention_params<T>& params) {
    static_assert(simd::is_backend<B>, "gmk: Backend must be gmk::simd::scalar or an enabled xsimd architecture");
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gmk::flash_attention: the compute type T must be float or double");
    const char* fn = "flash_attention";
    check_argument(shape.heads_q >= 1, fn, "shape.heads_q", shape.heads_q, "must be at least 1");
    check_argument(shape.heads_kv >= 1, fn, "shape.heads_kv", shape.heads_kv, "must be at least 1");
    check_argument(shape.head_dim >= 1, fn, "shape.head_dim", shape.head_dim, "must be at least 1");
    if (shape.heads_q % shape.heads_kv != 0)
        check_argument(false, fn, "shape.heads_q", shape.heads_q,
                       "must be a multiple of shape.heads_kv = " + std::to_string(shape.heads_kv));
    check_argument(std::isfinite(params.scale), fn, "params.scale", params.scale,
                   "must be finite (0: 1 / sqrt(head_dim))");
    check_argument(std::isfinite(params.softcap) && params.softcap >= 0, fn, "params.softcap", params.softcap,
                   "must be finite and >= 0 (0: off)");
    check_argument(params.window_left >= -1, fn, "params.window_left", params.window_left,
                   "must be >= 0, or -1 for unbounded (a negative extent masks every key)");
    check_argument(params.window_right >= -1, fn, "params.window_right", params.window_right,
                   "must be >= 0, or -1 for unbounded (a negative extent masks every key)");
    check_argument(params.alignment == causal_alignment::top_left || params.alignment == causal_alignment::bottom_right,
                   fn, "params.alignment", static_cast<int>(params.alignment),
                   "must be causal_alignment::top_left or bottom_right");
    check_view_stride(qs[3], "q.strides[3]");
    check_view_stride(ks[3], "k.strides[3]");
    check_view_stride(vs[3], "v.strides[3]");
    check_view_stride(os[3], "o.strides[3]");
    const std::size_t nq = shape.batch * shape.heads_q * shape.seq_q * shape.head_dim;
    const std::size_t nkv = shape.batch * shape.heads_kv * shape.seq_k * shape.head_dim;
    check_pointer(q, nq, fn, "q");
    check_pointer(k, nkv, fn, "k");
    check_pointer(v, nkv, fn, "v");
    check_pointer(o, nq, fn, "o");
    if (nq == 0) return;

    using Gm = geometry<B, T>;
    problem<S, T> pr{};
    pr.q = q;
    pr.k = k;
    pr.v = v;
    pr.o = o;
    pr.lse = lse;
    for (int i = 0; i < 4; ++i) {
        pr.qs[i] = qs[i];
        pr.ks[i] = ks[i];
        pr.vs[i] = vs[i];
        pr.os[i] = os[i];
    }
    pr.shape = shape;
    pr.group = shape.heads_q / shape.heads_kv;
    pr.rows = shape.seq_q * pr.group;
    const double scale = params.scale != 0 ? params.scale : 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
    pr.scale = static_cast<T>(scale * static_cast<double>(score_unit<T>()));
    pr.softcap = static_cast<T>(params.softcap);
    pr.band = params.causal || params.window_left >= 0 || params.window_right >= 0;
    pr.offset = params.alignment == causal_alignment::bottom_right
                    ? static_cast<long long>(shape.seq_k) - static_cast<long long>(shape.seq_q)
                    : 0;
    pr.left = params.window_left;
    pr.right = params.causal ? 0 : params.window_right;
    pr.bias = params.bias;
    pr.bs = params.bias_strides;
    if (pr.bs.is_default()) pr.bs = {0, 0, static_cast<std::ptrdiff_t>(shape.seq_k), 1};
    pr.mask = params.mask;
    pr.ms = params.mask_strides;
    if (pr.ms.is_default()) pr.ms = {0, 0, static_cast<std::ptrdiff_t>(shape.seq_k), 1};
    pr.fmt = detect_format<S, T>();
    pr.exec = &params.exec;
    pr.dp = round_up(shape.head_dim, Gm::RD);

    // Blocks: narrow (one vector of queries per micro-tile) when a (batch, kv head) has fewer rows
    // than one wide micro-tile.
    constexpr std::size_t wide_rows = Gm::CQ * Gm::L;
    const bool narrow = pr.rows < wide_rows && Gm::CQ > 1;
    const std::size_t unit = narrow ? Gm::L : wide_rows;
    const std::size_t want_q = Tiles::block_q > 0 ? Tiles::block_q : Gm::default_block_q;
    pr.block_q = std::min(round_up(want_q, unit), round_up(pr.rows, unit));
    pr.block_k = round_up(Tiles::block_k > 0 ? Tiles::block_k : Gm::default_block_k, Gm::RK);
    pr.nqb = (pr.rows + pr.block_q - 1) / pr.block_q;
    // Split-KV: all rows in one block, few tasks, long keys (the shape alone decides).
    pr.nsplit = 1;
    const std::size_t tasks = shape.batch * shape.heads_kv * pr.nqb;
    if (pr.nqb == 1 && tasks < attention_split_target_tasks && shape.seq_k >= 2 * attention_split_min_keys) {
        const std::size_t by_keys = shape.seq_k / attention_split_min_keys;
        const std::size_t by_tasks = (attention_split_target_tasks + tasks - 1) / tasks;
        pr.nsplit = std::max<std::size_t>(1, std::min(by_keys, by_tasks));
    }
    if (pr.nsplit > 1) {
        const std::size_t n = tasks * pr.nsplit * pr.block_q;
        const std::size_t bytes = round_up(n * pr.dp * sizeof(T), 64) + n * sizeof(T);
        unsigned char* p = thread_scratch<split_tag>(bytes);
        pr.part_o = reinterpret_cast<T*>(p);
        pr.part_lse = reinterpret_cast<T*>(p + round_up(n * pr.dp * sizeof(T), 64));
    }
    dispatch<B>(pr, narrow);
}

}  // namespace detail::attention

/// Attention forward over contiguous tensors (see the top of the file): o = softmax(scores) v,
/// lse (when not null) = log sum_j exp(scores). Throws std::invalid_argument naming the argument
/// on bad input.
template <class B = simd::native, class S, class T>
void flash_attention(const S* q, const S* k, const S* v, S* o, detail::attention::identity_t<T>* lse,
                     const attention_shape& shape, const attention_params<T>& params) {
    const auto qs = contiguous_attention_tensor(q, shape.heads_q, shape.seq_q, shape.head_dim);
    const auto ks = contiguous_attention_tensor(k, shape.heads_kv, shape.seq_k, shape.head_dim);
    detail::attention::flash_attention<B, attention_tiles<>>(q, qs.strides, k, ks.strides, v, ks.strides, o, qs.strides,
                                                              lse, shape, params);
}

/// As above with explicit tile sizes: flash_attention<B>(gmk::attention_tiles<128, 64>{}, q, ...).
template <class B = simd::native, std::size_t BQ, std::size_t BK, class S, class T>
void flash_attention(attention_tiles<BQ, BK>, const S* q, const S* k, const S* v, S* o,
                     detail::attention::identity_t<T>* lse, const attention_shape& shape,
                     const attention_params<T>& params) {
    const auto qs = contiguous_attention_tensor(q, shape.heads_q, shape.seq_q, shape.head_dim);
    const auto ks = contiguous_attention_tensor(k, shape.heads_kv, shape.seq_k, shape.head_dim);
    detail::attention::flash_attention<B, attention_tiles<BQ, BK>>(q, qs.strides, k, ks.strides, v, ks.strides, o,
                                                                    qs.strides, lse, shape, params);
}

/// Attention forward with default options (no mask, scale 1 / sqrt(head_dim), serial), computed
/// in attention_compute_t<S>, without the log-sum-exp.
template <class B = simd::native, class S>
void flash_attention(const S* q, const S* k, const S* v, S* o, const attention_shape& shape) {
    flash_attention<B>(q, k, v, o, static_cast<attention_compute_t<S>*>(nullptr), shape,
                       attention_params<attention_compute_t<S>>{});
}

/// Attention forward over strided views (any batch, head and position strides; the head_dim
/// stride must be 1). Q, K and V views may be of const or mutable elements; lse is contiguous.
template <class B = simd::native, class SQ, class SK, class SV, class S, class T>
void flash_attention(attention_tensor<SQ> q, attention_tensor<SK> k, attention_tensor<SV> v, attention_tensor<S> o,
                     detail::attention::identity_t<T>* lse, const attention_shape& shape,
                     const attention_params<T>& params) {
    static_assert(!std::is_const_v<S>, "gmk::flash_attention: the output view must be writable");
    static_assert(std::is_same_v<std::remove_const_t<SQ>, S> && std::is_same_v<std::remove_const_t<SK>, S> &&
                      std::is_same_v<std::remove_const_t<SV>, S>,
                  "gmk::flash_attention: q, k, v and o must hold the same storage type");
    detail::attention::flash_attention<B, attention_tiles<>>(static_cast<const S*>(q.data), q.strides,
                                                              static_cast<const S*>(k.data), k.strides,
                                                              static_cast<const S*>(v.data), v.strides, o.data,
                                                              o.strides, lse, shape, params);
}

}  // namespace gmk
