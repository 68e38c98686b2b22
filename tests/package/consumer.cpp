// A program of a project that consumes gmk: includes the umbrella header, runs a kernel helper
// on the native backend and checks the answer.
#include <gmk/gmk.hpp>

#include <cstdio>
#include <vector>

int main() {
    std::vector<float> x(100);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    const float total = gmk::simd::sum(x.data(), x.size());
    std::printf("gmk %s, native backend %s, sum = %g\n", gmk::version_string,
                gmk::simd::backend_name<gmk::simd::native>(), static_cast<double>(total));
    return total == 4950.0f ? 0 : 1;
}
