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
//     beyond give the softmax of the scores as rounded to T (float keeps about 2^-24 |s| of each).
//     Weights below 2^-125 of the row maximum's are flushed to 0 (float).
//   - NaN in Q, K, V or the bias makes NaN the rows that attend to it; because tiles are
//     computed whole, a NaN in K or V may also reach other rows of the same (batch, kv head) for
//     which it is masked (but never from a block no row of the task sees: those are not read).
//     A +inf score (a +inf bias) gives NaN rows (inf - inf).
//   - accuracy (tests/attention.cpp): float within 1e-6 of the double-precision result, relative
//     to each row's scale, up to 4096 keys; float16 / bfloat16 storage within the naive
//     computation's own error in that storage.
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
// vectors of (pre-scaled, transposed) queries (12 keys x 2 vectors of queries on AVX-512) and the
// PV micro-kernel elements of V rows against vectors of P (8 dimensions x 2 vectors), so neither
// K nor V needs a transpose or a copy (they are packed only to convert a storage type, or to pad
// a head_dim that is not a multiple of 8 and the last key block), the running max and sum are
// lane-wise, without horizontal reductions, and the exponentials are one vector per 16 scores.
// Float scores are kept in base 2 (Q pre-scaled by scale * log2 e), so P = 2^(s - m) costs a
// 6-FMA polynomial. Each block's P V is summed from zero and then added to O (blocked
// summation: the rounding error grows with sqrt(seq_k BlockK), not seq_k).
// Head dimensions: any; those that are multiples of 8 (64, 128, ...) read K and V in place (the
// fast path); others pad V to a multiple of 8 per block. A compile-time head_dim measured no
// faster.
// Decoding: when a (batch, kv head) has at most L/4 query rows (L = lanes of T), a second kernel
// puts head_dim in the lanes instead (dot products and weighted sums of rows; see
// run_task_rows). When all its rows fit in one block, few such blocks exist and the keys are
// long, the keys are split over several tasks whose normalised partial outputs merge by
// log-sum-exp (split-KV). The kernel, the split and every block depend on the shape only, never
// on the executor: results are bitwise the same on any number of threads. Key blocks sit at
// multiples of BlockK, so (without a split) a row's result depends on its own data only.
//
// Memory: each thread keeps one scratch buffer of a few tiles (about (2 head_dim + BlockK) x
// BlockQ + 2 BlockK x head_dim elements of T; thread_local, grown on first use and reused after),
// and a split-KV call a buffer of the partial outputs (fewer than attention_split_target_tasks x
// BlockQ rows of head_dim) on the calling thread: nothing is ever proportional to seq_q x seq_k,
// and nothing is allocated once the buffers have grown.
//
// Speed (one Zen 5 core, AVX-512, float, FMA peak 272 GFLOP/s measured by bench/machine.cpp,
// FLOPs = 4 seq_q seq_k head_dim, half when causal): 0.77-0.87 of the peak for seq 1024-4096,
// head_dim 64-128, causal or not (causal head_dim 64 lowest); float16 storage 0.7-0.8; a dense
// bias or mask about 0.6 (applied element by element across the transposed tile); decoding
// streams K and V at 18-29 GB/s (one core's read stream: 39 GB/s).
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
/// [batch, heads_kv, seq_k, head_dim]. heads_q must be a multiple of heads_kv; heads_q, heads_kv
/// and head_dim must be at least 1; batch or seq_q may be 0 (nothing to compute) and seq_k may be
/// 0 (every row fully masked: O = 0, lse = -inf).
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
    // Defaults: 32 query rows (one micro-tile of float on AVX-512) and 96 keys per block. Measured
    // on one Zen 5 core (AVX-512, float, GFLOP/s, seq 1024 / 4096, head_dim 64 / 128, causal and
    // not): BlockQ x BlockK = 32 x 96: 221-239 non-causal, 206-231 causal; 64 x 96: 216-236 and
    // 195-230; 64 x 192, 32 x 192, 32 x 144: within 2% of 32 x 96 non-causal, 1-5% slower causal;
    // 128 x 96: up to 20% slower causal (the blocks on the diagonal compute more masked scores).
    static constexpr std::size_t default_block_q = std::max<std::size_t>(CQ * L, 32);
    static constexpr std::size_t default_block_k = wide ? 8 * RK : 24 * RK;
    // The decoding kernel: keys per block (a multiple of L; its K and V blocks stay in L1).
    static constexpr std::size_t default_block_k_rows = std::max<std::size_t>(64, L);
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
        // 1, -2.5 and 3.140625 (normal numbers: immune to flush-to-zero modes).
        if (as_float(0x3C00) == 1.0f && as_float(0xC100) == -2.5f && as_float(0x4248) == 3.140625f) return format::ieee_half;
        if (as_float(0x3F80) == 1.0f && as_float(0xC020) == -2.5f && as_float(0x4049) == 3.140625f) return format::bfloat16;
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
    std::ptrdiff_t* boff;  // [bq] offset of the row's bias (key 0)
    std::ptrdiff_t* moff;  // [bq] offset of the row's mask (key 0)
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
                           2 * bytes_of(bq, sizeof(std::size_t)) + 2 * bytes_of(bq, sizeof(std::ptrdiff_t));
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
    w.boff = take(bq, static_cast<std::ptrdiff_t*>(nullptr));
    w.moff = take(bq, static_cast<std::ptrdiff_t*>(nullptr));
    return w;
}

// ---- micro-kernels -------------------------------------------------------------------------

// st[r][c] (RK rows of keys, CQ vectors of queries, row stride lds) = sum_dd k_r[dd] * qt[dd][c]
// over dd < d: RK * CQ accumulators, per step CQ vector loads and RK broadcasts. (A compile-time
// d of 64 or 128 measured no faster: each step is 24 FMAs, the loop costs nothing.)
template <class B, class T, std::size_t CQ, std::size_t RK>
GMK_INLINE void qk_tile(const T* qt, std::size_t ldq, const T* const* krow, std::size_t d, T* st, std::size_t lds) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    V acc[RK][CQ];
    unroll<RK>([&](auto r) { unroll<CQ>([&](auto c) { acc[r][c] = V(T(0)); }); });
    const T* kp[RK];
    unroll<RK>([&](auto r) { kp[r] = krow[r]; });
    for (std::size_t dd = 0; dd < d; ++dd) {
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
// polynomial of the rest and an exponent add (simd::exp2_nonpositive): about half the operations
// of a general exp, and the same bits on every backend with a fused FMA.
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

// e^x (double) or 2^x (float) for x <= 0: the weight of a score x below the running max.
template <class V>
GMK_INLINE V exp_score(const V& x) noexcept {
    if constexpr (base2<typename V::value_type>) return simd::exp2_nonpositive(x);
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

// What a task knows about its rows once set up (see setup_rows).
struct task_rows {
    std::size_t nr;            // rows in the task
    long long k_begin, k_end;  // the keys the task runs over
    bool bias_uniform, mask_uniform;
};

// Rows [qb * bq, ...) of (batch b, kv head kvh): row r is query position pos, head
// kvh * group + g, stacked as pos * group + g. Fills the rows' positions, heads, key intervals
// and bias / mask offsets, and returns the keys of split `split`.
template <class S, class T>
task_rows setup_rows(const problem<S, T>& pr, const workspace<T>& w, std::size_t b, std::size_t kvh, std::size_t qb,
                     std::size_t split) {
    const std::size_t bq = pr.block_q, r0 = qb * bq;
    task_rows t{};
    t.nr = std::min(bq, pr.rows - r0);
    long long ulo = std::numeric_limits<long long>::max(), uhi = std::numeric_limits<long long>::min();
    t.bias_uniform = t.mask_uniform = true;
    for (std::size_t r = 0; r < t.nr; ++r) {
        w.pos[r] = (r0 + r) / pr.group;
        w.head[r] = kvh * pr.group + (r0 + r) % pr.group;
        pr.keys_of(w.pos[r], w.klo[r], w.khi[r]);
        if (w.klo[r] < w.khi[r]) {
            ulo = std::min(ulo, w.klo[r]);
            uhi = std::max(uhi, w.khi[r]);
        }
        // Where each row's bias and mask start, and whether all rows share them.
        const auto bb = static_cast<std::ptrdiff_t>(b), hh = static_cast<std::ptrdiff_t>(w.head[r]),
                   ii = static_cast<std::ptrdiff_t>(w.pos[r]);
        w.boff[r] = bb * pr.bs.batch + hh * pr.bs.head + ii * pr.bs.query;
        w.moff[r] = bb * pr.ms.batch + hh * pr.ms.head + ii * pr.ms.query;
        t.bias_uniform = t.bias_uniform && w.boff[r] == w.boff[0];
        t.mask_uniform = t.mask_uniform && w.moff[r] == w.moff[0];
    }
    if (ulo >= uhi) ulo = uhi = 0;  // every row fully masked
    // Key blocks sit at multiples of bk, whatever the rows: a row's result then depends on its
    // own data only (not on which rows share its block, nor on BlockQ), as long as the keys are
    // not split. This split's share of the blocks the rows see:
    const long long bkl = static_cast<long long>(pr.block_k);
    const long long blk_lo = ulo / bkl, blk_hi = (uhi + bkl - 1) / bkl;
    const long long nblocks = blk_hi - blk_lo, ns = static_cast<long long>(pr.nsplit), sp = static_cast<long long>(split);
    t.k_begin = (blk_lo + sp * nblocks / ns) * bkl;
    t.k_end = std::min(uhi, (blk_lo + (sp + 1) * nblocks / ns) * bkl);
    return t;
}

// Whether the mask hides keys [j0, j0 + nk) from every row of the task (the block is then skipped
// before anything is computed).
template <class S, class T>
bool block_hidden(const problem<S, T>& pr, const workspace<T>& w, const task_rows& t, std::size_t j0, std::size_t nk) {
    if (!pr.mask) return false;
    for (std::size_t r = 0; r < (t.mask_uniform ? 1 : t.nr); ++r) {
        const bool* mrow = pr.mask + w.moff[r] + static_cast<std::ptrdiff_t>(j0) * pr.ms.key;
        for (std::size_t j = 0; j < nk; ++j)
            if (mrow[static_cast<std::ptrdiff_t>(j) * pr.ms.key]) return false;
    }
    return true;
}

// Row r's result: O = acc / l (acc[dd * step]) and lse = m * natural_unit + log l, to the output or
// to the task's split partial; a row with l = 0 saw no key: O = 0, lse = -inf.
template <class S, class T>
void finish_row(const problem<S, T>& pr, const workspace<T>& w, std::size_t b, std::size_t r, std::size_t task,
                const T* acc, std::size_t step) {
    const std::size_t d = pr.shape.head_dim;
    const T l = w.l[r];
    const bool empty = l == T(0);
    const T lse = empty ? neg_inf<T>() : w.m[r] * natural_unit<T>() + std::log(l);
    if (pr.nsplit == 1) {
        S* orow = pr.o + static_cast<std::ptrdiff_t>(b) * pr.os[0] + static_cast<std::ptrdiff_t>(w.head[r]) * pr.os[1] +
                  static_cast<std::ptrdiff_t>(w.pos[r]) * pr.os[2];
        for (std::size_t dd = 0; dd < d; ++dd) orow[dd] = static_cast<S>(empty ? T(0) : acc[dd * step] / l);
        if (pr.lse) pr.lse[(b * pr.shape.heads_q + w.head[r]) * pr.shape.seq_q + w.pos[r]] = lse;
    } else {
        T* prow = pr.part_o + (task * pr.block_q + r) * pr.dp;
        for (std::size_t dd = 0; dd < d; ++dd) prow[dd] = empty ? T(0) : acc[dd * step] / l;
        pr.part_lse[task * pr.block_q + r] = lse;
    }
}

// The task of rows [qb * bq, ...) of (batch b, kv head kvh), keys of split `split`.
template <class B, class S, class T, std::size_t CQ>
void run_task(const problem<S, T>& pr, std::size_t b, std::size_t kvh, std::size_t qb, std::size_t split,
              std::size_t task) {
    using G = geometry<B, T>;
    using V = simd::batch<T, B>;
    constexpr std::size_t L = G::L, RK = G::RK, RD = G::RD;
    const std::size_t d = pr.shape.head_dim, dp = pr.dp;
    const std::size_t bq = pr.block_q, bk = pr.block_k;
    const workspace<T> w = carve<T>(d, dp, bq, bk);

    const task_rows tr = setup_rows(pr, w, b, kvh, qb, split);
    const std::size_t nr = tr.nr;
    const bool bias_uniform = tr.bias_uniform, mask_uniform = tr.mask_uniform;
    const long long k_begin = tr.k_begin, k_end = tr.k_end;
    const std::size_t nvec = round_up(nr, CQ * L) / L;  // query vectors computed
    const std::size_t bw = nvec * L;                    // lanes computed (<= bq)

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

        if (block_hidden(pr, w, tr, ju, nk)) continue;

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
            // Rows stored back to back convert in one run.
            const S* ksrc = kbase + static_cast<std::ptrdiff_t>(ju) * pr.ks[2];
            const S* vsrc = vbase + static_cast<std::ptrdiff_t>(ju) * pr.vs[2];
            if (pr.ks[2] == static_cast<std::ptrdiff_t>(d)) {
                convert_row<false>(ksrc, w.kc, nk * d, pr.fmt, T(1));
            } else {
                for (std::size_t j = 0; j < nk; ++j)
                    convert_row<false>(ksrc + static_cast<std::ptrdiff_t>(j) * pr.ks[2], w.kc + j * d, d, pr.fmt, T(1));
            }
            if (dp == d && pr.vs[2] == static_cast<std::ptrdiff_t>(d)) {
                convert_row<false>(vsrc, w.vc, nk * d, pr.fmt, T(1));
            } else {
                for (std::size_t j = 0; j < nk; ++j) {
                    convert_row<false>(vsrc + static_cast<std::ptrdiff_t>(j) * pr.vs[2], w.vc + j * dp, d, pr.fmt, T(1));
                    std::fill(w.vc + j * dp + d, w.vc + (j + 1) * dp, T(0));
                }
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
                qk_tile<B, T, CQ, RK>(w.qt + g * L, bq, krow, d, w.st + jj * bq + g * L, bq);
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
        // A bias or mask the same for every row of the task (a key-padding mask, a per-head key
        // bias with one head per task) is a vector operation per key.
        if (pr.bias) {
            const std::ptrdiff_t sk = pr.bs.key;
            const T* base = pr.bias + static_cast<std::ptrdiff_t>(ju) * sk;
            if (bias_uniform) {
                for (std::size_t j = 0; j < nk; ++j) {
                    T* srow = w.st + j * bq;
                    const V add(base[w.boff[0] + static_cast<std::ptrdiff_t>(j) * sk] * score_unit<T>());
                    for (std::size_t u = 0; u < nvec; ++u)
                        simd::store_aligned(srow + u * L, simd::load_aligned<B>(srow + u * L) + add);
                }
            } else {
                // Row by row here: reading each bias row in order beats writing S^T in order.
                for (std::size_t r = 0; r < nr; ++r) {
                    const T* brow = base + w.boff[r];
                    for (std::size_t j = 0; j < nk; ++j)
                        w.st[j * bq + r] += brow[static_cast<std::ptrdiff_t>(j) * sk] * score_unit<T>();
                }
            }
        }
        if (pr.mask) {
            const std::ptrdiff_t sk = pr.ms.key;
            const bool* base = pr.mask + static_cast<std::ptrdiff_t>(ju) * sk;
            const V minus_inf(neg_inf<T>());
            for (std::size_t j = 0; j < nk; ++j) {
                T* srow = w.st + j * bq;
                const bool* mj = base + static_cast<std::ptrdiff_t>(j) * sk;
                if (mask_uniform) {
                    if (!mj[w.moff[0]])
                        for (std::size_t u = 0; u < nvec; ++u) simd::store_aligned(srow + u * L, minus_inf);
                } else {
                    for (std::size_t r = 0; r < nr; ++r)
                        if (!mj[w.moff[r]]) srow[r] = neg_inf<T>();
                }
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

    for (std::size_t r = 0; r < nr; ++r) finish_row(pr, w, b, r, task, w.ot + r, bq);
}

// ---- the decoding kernel --------------------------------------------------------------------
//
// With at most a quarter of a vector of query rows per (batch, kv head) (decoding: one position, a
// few heads per kv head), queries in the lanes would leave most lanes idle: this kernel puts head_dim
// in the lanes instead. A score is a dot product (head_dim / L vector FMAs and one horizontal sum),
// an output row a sum of V rows weighted by a broadcast P (head_dim / L FMAs per key): about
// 2 head_dim / L + log2 L vector operations per row and key, against 2 head_dim for the lanes
// kernel, so a long KV cache streams at memory speed. Same blocks, masks and numerics; the
// softmax runs over keys in the lanes.

// o[c] = alpha o[c] + sum_{j < nk} p[j] v[j][c] for the CN vectors c of one output row.
template <class B, class T, std::size_t CN>
GMK_INLINE void pv_row(const T* p, std::size_t nk, const T* v, std::size_t ldv, T* o, T alpha) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    V acc[CN];
    unroll<CN>([&](auto c) { acc[c] = V(T(0)); });
    for (std::size_t j = 0; j < nk; ++j) {
        const V pj = simd::broadcast<B>(p[j]);
        const T* vr = v + j * ldv;
        unroll<CN>([&](auto c) { acc[c] = simd::fma(pj, simd::load<B>(vr + c * L), acc[c]); });
    }
    const V a = simd::broadcast<B>(alpha);
    unroll<CN>([&](auto c) { simd::store_aligned(o + c * L, simd::fma(simd::load_aligned<B>(o + c * L), a, acc[c])); });
}

template <class B, class T, std::size_t... CN>
void pv_row_any(std::size_t cn, const T* p, std::size_t nk, const T* v, std::size_t ldv, T* o, T alpha,
                std::index_sequence<CN...>) {
    // cn in [1, 8]: one fixed-size kernel each.
    ((cn == CN + 1 ? pv_row<B, T, CN + 1>(p, nk, v, ldv, o, alpha) : void()), ...);
}

using simd::prefetch;

// s[j] = q . k_j for j < nk (q and the rows of k: nv vectors each). With `ahead`, also prefetches
// rows j of two other arrays (the V block, the next K block): a K block and a V block alternate,
// and the hardware prefetchers would start each one cold.
template <class B, class T>
GMK_INLINE void qk_row(const T* q, std::size_t nv, const T* k, std::size_t ldk, std::size_t nk, T* s,
                       const T* ahead1 = nullptr, std::size_t ld1 = 0, const T* ahead2 = nullptr, std::size_t ld2 = 0) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    std::size_t j = 0;
    for (; j + 4 <= nk; j += 4) {  // four keys: four independent chains
        V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
        const T* k0 = k + j * ldk;
        if (ahead1)
            for (std::size_t u = 0; u < 4; ++u) prefetch(ahead1 + (j + u) * ld1, nv * L * sizeof(T));
        if (ahead2)
            for (std::size_t u = 0; u < 4; ++u) prefetch(ahead2 + (j + u) * ld2, nv * L * sizeof(T));
        for (std::size_t c = 0; c < nv; ++c) {
            const V qv = simd::load_aligned<B>(q + c * L);
            a0 = simd::fma(qv, simd::load<B>(k0 + c * L), a0);
            a1 = simd::fma(qv, simd::load<B>(k0 + ldk + c * L), a1);
            a2 = simd::fma(qv, simd::load<B>(k0 + 2 * ldk + c * L), a2);
            a3 = simd::fma(qv, simd::load<B>(k0 + 3 * ldk + c * L), a3);
        }
        s[j] = simd::reduce_add(a0);
        s[j + 1] = simd::reduce_add(a1);
        s[j + 2] = simd::reduce_add(a2);
        s[j + 3] = simd::reduce_add(a3);
    }
    for (; j < nk; ++j) {
        V a(T(0));
        for (std::size_t c = 0; c < nv; ++c)
            a = simd::fma(simd::load_aligned<B>(q + c * L), simd::load<B>(k + j * ldk + c * L), a);
        s[j] = simd::reduce_add(a);
    }
}

template <class B, class S, class T>
void run_task_rows(const problem<S, T>& pr, std::size_t b, std::size_t kvh, std::size_t qb, std::size_t split,
                   std::size_t task) {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    const std::size_t d = pr.shape.head_dim, dl = round_up(d, L), nv = dl / L;
    const std::size_t bq = pr.block_q, bk = pr.block_k;
    // qt: the rows of Q (scaled, [nr][dl]); ot: the output rows; st: the scores ([nr][bk]).
    const workspace<T> w = carve<T>(dl, dl, bq, bk);
    const task_rows tr = setup_rows(pr, w, b, kvh, qb, split);
    const std::size_t nr = tr.nr;
    for (std::size_t r = 0; r < nr; ++r) {
        const S* qrow = pr.q + static_cast<std::ptrdiff_t>(b) * pr.qs[0] + static_cast<std::ptrdiff_t>(w.head[r]) * pr.qs[1] +
                        static_cast<std::ptrdiff_t>(w.pos[r]) * pr.qs[2];
        convert_row<true>(qrow, w.qt + r * dl, d, pr.fmt, pr.scale);
        std::fill(w.qt + r * dl + d, w.qt + (r + 1) * dl, T(0));
    }
    std::fill(w.ot, w.ot + nr * dl, T(0));
    std::fill(w.m, w.m + nr, neg_inf<T>());
    std::fill(w.l, w.l + nr, T(0));

    const S* kbase = pr.k + static_cast<std::ptrdiff_t>(b) * pr.ks[0] + static_cast<std::ptrdiff_t>(kvh) * pr.ks[1];
    const S* vbase = pr.v + static_cast<std::ptrdiff_t>(b) * pr.vs[0] + static_cast<std::ptrdiff_t>(kvh) * pr.vs[1];
    const V minus_inf(neg_inf<T>());
    for (long long j0 = tr.k_begin; j0 < tr.k_end; j0 += static_cast<long long>(bk)) {
        const std::size_t nk = static_cast<std::size_t>(std::min<long long>(static_cast<long long>(bk), tr.k_end - j0));
        const std::size_t ju = static_cast<std::size_t>(j0), nkl = round_up(nk, L);
        if (block_hidden(pr, w, tr, ju, nk)) continue;
        // K and V rows in place, or converted and zero-padded to whole vectors.
        const T* kptr;
        const T* vptr;
        std::size_t ldk, ldv;
        if (!std::is_same_v<S, T> || dl != d) {
            // The rows of the next block, while this one converts and computes.
            if (j0 + static_cast<long long>(bk) < tr.k_end) {
                const std::size_t nn = static_cast<std::size_t>(std::min<long long>(static_cast<long long>(bk),
                                                                                     tr.k_end - j0 - static_cast<long long>(bk)));
                for (std::size_t j = 0; j < nn; ++j) {
                    prefetch(kbase + static_cast<std::ptrdiff_t>(ju + bk + j) * pr.ks[2], d * sizeof(S));
                    prefetch(vbase + static_cast<std::ptrdiff_t>(ju + bk + j) * pr.vs[2], d * sizeof(S));
                }
            }
            const auto pack = [&](const S* src, std::ptrdiff_t ld, T* dst) {
                if (dl == d && ld == static_cast<std::ptrdiff_t>(d)) {  // back-to-back rows: one run
                    convert_row<false>(src, dst, nk * d, pr.fmt, T(1));
                    return;
                }
                for (std::size_t j = 0; j < nk; ++j) {
                    convert_row<false>(src + static_cast<std::ptrdiff_t>(j) * ld, dst + j * dl, d, pr.fmt, T(1));
                    std::fill(dst + j * dl + d, dst + (j + 1) * dl, T(0));
                }
            };
            pack(kbase + static_cast<std::ptrdiff_t>(ju) * pr.ks[2], pr.ks[2], w.kc);
            pack(vbase + static_cast<std::ptrdiff_t>(ju) * pr.vs[2], pr.vs[2], w.vc);
            kptr = w.kc;
            vptr = w.vc;
            ldk = ldv = dl;
        } else {
            if constexpr (std::is_same_v<S, T>) {
                kptr = kbase + static_cast<std::ptrdiff_t>(ju) * pr.ks[2];
                vptr = vbase + static_cast<std::ptrdiff_t>(ju) * pr.vs[2];
                ldk = static_cast<std::size_t>(pr.ks[2]);
                ldv = static_cast<std::size_t>(pr.vs[2]);
            }
        }
        for (std::size_t r = 0; r < nr; ++r) {
            T* srow = w.st + r * bk;
            if (r == 0 && vptr != w.vc) {
                // The V rows of this block and the K rows of the next (in the tensor, when read in place).
                const bool next = j0 + static_cast<long long>(2 * bk) <= tr.k_end;
                qk_row<B>(w.qt, nv, kptr, ldk, nk, srow, vptr, ldv, next ? kptr + bk * ldk : nullptr, ldk);
            } else {
                qk_row<B>(w.qt + r * dl, nv, kptr, ldk, nk, srow);
            }
            if (pr.softcap > T(0)) {
                // The lanes past the last key hold an earlier block's scratch: zero them first
                // (tanh of stale values can be undefined behaviour in a vector tanh; they become
                // -inf below).
                std::fill(srow + nk, srow + nkl, T(0));
                const V cap(pr.softcap * score_unit<T>()), inv(T(1) / (pr.softcap * score_unit<T>()));
                for (std::size_t u = 0; u < nkl; u += L)
                    simd::store_aligned(srow + u, cap * tanh_v(simd::load_aligned<B>(srow + u) * inv));
            }
            if (pr.bias) {
                const std::ptrdiff_t sk = pr.bs.key;
                const T* brow = pr.bias + w.boff[r] + static_cast<std::ptrdiff_t>(ju) * sk;
                for (std::size_t j = 0; j < nk; ++j) srow[j] += brow[static_cast<std::ptrdiff_t>(j) * sk] * score_unit<T>();
            }
            if (pr.mask) {
                const bool* mrow = pr.mask + w.moff[r] + static_cast<std::ptrdiff_t>(ju) * pr.ms.key;
                for (std::size_t j = 0; j < nk; ++j)
                    if (!mrow[static_cast<std::ptrdiff_t>(j) * pr.ms.key]) srow[j] = neg_inf<T>();
            }
            // The band, and the padding of the last vector: -inf.
            const long long nkll = static_cast<long long>(nk);
            const long long lo = std::min(nkll, std::max(0LL, w.klo[r] - j0));
            const long long hi = std::max(lo, std::min(nkll, w.khi[r] - j0));
            std::fill(srow, srow + lo, neg_inf<T>());
            std::fill(srow + hi, srow + nkl, neg_inf<T>());
            // The online-softmax step, keys in the lanes.
            V mv = minus_inf;
            for (std::size_t u = 0; u < nkl; u += L) mv = simd::max(mv, simd::load_aligned<B>(srow + u));
            const T mt = simd::reduce_max(mv), mo = w.m[r];
            const T mn = mo < mt ? mt : mo;
            const T mu = mn == neg_inf<T>() ? T(0) : mn;
            const T alpha = exp_score(simd::scalar_batch<T>(mo - mu)).value;
            const V vmu(mu);
            V sum(T(0));
            for (std::size_t u = 0; u < nkl; u += L) {
                const V p = exp_score(simd::load_aligned<B>(srow + u) - vmu);
                simd::store_aligned(srow + u, p);
                sum = sum + p;
            }
            w.l[r] = w.l[r] * alpha + simd::reduce_add(sum);
            w.m[r] = mn;
            // O = alpha O + P V, eight vectors of head_dim at a time.
            for (std::size_t c0 = 0; c0 < nv; c0 += 8)
                pv_row_any<B>(std::min<std::size_t>(8, nv - c0), srow, nk, vptr + c0 * L, ldv, w.ot + r * dl + c0 * L,
                              alpha, std::make_index_sequence<8>{});
        }
    }
    for (std::size_t r = 0; r < nr; ++r) finish_row(pr, w, b, r, task, w.ot + r * dl, 1);
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

template <class B, class S, class T, std::size_t CQ>
void run_all(const problem<S, T>& pr) {
    const std::size_t nbk = pr.shape.batch * pr.shape.heads_kv;
    const std::size_t ntasks = nbk * pr.nqb * pr.nsplit;
    parallel_for(0, ntasks, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t t = lo; t < hi; ++t) {
            const std::size_t split = t % pr.nsplit, rest = t / pr.nsplit;
            const std::size_t qb = rest % pr.nqb, bkv = rest / pr.nqb;
            if constexpr (CQ == 0) run_task_rows<B, S, T>(pr, bkv / pr.shape.heads_kv, bkv % pr.shape.heads_kv, qb, split, t);
            else run_task<B, S, T, CQ>(pr, bkv / pr.shape.heads_kv, bkv % pr.shape.heads_kv, qb, split, t);
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

// Picks the kernel: the decoding kernel (CQ = 0), or micro-tiles of CQ vectors of queries (1 for
// blocks of fewer rows than a wide micro-tile).
enum class kernel { rows, narrow, wide };
template <class B, class S, class T>
void dispatch(const problem<S, T>& pr, kernel kind) {
    if (kind == kernel::rows) run_all<B, S, T, 0>(pr);
    else if (kind == kernel::narrow) run_all<B, S, T, 1>(pr);
    else run_all<B, S, T, geometry<B, T>::CQ>(pr);
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

    // The kernel: decoding (head_dim in the lanes) when a (batch, kv head) has at most a quarter
    // of a vector of query rows; narrow (one vector of queries per micro-tile) when it has fewer
    // than one wide micro-tile; wide otherwise. Measured (Zen 5, float, head_dim 128, 8192 keys
    // in L3, microseconds for 2 / 4 / 5 / 6 / 8 rows): decoding 176 / 293 / 365 / 426 / 549,
    // narrow 380 / 379 / 377 / 381 / 397.
    constexpr std::size_t wide_rows = Gm::CQ * Gm::L;
    const kernel kind = 4 * pr.rows <= Gm::L ? kernel::rows : pr.rows < wide_rows ? kernel::narrow : kernel::wide;
    const std::size_t unit = kind == kernel::rows ? 1 : kind == kernel::narrow ? Gm::L : wide_rows;
    if (kind == kernel::rows) pr.dp = round_up(shape.head_dim, Gm::L);
    // Where K and V are packed (converted from 16-bit storage, or padded to the PV tile), twice the
    // rows share each packed block: float16, Zen 5, seq 1024-4096: 211-221 GFLOP/s with 64 rows,
    // 198-208 with 32.
    const bool packs = !std::is_same_v<S, T> || pr.dp != shape.head_dim;  // dp: the rows kernel's too
    const std::size_t want_q = Tiles::block_q > 0 ? Tiles::block_q : (packs ? 2 : 1) * Gm::default_block_q;
    pr.block_q = std::min(round_up(want_q, unit), round_up(pr.rows, unit));
    if (kind == kernel::rows) {
        // Packed K and V blocks of the decoding kernel stay within 16 KB together: converting
        // into blocks that L1 cannot hold measured 7 GB/s of float16 K/V, 16 KB 12 GB/s (Zen 5,
        // head_dim 128); read in place, 64 keys.
        const std::size_t packed = std::max<std::size_t>(1, 16384 / (2 * pr.dp * sizeof(T)) / Gm::L) * Gm::L;
        const std::size_t want = Tiles::block_k > 0 ? Tiles::block_k : packs ? packed : Gm::default_block_k_rows;
        pr.block_k = round_up(want, Gm::L);
    } else {
        pr.block_k = round_up(Tiles::block_k > 0 ? Tiles::block_k : Gm::default_block_k, Gm::RK);
    }
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
    dispatch<B>(pr, kind);
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
