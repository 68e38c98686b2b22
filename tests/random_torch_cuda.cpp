// Tests of gmk/random/torch_cuda.hpp against torch.randn / torch.rand drawn on an NVIDIA H200
// (tests/golden/torch_cuda_randn.txt, written by tests/golden/torch_randn.py).
#include <gmk/random/torch_cuda.hpp>

#include <cmath>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace gt = gmk_test;

namespace {

const gt::golden_file& golden() {
    static const gt::golden_file g = gt::read_golden("torch_cuda_randn.txt");
    return g;
}

struct agreement {
    std::size_t compared = 0, bitwise = 0;
    double worst = 0;  // float: absolute; double: relative to max(1, |x|)
};

/// Runs every golden case of `dtype` on a generator with the given grid through backend B.
template <class B, class T>
agreement compare(const gt::golden_file& g, const std::string& op, gmk::cuda_grid grid,
                  std::uint64_t max_call = UINT64_MAX) {
    agreement a;
    const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
    for (const auto& c : g.cases) {
        if (c.op != op || c.dtype != dtype) continue;
        bool small = true;
        for (const auto& call : c.calls) small = small && call.n <= max_call;
        if (!small) continue;
        gmk::torch_cuda_generator gen(c.seed, grid);
        for (const auto& call : c.calls) {
            std::vector<T> x(call.n);
            if (op == "randn") gen.template randn<B>(x.data(), call.n);
            else gen.template rand<B>(x.data(), call.n);
            for (std::size_t j = 0; j < call.index.size(); ++j) {
                const T ref = call.value<T>(j), got = x[call.index[j]];
                const double d = std::fabs(double(got) - double(ref));
                a.worst = std::max(a.worst, std::is_same_v<T, float> ? d : d / std::max(1.0, std::fabs(double(ref))));
                a.bitwise += gt::same_bits(got, ref);
                ++a.compared;
            }
        }
    }
    return a;
}

}  // namespace

TEST_CASE("torch_cuda_generator reproduces torch on an H200 at every size", "[random][torch_cuda]") {
    const auto& g = golden();
    REQUIRE(g.multiprocessors == 132);
    const gmk::cuda_grid h200{g.multiprocessors, g.threads_per_multiprocessor};
    REQUIRE(h200.stride(1u << 30) == 270336);
    gt::for_each_backend([&](auto backend) {
        using B = decltype(backend);
        INFO(gmk::simd::backend_name<B>());
        // Uniforms: bit for bit.
        const agreement uf = compare<B, float>(g, "rand", h200), ud = compare<B, double>(g, "rand", h200);
        REQUIRE(uf.compared > 0);
        REQUIRE(ud.compared > 0);
        CHECK(uf.bitwise == uf.compared);
        CHECK(ud.bitwise == ud.compared);
        // Float normals: the GPU's __sincosf is a fast approximation; within 2e-6 absolute
        // (measured: 1.7e-6). Double normals: sincospi and log within a few ulp.
        const agreement nf = compare<B, float>(g, "randn", h200), nd = compare<B, double>(g, "randn", h200);
        REQUIRE(nf.compared > 25000);
        REQUIRE(nd.compared > 25000);
        INFO("float worst " << nf.worst << ", double worst " << nd.worst << " (relative)");
        CHECK(nf.worst <= 2e-6);
        CHECK(nd.worst <= 4 * std::numeric_limits<double>::epsilon());
    });
}

TEST_CASE("torch_cuda_generator: the unbounded grid is A1111's layout", "[random][torch_cuda]") {
    // FORMULAS.md's vector (seed 0, n = 12), the one A1111 and stable-diffusion.cpp check.
    gmk::torch_cuda_generator gen(0);
    float x[12];
    gen.randn(x, 12);
    const float expect[] = {-0.9246625f, -0.4253440f, -2.6438458f, 0.1451839f};
    for (int i = 0; i < 4; ++i) CHECK(x[i] == Approx(expect[i]).margin(2e-6));
    REQUIRE(gen.offset() == 4);  // one Philox block per thread and call
    // Equal to torch on the H200 while every call fits one pass of its grid...
    const agreement a = compare<gmk::simd::native, float>(golden(), "randn", gmk::cuda_grid{}, 270336);
    REQUIRE(a.compared > 10000);
    CHECK(a.worst <= 2e-6);
    // ...and not beyond: element 270336 is thread 0's second output on the H200.
    const auto& g = golden();
    bool checked = false;
    for (const auto& c : g.cases) {
        if (c.op != "randn" || c.dtype != "float32" || c.calls.size() != 1 || c.calls[0].n != 270337) continue;
        std::vector<float> a1111(270337), h200(270337);
        gmk::torch_cuda_generator(c.seed).randn(a1111.data(), a1111.size());
        gmk::torch_cuda_generator(c.seed, {g.multiprocessors, g.threads_per_multiprocessor}).randn(h200.data(), h200.size());
        REQUIRE(a1111[270335] == h200[270335]);
        REQUIRE(a1111[270336] != h200[270336]);
        REQUIRE(std::fabs(h200[270336] - c.calls[0].value<float>(c.calls[0].index.size() - 1)) <= 2e-6);
        checked = true;
    }
    REQUIRE(checked);
}

TEST_CASE("torch_cuda_generator: offsets and bad input", "[random][torch_cuda]") {
    gmk::torch_cuda_generator g(5, {132, 2048});
    std::vector<float> x(1000003);
    g.randn(x.data(), x.size());  // stride 270336: 1000003 floats take one pass of 4 outputs
    REQUIRE(g.offset() == 4);
    std::vector<double> y(1000003);
    g.randn(y.data(), y.size());  // doubles: 2 outputs per pass, 2 passes
    REQUIRE(g.offset() == 12);
    g.randn(y.data(), 0);  // no launch, no offset
    REQUIRE(g.offset() == 12);
    g.manual_seed(6);
    REQUIRE(g.offset() == 0);
    REQUIRE(g.initial_seed() == 6);
    REQUIRE_THROWS_AS(g.set_offset(3), std::invalid_argument);
    float* null = nullptr;
    REQUIRE_THROWS_AS(g.randn(null, 1), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::torch_cuda_generator(1, {132, 128}), std::invalid_argument);
}
