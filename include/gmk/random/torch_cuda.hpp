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
// Numerics: the uniforms are computed in float (or double) exactly as curand does, the float
// radius in float as curand does (sqrtf of -2 logf), sin and cos of the float angle in double
// and the product rounded once. The GPU's float path uses the fast __sincosf,
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

/// float(x) for every 32-bit x, rounded once as a conversion rounds it: the two 16-bit halves
/// convert exactly and the product hi * 2^16 is exact, so the sum is the only rounding.
template <class B>
GMK_INLINE simd::batch<float, B> uint_to_float(const simd::batch<std::uint32_t, B>& x) noexcept {
    using F = simd::batch<float, B>;
    using U = simd::batch<std::uint32_t, B>;
    const F hi = simd::convert<float>(simd::bitcast<std::int32_t>(x >> 16));
    const F lo = simd::convert<float>(simd::bitcast<std::int32_t>(x & U(0xffffu)));
    return simd::fma(hi, F(65536.0f), lo);
}

/// The four words of the blocks (counter, idx0 + k W + lane) of K vectors of W threads, computed
/// together so that their multiply chains overlap.
template <class B, std::size_t K>
GMK_INLINE void torch_cuda_blocks(random::philox_key key, std::uint64_t counter, std::uint64_t idx0,
                                  simd::batch<std::uint32_t, B> (&w)[K][4]) noexcept {
    using U = simd::batch<std::uint32_t, B>;
    for (std::size_t k = 0; k < K; ++k) {
        const std::uint64_t i = idx0 + k * U::size;
        w[k][0] = U(static_cast<std::uint32_t>(counter));
        w[k][1] = U(static_cast<std::uint32_t>(counter >> 32));
        w[k][2] = simd::iota<std::uint32_t, B>(static_cast<std::uint32_t>(i));
        w[k][3] = U(static_cast<std::uint32_t>(i >> 32));
    }
    random::philox4x32_lanes(w, key);
}

/// r * sin(theta), r * cos(theta) in double from double u (radius) and theta in turns.
template <class B>
GMK_INLINE void box_muller_turns(const double* u, const double* turns, double* z_sin, double* z_cos) noexcept {
    using V = simd::batch<double, B>;
    const V r = simd::sqrt(V(-2.0) * random::detail::log_unit<B>(simd::load<B>(u)));
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
    using UB = simd::batch<std::uint32_t, B>;
    using F = simd::batch<float, B>;
    constexpr std::size_t W = UB::size;
    constexpr std::size_t D = simd::lanes<double, B>;
    constexpr std::size_t K = 4;                                    // thread vectors per Philox call
    constexpr std::uint64_t U = std::is_same_v<T, float> ? 4 : 2;  // outputs per block
    const random::philox_key key = random::philox_key_from_seed(seed_);
    const std::uint64_t S = grid_.stride(n);
    const std::uint64_t passes = (n + U * S - 1) / (U * S);
    const std::uint64_t base = offset_ / 4;

    // Per vector of W threads: its blocks, the U outputs of each (in double), then the lanes whose
    // element exists stored to element idx + S (U r + j).
    alignas(64) std::uint32_t words[4][W];
    alignas(64) double u[2][W], v[2][W], z[4][W];
    for (std::uint64_t r = 0; r < passes; ++r) {
        const std::uint64_t first = U * S * r;  // element of (idx 0, j 0) in this pass
        const std::uint64_t threads = std::min<std::uint64_t>(S, n - first);  // idx < this may write
        for (std::uint64_t idx_k = 0; idx_k < threads; idx_k += K * W) {
            UB w[K][4];
            detail::torch_cuda_blocks<B>(key, base + r, idx_k, w);
            for (std::size_t k = 0; k < K && idx_k + k * W < threads; ++k) {
                const std::uint64_t idx0 = idx_k + k * W;
                // Outputs j whose element first + j S + idx0 exists for at least the first lane.
                const std::uint64_t live = std::min<std::uint64_t>(U, (n - first - idx0 + S - 1) / S);
                if constexpr (std::is_same_v<T, float>) {
                    if (normal) {
                        for (std::size_t p = 0; p < (live + 1) / 2; ++p) {
                            // u in (0, 1], the angle in (0, 2 pi], in float as curand computes them.
                            const F x = detail::uint_to_float<B>(w[k][2 * p]);
                            const F y = detail::uint_to_float<B>(w[k][2 * p + 1]);
                            alignas(64) float uf[W], af[W];
                            // The radius in float, as curand's sqrtf(-2 logf(u)) (Cephes' logf here,
                            // within an ulp as CUDA's logf is); the angle, whose error the
                            // result feels most, goes through double below.
                            const F uu = x * F(detail::curand_2pow32_inv) + F(detail::curand_2pow32_inv / 2);
                            simd::store(uf, simd::sqrt(F(-2.0f) * random::detail::cephes_log_unit(uu)));
                            simd::store(af, y * F(detail::curand_2pow32_inv_2pi) + F(detail::curand_2pow32_inv_2pi / 2));
                            for (std::size_t l = 0; l < W; ++l) {
                                u[p][l] = uf[l];  // the radius
                                // The angle in turns, rounded once (relative 1e-16, far below
                                // float's resolution); sin and cos of it in double.
                                v[p][l] = double(af[l]) * 0.15915494309189535;
                            }
                            for (std::size_t l = 0; l < W; l += D) {
                                using V = simd::batch<double, B>;
                                const V rr = simd::load<B>(&u[p][l]);
                                V s2, c2;
                                random::detail::sincos_turns<double, B>(simd::load<B>(&v[p][l]), s2, c2);
                                simd::store(&z[2 * p][l], rr * s2);
                                simd::store(&z[2 * p + 1][l], rr * c2);
                            }
                        }
                    } else {
                        for (std::size_t q = 0; q < live; ++q) {
                            // torch maps a uniform of exactly 1 (from float rounding) to 0.
                            const F x = detail::uint_to_float<B>(w[k][q]) * F(detail::curand_2pow32_inv) +
                                        F(detail::curand_2pow32_inv / 2);
                            alignas(64) float uf[W];
                            simd::store(uf, simd::select(x == F(1.0f), F(0.0f), x));
                            for (std::size_t l = 0; l < W; ++l) z[q][l] = uf[l];
                        }
                    }
                } else {
                    for (std::size_t q = 0; q < 4; ++q) simd::store(words[q], w[k][q]);
                    for (std::size_t p = 0; p < 2; ++p)
                        for (std::size_t l = 0; l < W; ++l) {
                            const std::uint64_t zx = std::uint64_t(words[2 * p][l]) ^ (std::uint64_t(words[2 * p + 1][l]) << 21);
                            u[p][l] = double(zx) * detail::curand_2pow53_inv + detail::curand_2pow53_inv / 2;
                        }
                    if (normal) {
                        // u from (x0, x1); v = zy 2^-52 + 2^-53 in (0, 2], and sin(pi v) =
                        // sin(2 pi (v / 2)) with v / 2 = zy 2^-53 + 2^-54 = u[1] exactly.
                        for (std::size_t l = 0; l < W; l += D)
                            detail::box_muller_turns<B>(&u[0][l], &u[1][l], &z[0][l], &z[1][l]);
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
                    if (m == W) {  // the common case, a fixed count the compiler vectorises
                        for (std::size_t l = 0; l < W; ++l) out[e + l] = static_cast<T>(z[j][l]);
                    } else {
                        for (std::uint64_t l = 0; l < m; ++l) out[e + l] = static_cast<T>(z[j][l]);
                    }
                }
            }
        }
    }
    offset_ += 4 * passes;
}

}  // namespace gmk
