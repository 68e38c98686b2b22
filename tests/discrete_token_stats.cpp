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
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gd = gmk::discrete;
namespace gt = gmk_test;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// ---- the reference -------------------------------------------------------------------------

// q = softmax(filter(l / T)) in double, from the definitions in token_stats.hpp: order by logit
// (ties by index), top-p keeps a token when the mass before it is at most top_p, top-k keeps
// logits >= the k-th largest; suppressed ids are -inf.
struct reference {
    std::vector<double> q;      // the sampling distribution
    std::vector<double> model;  // softmax(l)
    std::size_t argmax = 0;
    double max = -inf, lse = -inf, margin = 0, neg_entropy = 0;
    std::size_t kept = 0;
};

template <class T>
reference reference_of(const std::vector<T>& row, const gd::sampling& s) {
    const std::size_t V = row.size();
    std::vector<double> l(V);
    for (std::size_t v = 0; v < V; ++v) l[v] = double(row[v]);
    for (gd::token id : s.suppress) l[std::size_t(id)] = -inf;
    reference r;
    r.argmax = std::size_t(std::max_element(l.begin(), l.end()) - l.begin());  // first maximum
    r.max = l[r.argmax];
    double z = 0;
    for (double x : l) z += std::exp(x - r.max);
    r.lse = r.max + std::log(z);
    r.model.resize(V);
    for (std::size_t v = 0; v < V; ++v) r.model[v] = std::exp(l[v] - r.max) / z;
    const double inv_t = s.temperature > 0 ? 1 / s.temperature : 1;
    std::vector<std::size_t> order(V);
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l[a] > l[b]; });
    std::vector<double> w(V);
    double wt = 0;
    for (std::size_t v = 0; v < V; ++v) wt += (w[v] = std::exp((l[v] - r.max) * inv_t));
    std::vector<bool> keep(V, true);
    if (s.top_p < 1) {
        double before = 0;
        for (std::size_t j = 0; j < V; ++j) {
            if (before > s.top_p * wt) keep[order[j]] = false;
            before += w[order[j]];
        }
    }
    if (s.top_k > 0 && s.top_k < V) {
        // k-th largest among the survivors (removed logits count as the lowest value)
        std::vector<double> f;
        for (std::size_t v = 0; v < V; ++v) f.push_back(keep[v] ? l[v] : -inf);
        std::vector<double> sorted = f;
        std::sort(sorted.begin(), sorted.end(), std::greater<double>());
        const double kth = sorted[s.top_k - 1];
        for (std::size_t v = 0; v < V; ++v)
            if (f[v] < kth) keep[v] = false;
    }
    double kept_w = 0;
    for (std::size_t v = 0; v < V; ++v) {
        if (!keep[v]) w[v] = 0;
        kept_w += w[v];
        if (keep[v] && l[v] > -inf) ++r.kept;
    }
    r.q.resize(V);
    std::vector<double> sq;
    for (std::size_t v = 0; v < V; ++v) {
        r.q[v] = w[v] / kept_w;
        if (r.q[v] > 0) r.neg_entropy += r.q[v] * std::log(r.q[v]);
        sq.push_back(r.q[v]);
    }
    std::sort(sq.begin(), sq.end(), std::greater<double>());
    r.margin = sq[0] - (V > 1 ? sq[1] : 0.0);
    return r;
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
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto t) {
            using T = typename decltype(t)::type;
            const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-12;
            std::uint64_t seed = 11;
            for (std::size_t V : {1u, 2u, 7u, 37u, 50u, 1000u, 4099u, 10007u, 70001u}) {
                for (const setting& st : settings) {
                    ++seed;
                    const std::vector<T> row = random_row<T>(V, V > 1000 ? 8.0 : 4.0, seed);
                    std::vector<gd::token> sup;
                    if (st.suppress && V > 3) sup = {0, gd::token(V / 2), gd::token(V - 1)};
                    gd::sampling s;
                    s.temperature = st.temperature;
                    s.top_p = st.top_p;
                    s.top_k = st.top_k;
                    s.suppress = sup;
                    const reference ref = reference_of(row, s);
                    gd::token_draw d;
                    d.uniform = gt::rng(seed).uniform();
                    const auto r = gd::token_statistics<B>(row.data(), V, s, d);
                    const std::string where = gt::label<B, T>() + " V " + std::to_string(V) + " T " +
                                              std::to_string(st.temperature) + " p " + std::to_string(st.top_p) +
                                              " k " + std::to_string(st.top_k);
                    expect(r.max == T(ref.max), where + " max");
                    expect(std::abs(double(r.log_sum_exp) - ref.lse) <= tol * std::max(1.0, std::abs(ref.lse)), where + " lse");
                    expect(r.kept == ref.kept, where + " kept " + std::to_string(r.kept) + " vs " + std::to_string(ref.kept));
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
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}
