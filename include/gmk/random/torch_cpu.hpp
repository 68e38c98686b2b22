// gmk: torch.randn and torch.rand on torch's CPU generator (torch.Generator(), device "cpu"),
// reproduced: the same seed gives the same numbers as torch 2.x.
//
// The engine is the 32-bit Mersenne twister (aten/src/ATen/core/MT19937RNGEngine.h), seeded
// with the low 32 bits of the seed exactly as std::mt19937(uint32_t) seeds it; torch draws one
// 32-bit word for random() and two words (first << 32 | second) for random64()
// (aten/src/ATen/CPUGeneratorImpl.cpp). Uniforms keep the low 24 (float) or 53 (double) bits of
// those draws and scale them to [0, 1) (aten/src/ATen/core/TransformationHelper.h,
// uniform_real).
//
// torch.randn has two algorithms, chosen by the element count
// (aten/src/ATen/native/cpu/DistributionTemplates.h, normal_kernel / normal_fill):
//   n >= 16  fill all n elements with uniforms first, then Box-Muller in blocks of 16: element j
//            and j + 8 of a block are r cos(theta) and r sin(theta), with r = sqrt(-2 log(1 - u_j))
//            and theta = 2 pi u_{j+8}. When 16 does not divide n, 16 fresh uniforms replace the
//            last 16 elements and are transformed as one more block.
//   n < 16   one value at a time from at::normal_distribution<double>
//            (aten/src/ATen/core/DistributionsHelper.h): two 53-bit uniforms u1, u2 give
//            r = sqrt(-2 log1p(-u2)), theta = 2 pi u1; r cos(theta) is returned and r sin(theta)
//            is kept in the generator for the next such value (a float tensor casts the double).
//
// The block transform of float tensors depends on the CPU torch runs on. Its AVX2 kernel takes
// the angle as float(2 pi) * u in float, the portable one rounds 2 pi u from double; the two
// angles differ by an ulp of a float at times, which is thousands of ulp of r cos(theta) where the
// cosine is near zero. So the kernel is a choice here (torch_cpu_kernel):
//   avx2  what torch runs at CPU capability AVX2 or AVX512 (every x86-64 CPU with AVX2): float
//         math in 8-lane Cephes polynomials (aten/src/ATen/native/cpu/avx_mathfun.h, log256_ps
//         and sincos256_ps). Reproduced here bit for bit on any backend with a fused multiply-add,
//         in vectors as wide as the backend has. Double tensors: vector log, sin and cos, within
//         3 ulp of torch (measured; the scalar backend's are the C library's, so it is exact).
//   libm  what torch runs for float at capability DEFAULT (no AVX2: ARM, old x86) and for double
//         everywhere: one element at a time through the C library's log, sin and cos in the
//         tensor's precision. Bitwise equal to torch built against the same C library (glibc:
//         checked in tests/random_torch_cpu.cpp); not vectorised.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/error.hpp"
#include "../simd/ops.hpp"
#include "fill.hpp"

namespace gmk {

/// Which of torch's CPU Box-Muller kernels torch.randn(n >= 16) reproduces (see the file comment).
enum class torch_cpu_kernel {
    avx2,  ///< torch at CPU capability AVX2 / AVX512: float bitwise; double within 3 ulp; vectorised
    libm,  ///< torch at capability DEFAULT (and torch's double kernel): the C library per element
};

namespace detail::torch_cpu {

inline constexpr std::size_t state_words = 624;  // MT19937 n
inline constexpr std::size_t shift_words = 397;  // MT19937 m
inline constexpr std::size_t block = 16;         // torch's Box-Muller block
inline constexpr double pi = 3.14159265358979323846;

/// One step of the MT19937 recurrence: the new word i from words i, i + 1 and i + m (old or new,
/// as the recurrence has them). Written once for std::uint32_t and for vectors of it.
template <class X>
GMK_INLINE X twist_word(const X& cur, const X& nxt, const X& far) noexcept {
    const X y = (cur & X(0x80000000u)) | (nxt & X(0x7fffffffu));
    // (y odd) ? matrix A : 0, without a branch: 0 - 1 is all ones.
    const X odd = X(0u) - (nxt & X(1u));
    return far ^ (y >> 1) ^ (odd & X(0x9908b0dfu));
}

/// MT19937's output tempering.
template <class X>
GMK_INLINE X temper(X y) noexcept {
    y = y ^ (y >> 11);
    y = y ^ ((y << 7) & X(0x9d2c5680u));
    y = y ^ ((y << 15) & X(0xefc60000u));
    return y ^ (y >> 18);
}

/// torch's float uniform from one word: the low 24 bits times 2^-24 (exact).
inline float uniform24(std::uint32_t w) noexcept {
    return static_cast<float>(w & 0xffffffu) * 0x1p-24f;
}
/// torch's double uniform from random64() = first << 32 | second: the low 53 bits times 2^-53.
inline double uniform53(std::uint64_t r) noexcept {
    return static_cast<double>(r & ((std::uint64_t(1) << 53) - 1)) * 0x1p-53;
}

/// Uniforms out[0..m) from the words w[0..m) (float) or w[0..2m) (double), bitwise equal to
/// uniform24 / uniform53 on every backend.
template <class B, class T>
void uniforms_from_words(const std::uint32_t* w, T* out, std::size_t m) noexcept {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    std::size_t k = 0;
    if constexpr (std::is_same_v<T, float>) {
        using U = simd::batch<std::uint32_t, B>;
        for (; k + L <= m; k += L) {
            const U x = simd::load<B>(w + k) & U(0xffffffu);
            simd::store(out + k, simd::convert<float>(simd::bitcast<std::int32_t>(x)) * V(0x1p-24f));
        }
        for (; k < m; ++k) out[k] = uniform24(w[k]);
    } else {
        using U = simd::batch<std::uint64_t, B>;
        // 2^52 + j for an integer 0 <= j < 2^52 has the bits of 2^52 or'ed with j: two exact
        // conversions of 32-bit halves, without a 64-bit integer conversion (none before AVX-512).
        const U magic(0x4330000000000000u);
        const V two52(0x1p52);
        for (; k + L <= m; k += L) {
            // Lane l = word 2l in the low half, word 2l + 1 in the high half: the words' own
            // memory on a little-endian machine (one vector load), assembled elsewhere.
            alignas(64) std::uint64_t pair[L];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            std::memcpy(pair, w + 2 * k, sizeof pair);
#else
            for (std::size_t l = 0; l < L; ++l)
                pair[l] = std::uint64_t(w[2 * (k + l)]) | std::uint64_t(w[2 * (k + l) + 1]) << 32;
#endif
            const U x = U::load_aligned(pair);
            const V hi = simd::bitcast<double>((x & U(0x1fffffu)) | magic) - two52;  // first word, 21 bits
            const V lo = simd::bitcast<double>((x >> 32) | magic) - two52;           // second word
            // (hi 2^32 + lo) 2^-53, a 53-bit integer times a power of two: every step is exact.
            simd::store(out + k, hi * V(0x1p-21) + lo * V(0x1p-53));
        }
        for (; k < m; ++k)
            out[k] = uniform53(std::uint64_t(w[2 * k]) << 32 | w[2 * k + 1]);
    }
}

// ---- torch's AVX2 float kernel ------------------------------------------------------------
// The operations of log256_ps and sincos256_ps (aten/src/ATen/native/cpu/avx_mathfun.h, after
// Pommier's sse_mathfun and the Cephes logf/sinf/cosf, zlib licence) in the order torch's
// build executes them. GCC contracts a product into an FMA where its only use is an add
// (-ffp-contract=fast is its default for C++), and torch's published binaries carry those
// FMAs: the fused steps below are the ones GCC forms from that source, checked bit for bit
// against torch 2.11. Steps whose product is exact (by 0.5, by an 8-bit constant times a small
// integer) give the same bits fused or not.

/// sin(x) and cos(x) for x in [0, 2 pi): Cephes' reduction by multiples of pi/4 (three-part
/// pi/4, the FMAs as torch's build has them) and its two polynomials on [-pi/4, pi/4].
template <class V>
GMK_INLINE void avx2_sincos(const V& x, V& s, V& c) noexcept {
    using I = decltype(simd::bitcast<std::int32_t>(x));
    // j = trunc(4 x / pi) rounded up to even: x - j pi/4 is in [-pi/4, pi/4].
    I j = simd::convert<std::int32_t>(x * V(static_cast<float>(1.27323954473516)));
    j = (j + I(1)) & I(~1);
    const V q = simd::convert<float>(j);  // 0, 2, 4, 6 or 8 here
    V r = simd::fma(q, V(-0.78515625f), x);
    r = simd::fma(q, V(static_cast<float>(-2.4187564849853515625e-4)), r);
    r = simd::fma(q, V(static_cast<float>(-3.77489497744594108e-8)), r);
    const V z = r * r;
    V cp(static_cast<float>(2.443315711809948E-005));
    cp = simd::fma(cp, z, V(static_cast<float>(-1.388731625493765E-003)));
    cp = simd::fma(cp, z, V(static_cast<float>(4.166664568298827E-002)));
    cp = cp * z;
    cp = simd::fma(z, cp, simd::neg(z * V(0.5f))) + V(1.0f);  // cos r
    V sp(static_cast<float>(-1.9515295891E-4));
    sp = simd::fma(sp, z, V(static_cast<float>(8.3321608736E-3)));
    sp = simd::fma(sp, z, V(static_cast<float>(-1.6666654611E-1)));
    sp = sp * z;
    sp = simd::fma(sp, r, r);  // sin r
    // j = 0, 4, 8: sin x = +-sin r; j = 2, 6: sin x = +-cos r. Signs: sin negative for j = 4, 6,
    // cos negative for j = 2, 4 (sincos256_ps's bit tricks on j, spelled out). The + 0 is
    // sincos256_ps's blend by masked adds, which turns a -0 into +0.
    const auto sin_poly = (q == V(0.0f)) | (q == V(4.0f)) | (q == V(8.0f));
    const V s0 = simd::select(sin_poly, sp, cp) + V(0.0f);
    const V c0 = simd::select(sin_poly, cp, sp) + V(0.0f);
    s = simd::select((q == V(4.0f)) | (q == V(6.0f)), simd::neg(s0), s0);
    c = simd::select((q == V(2.0f)) | (q == V(4.0f)), simd::neg(c0), c0);
}

/// torch's AVX2 normal_fill_16 on lanes: u the first 8 uniforms of a block, v the last 8.
struct avx2_float_kernel {
    template <class V>
    GMK_INLINE void operator()(const V& u, const V& v, V& z_cos, V& z_sin) const noexcept {
        const V radius = simd::sqrt(V(-2.0f) * random::detail::cephes_log_unit(V(1.0f) - u));
        V s, c;
        // 2 pi rounded to float, times v in float: the AVX2 kernel's angle (the DEFAULT kernel
        // rounds 2 pi v from double instead, a different float near the zeros of sin and cos).
        avx2_sincos(V(static_cast<float>(2.0 * pi)) * v, s, c);
        // torch stores fma(n, std, mean) = n + 0 for the standard normal.
        z_cos = radius * c + V(0.0f);
        z_sin = radius * s + V(0.0f);
    }
};

/// The double block transform in vector math (torch: NormalFill16<double> with libm).
struct vector_double_kernel {
    template <class V>
    GMK_INLINE void operator()(const V& u, const V& v, V& z_cos, V& z_sin) const noexcept {
        const V radius = simd::sqrt(V(-2.0) * simd::log(V(1.0) - u));
        const V theta = V(2.0 * pi) * v;
        z_cos = radius * simd::cos(theta) + V(0.0);
        z_sin = radius * simd::sin(theta) + V(0.0);
    }
};

/// torch's portable normal_fill_16 (capability DEFAULT; every capability for double), word for
/// word: the C library in the tensor's precision, the angle rounded from double.
template <class T>
void libm_blocks(T* p, std::size_t blocks) noexcept {
    for (std::size_t b = 0; b < blocks; ++b, p += block) {
        for (std::size_t j = 0; j < 8; ++j) {
            const T u1 = T(1) - p[j];
            const T u2 = p[j + 8];
            const T radius = std::sqrt(T(-2) * std::log(u1));
            const T theta = static_cast<T>(2.0 * pi * static_cast<double>(u2));
            p[j] = radius * std::cos(theta) + T(0);  // torch: std::fma(., std = 1, mean = 0)
            p[j + 8] = radius * std::sin(theta) + T(0);
        }
    }
}

/// Applies a lane-wise block kernel to `blocks` blocks of 16 at p, in place: lanes j of the
/// first and second halves of a block pair up. Vectors of up to 8 lanes work inside a block;
/// wider ones take 8 lanes from each of several blocks through a small stack buffer.
template <class B, class T, class Kernel>
void transform_blocks(T* p, std::size_t blocks, const Kernel& kernel) noexcept {
    using V = simd::batch<T, B>;
    constexpr std::size_t L = V::size;
    if constexpr (8 % L == 0) {
        for (std::size_t b = 0; b < blocks; ++b, p += block) {
            for (std::size_t k = 0; k < 8; k += L) {
                V c, s;
                kernel(simd::load<B>(p + k), simd::load<B>(p + 8 + k), c, s);
                simd::store(p + k, c);
                simd::store(p + 8 + k, s);
            }
        }
    } else {
        static_assert(L % 8 == 0, "gmk::torch_cpu_generator: vector lanes must divide or be a multiple of 8");
        constexpr std::size_t per_vector = L / 8;       // blocks whose halves fill one vector
        constexpr std::size_t chunk = 4 * per_vector;   // blocks per pass through the buffer
        alignas(64) T first[8 * chunk], second[8 * chunk];
        for (std::size_t b0 = 0; b0 < blocks; b0 += chunk) {
            const std::size_t nb = std::min(chunk, blocks - b0);
            const std::size_t padded = (nb + per_vector - 1) / per_vector * per_vector;
            T* q = p + block * b0;
            for (std::size_t b = 0; b < nb; ++b) {
                std::copy_n(q + block * b, 8, first + 8 * b);
                std::copy_n(q + block * b + 8, 8, second + 8 * b);
            }
            std::fill(first + 8 * nb, first + 8 * padded, T(0));  // lanes computed and dropped
            std::fill(second + 8 * nb, second + 8 * padded, T(0));
            for (std::size_t k = 0; k < 8 * padded; k += L) {
                V c, s;
                kernel(simd::load_aligned<B>(first + k), simd::load_aligned<B>(second + k), c, s);
                simd::store_aligned(first + k, c);
                simd::store_aligned(second + k, s);
            }
            for (std::size_t b = 0; b < nb; ++b) {
                std::copy_n(first + 8 * b, 8, q + block * b);
                std::copy_n(second + 8 * b, 8, q + block * b + 8);
            }
        }
    }
}

}  // namespace detail::torch_cpu

/// torch's CPU generator (torch.Generator(device="cpu")) with torch.randn and torch.rand on
/// contiguous float and double tensors: the same seed gives the same numbers as torch 2.x, and
/// consecutive calls continue one stream as they do in torch. A copy continues independently
/// from the same point. Not thread-safe (torch locks a mutex; give each thread its own).
class torch_cpu_generator {
public:
    /// torch's default seed (c10::default_rng_seed_val).
    static constexpr std::uint64_t default_seed = 67280421310721ULL;

    /// A generator seeded as torch.Generator().manual_seed(seed); `kernel` picks the block
    /// transform of randn for n >= 16 (avx2: what torch does on x86-64 CPUs with AVX2).
    explicit torch_cpu_generator(std::uint64_t seed = default_seed,
                                 torch_cpu_kernel kernel = torch_cpu_kernel::avx2) noexcept
        : kernel_(kernel) {
        manual_seed(seed);
    }

    /// Restarts the stream as torch's manual_seed: MT19937 takes the low 32 bits of the seed
    /// (seeds 5 and 2^32 + 5 give one stream), and the cached normal of randn(n < 16) is dropped.
    void manual_seed(std::uint64_t seed) noexcept {
        seed_ = seed;
        // MT19937's initialisation (Matsumoto and Nishimura 1998, init_genrand), as torch's
        // init_with_uint32 and std::mt19937 do it.
        state_[0] = static_cast<std::uint32_t>(seed);
        for (std::size_t j = 1; j < state_words; ++j) {
            const std::uint32_t p = state_[j - 1];
            state_[j] = 1812433253u * (p ^ (p >> 30)) + static_cast<std::uint32_t>(j);
        }
        next_ = state_words;  // the first draw twists, as torch's left_ = 1 does
        has_cached_normal_ = false;
        cached_normal_ = 0.0;
    }

    /// The seed last given, all 64 bits of it (as torch's initial_seed()).
    std::uint64_t initial_seed() const noexcept { return seed_; }

    /// The Box-Muller kernel randn uses for n >= 16.
    torch_cpu_kernel kernel() const noexcept { return kernel_; }

    /// One 32-bit output of the engine (torch's CPUGeneratorImpl::random()).
    std::uint32_t random() noexcept { return next_word<simd::scalar>(); }

    /// Two outputs as first << 32 | second (torch's CPUGeneratorImpl::random64()).
    std::uint64_t random64() noexcept { return next_word64<simd::scalar>(); }

    /// torch.randn(n, generator=g, dtype=T) into out[0..n) (T float or double), computed on
    /// backend B. n < 16 takes torch's one-at-a-time path and its cached normal, bit for bit.
    template <class B = simd::native, class T>
    void randn(T* out, std::size_t n) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "gmk::torch_cpu_generator::randn: T must be float or double");
        check_pointer(out, n, "torch_cpu_generator::randn", "out");
        using detail::torch_cpu::block;
        if (n < block) {
            for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(next_normal<B>());
            return;
        }
        fill_uniform<B>(out, n);
        normal_blocks<B>(out, n / block);
        if (n % block != 0) {
            // torch draws 16 fresh uniforms over the last 16 elements and transforms them.
            T tail[block];
            fill_uniform<B>(tail, block);
            normal_blocks<B>(tail, 1);
            std::copy_n(tail, block, out + (n - block));
        }
    }

    /// torch.rand(n, generator=g, dtype=T) into out[0..n) (T float or double): uniforms on
    /// [0, 1) with 24 or 53 random bits, bitwise equal to torch on every backend.
    template <class B = simd::native, class T>
    void rand(T* out, std::size_t n) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "gmk::torch_cpu_generator::rand: T must be float or double");
        check_pointer(out, n, "torch_cpu_generator::rand", "out");
        fill_uniform<B>(out, n);
    }

private:
    static constexpr std::size_t state_words = detail::torch_cpu::state_words;

    /// Advances the state by one full MT19937 recurrence (all 624 words) and tempers the new
    /// words into words_: vectors of the recurrence need only that the words they read are
    /// at least one vector apart from those they write (397 and 227 are).
    template <class B>
    void twist() noexcept {
        using detail::torch_cpu::shift_words;
        using detail::torch_cpu::temper;
        using detail::torch_cpu::twist_word;
        using U = simd::batch<std::uint32_t, B>;
        constexpr std::size_t N = state_words, M = shift_words, L = U::size;
        std::uint32_t* mt = state_.data();
        constexpr std::size_t end_old = (N - M) / L * L;          // vectors of words 0..226
        constexpr std::size_t end_new = N - M + (M - 1) / L * L;  // vectors of words 227..622
        // Words 0..226 read the old words i + 397.
        for (std::size_t i = 0; i < end_old; i += L)
            simd::store(mt + i, twist_word(simd::load<B>(mt + i), simd::load<B>(mt + i + 1), simd::load<B>(mt + i + M)));
        for (std::size_t i = end_old; i < N - M; ++i) mt[i] = twist_word(mt[i], mt[i + 1], mt[i + M]);
        // Words 227..622 read the new words i - 227.
        for (std::size_t i = N - M; i < end_new; i += L)
            simd::store(mt + i,
                        twist_word(simd::load<B>(mt + i), simd::load<B>(mt + i + 1), simd::load<B>(mt + i - (N - M))));
        for (std::size_t i = end_new; i < N - 1; ++i) mt[i] = twist_word(mt[i], mt[i + 1], mt[i - (N - M)]);
        mt[N - 1] = twist_word(mt[N - 1], mt[0], mt[M - 1]);
        for (std::size_t k = 0; k + L <= N; k += L) simd::store(words_.data() + k, temper(simd::load<B>(mt + k)));
        if constexpr (N % L != 0)
            for (std::size_t k = N - N % L; k < N; ++k) words_[k] = temper(mt[k]);
        next_ = 0;
    }

    template <class B>
    std::uint32_t next_word() noexcept {
        if (next_ == state_words) twist<B>();
        return words_[next_++];
    }

    template <class B>
    std::uint64_t next_word64() noexcept {
        const std::uint64_t first = next_word<B>();
        return first << 32 | next_word<B>();
    }

    /// at::normal_distribution<double>(0, 1) on this generator, with its cached second value.
    template <class B>
    double next_normal() noexcept {
        using detail::torch_cpu::uniform53;
        if (has_cached_normal_) {
            has_cached_normal_ = false;
            return cached_normal_ + 0.0;  // torch: cached * std + mean
        }
        const double u1 = uniform53(next_word64<B>());
        const double u2 = uniform53(next_word64<B>());
        const double r = std::sqrt(-2.0 * std::log1p(-u2));
        const double theta = 2.0 * detail::torch_cpu::pi * u1;
        cached_normal_ = r * std::sin(theta);
        has_cached_normal_ = true;
        return r * std::cos(theta) + 0.0;
    }

    /// n uniforms as torch's uniform_real_distribution draws them one by one: a float takes one
    /// word, a double two (a pair may straddle two twists).
    template <class B, class T>
    void fill_uniform(T* out, std::size_t n) noexcept {
        constexpr std::size_t per_value = sizeof(T) / sizeof(std::uint32_t);
        std::size_t i = 0;
        while (i < n) {
            if (next_ == state_words) twist<B>();
            const std::size_t left = state_words - next_;
            if constexpr (per_value == 2) {
                if (left == 1) {  // this pair straddles a twist
                    out[i++] = detail::torch_cpu::uniform53(next_word64<B>());
                    continue;
                }
            }
            const std::size_t m = std::min(n - i, left / per_value);
            detail::torch_cpu::uniforms_from_words<B>(words_.data() + next_, out + i, m);
            next_ += m * per_value;
            i += m;
        }
    }

    /// Box-Muller on `blocks` blocks of 16 uniforms at p, with the chosen kernel.
    template <class B, class T>
    void normal_blocks(T* p, std::size_t blocks) const noexcept {
        namespace tc = detail::torch_cpu;
        if (kernel_ == torch_cpu_kernel::libm) tc::libm_blocks(p, blocks);
        else if constexpr (std::is_same_v<T, float>) tc::transform_blocks<B>(p, blocks, tc::avx2_float_kernel{});
        else tc::transform_blocks<B>(p, blocks, tc::vector_double_kernel{});
    }

    std::array<std::uint32_t, state_words> state_{};  // MT19937 state after the last twist
    std::array<std::uint32_t, state_words> words_{};  // its tempered outputs
    std::size_t next_ = state_words;                   // next unused output of words_
    std::uint64_t seed_ = default_seed;
    double cached_normal_ = 0.0;
    bool has_cached_normal_ = false;
    torch_cpu_kernel kernel_ = torch_cpu_kernel::avx2;
};

}  // namespace gmk
