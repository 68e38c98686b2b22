// Tests of gmk/random/torch_cpu.hpp: the MT19937 engine against std::mt19937, and torch.rand /
// torch.randn against torch 2.11 on the CPU (tests/golden/torch_cpu_randn*.txt, written by
// tests/golden/torch_randn.py at CPU capability AVX512, and for float randn at AVX2, AVX512 and
// DEFAULT). Where torch calls the C library (randn(n < 16), the libm kernel, the scalar
// backend's log/sin/cos), "exact" means exact against torch on glibc, as the golden data was
// drawn: another C library rounds some of those functions differently, in torch as here.
#include <gmk/random/torch_cpu.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace gt = gmk_test;
namespace simd = gmk::simd;
using gmk::torch_cpu_generator;
using gmk::torch_cpu_kernel;

namespace {

const gt::golden_file& golden_avx512() {
    static const gt::golden_file g = gt::read_golden("torch_cpu_randn.txt");
    return g;
}

/// simd::has_fused_fma<B>: the AVX2 kernel is bitwise there, as torch's build fuses those
/// steps. The SSE and plain AVX tags round twice: within 2 ulp of torch (measured: 1 on the
/// golden data).
template <class B>
constexpr bool fused_fma() {
    return simd::has_fused_fma<B>;
}

/// The float kernel's bound against torch's AVX2 kernel on backend B, in ulp.
template <class B>
constexpr std::uint64_t avx2_kernel_ulp() {
    return fused_fma<B>() ? 0 : 2;
}

struct agreement {
    std::size_t exact_compared = 0;  // rand and randn(n < 16): must be bitwise
    std::size_t ulp_compared = 0;    // randn(n >= 16): the block kernel
    std::uint64_t max_ulp = 0;       // over randn(n >= 16)
    gt::mismatch_log log;            // the values that should be bitwise and are not
};

/// Replays every golden case of `op` and T's dtype: a fresh generator per case, one call per n.
template <class B, class T>
GMK_TEST_NOINLINE agreement compare(const gt::golden_file& g, const std::string& op, torch_cpu_kernel kernel) {
    agreement a;
    const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
    for (const auto& c : g.cases) {
        if (c.op != op || c.dtype != dtype) continue;
        torch_cpu_generator gen(c.seed, kernel);
        for (std::size_t k = 0; k < c.calls.size(); ++k) {
            const auto& call = c.calls[k];
            std::vector<T> x(call.n);
            if (op == "rand") gen.rand<B>(x.data(), call.n);
            else gen.randn<B>(x.data(), call.n);
            const bool exact = op == "rand" || call.n < 16;
            for (std::size_t j = 0; j < call.index.size(); ++j) {
                const T want = call.value<T>(j), got = x[call.index[j]];
                if (exact) {
                    ++a.exact_compared;
                    if (!gt::same_bits(got, want))
                        a.log.add(gt::label<B, T>(), " ", c.name(), " call ", k, " [", call.index[j],
                                  "]: got ", gt::show(got), ", torch ", gt::show(want));
                } else {
                    ++a.ulp_compared;
                    a.max_ulp = std::max(a.max_ulp, gt::ulp_distance(got, want));
                }
            }
        }
    }
    return a;
}

float uniform24(std::uint32_t w) { return float(w & 0xffffffu) * 0x1p-24f; }
double uniform53(std::uint32_t first, std::uint32_t second) {
    return double((std::uint64_t(first & 0x1fffffu) << 32) | second) * 0x1p-53;
}

}  // namespace

TEST_CASE("torch_cpu_generator: the engine is std::mt19937 seeded with the low 32 bits", "[random][torch_cpu]") {
    const std::uint64_t seeds[] = {0, 1, 42, 5489, 123456789, 0xffffffffu, (std::uint64_t(1) << 32) + 5,
                                   torch_cpu_generator::default_seed};
    for (const std::uint64_t seed : seeds) {
        INFO("seed " << seed);
        torch_cpu_generator g(seed);
        REQUIRE(g.initial_seed() == seed);  // all 64 bits, as torch reports it
        std::mt19937 ref(static_cast<std::uint32_t>(seed));
        gt::mismatch_log log;
        for (std::size_t i = 0; i < 3 * 624 + 101; ++i) {  // across three twists, then mid-state
            const std::uint32_t want = ref(), got = g.random();
            if (got != want) log.add("random() #", i, ": got ", got, ", std::mt19937 ", want);
        }
        for (std::size_t i = 0; i < 700; ++i) {  // first word high: torch's random64
            const std::uint64_t hi = ref(), want = hi << 32 | ref(), got = g.random64();
            if (got != want) log.add("random64() #", i, ": got ", got, ", want ", want);
        }
        GMK_REQUIRE_NO_MISMATCH(log);
    }
    // The default seed is torch's; the seed keeps only its low word for the engine.
    REQUIRE(torch_cpu_generator().initial_seed() == 67280421310721ull);
    torch_cpu_generator a((std::uint64_t(1) << 32) + 5), b(5);
    for (int i = 0; i < 2000; ++i) REQUIRE(a.random() == b.random());
}

TEST_CASE("torch_cpu_generator: every backend's twist and uniforms match std::mt19937", "[random][torch_cpu]") {
    gt::for_each_backend([](auto backend) {
        using B = decltype(backend);
        INFO(simd::backend_name<B>());
        for (const std::uint32_t seed : {0u, 7u, 2024u}) {
            torch_cpu_generator g(seed);
            std::mt19937 ref(seed);
            gt::mismatch_log log;
            // Doubles from word pairs at even offsets, one float to make the offset odd, doubles
            // again (a pair straddles a twist), then floats: every word is the full-32-bit
            // second word of some pair, through three twists.
            std::vector<double> d(1000);
            g.rand<B>(d.data(), d.size());
            for (std::size_t i = 0; i < d.size(); ++i) {
                const std::uint32_t w0 = ref(), w1 = ref();
                if (!gt::same_bits(d[i], uniform53(w0, w1))) log.add("even double ", i, ": ", gt::show(d[i]));
            }
            float f1;
            g.rand<B>(&f1, 1);
            if (!gt::same_bits(f1, uniform24(ref()))) log.add("float after doubles: ", gt::show(f1));
            g.rand<B>(d.data(), d.size());
            for (std::size_t i = 0; i < d.size(); ++i) {
                const std::uint32_t w0 = ref(), w1 = ref();
                if (!gt::same_bits(d[i], uniform53(w0, w1))) log.add("odd double ", i, ": ", gt::show(d[i]));
            }
            std::vector<float> f(1001);
            g.rand<B>(f.data(), f.size());
            for (std::size_t i = 0; i < f.size(); ++i)
                if (!gt::same_bits(f[i], uniform24(ref()))) log.add("float ", i, ": ", gt::show(f[i]));
            REQUIRE(g.random() == ref());  // the scalar path continues the same stream
            GMK_REQUIRE_NO_MISMATCH(log);
        }
    });
}

TEST_CASE("torch_cpu_generator::rand is torch.rand bit for bit on every backend", "[random][torch_cpu]") {
    gt::for_each_backend([](auto backend) {
        using B = decltype(backend);
        INFO(simd::backend_name<B>());
        agreement f = compare<B, float>(golden_avx512(), "rand", torch_cpu_kernel::avx2);
        agreement d = compare<B, double>(golden_avx512(), "rand", torch_cpu_kernel::avx2);
        REQUIRE(f.exact_compared > 1000);
        REQUIRE(d.exact_compared > 1000);
        GMK_REQUIRE_NO_MISMATCH(f.log);
        GMK_REQUIRE_NO_MISMATCH(d.log);
    });
}

TEST_CASE("torch_cpu_generator::randn matches torch at CPU capability AVX512", "[random][torch_cpu]") {
    gt::for_each_backend([](auto backend) {
        using B = decltype(backend);
        INFO(simd::backend_name<B>());
        // n < 16 (torch's cached double normals) is exact everywhere. Float n >= 16: torch's
        // AVX2 kernel, bitwise where the backend's fma is fused (measured: 1 ulp on the SSE and
        // AVX tags without FMA). Double n >= 16: vector log, sin and cos, each within 1 ulp of
        // glibc's, within 4 ulp of torch (measured: 3 at most, 2788 of 17756 values differ);
        // exact on the scalar backend, whose log, sin and cos are the C library's, as torch's.
        agreement f = compare<B, float>(golden_avx512(), "randn", torch_cpu_kernel::avx2);
        agreement d = compare<B, double>(golden_avx512(), "randn", torch_cpu_kernel::avx2);
        REQUIRE(f.exact_compared > 400);
        REQUIRE(f.ulp_compared > 17000);
        REQUIRE(d.exact_compared > 400);
        REQUIRE(d.ulp_compared > 17000);
        GMK_REQUIRE_NO_MISMATCH(f.log);
        GMK_REQUIRE_NO_MISMATCH(d.log);
        CHECK(f.max_ulp <= avx2_kernel_ulp<B>());
        CHECK(d.max_ulp <= (std::is_same_v<B, simd::scalar> ? 0u : 4u));
    });
    // The libm kernel is torch's double kernel at every capability: bitwise with glibc. Its
    // float blocks are torch's DEFAULT kernel, which this file's capability does not run: its
    // angle differs from the AVX2 kernel's by an ulp of a float, thousands of ulp of the result
    // where sin or cos is near 0 (5490 here), hence the kernel choice.
    agreement d = compare<simd::native, double>(golden_avx512(), "randn", torch_cpu_kernel::libm);
    GMK_REQUIRE_NO_MISMATCH(d.log);
    CHECK(d.max_ulp == 0);
    agreement f = compare<simd::native, float>(golden_avx512(), "randn", torch_cpu_kernel::libm);
    GMK_REQUIRE_NO_MISMATCH(f.log);
    CHECK(f.max_ulp > 1000);
}

TEST_CASE("torch_cpu_generator::randn matches torch's float kernel of each CPU capability", "[random][torch_cpu]") {
    const gt::golden_file avx2 = gt::read_golden("torch_cpu_randn_avx2.txt");
    const gt::golden_file avx512 = gt::read_golden("torch_cpu_randn_avx512.txt");
    const gt::golden_file portable = gt::read_golden("torch_cpu_randn_default.txt");
    gt::for_each_backend([&](auto backend) {
        using B = decltype(backend);
        INFO(simd::backend_name<B>());
        // AVX2 and AVX512 run one kernel: bitwise where fma is fused (measured 1 ulp elsewhere).
        const std::uint64_t bound = avx2_kernel_ulp<B>();
        for (const gt::golden_file* g : {&avx2, &avx512}) {
            agreement a = compare<B, float>(*g, "randn", torch_cpu_kernel::avx2);
            REQUIRE(a.ulp_compared > 17000);
            GMK_REQUIRE_NO_MISMATCH(a.log);
            CHECK(a.max_ulp <= bound);
        }
        // DEFAULT runs the per-element kernel through the C library's logf, sinf and cosf: bitwise
        // against a glibc build of torch (the golden's; the libm kernel ignores the backend).
        agreement a = compare<B, float>(portable, "randn", torch_cpu_kernel::libm);
        REQUIRE(a.ulp_compared > 17000);
        GMK_REQUIRE_NO_MISMATCH(a.log);
        CHECK(a.max_ulp == 0);
        // ...and the AVX2 kernel is not it (5490 ulp apart at most).
        CHECK(compare<B, float>(portable, "randn", torch_cpu_kernel::avx2).max_ulp > 1000);
    });
}

TEST_CASE("torch_cpu_generator: FORMULAS.md's reference values", "[random][torch_cpu]") {
    torch_cpu_generator g(0);
    float x[16];
    g.randn(x, 12);  // n < 16: the double path
    const float small[] = {1.540996f, -0.293429f, -2.178789f, 0.568431f};
    for (int i = 0; i < 4; ++i) CHECK(x[i] == Approx(small[i]).margin(1e-6));
    g.manual_seed(0);
    g.randn(x, 16);  // one block of the AVX2 kernel
    CHECK(x[0] == Approx(-1.1258f).margin(1e-4));
    CHECK(x[1] == Approx(-1.1524f).margin(1e-4));
}

namespace {

/// Runs one sequence of calls of every kind on backend B, from `seed`, and returns the values.
template <class B>
GMK_TEST_NOINLINE void draw_sequence(std::uint64_t seed, std::vector<float>& f, std::vector<double>& d,
                                     std::vector<bool>& f_exact, std::vector<bool>& d_exact) {
    torch_cpu_generator g(seed);
    // Sizes around the 16-element block and the 624-word twist, odd counts of float uniforms
    // (so that double pairs start at odd words), and the cached normal of n < 16.
    const std::size_t sizes[] = {1, 7, 15, 16, 17, 31, 33, 100, 623, 625, 1000, 4099, 20000};
    for (const std::size_t n : sizes) {
        for (int kind = 0; kind < 4; ++kind) {
            const std::size_t at_f = f.size(), at_d = d.size();
            if (kind == 0 || kind == 2) f.resize(at_f + n);
            else d.resize(at_d + n);
            switch (kind) {
                case 0: g.randn<B>(f.data() + at_f, n); break;
                case 1: g.randn<B>(d.data() + at_d, n); break;
                case 2: g.rand<B>(f.data() + at_f, n); break;
                default: g.rand<B>(d.data() + at_d, n); break;
            }
            const bool exact = kind >= 2 || n < 16;
            if (kind == 0 || kind == 2) f_exact.resize(f.size(), exact);
            else d_exact.resize(d.size(), exact);
        }
    }
}

}  // namespace

TEST_CASE("torch_cpu_generator: every backend agrees with the scalar backend", "[random][torch_cpu]") {
    for (const std::uint64_t seed : {3u, 77u}) {
        std::vector<float> f0;
        std::vector<double> d0;
        std::vector<bool> fe, de;
        draw_sequence<simd::scalar>(seed, f0, d0, fe, de);
        REQUIRE(f0.size() > 50000);
        gt::for_each_backend([&](auto backend) {
            using B = decltype(backend);
            INFO(simd::backend_name<B>() << ", seed " << seed);
            std::vector<float> f;
            std::vector<double> d;
            std::vector<bool> fe_b, de_b;
            draw_sequence<B>(seed, f, d, fe_b, de_b);
            REQUIRE(f.size() == f0.size());
            REQUIRE(d.size() == d0.size());
            gt::mismatch_log log;
            std::uint64_t max_f = 0, max_d = 0;
            for (std::size_t i = 0; i < f.size(); ++i) {
                if (fe[i] && !gt::same_bits(f[i], f0[i])) log.add("float ", i, ": ", gt::show(f[i]), " vs ", gt::show(f0[i]));
                if (!fe[i]) max_f = std::max(max_f, gt::ulp_distance(f[i], f0[i]));
            }
            for (std::size_t i = 0; i < d.size(); ++i) {
                if (de[i] && !gt::same_bits(d[i], d0[i])) log.add("double ", i, ": ", gt::show(d[i]), " vs ", gt::show(d0[i]));
                if (!de[i]) max_d = std::max(max_d, gt::ulp_distance(d[i], d0[i]));
            }
            // Uniforms and n < 16 normals bitwise; float blocks within 2 ulp (bitwise with a fused
            // fma); double blocks within 3 ulp: the scalar backend's log, sin and cos are glibc's
            // and the vector ones are each within 1 ulp of them, which compounds to 3 in about 1
            // value in 1500.
            GMK_REQUIRE_NO_MISMATCH(log);
            CHECK(max_f <= avx2_kernel_ulp<B>());
            CHECK(max_d <= 3u);
        });
    }
}

TEST_CASE("torch_cpu_generator: the stream, the cached normal, seeding and copies", "[random][torch_cpu]") {
    // randn(n < 16) caches the sine of each pair across calls, as torch does: two calls of 1
    // are one call of 2. Calls of n >= 16 neither use nor clear the cache.
    torch_cpu_generator a(11), b(11);
    double two[2], one[2];
    a.randn(two, 2);
    b.randn(one, 1);
    b.randn(one + 1, 1);
    REQUIRE(gt::same_bits(two[0], one[0]));
    REQUIRE(gt::same_bits(two[1], one[1]));
    double first, second, pair[2], block_a[16], block_b[16];
    a.randn(&first, 1);     // a new pair: its sine is cached
    a.randn(block_a, 16);   // the next 16 uniforms, cache untouched
    a.randn(&second, 1);    // the cached sine, no words drawn
    b.randn(pair, 2);
    b.randn(block_b, 16);
    REQUIRE(gt::same_bits(first, pair[0]));
    REQUIRE(gt::same_bits(second, pair[1]));
    for (int i = 0; i < 16; ++i) REQUIRE(gt::same_bits(block_a[i], block_b[i]));
    REQUIRE(a.random() == b.random());

    // manual_seed restarts the engine and drops the cache.
    torch_cpu_generator d(4);
    float x[2], y[2];
    d.randn(x, 1);  // caches a value
    d.manual_seed(9);
    d.randn(x, 1);
    torch_cpu_generator(9).randn(y, 1);
    REQUIRE(gt::same_bits(x[0], y[0]));
    REQUIRE(d.initial_seed() == 9);

    // A copy continues the same stream independently.
    torch_cpu_generator e = d;
    std::vector<float> p(1000), q(1000);
    d.randn(p.data(), p.size());
    e.randn(q.data(), q.size());
    REQUIRE(p == q);

    // The kernel choice survives seeding.
    torch_cpu_generator l(1, torch_cpu_kernel::libm);
    l.manual_seed(2);
    REQUIRE(l.kernel() == torch_cpu_kernel::libm);
    REQUIRE(torch_cpu_generator().kernel() == torch_cpu_kernel::avx2);
}

TEST_CASE("torch_cpu_generator: bad input and empty calls", "[random][torch_cpu]") {
    torch_cpu_generator g(5), fresh(5);
    float* nf = nullptr;
    double* nd = nullptr;
    REQUIRE_THROWS_AS(g.randn(nf, 1), std::invalid_argument);
    REQUIRE_THROWS_AS(g.randn(nd, 16), std::invalid_argument);
    REQUIRE_THROWS_AS(g.rand(nf, 3), std::invalid_argument);
    REQUIRE_THROWS_AS(g.rand<simd::scalar>(nd, 100), std::invalid_argument);
    // n = 0 (null or not) draws nothing and keeps the cached normal.
    double z[1], w[2];
    g.randn(z, 1);
    g.randn(nf, 0);
    g.randn(z, 0);
    g.rand(nd, 0);
    g.rand<simd::scalar>(nf, 0);
    g.randn(z, 1);  // the cached second value of the first pair
    fresh.randn(w, 2);
    REQUIRE(gt::same_bits(z[0], w[1]));
    REQUIRE(g.random() == fresh.random());
}
