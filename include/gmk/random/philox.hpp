// gmk: the Philox4x32 counter-based generator (Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011), the block function every gmk random stream is built
// on. Output block c of a stream under key k is a pure function of (k, c): no state, no
// sequence, so any element can be computed on its own, by any thread, on any backend.
//
// One round maps the counter (c0, c1, c2, c3) under key (k0, k1) to
//   (hi(M1 c2) ^ c1 ^ k0,  lo(M1 c2),  hi(M0 c0) ^ c3 ^ k1,  lo(M0 c0))
// with M0 = 0xD2511F53, M1 = 0xCD9E8D57 and hi/lo the halves of the 64-bit product; the key is
// bumped by the Weyl constants (0x9E3779B9, 0xBB67AE85) before every round after the first.
// Ten rounds (Philox4x32-10) is the published default, the one torch's CUDA generator uses.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "../simd/ops.hpp"

namespace gmk::random {

/// The 128-bit counter of one Philox4x32 block, as four 32-bit words.
using philox_counter = std::array<std::uint32_t, 4>;
/// The 64-bit key of a Philox4x32 stream, as two 32-bit words.
using philox_key = std::array<std::uint32_t, 2>;

/// The multipliers and key increments of Philox4x32 (Salmon et al. 2011, table 2).
namespace philox_constants {
inline constexpr std::uint32_t m0 = 0xD2511F53u;
inline constexpr std::uint32_t m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t w0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t w1 = 0xBB67AE85u;  // sqrt(3) - 1
}  // namespace philox_constants

/// The key of a stream from a 64-bit seed: (low word, high word), as Random123 and torch use it.
constexpr philox_key philox_key_from_seed(std::uint64_t seed) noexcept {
    return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

/// Philox4x32 with `Rounds` rounds (10 by default): four 32-bit random words from a counter and
/// a key. Bitwise identical to Random123's philox4x32_R.
template <int Rounds = 10>
constexpr philox_counter philox4x32(philox_counter c, philox_key k) noexcept {
    static_assert(Rounds >= 1 && Rounds <= 16, "Philox4x32 is defined for 1 to 16 rounds");
    using namespace philox_constants;
    for (int r = 0; r < Rounds; ++r) {
        if (r > 0) {
            k[0] += w0;
            k[1] += w1;
        }
        const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c[0];
        const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c[2];
        c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<std::uint32_t>(p1),
             static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<std::uint32_t>(p0)};
    }
    return c;
}

/// Philox4x32 on vectors: lane l of c[k][0..3] holds the counter of one block and receives its
/// output, bitwise equal to the scalar function on every backend. The K independent vectors are
/// interleaved round by round, so their multiply latencies overlap.
template <int Rounds = 10, class V, std::size_t K>
GMK_INLINE void philox4x32_lanes(V (&c)[K][4], philox_key k) noexcept {
    static_assert(Rounds >= 1 && Rounds <= 16, "Philox4x32 is defined for 1 to 16 rounds");
    using namespace philox_constants;
    // Fully unrolled, so the state stays in registers across the rounds.
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC unroll 16
#endif
    for (int r = 0; r < Rounds; ++r) {
        if (r > 0) {
            k[0] += w0;
            k[1] += w1;
        }
        const V k0(k[0]), k1(k[1]);
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC unroll 8
#endif
        for (std::size_t j = 0; j < K; ++j) {
            V hi0, hi1;
            const V lo0 = simd::mulhilo(c[j][0], m0, hi0);
            const V lo1 = simd::mulhilo(c[j][2], m1, hi1);
            c[j][0] = hi1 ^ c[j][1] ^ k0;
            c[j][1] = lo1;
            c[j][2] = hi0 ^ c[j][3] ^ k1;
            c[j][3] = lo0;
        }
    }
}

}  // namespace gmk::random
