// Tests of gmk/random/philox.hpp: the Philox4x32 block function against Random123's published
// known-answer vectors (tests/kat_vectors of the Random123 distribution).
#include <gmk/random/philox.hpp>

#include <set>

#include "support/catch.hpp"
#include "support/testing.hpp"

using gmk::random::philox4x32;
using gmk::random::philox_counter;
using gmk::random::philox_key;

namespace {
struct known_answer {
    philox_counter counter;
    philox_key key;
    philox_counter ten_rounds;
    philox_counter seven_rounds;
};

// Random123 kat_vectors, "philox4x32 10" and "philox4x32 7": counter, key, expected output.
constexpr known_answer kat[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000}, {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}, {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
};
}  // namespace

TEST_CASE("random::philox4x32 reproduces Random123's known answers", "[random][philox]") {
    for (const auto& v : kat) {
        REQUIRE(philox4x32<10>(v.counter, v.key) == v.ten_rounds);
        REQUIRE(philox4x32<7>(v.counter, v.key) == v.seven_rounds);
        REQUIRE(philox4x32(v.counter, v.key) == v.ten_rounds);  // 10 rounds by default
    }
    // A compile-time evaluation gives the same bits.
    constexpr philox_counter at_compile_time = philox4x32(kat[2].counter, kat[2].key);
    STATIC_REQUIRE((at_compile_time[0] == 0xd16cfe09 && at_compile_time[1] == 0x94fdcceb &&
                    at_compile_time[2] == 0x5001e420 && at_compile_time[3] == 0x24126ea1));
}

TEST_CASE("random::philox4x32 is a function of counter and key alone", "[random][philox]") {
    // Neighbouring counters and keys give unrelated blocks: no two of 4096 outputs collide.
    std::set<philox_counter> seen;
    for (std::uint32_t i = 0; i < 2048; ++i) {
        seen.insert(philox4x32({i, 0, 0, 0}, {7, 0}));
        seen.insert(philox4x32({0, 0, 0, 0}, {7, i + 1}));
    }
    REQUIRE(seen.size() == 4096);
    REQUIRE(gmk::random::philox_key_from_seed(0x0123456789abcdefull) == philox_key{0x89abcdef, 0x01234567});
}

TEST_CASE("random::philox4x32_lanes equals the scalar function on every backend", "[random][philox]") {
    gmk_test::for_each_backend([](auto backend) {
        using B = decltype(backend);
        using U = gmk::simd::batch<std::uint32_t, B>;
        constexpr std::size_t W = U::size;
        gmk_test::rng r(11);
        for (int trial = 0; trial < 64; ++trial) {
            alignas(64) std::uint32_t in[2][4][W];
            for (auto& vec : in)
                for (auto& word : vec)
                    for (auto& lane : word) lane = static_cast<std::uint32_t>(r.next());
            const philox_key key{static_cast<std::uint32_t>(r.next()), static_cast<std::uint32_t>(r.next())};
            U c[2][4];
            for (std::size_t k = 0; k < 2; ++k)
                for (std::size_t q = 0; q < 4; ++q) c[k][q] = U::load_aligned(in[k][q]);
            gmk::random::philox4x32_lanes(c, key);
            for (std::size_t k = 0; k < 2; ++k)
                for (std::size_t l = 0; l < W; ++l) {
                    const philox_counter expect = philox4x32({in[k][0][l], in[k][1][l], in[k][2][l], in[k][3][l]}, key);
                    INFO(gmk::simd::backend_name<B>() << " vector " << k << " lane " << l);
                    for (std::size_t q = 0; q < 4; ++q) REQUIRE(gmk::simd::lane(c[k][q], l) == expect[q]);
                }
        }
    });
}
