// gmk: uniform and normal fills from a counter-based Philox4x32-10 stream.
//
// Element i of stream s under seed k is a pure function of (k, s, i): a fill gives the same bits
// whatever the backend, the vector width, the chunking or the thread count, and any element can
// be drawn alone. Uniforms are bitwise equal on every backend, and so are normals on every
// backend whose fma rounds once (scalar, FMA3, AVX-512, NEON64: the same operations in the same
// order, no library math); the SSE, AVX and AVX2-without-FMA3 tags round a * b + c twice and
// land within 3 ulp.
//
// Layout. The blocks of a stream are numbered b = 0, 1, ...; block b is philox4x32(counter
// (lo(b), hi(b), lo(s), hi(s)), key(k)), four 32-bit words w0..w3. Sixteen consecutive blocks
// form a tile, so that a 16-, 8-, 4- or 1-lane vector holds whole lanes of a tile and the result
// cannot depend on the width. Lane l of tile t is block 16 t + l, and
//   float:  element 64 t + 16 q + l comes from word q of that block (q = 0..3);
//   double: element 32 t + 16 q + l comes from the word pair (w0, w1) for q = 0, (w2, w3) for 1.
// For normals the float pairs (w0, w1) and (w2, w3) each give one Box-Muller pair: q = 0, 1 are
// r cos(theta), r sin(theta) of the first, q = 2, 3 of the second; a double block gives one pair.
//
// Uniforms: float [0, 1) has 24 random bits (k 2^-24); float (0, 1) has 23 ((2k + 1) 2^-24,
// symmetric about 1/2, never 0 or 1). Double [0, 1) has 53 bits, (0, 1) has 52 ((2k + 1) 2^-53).
// Normals (Box-Muller): r = sqrt(-2 ln u) with u an open uniform, theta = 2 pi v with v a closed
// uniform; sin and cos of theta are computed in turns, so the range reduction is exact.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../simd/ops.hpp"
#include "philox.hpp"

namespace gmk::random {

/// One counter-based stream: a key (from a 64-bit seed) and a 64-bit stream number.
struct philox_stream {
    philox_key key{};
    std::uint64_t stream = 0;

    constexpr philox_stream() noexcept = default;
    constexpr explicit philox_stream(std::uint64_t seed, std::uint64_t stream_id = 0) noexcept
        : key(philox_key_from_seed(seed)), stream(stream_id) {}

    /// The four words of block b of this stream.
    constexpr philox_counter block(std::uint64_t b) const noexcept {
        return philox4x32({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32),
                           static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)},
                          key);
    }
};

/// Which unit interval a uniform fill draws from.
enum class interval {
    closed_open,  ///< [0, 1): 0 possible, 1 never
    open,         ///< (0, 1): neither 0 nor 1, safe under log
};

namespace detail {

inline constexpr std::size_t tile_blocks = 16;
/// Elements of one tile: 64 floats or 32 doubles.
template <class T>
inline constexpr std::size_t tile_elements = std::is_same_v<T, float> ? 64 : 32;

template <class T>
using uint_of = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
template <class T>
using int_of = std::conditional_t<std::is_same_v<T, float>, std::int32_t, std::int64_t>;

/// Vectors of blocks computed together: their multiply chains overlap (see philox4x32_lanes).
inline constexpr std::size_t interleave = 2;

/// The words of blocks b + k W, ..., b + k W + W - 1 in w[k] (W lanes; b a multiple of W, so no
/// lane carries into the high word of the block number).
template <class B, std::size_t K>
void philox_words(const philox_stream& s, std::uint64_t b, simd::batch<std::uint32_t, B> (&w)[K][4]) noexcept {
    using U = simd::batch<std::uint32_t, B>;
    constexpr std::size_t W = U::size;
    for (std::size_t k = 0; k < K; ++k) {
        const std::uint64_t bk = b + k * W;
        w[k][0] = simd::iota<std::uint32_t, B>(static_cast<std::uint32_t>(bk));
        w[k][1] = U(static_cast<std::uint32_t>(bk >> 32));
        w[k][2] = U(static_cast<std::uint32_t>(s.stream));
        w[k][3] = U(static_cast<std::uint32_t>(s.stream >> 32));
    }
    philox4x32_lanes(w, s.key);
}

/// A uniform from the top bits of x (all random): [0, 1) with all 24 / 53 bits or (0, 1) with
/// 23 / 52 bits and an odd multiple of 2^-24 / 2^-53.
template <class T, class B>
simd::batch<T, B> unit_uniform(const simd::batch<uint_of<T>, B>& x, interval iv) noexcept {
    using V = simd::batch<T, B>;
    constexpr int bits = std::numeric_limits<T>::digits;  // 24 or 53
    constexpr int width = sizeof(T) * 8;
    constexpr T half_ulp = T(1) / T(std::uint64_t(1) << bits);  // 2^-24 or 2^-53
    if (iv == interval::open) {
        const auto k = simd::bitcast<int_of<T>>(x >> (width - bits + 1));
        return simd::fma(simd::convert<T>(k), V(2 * half_ulp), V(half_ulp));
    }
    return simd::convert<T>(simd::bitcast<int_of<T>>(x >> (width - bits))) * V(half_ulp);
}

/// sin(2 pi v) and cos(2 pi v) for v in [0, 1). v = q / 4 + r with q = round(4 v) and
/// |r| <= 1/8 exactly (v and q / 4 lie on one grid), then minimax polynomials on
/// [-pi/4, pi/4] (Cephes sinf/cosf and sin/cos coefficients) and the quadrant's symmetries.
template <class T, class B>
void sincos_turns(const simd::batch<T, B>& v, simd::batch<T, B>& s, simd::batch<T, B>& c) noexcept {
    using V = simd::batch<T, B>;
    // Round to nearest by the 1.5 * 2^(digits-1) shift (exact for |4 v| < 2^(digits-2)).
    constexpr T shift = T(1.5) * T(std::uint64_t(1) << (std::numeric_limits<T>::digits - 1));
    const V q = (v * V(4) + V(shift)) - V(shift);
    const V r = simd::fma(q, V(-0.25), v);
    V x, x2, sp, cp;
    if constexpr (std::is_same_v<T, float>) {
        // 2 pi as a float plus its rounding error: x = 2 pi r to within half an ulp.
        constexpr float two_pi_hi = 6.28318548202514648f, two_pi_lo = -1.74845553e-7f;
        x = simd::fma(r, V(two_pi_hi), r * V(two_pi_lo));
        x2 = x * x;
        sp = simd::fma(simd::fma(V(-1.9515295891e-4f), x2, V(8.3321608736e-3f)), x2, V(-1.6666654611e-1f));
        cp = simd::fma(simd::fma(V(2.443315711809948e-5f), x2, V(-1.388731625493765e-3f)), x2,
                       V(4.166664568298827e-2f));
    } else {
        constexpr double two_pi_hi = 6.283185307179586232, two_pi_lo = 2.4492935982947064e-16;
        x = simd::fma(r, V(two_pi_hi), r * V(two_pi_lo));
        x2 = x * x;
        sp = V(1.58962301576546568060e-10);
        sp = simd::fma(sp, x2, V(-2.50507477628578072866e-8));
        sp = simd::fma(sp, x2, V(2.75573136213857245213e-6));
        sp = simd::fma(sp, x2, V(-1.98412698295895385996e-4));
        sp = simd::fma(sp, x2, V(8.33333333332211858878e-3));
        sp = simd::fma(sp, x2, V(-1.66666666666666307295e-1));
        cp = V(-1.13585365213876817300e-11);
        cp = simd::fma(cp, x2, V(2.08757008419747316778e-9));
        cp = simd::fma(cp, x2, V(-2.75573141792967388112e-7));
        cp = simd::fma(cp, x2, V(2.48015872888517045348e-5));
        cp = simd::fma(cp, x2, V(-1.38888888888730564116e-3));
        cp = simd::fma(cp, x2, V(4.16666666666665929218e-2));
    }
    const V sin_x = simd::fma(x * x2, sp, x);
    const V cos_x = simd::fma(x2 * x2, cp, simd::fma(x2, V(-0.5), V(1)));
    // Quadrant q (4 is 0): sin = (s, c, -s, -c)[q], cos = (c, -s, -c, s)[q].
    const auto odd = (q == V(1)) | (q == V(3));
    const auto flip_sin = (q == V(2)) | (q == V(3));
    const auto flip_cos = (q == V(1)) | (q == V(2));
    const V s0 = simd::select(odd, cos_x, sin_x);
    const V c0 = simd::select(odd, sin_x, cos_x);
    s = simd::select(flip_sin, simd::neg(s0), s0);
    c = simd::select(flip_cos, simd::neg(c0), c0);
}

/// log(x) for float x in [2^-24, 1], within an ulp: Cephes' logf (x = m 2^e, a degree-9
/// polynomial in m - 1 and the two-part log 2), with its products fused exactly where torch's
/// AVX2 build fuses them (torch_cpu.hpp reproduces torch's float randn with it, bit for bit).
/// No special cases: the uniforms of a Box-Muller transform never leave that range.
template <class V>
GMK_INLINE V cephes_log_unit(const V& x) noexcept {
    using I = decltype(simd::bitcast<std::int32_t>(x));
    const I bits = simd::bitcast<std::int32_t>(x);
    // x = m 2^k with m in [0.5, 1): e = k, from the biased exponent.
    V e = simd::convert<float>((bits >> 23) - I(0x7f)) + V(1.0f);
    V m = simd::bitcast<float>((bits & I(~0x7f800000)) | I(0x3f000000));
    // Below sqrt(1/2) take 2m and k - 1 instead, so that the polynomial's argument t (m - 1 or
    // 2m - 1) lies in [-0.29, 0.41]. All exact.
    const auto small = m < V(static_cast<float>(0.707106781186547524));
    e = e - simd::select(small, V(1.0f), V(0.0f));
    const V t = (m - V(1.0f)) + simd::select(small, m, V(0.0f));
    const V z = t * t;
    V y(static_cast<float>(7.0376836292E-2));
    y = simd::fma(y, t, V(static_cast<float>(-1.1514610310E-1)));
    y = simd::fma(y, t, V(static_cast<float>(1.1676998740E-1)));
    y = simd::fma(y, t, V(static_cast<float>(-1.2420140846E-1)));
    y = simd::fma(y, t, V(static_cast<float>(1.4249322787E-1)));
    y = simd::fma(y, t, V(static_cast<float>(-1.6668057665E-1)));
    y = simd::fma(y, t, V(static_cast<float>(2.0000714765E-1)));
    y = simd::fma(y, t, V(static_cast<float>(-2.4999993993E-1)));
    y = simd::fma(y, t, V(static_cast<float>(3.3333331174E-1)));
    y = y * t;
    // log 2 = q2 - q1 split so that e q2 is exact (Cephes' two-constant reduction).
    y = simd::fma(y, z, e * V(static_cast<float>(-2.12194440e-4)));
    y = y - z * V(0.5f);
    return simd::fma(e, V(static_cast<float>(0.693359375)), t + y);
}

/// log(u) for u in (0, 1] of a uniform's grid (positive, normal, finite: no special cases), to
/// within an ulp: the reduction and polynomial of fdlibm's e_log.c (u = 2^k m, m in
/// [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f), log m = f - (f^2/2 - s (f^2/2 + R(s^2))))
/// with its Lg1..Lg7 coefficients.
template <class B>
GMK_INLINE simd::batch<double, B> log_unit(const simd::batch<double, B>& u) noexcept {
    using V = simd::batch<double, B>;
    using U = simd::batch<std::uint64_t, B>;
    const U bits = simd::bitcast<std::uint64_t>(u);
    // The exponent as a double, exactly, through the 2^52 magic (no 64-bit integer conversion).
    V k = simd::bitcast<double>((bits >> 52) | U(0x4330000000000000ull)) - V(0x1p52 + 1023);
    V m = simd::bitcast<double>((bits & U(0x000fffffffffffffull)) | U(0x3ff0000000000000ull));
    const auto big = m > V(1.4142135623730951);
    m = simd::select(big, m * V(0.5), m);
    k = simd::select(big, k + V(1), k);
    const V f = m - V(1);  // exact
    const V s = f / (V(2) + f);
    const V z = s * s, w = z * z;
    const V t1 = w * simd::fma(w, simd::fma(w, V(1.531383769920937332e-01), V(2.222219843214978396e-01)),
                               V(3.999999999940941908e-01));
    const V t2 = z * simd::fma(w, simd::fma(w, simd::fma(w, V(1.479819860511658591e-01), V(1.818357216161805012e-01)),
                                            V(2.857142874366239149e-01)),
                               V(6.666666666666735130e-01));
    const V r = t2 + t1;
    const V hfsq = V(0.5) * f * f;
    constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return simd::fma(k, V(ln2_hi), (simd::fma(s, hfsq + r, k * V(ln2_lo)) - hfsq) + f);
}

/// One Box-Muller pair from an open uniform u (radius) and a closed one v (angle).
template <class T, class B>
void box_muller(const simd::batch<T, B>& u, const simd::batch<T, B>& v, simd::batch<T, B>& z_cos,
                simd::batch<T, B>& z_sin) noexcept {
    using V = simd::batch<T, B>;
    V lg;
    if constexpr (std::is_same_v<T, double>) lg = log_unit<B>(u);
    else lg = cephes_log_unit(u);
    const V r = simd::sqrt(V(-2) * lg);
    V s, c;
    sincos_turns<T, B>(v, s, c);
    z_cos = r * c;
    z_sin = r * s;
}

/// The 64-bit lanes (w_hi << 32 | w_lo) for lanes [l, l + lanes<double, B>) of a tile.
template <class B>
simd::batch<std::uint64_t, B> join_words(const std::uint32_t* hi, const std::uint32_t* lo) noexcept {
    constexpr std::size_t L = simd::lanes<std::uint64_t, B>;
    alignas(64) std::uint64_t x[L];
    for (std::size_t k = 0; k < L; ++k) x[k] = std::uint64_t(hi[k]) << 32 | lo[k];
    return simd::batch<std::uint64_t, B>::load_aligned(x);
}

/// Tiles computed per call of fill_chunk: enough for `interleave` vectors of blocks.
template <class B>
inline constexpr std::size_t chunk_tiles =
    std::max<std::size_t>(1, interleave * simd::lanes<std::uint32_t, B> / tile_blocks);

/// Writes tiles [c S, c S + S) of stream s (S = chunk_tiles<B>) into dst: uniforms on iv when
/// `normal` is false, standard normals otherwise.
template <class B, class T>
void fill_chunk(const philox_stream& s, std::uint64_t c, T* dst, bool normal, interval iv) noexcept {
    using U = simd::batch<std::uint32_t, B>;
    using V = simd::batch<T, B>;
    constexpr std::size_t W = U::size, K = interleave, S = chunk_tiles<B>;
    static_assert(tile_blocks % W == 0, "gmk::random: the vector width must divide a tile");
    constexpr std::size_t blocks = S * tile_blocks;
    const std::uint64_t first_block = c * blocks;
    if constexpr (std::is_same_v<T, float>) {
        for (std::size_t g = 0; g < blocks; g += K * W) {
            U w[K][4];
            philox_words<B>(s, first_block + g, w);
            for (std::size_t k = 0; k < K; ++k) {
                // Block g + k W + l is lane l0 + l of local tile tl: element 64 tl + 16 q + l0 + l.
                const std::size_t b = g + k * W, tl = b / tile_blocks, l0 = b % tile_blocks;
                T* out = dst + 64 * tl + l0;
                if (normal) {
                    V z[4];
                    box_muller<float, B>(unit_uniform<float, B>(w[k][0], interval::open),
                                         unit_uniform<float, B>(w[k][1], interval::closed_open), z[0], z[1]);
                    box_muller<float, B>(unit_uniform<float, B>(w[k][2], interval::open),
                                         unit_uniform<float, B>(w[k][3], interval::closed_open), z[2], z[3]);
                    for (std::size_t q = 0; q < 4; ++q) simd::store(out + 16 * q, z[q]);
                } else {
                    for (std::size_t q = 0; q < 4; ++q) simd::store(out + 16 * q, unit_uniform<float, B>(w[k][q], iv));
                }
            }
        }
    } else {
        // Words to the stack, then pairs of them joined into 64-bit lanes of the double vectors.
        alignas(64) std::uint32_t words[4][blocks];
        for (std::size_t g = 0; g < blocks; g += K * W) {
            U w[K][4];
            philox_words<B>(s, first_block + g, w);
            for (std::size_t k = 0; k < K; ++k)
                for (std::size_t q = 0; q < 4; ++q) simd::store(&words[q][g + k * W], w[k][q]);
        }
        constexpr std::size_t D = simd::lanes<double, B>;
        for (std::size_t b = 0; b < blocks; b += D) {
            const auto x = join_words<B>(&words[0][b], &words[1][b]);
            const auto y = join_words<B>(&words[2][b], &words[3][b]);
            T* out = dst + 32 * (b / tile_blocks) + b % tile_blocks;
            if (normal) {
                V z0, z1;
                box_muller<double, B>(unit_uniform<double, B>(x, interval::open),
                                      unit_uniform<double, B>(y, interval::closed_open), z0, z1);
                simd::store(out, z0);
                simd::store(out + 16, z1);
            } else {
                simd::store(out, unit_uniform<double, B>(x, iv));
                simd::store(out + 16, unit_uniform<double, B>(y, iv));
            }
        }
    }
}

/// Elements [first, first + n) of the stream into out: whole chunks straight into out, partial
/// ones through a chunk on the stack.
template <class B, class T>
void fill_range(const philox_stream& s, std::uint64_t first, T* out, std::size_t n, bool normal,
                interval iv) noexcept {
    constexpr std::size_t E = chunk_tiles<B> * tile_elements<T>;
    alignas(64) T chunk[E];
    std::size_t done = 0;
    while (done < n) {
        const std::uint64_t i = first + done;
        const std::uint64_t c = i / E;
        const std::size_t offset = static_cast<std::size_t>(i % E);
        if (offset == 0 && n - done >= E) {
            fill_chunk<B>(s, c, out + done, normal, iv);
            done += E;
        } else {
            fill_chunk<B>(s, c, chunk, normal, iv);
            const std::size_t m = std::min(E - offset, n - done);
            std::copy(chunk + offset, chunk + offset + m, out + done);
            done += m;
        }
    }
}

template <class T>
void check_fill(const char* function, const T* out, std::size_t n, std::uint64_t first) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gmk::random fills produce float or double");
    check_pointer(out, n, function, "out");
    check_argument(n <= UINT64_MAX - first, function, "n", n, "first + n must not exceed 2^64");
}

template <class B, class T>
void fill(const char* function, const philox_stream& s, std::uint64_t first, T* out, std::size_t n,
          bool normal, interval iv, const executor* exec) {
    check_fill(function, out, n, first);
    // Chunks of whole tiles: the elements do not depend on the split, the split only on n.
    constexpr std::size_t grain = 256 * tile_elements<T>;
    if (exec == nullptr || n <= grain) {
        fill_range<B>(s, first, out, n, normal, iv);
        return;
    }
    parallel_for(0, n, grain, [&](std::size_t lo, std::size_t hi) {
        fill_range<B>(s, first + lo, out + lo, hi - lo, normal, iv);
    }, *exec);
}

}  // namespace detail

/// Elements [first, first + n) of the uniform stream s on the interval iv (float or double).
template <class B = simd::native, class T>
void uniform_fill(const philox_stream& s, std::uint64_t first, T* out, std::size_t n,
                  interval iv = interval::closed_open) {
    detail::fill<B>("uniform_fill", s, first, out, n, false, iv, nullptr);
}
/// As above, split over the executor's threads (the same bits for any thread count).
template <class B = simd::native, class T>
void uniform_fill(const philox_stream& s, std::uint64_t first, T* out, std::size_t n, interval iv,
                  const executor& exec) {
    detail::fill<B>("uniform_fill", s, first, out, n, false, iv, &exec);
}

/// Elements [first, first + n) of the standard normal stream s (float or double, Box-Muller).
template <class B = simd::native, class T>
void normal_fill(const philox_stream& s, std::uint64_t first, T* out, std::size_t n) {
    detail::fill<B>("normal_fill", s, first, out, n, true, interval::open, nullptr);
}
/// As above, split over the executor's threads (the same bits for any thread count).
template <class B = simd::native, class T>
void normal_fill(const philox_stream& s, std::uint64_t first, T* out, std::size_t n, const executor& exec) {
    detail::fill<B>("normal_fill", s, first, out, n, true, interval::open, &exec);
}

}  // namespace gmk::random
