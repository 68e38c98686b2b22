// gmk: SIMD backends. A backend is a type passed as the `Backend` template argument of
// every kernel:
//   gmk::simd::scalar        one lane, plain C++; the reference every SIMD result is tested against
//   xsimd::sse2, xsimd::avx2, xsimd::avx512bw, xsimd::neon64, ...   any xsimd architecture tag
//   gmk::simd::native        the best architecture the compiler enables (xsimd::default_arch),
//                            or scalar where xsimd has none
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include "scalar.hpp"
#include "xsimd.hpp"

namespace gmk::simd {

/// The one-lane backend written in plain C++.
struct scalar {
    static constexpr const char* name() noexcept { return "scalar"; }
    static constexpr std::size_t alignment() noexcept { return alignof(long double); }
};

namespace detail {
template <class A, class = void>
struct is_xsimd_arch : std::false_type {};
// An xsimd architecture tag has static supported() and alignment(); the base tag (generic in
// xsimd 8-12, common from 13 on) has alignment 0. Not version(): xsimd 13 removed it.
template <class A>
struct is_xsimd_arch<A, std::void_t<decltype(A::supported()), decltype(A::alignment())>>
    : std::bool_constant<A::supported() && (A::alignment() > 0)> {};
}  // namespace detail

/// True for xsimd architecture tags this translation unit is compiled for.
template <class B>
inline constexpr bool is_xsimd_backend = detail::is_xsimd_arch<B>::value;

/// True for every type usable as a Backend: scalar and the enabled xsimd architectures.
template <class B>
inline constexpr bool is_backend = std::is_same_v<B, scalar> || is_xsimd_backend<B>;

/// The best backend the compiler enables for this translation unit.
using native = std::conditional_t<is_xsimd_backend<xsimd::default_arch>, xsimd::default_arch, scalar>;

namespace detail {
template <class T, class B, bool = is_xsimd_backend<B>>
struct batch_of {
    static_assert(std::is_same_v<B, scalar>,
                  "gmk: Backend must be gmk::simd::scalar or an xsimd architecture the compiler "
                  "enables for this translation unit (check -march / -m flags)");
    using type = scalar_batch<T>;
};
template <class T, class B>
struct batch_of<T, B, true> {
    using type = xsimd::batch<T, B>;
};
}  // namespace detail

/// The vector of T on backend B: xsimd::batch<T, B>, or scalar_batch<T> on the scalar backend.
template <class T, class B = native>
using batch = typename detail::batch_of<T, B>::type;

/// The mask (comparison result) of batch<T, B>.
template <class T, class B = native>
using mask = typename batch<T, B>::batch_bool_type;

/// Number of lanes of batch<T, B>.
template <class T, class B = native>
inline constexpr std::size_t lanes = batch<T, B>::size;

/// The backend's name as xsimd spells it ("avx512bw", "fma3+avx2", ...), or "scalar".
template <class B>
constexpr const char* backend_name() noexcept {
    return B::name();
}

namespace detail {
#if defined(__x86_64__) || defined(__i386__)
// The CPU feature each x86 architecture tag needs, as __builtin_cpu_supports spells it.
// Using the compiler's own CPU detection keeps this independent of the xsimd version.
template <class A> struct x86_feature { static constexpr const char* name = nullptr; };
template <> struct x86_feature<xsimd::sse2> { static constexpr const char* name = "sse2"; };
template <> struct x86_feature<xsimd::sse3> { static constexpr const char* name = "sse3"; };
template <> struct x86_feature<xsimd::ssse3> { static constexpr const char* name = "ssse3"; };
template <> struct x86_feature<xsimd::sse4_1> { static constexpr const char* name = "sse4.1"; };
template <> struct x86_feature<xsimd::sse4_2> { static constexpr const char* name = "sse4.2"; };
template <> struct x86_feature<xsimd::avx> { static constexpr const char* name = "avx"; };
template <> struct x86_feature<xsimd::avx2> { static constexpr const char* name = "avx2"; };
template <> struct x86_feature<xsimd::fma4> { static constexpr const char* name = "fma4"; };
template <> struct x86_feature<xsimd::avx512f> { static constexpr const char* name = "avx512f"; };
template <> struct x86_feature<xsimd::avx512cd> { static constexpr const char* name = "avx512cd"; };
template <> struct x86_feature<xsimd::avx512dq> { static constexpr const char* name = "avx512dq"; };
template <> struct x86_feature<xsimd::avx512bw> { static constexpr const char* name = "avx512bw"; };

inline bool cpu_has(const char* feature) noexcept {
    // __builtin_cpu_supports needs a string literal, so spell out each feature once.
    const std::string_view f(feature);
    if (f == "sse2") return __builtin_cpu_supports("sse2");
    if (f == "sse3") return __builtin_cpu_supports("sse3");
    if (f == "ssse3") return __builtin_cpu_supports("ssse3");
    if (f == "sse4.1") return __builtin_cpu_supports("sse4.1");
    if (f == "sse4.2") return __builtin_cpu_supports("sse4.2");
    if (f == "avx") return __builtin_cpu_supports("avx");
    if (f == "avx2") return __builtin_cpu_supports("avx2");
    if (f == "fma") return __builtin_cpu_supports("fma");
    if (f == "fma4") return __builtin_cpu_supports("fma4");
    if (f == "avx512f") return __builtin_cpu_supports("avx512f");
    if (f == "avx512cd") return __builtin_cpu_supports("avx512cd");
    if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
    if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
    return false;
}

// The AVX-512 tags build on each other in xsimd (avx512bw implies dq, cd and f).
template <class A> struct x86_requires { using type = void; };
template <> struct x86_requires<xsimd::avx512cd> { using type = xsimd::avx512f; };
template <> struct x86_requires<xsimd::avx512dq> { using type = xsimd::avx512cd; };
template <> struct x86_requires<xsimd::avx512bw> { using type = xsimd::avx512dq; };

template <class A>
struct fma3_base {
    static constexpr bool is_fma3 = false;
};
template <class A>
struct fma3_base<xsimd::fma3<A>> {
    static constexpr bool is_fma3 = true;
    using base = A;
};

// True for the x86 tags this file knows the CPU features of.
template <class A>
constexpr bool x86_known() {
    if constexpr (fma3_base<A>::is_fma3) return x86_known<typename fma3_base<A>::base>();
    else return x86_feature<A>::name != nullptr;
}

// Whether the CPU has every feature tag A needs (A must be x86_known).
template <class A>
bool x86_runs() noexcept {
    if constexpr (fma3_base<A>::is_fma3) {
        return x86_runs<typename fma3_base<A>::base>() && cpu_has("fma");
    } else {
        using Req = typename x86_requires<A>::type;
        if constexpr (std::is_void_v<Req>) return cpu_has(x86_feature<A>::name);
        else return cpu_has(x86_feature<A>::name) && x86_runs<Req>();
    }
}
#endif
}  // namespace detail

/// True when the running CPU can execute code for backend B (always true for scalar).
template <class B>
bool runs_here() noexcept {
    if constexpr (std::is_same_v<B, scalar>) {
        return true;
    } else {
        static_assert(is_xsimd_backend<B>, "gmk: not a backend enabled in this translation unit");
#if defined(__x86_64__) || defined(__i386__)
        if constexpr (detail::x86_known<B>()) {
            __builtin_cpu_init();
            return detail::x86_runs<B>();
        }
#endif
#if XSIMD_VERSION_MAJOR >= 11
        return xsimd::available_architectures().has(B{});
#else
        return B::version() <= xsimd::available_architectures().best;
#endif
    }
}

/// A compile-time list of backends.
template <class... Bs>
struct backend_list {
    static constexpr std::size_t size = sizeof...(Bs);
    /// Calls f(B{}) for each backend B of the list, in order.
    template <class F>
    static void for_each(F&& f) {
        (f(Bs{}), ...);
    }
};

namespace detail {
template <class L>
struct with_scalar;
template <class... As>
struct with_scalar<xsimd::arch_list<As...>> {
    using type = backend_list<scalar, As...>;
};
}  // namespace detail

/// Every backend this translation unit is compiled for: scalar first, then each enabled xsimd
/// architecture, widest first.
using compiled_backends = typename detail::with_scalar<xsimd::supported_architectures>::type;

/// Calls f(B{}) for each compiled backend B that the running CPU supports.
template <class F>
void for_each_backend(F&& f) {
    compiled_backends::for_each([&](auto b) {
        if (runs_here<decltype(b)>()) f(b);
    });
}

}  // namespace gmk::simd
