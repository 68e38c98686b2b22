// The double-precision reference of the vocabulary statistics (gmk/discrete/token_stats.hpp),
// shared by tests/discrete_token_stats.cpp and fuzz/fuzz_discrete.cpp: Dream's filter order
// (temperature, top-p, top-k), tokens ordered by logit with ties by index, top-p keeping a token
// while the mass before it is at most top_p, top-k keeping the logits >= the k-th largest among
// the survivors (removed logits count as the lowest value), suppressed ids at -inf.
#pragma once

#include <gmk/discrete/token_stats.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

namespace gmk_test {

struct reference {
    std::vector<double> q, model;
    std::vector<bool> keep;
    std::vector<std::size_t> order;  // tokens by logit, ties by index
    std::vector<double> sorted_q;    // the unfiltered tempered distribution in that order
    std::size_t argmax = 0, kept = 0;
    double max = -std::numeric_limits<double>::infinity(), lse = max, margin = 0, neg_entropy = 0;
    double mass_before(std::size_t n) const {
        double m = 0;
        for (std::size_t j = 0; j < n && j < sorted_q.size(); ++j) m += sorted_q[j];
        return m;
    }
};

/// The reference for one row of logits (finite; -inf allowed). With `forced`, the filters keep
/// exactly the first `forced` tokens of the order instead.
inline reference reference_of(const std::vector<double>& logits, const gmk::discrete::sampling& s,
                              std::size_t forced = std::size_t(-1)) {
    constexpr double ninf = -std::numeric_limits<double>::infinity();
    const std::size_t V = logits.size();
    std::vector<double> l = logits;
    for (gmk::discrete::token id : s.suppress) l[std::size_t(id)] = ninf;
    reference r;
    r.argmax = std::size_t(std::max_element(l.begin(), l.end()) - l.begin());
    r.max = l[r.argmax];
    double z = 0;
    for (double x : l) z += std::exp(x - r.max);
    r.lse = r.max + std::log(z);
    r.model.resize(V);
    for (std::size_t v = 0; v < V; ++v) r.model[v] = std::exp(l[v] - r.max) / z;
    // (a temperature whose reciprocal overflows is the T -> 0 limit, as token_stats.hpp defines it)
    const double inv_t = s.temperature > 0 ? std::min(1 / s.temperature, std::numeric_limits<double>::max()) : 1;
    r.order.resize(V);
    std::iota(r.order.begin(), r.order.end(), std::size_t(0));
    std::stable_sort(r.order.begin(), r.order.end(), [&](std::size_t a, std::size_t b) { return l[a] > l[b]; });
    std::vector<double> w(V);
    double wt = 0;
    for (std::size_t v = 0; v < V; ++v) wt += (w[v] = std::exp((l[v] - r.max) * inv_t));
    for (std::size_t j = 0; j < V; ++j) r.sorted_q.push_back(w[r.order[j]] / wt);
    r.keep.assign(V, true);
    if (s.top_p < 1) {
        double before = 0;
        for (std::size_t j = 0; j < V; ++j) {
            if (before > s.top_p * wt) r.keep[r.order[j]] = false;
            before += w[r.order[j]];
        }
    }
    if (s.top_k > 0 && s.top_k < V) {
        std::vector<double> f;
        for (std::size_t v = 0; v < V; ++v) f.push_back(r.keep[v] ? l[v] : ninf);
        std::vector<double> sorted = f;
        std::sort(sorted.begin(), sorted.end(), std::greater<double>());
        const double kth = sorted[s.top_k - 1];
        for (std::size_t v = 0; v < V; ++v)
            if (f[v] < kth) r.keep[v] = false;
    }
    if (forced != std::size_t(-1))
        for (std::size_t j = 0; j < V; ++j) r.keep[r.order[j]] = j < forced;
    double kept_w = 0;
    for (std::size_t v = 0; v < V; ++v) {
        if (!r.keep[v] || !(l[v] > ninf)) {
            r.keep[v] = false;
            w[v] = 0;
        }
        kept_w += w[v];
        if (r.keep[v]) ++r.kept;
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

}  // namespace gmk_test
