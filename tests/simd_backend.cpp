// Tests of gmk/simd/backend.hpp: the backend tags (scalar, native, every xsimd architecture the
// build enables), the compile-time list of compiled backends and the run-time dispatch over the
// ones this CPU runs.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;

namespace {
struct not_a_backend {};
struct looks_like_an_arch_but_is_off {  // an xsimd-shaped tag whose architecture is disabled
    static constexpr bool supported() noexcept { return false; }
    static constexpr unsigned version() noexcept { return 1; }
    static constexpr const char* name() noexcept { return "off"; }
};

template <class B>
bool is_native(B) {
    return std::is_same_v<B, simd::native>;
}

std::vector<std::string> compiled_names() {
    std::vector<std::string> names;
    simd::compiled_backends::for_each([&](auto b) { names.push_back(simd::backend_name<decltype(b)>()); });
    return names;
}
}  // namespace

TEST_CASE("simd::scalar is a one-lane backend of plain values", "[simd][backend]") {
    STATIC_REQUIRE(simd::is_backend<simd::scalar>);
    STATIC_REQUIRE_FALSE(simd::is_xsimd_backend<simd::scalar>);
    STATIC_REQUIRE(std::is_same_v<simd::batch<float, simd::scalar>, simd::scalar_batch<float>>);
    STATIC_REQUIRE(std::is_same_v<simd::batch<std::int64_t, simd::scalar>, simd::scalar_batch<std::int64_t>>);
    STATIC_REQUIRE(std::is_same_v<simd::mask<double, simd::scalar>, simd::scalar_mask<double>>);
    STATIC_REQUIRE(simd::lanes<float, simd::scalar> == 1);
    STATIC_REQUIRE(simd::lanes<double, simd::scalar> == 1);
    STATIC_REQUIRE(simd::lanes<std::int32_t, simd::scalar> == 1);
    STATIC_REQUIRE(simd::lanes<std::int64_t, simd::scalar> == 1);
    REQUIRE(std::string(simd::backend_name<simd::scalar>()) == "scalar");
    REQUIRE(simd::runs_here<simd::scalar>());
    // Aligned loads on the scalar backend must accept any object of the element types.
    REQUIRE(simd::scalar::alignment() >= alignof(double));
    REQUIRE(simd::scalar::alignment() >= alignof(std::int64_t));
}

TEST_CASE("simd::is_backend accepts scalar and enabled xsimd architectures only", "[simd][backend]") {
    STATIC_REQUIRE(simd::is_backend<simd::native>);
    STATIC_REQUIRE_FALSE(simd::is_backend<int>);
    STATIC_REQUIRE_FALSE(simd::is_backend<void>);
    STATIC_REQUIRE_FALSE(simd::is_backend<float>);
    STATIC_REQUIRE_FALSE(simd::is_backend<not_a_backend>);
    STATIC_REQUIRE_FALSE(simd::is_backend<looks_like_an_arch_but_is_off>);
    STATIC_REQUIRE_FALSE(simd::is_backend<simd::scalar_batch<float>>);
#if defined(__x86_64__) || defined(__i386__)
    STATIC_REQUIRE_FALSE(simd::is_backend<xsimd::neon64>);  // declared by xsimd, not enabled on x86
#endif
#if defined(__SSE2__)
    STATIC_REQUIRE(simd::is_backend<xsimd::sse2>);
#endif
#if defined(__AVX2__)
    STATIC_REQUIRE(simd::is_backend<xsimd::avx2>);
#else
    STATIC_REQUIRE_FALSE(simd::is_backend<xsimd::avx2>);
#endif
#if defined(__AVX512F__)
    STATIC_REQUIRE(simd::is_backend<xsimd::avx512f>);
#else
    STATIC_REQUIRE_FALSE(simd::is_backend<xsimd::avx512f>);
#endif
#if defined(__AVX512BW__)
    STATIC_REQUIRE(simd::is_backend<xsimd::avx512bw>);
#endif
}

TEST_CASE("simd::compiled_backends lists scalar first, then every enabled architecture", "[simd][backend]") {
    STATIC_REQUIRE(simd::compiled_backends::size >= 1);

    std::vector<bool> is_scalar;
    int native_count = 0;
    simd::compiled_backends::for_each([&](auto b) {
        using B = decltype(b);
        STATIC_REQUIRE(simd::is_backend<B>);
        is_scalar.push_back(std::is_same_v<B, simd::scalar>);
        native_count += is_native(b) ? 1 : 0;
    });
    REQUIRE(is_scalar.size() == simd::compiled_backends::size);
    REQUIRE(is_scalar.front());
    REQUIRE(std::count(is_scalar.begin(), is_scalar.end(), true) == 1);
    REQUIRE(native_count == 1);

    // The names are distinct, so the list holds no backend twice.
    const std::vector<std::string> names = compiled_names();
    REQUIRE(std::set<std::string>(names.begin(), names.end()).size() == names.size());
    REQUIRE(names.front() == "scalar");

    // Widest first: after scalar, the vector width never grows along the list.
    std::vector<std::size_t> widths;
    simd::compiled_backends::for_each([&](auto b) {
        using B = decltype(b);
        if constexpr (!std::is_same_v<B, simd::scalar>) widths.push_back(simd::lanes<float, B>);
    });
    for (std::size_t i = 1; i < widths.size(); ++i) REQUIRE(widths[i] <= widths[i - 1]);

#if defined(__AVX512BW__)
    REQUIRE(std::find(names.begin(), names.end(), "avx512bw") != names.end());
#endif
#if defined(__AVX2__)
    REQUIRE(std::find(names.begin(), names.end(), "avx2") != names.end());
#endif
#if defined(__SSE2__)
    REQUIRE(std::find(names.begin(), names.end(), "sse2") != names.end());
#endif
}

TEST_CASE("simd::for_each_backend visits scalar and the compiled backends this CPU runs", "[simd][backend]") {
    std::vector<std::string> expected;
    simd::compiled_backends::for_each([&](auto b) {
        using B = decltype(b);
        if (simd::runs_here<B>()) expected.push_back(simd::backend_name<B>());
    });
    std::vector<std::string> visited;
    bool all_run_here = true;
    simd::for_each_backend([&](auto b) {
        using B = decltype(b);
        visited.push_back(simd::backend_name<B>());
        all_run_here = all_run_here && simd::runs_here<B>();
    });
    REQUIRE(all_run_here);
    REQUIRE(visited == expected);  // the same backends, in the same order
    REQUIRE(!visited.empty());
    REQUIRE(visited.front() == "scalar");
    // This test binary itself runs native code, so native runs here and is visited.
    REQUIRE(simd::runs_here<simd::native>());
    REQUIRE(std::find(visited.begin(), visited.end(), simd::backend_name<simd::native>()) != visited.end());
}

TEST_CASE("simd::runs_here agrees with the CPU's features", "[simd][backend]") {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
#if defined(__SSE2__)
    REQUIRE(simd::runs_here<xsimd::sse2>() == bool(__builtin_cpu_supports("sse2")));
#endif
#if defined(__SSE4_2__)
    REQUIRE(simd::runs_here<xsimd::sse4_2>() == bool(__builtin_cpu_supports("sse4.2")));
#endif
#if defined(__AVX__)
    REQUIRE(simd::runs_here<xsimd::avx>() == bool(__builtin_cpu_supports("avx")));
#endif
#if defined(__AVX2__)
    REQUIRE(simd::runs_here<xsimd::avx2>() == bool(__builtin_cpu_supports("avx2")));
#endif
#if defined(__AVX2__) && defined(__FMA__)
    REQUIRE(simd::runs_here<xsimd::fma3<xsimd::avx2>>() ==
            (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")));
#endif
#if defined(__AVX512F__)
    REQUIRE(simd::runs_here<xsimd::avx512f>() == bool(__builtin_cpu_supports("avx512f")));
#endif
#if defined(__AVX512BW__)
    // xsimd's avx512bw tag builds on avx512dq, avx512cd and avx512f: it needs all four.
    REQUIRE(simd::runs_here<xsimd::avx512bw>() ==
            (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512f")));
#endif
#endif
    REQUIRE(simd::runs_here<simd::scalar>());
}

TEST_CASE("simd::lanes and backend_name of every compiled backend", "[simd][backend]") {
    simd::compiled_backends::for_each([](auto b) {
        using B = decltype(b);
        INFO(simd::backend_name<B>());
        REQUIRE(std::string(simd::backend_name<B>()).size() > 0);
        STATIC_REQUIRE(simd::lanes<float, B> == simd::batch<float, B>::size);
        STATIC_REQUIRE(simd::lanes<double, B> == simd::batch<double, B>::size);
        STATIC_REQUIRE(simd::mask<float, B>::size == simd::lanes<float, B>);
        STATIC_REQUIRE(simd::lanes<std::int32_t, B> == simd::lanes<float, B>);
        STATIC_REQUIRE(simd::lanes<std::int64_t, B> == simd::lanes<double, B>);
        if constexpr (simd::is_xsimd_backend<B>) {
            // One register width per architecture: 4-byte types get twice the lanes of 8-byte ones.
            STATIC_REQUIRE(simd::lanes<float, B> * sizeof(float) == simd::lanes<double, B> * sizeof(double));
            // An aligned load of a full vector must be allowed on B::alignment() boundaries.
            REQUIRE(simd::lanes<float, B> * sizeof(float) % B::alignment() == 0);
            REQUIRE(simd::lanes<float, B> >= 2);
        } else {
            REQUIRE(simd::lanes<double, B> == 1);
        }
    });
}

TEST_CASE("simd::native is the widest architecture the compiler enables", "[simd][backend]") {
#if defined(__AVX512F__)
    STATIC_REQUIRE(simd::lanes<float, simd::native> == 16);
    STATIC_REQUIRE(simd::lanes<double, simd::native> == 8);
    STATIC_REQUIRE(simd::lanes<std::int32_t, simd::native> == 16);
#elif defined(__AVX__)
    STATIC_REQUIRE(simd::lanes<float, simd::native> == 8);
    STATIC_REQUIRE(simd::lanes<double, simd::native> == 4);
#elif defined(__SSE2__) || defined(__ARM_NEON)
    STATIC_REQUIRE(simd::lanes<float, simd::native> == 4);
#endif
#if defined(__AVX512BW__)
    // avx512bw, or one of the AVX-512 extension tags newer xsimd builds on it (avx512vbmi,
    // avx512vnni<avx512vbmi2>, ...) when the compiler enables that extension too.
    STATIC_REQUIRE(std::is_base_of_v<xsimd::avx512bw, simd::native>);
#endif
    STATIC_REQUIRE(std::is_same_v<simd::batch<float>, simd::batch<float, simd::native>>);
    // No compiled backend has more lanes than native.
    simd::compiled_backends::for_each([](auto b) {
        STATIC_REQUIRE(simd::lanes<float, decltype(b)> <= simd::lanes<float, simd::native>);
    });
}
