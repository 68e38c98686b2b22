// gmk: torch_cuda_generator, the random stream of torch.randn / torch.rand on a CUDA device,
// computed on the CPU (Philox4x32-10, fill.hpp's block function).
//
// How torch draws (aten/src/ATen/native/cuda/DistributionTemplates.h, curand_kernel.h):
// a call of n elements runs a grid of G blocks of 256 threads, G = ceil(n / 256) capped at
// (multiprocessors * max threads per multiprocessor / 256); with stride S = 256 G, thread
// `idx` seeds curand's Philox with key = seed, subsequence = idx (counter words 2, 3) and the
// generator's offset (counter words 0, 1 = offset / 4), then loops r = 0, 1, ...: each pass
// draws one block (counter word 0 advances) and writes it to elements idx + S (U r + j),
// j < U. Float: U = 4, the block's words (x0, x1), (x2, x3) give two Box-Muller pairs in the
// order sin, cos, sin, cos (curand_normal4); double: U = 2, one pair from 53-bit uniforms,
// sin(pi v), cos(pi v) (curand_normal2_double). After the call the offset grows by
// 4 per pass (4 ceil(n / (U S))).
//
// With an unbounded grid (multiprocessors = 0, the default) every element is its own thread's
// first draw: element i = sin branch of block (offset / 4, 0, i, 0), offset / 4 growing by one
// per call — the layout A1111's WebUI and stable-diffusion.cpp reproduce, equal to torch while
// n <= S of the GPU (270,336 on an H100 or H200: 132 multiprocessors of 2048 threads). Give the
// GPU's multiprocessor count to reproduce torch at any size.
//
// Numerics: the uniforms are computed in float (or double) exactly as curand does; the log,
// sqrt, sin and cos in double and rounded once. The GPU's float path uses the fast __sincosf,
// so float normals agree with a real GPU to about 1e-6 (tests/random_torch_cuda.cpp measures
// it), double normals to a few ulp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../core/error.hpp"
#include "../simd/ops.hpp"
#include "fill.hpp"
#include "philox.hpp"

namespace gmk {

/// The CUDA launch limits that decide torch's per-thread layout beyond one pass of the grid.
struct cuda_grid {
    std::uint32_t multiprocessors = 0;                  ///< 0: unbounded (A1111 / sd.cpp layout)
    std::uint32_t max_threads_per_multiprocessor = 2048;

    /// Threads of the grid torch launches for n elements (the stride S).
    std::uint64_t stride(std::uint64_t n) const noexcept {
        std::uint64_t blocks = (n + 255) / 256;
        if (multiprocessors > 0)
            blocks = std::min<std::uint64_t>(blocks, std::uint64_t(multiprocessors) * (max_threads_per_multiprocessor / 256));
        return std::max<std::uint64_t>(blocks, 1) * 256;
    }
};

class torch_cuda_generator {
public:
    /// torch.Generator("cuda").manual_seed(seed) on a GPU with the given launch limits.
    explicit torch_cuda_generator(std::uint64_t seed = 67280421310721ULL, cuda_grid grid = {})
        : seed_(seed), grid_(grid) {
        check_argument(grid.max_threads_per_multiprocessor >= 256, "torch_cuda_generator",
                       "grid.max_threads_per_multiprocessor", grid.max_threads_per_multiprocessor,
                       "must hold at least one block of 256 threads");
    }

    /// Restarts at offset 0 under `seed`, as manual_seed does.
    void manual_seed(std::uint64_t seed) noexcept {
        seed_ = seed;
        offset_ = 0;
    }
    std::uint64_t initial_seed() const noexcept { return seed_; }
    /// torch's Philox offset (32-bit draws reserved so far per thread; a multiple of 4).
    std::uint64_t offset() const noexcept { return offset_; }
    void set_offset(std::uint64_t offset) {
        check_argument(offset % 4 == 0, "torch_cuda_generator::set_offset", "offset", offset,
                       "must be a multiple of 4 (torch reserves whole Philox blocks)");
        offset_ = offset;
    }
    const cuda_grid& grid() const noexcept { return grid_; }

    /// torch.randn(n, device="cuda", generator=g) for float or double.
    template <class B = simd::native, class T>
    void randn(T* out, std::size_t n) {
        draw<B>("torch_cuda_generator::randn", out, n, true);
    }
    /// torch.rand(n, device="cuda", generator=g): [0, 1) for float or double.
    template <class B = simd::native, class T>
    void rand(T* out, std::size_t n) {
        draw<B>("torch_cuda_generator::rand", out, n, false);
    }

private:
    template <class B, class T>
    void draw(const char* function, T* out, std::size_t n, bool normal);

    std::uint64_t seed_;
    cuda_grid grid_;
    std::uint64_t offset_ = 0;
};

namespace detail {

// curand's uniform scalings (curand_uniform.h, curand_normal.h).
inline constexpr float curand_2pow32_inv = 0x1p-32f;
inline constexpr float curand_2pow32_inv_2pi = 0x1p-32f * 6.28318548202514648f;  // 2^-32 * float(2 pi)
inline constexpr double curand_2pow53_inv = 0x1p-53;

/// The four words of blocks (counter, idx0 + lane) for one vector of threads.
template <class B>
GMK_INLINE void torch_cuda_block(random::philox_key key, std::uint64_t counter, std::uint64_t idx0,
                                 simd::batch<std::uint32_t, B> (&w)[1][4]) noexcept {
    using U = simd::batch<std::uint32_t, B>;
    w[0][0] = U(static_cast<std::uint32_t>(counter));
    w[0][1] = U(static_cast<std::uint32_t>(counter >> 32));
    w[0][2] = simd::iota<std::uint32_t, B>(static_cast<std::uint32_t>(idx0));
    w[0][3] = U(static_cast<std::uint32_t>(idx0 >> 32));
    random::philox4x32_lanes(w, key);
}

/// r * sin(theta), r * cos(theta) in double from double u (radius) and theta in turns.
template <class B>
GMK_INLINE void box_muller_turns(const double* u, const double* turns, double* z_sin, double* z_cos) noexcept {
    using V = simd::batch<double, B>;
    const V r = simd::sqrt(V(-2.0) * simd::log(simd::load<B>(u)));
    V s, c;
    random::detail::sincos_turns<double, B>(simd::load<B>(turns), s, c);
    simd::store(z_sin, r * s);
    simd::store(z_cos, r * c);
}

}  // namespace detail

template <class B, class T>
void torch_cuda_generator::draw(const char* function, T* out, std::size_t n, bool normal) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "torch_cuda_generator draws float or double");
    check_pointer(out, n, function, "out");
    if (n == 0) return;  // torch launches nothing and keeps its offset
    constexpr std::size_t W = simd::lanes<std::uint32_t, B>;
    constexpr std::size_t D = simd::lanes<double, B>;
    constexpr std::uint64_t U = std::is_same_v<T, float> ? 4 : 2;  // outputs per block
    const random::philox_key key = random::philox_key_from_seed(seed_);
    const std::uint64_t S = grid_.stride(n);
    const std::uint64_t passes = (n + U * S - 1) / (U * S);
    const std::uint64_t base = offset_ / 4;

    // Per vector of W threads: the W blocks, then the U outputs of each (in double), then
    // the lanes whose element exists stored to element idx + S (U r + j).
    alignas(64) std::uint32_t words[4][W];
    alignas(64) double u[2][W], v[2][W], z[4][W];
    for (std::uint64_t r = 0; r < passes; ++r) {
        const std::uint64_t first = U * S * r;  // element of (idx 0, j 0) in this pass
        const std::uint64_t threads = std::min<std::uint64_t>(S, n - first);  // idx < this may write
        for (std::uint64_t idx0 = 0; idx0 < threads; idx0 += W) {
            simd::batch<std::uint32_t, B> w[1][4];
            detail::torch_cuda_block<B>(key, base + r, idx0, w);
            for (std::size_t q = 0; q < 4; ++q) simd::store(words[q], w[0][q]);
            // Outputs j whose element first + j S + idx0 exists for at least the first lane.
            const std::uint64_t live = std::min<std::uint64_t>(U, (n - first - idx0 + S - 1) / S);
            if constexpr (std::is_same_v<T, float>) {
                const std::size_t pairs = normal ? (live + 1) / 2 : 0;
                for (std::size_t p = 0; p < pairs; ++p)
                    for (std::size_t l = 0; l < W; ++l) {
                        // u in (0, 1], v in (0, 2 pi], in float as curand computes them.
                        const float x = static_cast<float>(words[2 * p][l]);
                        const float y = static_cast<float>(words[2 * p + 1][l]);
                        u[p][l] = x * detail::curand_2pow32_inv + detail::curand_2pow32_inv / 2;
                        const float angle = y * detail::curand_2pow32_inv_2pi + detail::curand_2pow32_inv_2pi / 2;
                        v[p][l] = double(angle) * 0.15915494309189535;  // turns; see below
                    }
                for (std::size_t p = 0; p < pairs; ++p)
                    for (std::size_t l = 0; l < W; l += D) {
                        // sin and cos of the float angle in double: the angle in turns is
                        // rounded once (relative 1e-16), far below float's resolution.
                        using V = simd::batch<double, B>;
                        const V r2 = simd::sqrt(V(-2.0) * simd::log(simd::load<B>(&u[p][l])));
                        V s, c;
                        random::detail::sincos_turns<double, B>(simd::load<B>(&v[p][l]), s, c);
                        simd::store(&z[2 * p][l], r2 * s);
                        simd::store(&z[2 * p + 1][l], r2 * c);
                    }
                if (!normal)
                    for (std::size_t q = 0; q < live; ++q)
                        for (std::size_t l = 0; l < W; ++l) {
                            // torch maps a uniform of exactly 1 (from float rounding) to 0.
                            const float x = static_cast<float>(words[q][l]) * detail::curand_2pow32_inv +
                                            detail::curand_2pow32_inv / 2;
                            z[q][l] = x == 1.0f ? 0.0 : double(x);
                        }
            } else {
                for (std::size_t p = 0; p < 2; ++p)
                    for (std::size_t l = 0; l < W; ++l) {
                        const std::uint64_t zx = std::uint64_t(words[2 * p][l]) ^ (std::uint64_t(words[2 * p + 1][l]) << 21);
                        u[p][l] = double(zx) * detail::curand_2pow53_inv + detail::curand_2pow53_inv / 2;
                    }
                if (normal) {
                    // u from (x0, x1); v = zy 2^-52 + 2^-53 in (0, 2], sin(pi v) = sin(2 pi (v / 2)).
                    for (std::size_t l = 0; l < W; ++l) v[0][l] = u[1][l];  // (zy 2^-53 + 2^-54) = v / 2
                    for (std::size_t l = 0; l < W; l += D)
                        detail::box_muller_turns<B>(&u[0][l], &v[0][l], &z[0][l], &z[1][l]);
                } else {
                    for (std::size_t l = 0; l < W; ++l) {
                        z[0][l] = u[0][l] == 1.0 ? 0.0 : u[0][l];
                        z[1][l] = u[1][l] == 1.0 ? 0.0 : u[1][l];
                    }
                }
            }
            for (std::uint64_t j = 0; j < live; ++j) {
                const std::uint64_t e = first + j * S + idx0;
                const std::uint64_t m = std::min<std::uint64_t>({W, threads - idx0, n - e});
                for (std::uint64_t l = 0; l < m; ++l) out[e + l] = static_cast<T>(z[j][l]);
            }
        }
    }
    offset_ += 4 * passes;
}

}  // namespace gmk
