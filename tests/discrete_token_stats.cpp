// Tests of gmk/discrete/token_stats.hpp: the vocabulary kernel against a plain double-precision
// reference (sorting for the filters, cumulative sums for the draws), on every backend, float
// and double rows; the distribution of drawn tokens by chi-square; ties, non-finite rows and bad
// input.
#include <gmk/discrete/token_stats.hpp>
#include <gmk/random/fill.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/discrete_reference.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gd = gmk::discrete;
namespace gt = gmk_test;

namespace {

// ---- the reference (support/discrete_reference.hpp) ------------------------------------------

using gt::reference;

template <class T>
reference reference_of(const std::vector<T>& row, const gd::sampling& s) {
    return gt::reference_of(std::vector<double>(row.begin(), row.end()), s);
}

template <class T>
std::vector<T> random_row(std::size_t V, double spread, std::uint64_t seed) {
    std::vector<T> row = gt::uniform_vector<T>(V, -spread, spread, seed);
    gt::rng g(seed ^ 0x5bd1e995);
    // a few peaked entries, as language models have
    for (int j = 0; j < 3 && V > 0; ++j) row[g.integer(0, V - 1)] += T(spread);
    return row;
}

struct setting {
    double temperature, top_p;
    std::size_t top_k;
    bool suppress;
};

const setting settings[] = {
    {0, 1, 0, false},   {0, 1, 0, true},   {1, 1, 0, false},   {0.5, 1, 0, true},  {2, 1, 0, false},
    {0.7, 0.9, 0, false}, {1, 1, 5, false}, {0.5, 0.95, 12, true}, {0, 0.8, 3, false}, {1.3, 0.3, 0, false},
    {1, 0.999, 0, false}, {0.2, 1, 1, false},
};

}  // namespace

TEST_CASE("token_statistics equals the double reference on every backend", "[discrete]") {
    gt::mismatch_log log;
    const auto expect = [&](bool ok, const std::string& what) {
        if (!ok) log.add(what);
    };
    gt::for_each_type<float, double>([&](auto t) {
        using T = typename decltype(t)::type;
        const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-12;
        std::uint64_t seed = 11;
        for (std::size_t V : {1u, 2u, 7u, 37u, 50u, 1000u, 4099u, 10007u}) {
            for (const setting& st : settings) {
                ++seed;
                const std::vector<T> row = random_row<T>(V, V > 1000 ? 8.0 : 4.0, seed);
                std::vector<gd::token> sup;
                if (st.suppress && V > 3) sup = std::vector<gd::token>{0, gd::token(V / 2), gd::token(V - 1)};  // (not assign: GCC 12 -Wnonnull)
                gd::sampling s;
                s.temperature = st.temperature;
                s.top_p = st.top_p;
                s.top_k = st.top_k;
                s.suppress = sup;
                const reference ref = reference_of(row, s);
                gd::token_draw d;
                d.uniform = gt::rng(seed).uniform();
                gt::for_each_backend([&](auto b) {
                    using B = decltype(b);
                    const auto r = gd::token_statistics<B>(row.data(), V, s, d);
                    const std::string where = gt::label<B, T>() + " V " + std::to_string(V) + " T " +
                                              std::to_string(st.temperature) + " p " + std::to_string(st.top_p) +
                                              " k " + std::to_string(st.top_k);
                    expect(r.max == T(ref.max), where + " max");
                    expect(std::abs(double(r.log_sum_exp) - ref.lse) <= tol * std::max(1.0, std::abs(ref.lse)), where + " lse");
                    // top-p's cut is exact to the rounding of the row's mass (float: a few 1e-7
                    // of it): a kept count off by tokens that weigh less than that passes.
                    expect(r.kept == ref.kept || std::abs(ref.mass_before(r.kept) - ref.mass_before(ref.kept)) <= tol,
                           where + " kept " + std::to_string(r.kept) + " vs " + std::to_string(ref.kept));
                    if (st.temperature == 0) {
                        expect(r.token == ref.argmax, where + " argmax");
                    } else {
                        // The draw inverts the CDF of q in index order: u lies in the token's interval.
                        double before = 0;
                        for (std::size_t v = 0; v < r.token; ++v) before += ref.q[v];
                        expect(ref.q[r.token] > 0, where + " token has weight");
                        expect(before <= d.uniform + tol && before + ref.q[r.token] >= d.uniform - tol,
                               where + " inverse cdf");
                    }
                    expect(std::abs(double(r.probability) - ref.q[r.token]) <= tol, where + " probability");
                    expect(std::abs(double(r.model_probability) - ref.model[r.token]) <= tol, where + " model p");
                    expect(std::abs(double(r.margin) - ref.margin) <= tol, where + " margin");
                    expect(std::abs(double(r.neg_entropy) - ref.neg_entropy) <= tol * std::max(1.0, -ref.neg_entropy),
                           where + " entropy " + std::to_string(r.neg_entropy) + " vs " + std::to_string(ref.neg_entropy));
                });
            }
        }
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

namespace {

// ---- chi-square --------------------------------------------------------------------------

// Pearson's statistic of counts against probabilities p (bins with expected count below 5 pooled
// into one), and its degrees of freedom.
std::pair<double, std::size_t> chi_square(const std::vector<std::size_t>& counts, const std::vector<double>& p, std::size_t n) {
    double stat = 0, pooled_e = 0, pooled_o = 0;
    std::size_t bins = 0;
    for (std::size_t v = 0; v < p.size(); ++v) {
        const double e = p[v] * double(n);
        if (e < 5) {
            pooled_e += e;
            pooled_o += double(counts[v]);
            continue;
        }
        stat += (double(counts[v]) - e) * (double(counts[v]) - e) / e;
        ++bins;
    }
    if (pooled_e > 0) {
        stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / std::max(pooled_e, 1e-300);
        ++bins;
    }
    return {stat, bins - 1};
}

// The chi-square quantile at upper tail 1e-6 (Wilson-Hilferty; z = 4.753).
double chi_square_critical(std::size_t df) {
    const double k = double(df), z = 4.753;
    const double a = 1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k));
    return k * a * a * a;
}

}  // namespace

TEST_CASE("drawn tokens follow softmax(filter(l / T)) by chi-square, for every draw method", "[discrete][statistics]") {
    using B = simd::native;
    const std::size_t V = 37, N = 80000;
    const std::vector<float> row = random_row<float>(V, 2.5, 77);
    struct filt {
        double p;
        std::size_t k;
    };
    const filt filters[] = {{1, 0}, {1, 6}, {0.8, 0}, {0.9, 10}};
    for (double T : {0.5, 1.0, 2.0})
        for (const filt& f : filters)
            for (gd::token_sampling method : {gd::token_sampling::inverse_cdf, gd::token_sampling::exponential_race,
                                              gd::token_sampling::gumbel_float64}) {
                // The race methods share the filters and the weights with inverse_cdf: two
                // temperatures, unfiltered and filtered, suffice for them.
                if (method != gd::token_sampling::inverse_cdf && (T == 1.0 || f.p == 0.8 || f.k == 6)) continue;
                gd::sampling s;
                s.temperature = T;
                s.top_p = f.p;
                s.top_k = f.k;
                const reference ref = reference_of(row, s);
                std::vector<std::size_t> counts(V);
                const gmk::random::philox_stream stream(1234, std::uint64_t(method) * 100 + std::uint64_t(T * 10) + f.k);
                std::vector<double> u(V);
                for (std::size_t j = 0; j < N; ++j) {
                    gd::token_draw d;
                    d.method = method;
                    if (method == gd::token_sampling::inverse_cdf) {
                        gmk::random::uniform_fill(stream, j, &d.uniform, 1);
                    } else {
                        gmk::random::uniform_fill(stream, j * V, u.data(), V, gmk::random::interval::open);
                        if (method == gd::token_sampling::exponential_race)
                            for (double& x : u) x = -std::log(x);
                        d.per_token = u.data();
                    }
                    ++counts[gd::token_statistics<B>(row.data(), V, s, d).token];
                }
                INFO("T " << T << " top_p " << f.p << " top_k " << f.k << " method " << int(method));
                for (std::size_t v = 0; v < V; ++v)
                    if (ref.q[v] == 0) CHECK(counts[v] == 0);  // filtered tokens are never drawn
                const auto [stat, df] = chi_square(counts, ref.q, N);
                CHECK(stat < chi_square_critical(df));
                // Power: the same counts against the distribution at 1.1 T are rejected.
                gd::sampling wrong = s;
                wrong.temperature = 1.1 * T;
                const auto [bad, bdf] = chi_square(counts, reference_of(row, wrong).q, N);
                CHECK(bad > chi_square_critical(bdf));
            }
}

TEST_CASE("token_statistics: ties, one-hot rows, suppression and filters at the edges", "[discrete]") {
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        INFO(simd::backend_name<B>());
        // All equal: argmax 0, uniform q, margin 0 (1 for one token), entropy -log V.
        for (std::size_t V : {1u, 5u, 17u, 4096u, 4097u, 9000u}) {
            const std::vector<float> row(V, 0.25f);
            const auto r = gd::token_statistics<B>(row.data(), V);
            CHECK(r.token == 0);
            CHECK(r.margin == Approx(V == 1 ? 1 : 0).margin(1e-7));
            CHECK(double(r.neg_entropy) == Approx(-std::log(double(V))).epsilon(1e-6).margin(1e-12));
            CHECK(double(r.probability) == Approx(1.0 / double(V)).epsilon(1e-6));
            // top-k of tied logits keeps them all; top-p keeps the prefix in index order.
            gd::sampling s;
            s.top_k = 2;
            CHECK(gd::token_statistics<B>(row.data(), V, s).kept == V);
            s.top_k = 0;
            s.top_p = 0.5;
            const auto half = gd::token_statistics<B>(row.data(), V, s);
            CHECK(half.kept == V / 2 + 1);  // token j stays while j / V <= 0.5
        }
        // A tie for the maximum in the last vector of a row that is not a multiple of the width:
        // the lower index wins.
        std::vector<double> row(1003, -1.0);
        row[1001] = 3;
        row[1002] = 3;
        auto r = gd::token_statistics<B>(row.data(), row.size());
        CHECK(r.token == 1001);
        CHECK(r.margin == Approx(0).margin(1e-15));
        // Suppressing the maximum moves the argmax; suppressing all but one gives a one-hot q.
        const gd::token sup[] = {1001};
        gd::sampling s;
        s.suppress = sup;
        CHECK(gd::token_statistics<B>(row.data(), row.size(), s).token == 1002);
        std::vector<gd::token> all_but;
        for (gd::token v = 0; v < 1003; ++v)
            if (v != 17) all_but.push_back(v);
        s.suppress = all_but;
        s.temperature = 1.5;
        gd::token_draw d;
        d.uniform = 0.9;
        r = gd::token_statistics<B>(row.data(), row.size(), s, d);
        CHECK(r.token == 17);
        CHECK(r.probability == 1.0);
        CHECK(r.model_probability == 1.0);
        CHECK(r.neg_entropy == 0.0);
        CHECK(r.margin == 1.0);
        CHECK(r.kept == 1);
        // -inf logits carry no weight and are never drawn.
        std::vector<float> masked(100, -std::numeric_limits<float>::infinity());
        masked[40] = 2;
        masked[70] = 2;
        gd::sampling t;
        t.temperature = 1;
        for (double u : {0.0, 0.49, 0.51, 0.999999}) {
            d.uniform = u;
            const auto m = gd::token_statistics<B>(masked.data(), masked.size(), t, d);
            CHECK(m.token == (u < 0.5 ? 40u : 70u));
            CHECK(m.probability == Approx(0.5));
        }
    });
}

// Temperatures whose reciprocal overflows the row type's scale (float below ~4e-39, double below
// ~5.6e-309) are the T -> 0 limit: one-hot on the maximum, with the filters' cut where a small
// normal temperature puts it (found by the discrete fuzz target: NaN statistics (D1), and top-p
// keeping the whole row (D3)).
TEST_CASE("token_statistics: vanishing temperatures are the T -> 0 limit, filters included", "[discrete][extremes]") {
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto t) {
            using T = typename decltype(t)::type;
            INFO((gt::label<B, T>()));
            // Logits at least 1 apart around a unique maximum, or two tied maxima (q = 1/2 each);
            // one chunk or several: at T = 1e-3 every other weight is exp(-1000) = 0 in double,
            // which is the limit.
            for (std::size_t V : {std::size_t(65), std::size_t(6657)})
            for (bool tie : {false, true}) {
            std::vector<T> row(V);
            for (std::size_t v = 0; v < row.size(); ++v) row[v] = T(std::min(double((v * 37) % 65) - 20, 43.0));
            row[7] = T(44);
            if (tie) row[V - 3] = T(44);
            for (double top_p : {1.0, 0.494, 0.999}) {
                for (std::size_t top_k : {std::size_t(0), std::size_t(3)}) {
                    gd::sampling s;
                    s.top_p = top_p;
                    s.top_k = top_k;
                    gd::token_draw d;
                    d.uniform = 0.7;
                    s.temperature = 1e-3;
                    const auto want = gd::token_statistics<B>(row.data(), row.size(), s, d);
                    const bool both = tie && top_p > 0.5;  // (top-p 0.494 keeps one of the two)
                    REQUIRE(want.probability == (both ? 0.5 : 1));
                    for (double tiny : {1e-39, 1e-300, 3.06386e-318, 5e-324}) {
                        INFO("T = " << tiny << " top_p " << top_p << " top_k " << top_k);
                        s.temperature = tiny;
                        const auto r = gd::token_statistics<B>(row.data(), row.size(), s, d);
                        CHECK(r.token == want.token);
                        CHECK(r.kept == want.kept);
                        CHECK(r.probability == want.probability);
                        CHECK(r.model_probability == want.model_probability);
                        CHECK(r.margin == (both ? 0 : 1));
                        // (-ln 2 or 0 up to the weights' floor of 2^-126 per token in float, as at
                        // T = 1e-3)
                        CHECK(r.neg_entropy == want.neg_entropy);
                        CHECK(std::fabs(double(r.neg_entropy) + (both ? std::log(2.0) : 0.0)) <= 1e-6);
                        CHECK(r.log_sum_exp == want.log_sum_exp);
                    }
                }
            }
            }
        });
    });
}

// u just below 1, where u * (row mass) may round past the sum of the chunks' masses: the token
// must still be the one whose interval of the CDF holds u. (The discrete fuzz target found a row
// where it did, D4, and the kernel then walked the last chunk from its first token; whether the
// rounding falls that way depends on how the compiler contracts the chunk sums, so the reproducer
// lives in fuzz/corpus/discrete/, which CI replays.)
TEST_CASE("token_statistics: the inverse CDF at u -> 1 stays in the last interval", "[discrete]") {
    gt::for_each_type<float, double>([&](auto t) {
        using T = typename decltype(t)::type;
        const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-12;
        for (std::uint64_t seed = 1; seed <= 24; ++seed) {
            const std::size_t V = 9000 + 97 * seed;  // three chunks
            const std::vector<T> row = random_row<T>(V, seed % 2 ? 1.0 : 4.0, seed);
            for (std::size_t top_k : {std::size_t(0), std::size_t(5799)}) {
                gd::sampling s;
                s.temperature = 1;
                s.top_k = top_k;
                const reference ref = reference_of(row, s);
                for (double u : {std::nextafter(1.0, 0.0), 1 - 0x1p-50, 1 - 1e-9}) {
                    gd::token_draw d;
                    d.uniform = u;
                    gt::for_each_backend([&](auto b) {
                        using B = decltype(b);
                        const std::size_t v = gd::token_statistics<B>(row.data(), V, s, d).token;
                        double before = 0;
                        for (std::size_t j = 0; j < v; ++j) before += ref.q[j];
                        INFO((gt::label<B, T>()) << " V " << V << " top_k " << top_k << " u " << u << ": token " << v);
                        CHECK(before <= u + tol);
                        CHECK(before + ref.q[v] >= u - tol);
                    });
                }
            }
        }
    });
}

TEST_CASE("token_statistics: non-finite rows follow the documented policy", "[discrete]") {
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        INFO(simd::backend_name<B>());
        const float nan = std::numeric_limits<float>::quiet_NaN(), finf = std::numeric_limits<float>::infinity();
        for (std::size_t V : {3u, 64u, 5000u}) {
            for (std::size_t at : {std::size_t(0), V / 2, V - 1}) {
                for (float bad : {nan, finf}) {
                    std::vector<float> row = gt::uniform_vector<float>(V, -3, 3, V + at);
                    row[at] = bad;
                    const auto r = gd::token_statistics<B>(row.data(), V);
                    CHECK(r.token == at);
                    CHECK(std::isnan(r.probability));
                    CHECK(std::isnan(r.log_sum_exp));
                }
            }
            // NaN among -inf only, and a row of -inf only.
            std::vector<float> row(V, -finf);
            const auto none = gd::token_statistics<B>(row.data(), V);
            CHECK(none.max == -finf);
            CHECK(none.log_sum_exp == -finf);
            CHECK(std::isnan(none.probability));
            row[V - 1] = nan;
            CHECK(std::isnan(gd::token_statistics<B>(row.data(), V).probability));
        }
    });
}

TEST_CASE("token_statistics and token_statistics_rows reject bad input, naming it", "[discrete]") {
    const std::vector<float> row(10, 0.f);
    gd::sampling s;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 0); }, "vocab");
    gt::require_throws_naming([&] { gd::token_statistics(static_cast<const float*>(nullptr), 10); }, "logits");
    s.temperature = -1;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.temperature");
    s.temperature = std::numeric_limits<double>::infinity();
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.temperature");
    s = {};
    s.top_p = 0;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.top_p");
    s.top_p = 1.5;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.top_p");
    s = {};
    const gd::token out_of_range[] = {10};
    s.suppress = out_of_range;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.suppress[i]");
    const gd::token unsorted[] = {3, 2};
    s.suppress = unsorted;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s); }, "sampling.suppress[i]");
    s = {};
    s.temperature = 1;
    gd::token_draw d;
    d.uniform = 1.0;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s, d); }, "draw.uniform");
    d.method = gd::token_sampling::exponential_race;
    gt::require_throws_naming([&] { gd::token_statistics(row.data(), 10, s, d); }, "draw.per_token");
    std::vector<gd::token_stats<float>> out(3);
    const gmk::matrix_view<const float> m(row.data(), 2, 5);
    gt::require_throws_naming([&] { gd::token_statistics_rows(m, gd::sampling{}, {}, gmk::span<gd::token_stats<float>>(out)); },
                              "out.size()");
    out.resize(2);
    gt::require_throws_naming([&] { gd::token_statistics_rows(m, s, {}, gmk::span<gd::token_stats<float>>(out)); },
                              "uniforms.size()");
}

TEST_CASE("token_statistics_rows equals the row function on any executor", "[discrete]") {
    const std::size_t L = 9, V = 5003;
    const std::vector<float> l = gt::uniform_vector<float>(L * V, -6, 6, 99);
    std::vector<double> u(L);
    gt::fill_uniform(u.data(), L, 0, 0.999, 5);
    gd::sampling s;
    s.temperature = 0.8;
    s.top_p = 0.9;
    std::vector<gd::token_stats<float>> a(L), b(L);
    gd::token_statistics_rows(gmk::matrix_view<const float>(l.data(), L, V), s, u, gmk::span<gd::token_stats<float>>(a));
    gd::token_statistics_rows(gmk::matrix_view<const float>(l.data(), L, V), s, u, gmk::span<gd::token_stats<float>>(b),
                              gt::threaded_executor(2));
    for (std::size_t r = 0; r < L; ++r) {
        gd::token_draw d;
        d.uniform = u[r];
        const auto one = gd::token_statistics(l.data() + r * V, V, s, d);
        CHECK(a[r].token == one.token);
        CHECK(b[r].token == one.token);
        CHECK(gt::same_bits(a[r].probability, one.probability));
        CHECK(gt::same_bits(b[r].neg_entropy, one.neg_entropy));
    }
}
