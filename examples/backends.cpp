// Prints the SIMD backends this program was compiled for, which of them the running CPU can
// execute, and the lanes each gives float and double; then runs one reduction on each.
#include <gmk/gmk.hpp>

#include <cstdio>
#include <vector>

int main() {
    namespace simd = gmk::simd;
    std::printf("gmk %s with xsimd %d.%d.%d\n", gmk::version_string, XSIMD_VERSION_MAJOR,
                XSIMD_VERSION_MINOR, XSIMD_VERSION_PATCH);
    std::printf("native backend: %s\n\n", simd::backend_name<simd::native>());
    std::printf("%-24s %-6s %6s %7s  %s\n", "backend", "runs", "float", "double", "sum(1..1000)");

    std::vector<float> x(1000);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);

    simd::compiled_backends::for_each([&](auto backend) {
        using B = decltype(backend);
        const bool runs = simd::runs_here<B>();
        std::printf("%-24s %-6s %6zu %7zu  ", simd::backend_name<B>(), runs ? "yes" : "no",
                    simd::lanes<float, B>, simd::lanes<double, B>);
        if (runs) std::printf("%.1f\n", static_cast<double>(simd::sum<B>(x.data(), x.size())));
        else std::printf("-\n");
    });
    return 0;
}
