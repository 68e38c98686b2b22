// gmk: philox_generator, gmk's own fast random stream (Philox4x32-10, see fill.hpp).
//
// A generator is a seed, a stream number and a position. Each call draws the next whole tiles of
// the stream (64 floats or 32 doubles per tile, fill.hpp) and moves the position past them, so
// calls never share random bits, whatever their types. Consecutive calls therefore equal one
// long call only when the earlier ones draw whole tiles; a call's elements are the stream's
// elements from position * tile on, and any of them can be recomputed with uniform_fill /
// normal_fill.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fill.hpp"

namespace gmk {

class philox_generator {
public:
    /// Stream `stream` under `seed`, at its beginning.
    explicit philox_generator(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept : s_(seed, stream), seed_(seed) {}

    /// Restarts stream 0 of `seed` (as torch's manual_seed restarts its generator).
    void manual_seed(std::uint64_t seed) noexcept { *this = philox_generator(seed); }

    std::uint64_t seed() const noexcept { return seed_; }
    std::uint64_t stream_id() const noexcept { return s_.stream; }
    /// The stream and key this generator draws from.
    const random::philox_stream& stream() const noexcept { return s_; }
    /// The next tile this generator will draw (tiles of 16 Philox blocks).
    std::uint64_t position() const noexcept { return tile_; }
    void set_position(std::uint64_t tile) noexcept { tile_ = tile; }

    /// n standard normals (float or double).
    template <class B = simd::native, class T>
    void randn(T* out, std::size_t n) {
        random::normal_fill<B>(s_, first<T>(n), out, n);
        advance<T>(n);
    }
    /// n uniforms on [0, 1) (float or double).
    template <class B = simd::native, class T>
    void rand(T* out, std::size_t n) {
        random::uniform_fill<B>(s_, first<T>(n), out, n, random::interval::closed_open);
        advance<T>(n);
    }
    /// n uniforms on (0, 1), safe to take the log of.
    template <class B = simd::native, class T>
    void rand_open(T* out, std::size_t n) {
        random::uniform_fill<B>(s_, first<T>(n), out, n, random::interval::open);
        advance<T>(n);
    }

private:
    template <class T>
    std::uint64_t first(std::size_t n) const {
        constexpr std::uint64_t E = random::detail::tile_elements<T>;
        check_argument(tile_ <= UINT64_MAX / E - (n + E - 1) / E, "philox_generator", "n", n,
                       "the stream has 2^64 elements; this call would run past its end");
        return tile_ * E;
    }
    template <class T>
    void advance(std::size_t n) noexcept {
        constexpr std::size_t E = random::detail::tile_elements<T>;
        tile_ += (n + E - 1) / E;
    }

    random::philox_stream s_;
    std::uint64_t seed_ = 0;
    std::uint64_t tile_ = 0;
};

}  // namespace gmk
