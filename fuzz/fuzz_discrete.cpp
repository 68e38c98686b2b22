// Fuzz target: the vocabulary statistics and the selections of the masked discrete-diffusion
// sampler (gmk/discrete/token_stats.hpp, gmk/discrete/transfer.hpp) against naive references.
//
// token_statistics: one row of logits (from bytes, with -inf, NaN and +inf among them, or from a
// seed for vocabularies past one chunk, up to 10,000), a temperature, top-p, top-k, suppressed ids
// and a draw (inverse CDF, exponential race, LLaDA's float64 Gumbel race), on a backend. The
// reference is tests/support/discrete_reference.hpp's double-precision one (order by logit, ties by
// index; top-p keeps a token while the mass before it is at most top_p; top-k keeps the logits
// >= the k-th largest), with its tolerances (2e-6 float, 1e-12 double). The drawn token must lie
// in the kept set and: at T = 0 be the first argmax; by inverse CDF have u inside its interval
// of the CDF in index order; by a race carry the largest key (LLaDA's key exactly as documented,
// in double; the exponential race's q_v / E_v within rounding). Rows with NaN or +inf follow the
// documented policy. Bad settings must throw std::invalid_argument.
//
// select_top_k, select_threshold, select_sampled: confidences with -inf, NaN and ties; the
// result must be the candidates (> -inf, not NaN) in the documented order and number.
#include <gmk/discrete/token_stats.hpp>
#include <gmk/discrete/transfer.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <sstream>
#include <type_traits>
#include <vector>

#include "../tests/support/discrete_reference.hpp"
#include "fuzz_input.hpp"

namespace gd = gmk::discrete;
using gmk_fuzz::expect;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// ---- token_statistics ----------------------------------------------------------------------

using gmk_test::reference;
using gmk_test::reference_of;

template <class T>
T logit_of(std::uint8_t b, double spread) {
    switch (b) {
        case 0:
            return std::numeric_limits<T>::quiet_NaN();
        case 1:
            return std::numeric_limits<T>::infinity();
        case 2:
        case 3:
        case 4:
        case 5:
            return -std::numeric_limits<T>::infinity();
        default:
            return T(double(int(b) - 131) / 124.0 * spread);
    }
}

template <class B, class T>
void token_stats_case(gmk_fuzz::input& in) {
    // The row.
    const bool generated = in.byte() < 40;
    const std::size_t V = generated ? in.range(1, 10000) : in.range(1, 300);
    const double spread = std::array<double, 6>{1.0, 4.0, 12.0, 60.0, 1e6, 1e30}[in.choice(6)];
    std::vector<T> row(V);
    if (generated) {
        gmk_fuzz::mix m(in.bits<std::uint64_t>());
        const std::size_t special = in.range(0, 255);  // chance (of 65536) of a special value
        for (auto& x : row) {
            const std::uint8_t b = std::uint8_t(6 + m.next() % 250);
            x = (m.next() & 0xffff) < special ? logit_of<T>(std::uint8_t(m.next() % 6), spread)
                                              : logit_of<T>(b, spread);
            if ((m.next() & 0xff) < 3) x += T(spread);  // a few peaked entries, as language models have
        }
    } else {
        for (auto& x : row) x = logit_of<T>(in.byte(), spread);
    }

    // The setting.
    gd::sampling s;
    const std::size_t tk = in.choice(8);
    s.temperature = tk == 0 ? 0.0 : tk == 1 ? 1.0 : tk == 2 ? in.log_real(1e-320, 1e-3) : in.log_real(0.02, 20);
    if (in.flag()) s.top_p = in.real(0, 1);  // 0 is invalid
    if (in.flag()) s.top_k = in.range(0, V + 2);
    std::vector<gd::token> suppress;
    const std::size_t nsup = in.byte() < 64 ? in.range(0, std::min<std::size_t>(V, 8)) : 0;
    for (std::size_t i = 0; i < nsup; ++i) suppress.push_back(gd::token(in.range(0, V - 1)));
    bool suppress_valid = true;
    if (in.byte() < 240) {
        std::sort(suppress.begin(), suppress.end());
        suppress.erase(std::unique(suppress.begin(), suppress.end()), suppress.end());
    } else if (in.flag() && !suppress.empty()) {
        suppress.back() = gd::token(V + in.range(0, 3));  // out of range
    }
    for (std::size_t i = 0; i < suppress.size(); ++i)
        suppress_valid = suppress_valid && suppress[i] >= 0 && std::size_t(suppress[i]) < V &&
                         (i == 0 || suppress[i] > suppress[i - 1]);
    s.suppress = suppress;

    // The draw.
    gd::token_draw d;
    d.method = static_cast<gd::token_sampling>(in.choice(3));
    d.uniform = in.byte() < 8 ? 1.0 : in.real(0, 1) * (1 - 0x1p-53);
    std::vector<double> per_token(V);
    gmk_fuzz::mix m(in.bits<std::uint64_t>());
    for (auto& e : per_token) {
        const double u = (double(m.next() >> 11) + 0.5) * 0x1p-53;  // in (0, 1)
        e = d.method == gd::token_sampling::exponential_race ? -std::log(u) : u;
    }
    const bool pass_per_token = in.byte() >= 8;
    d.per_token = pass_per_token ? per_token.data() : nullptr;

    const bool sample = s.temperature > 0;
    const bool valid = s.top_p > 0 && s.top_p <= 1 && suppress_valid &&
                       (!sample || ((d.method == gd::token_sampling::inverse_cdf || pass_per_token) &&
                                    (d.method != gd::token_sampling::inverse_cdf || d.uniform < 1)));
    gd::token_stats<T> r;
    if (!gmk_fuzz::call_checked(valid, "token_statistics", [&] { r = gd::token_statistics<B>(row.data(), V, s, d); }))
        return;

    const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-12;
    std::vector<bool> removed(V, false);
    for (gd::token id : suppress) removed[std::size_t(id)] = true;
    // Non-finite rows: the first NaN or +inf (not suppressed) decides.
    std::size_t first_bad = V;
    bool any_finite = false;
    for (std::size_t v = 0; v < V; ++v) {
        if (removed[v]) continue;
        const T x = row[v];
        if ((x != x || x == std::numeric_limits<T>::infinity()) && first_bad == V) first_bad = v;
        if (std::isfinite(x)) any_finite = true;
    }
    const auto where = [&] {
        std::ostringstream os;
        os << gmk::simd::backend_name<B>() << (std::is_same_v<T, float> ? " float" : " double") << " V " << V << " T "
           << s.temperature << " top_p " << s.top_p << " top_k " << s.top_k << " suppressed " << suppress.size()
           << " method " << int(d.method) << " u " << d.uniform;
        return os.str();
    };
    bool has_inf = false;
    for (std::size_t v = 0; v < V; ++v)
        has_inf = has_inf || (!removed[v] && row[v] == std::numeric_limits<T>::infinity());
    if (!any_finite && !has_inf) {
        // No finite logit left (NaN among -inf counts here too: the maximum is -inf).
        expect(r.max == -std::numeric_limits<T>::infinity() && std::isnan(r.probability), "token_statistics ", where(),
               ": no finite logit: max ", r.max, " probability ", r.probability);
        if (first_bad == V)
            expect(r.log_sum_exp == -std::numeric_limits<T>::infinity() && r.kept == 0, "token_statistics ", where(),
                   ": no finite logit: lse ", r.log_sum_exp, " kept ", r.kept);
        return;
    }
    if (first_bad != V) {
        expect(r.token == first_bad && std::isnan(r.probability) && std::isnan(r.log_sum_exp) &&
                   std::isnan(r.neg_entropy) && std::isnan(r.margin),
               "token_statistics ", where(), ": non-finite row: token ", r.token, " (first NaN/+inf at ", first_bad,
               "), probability ", r.probability, " lse ", r.log_sum_exp);
        return;
    }

    std::vector<double> l(V);
    for (std::size_t v = 0; v < V; ++v) l[v] = double(row[v]);
    reference ref = reference_of(l, s);
    expect(r.max == T(ref.max), "token_statistics ", where(), ": max ", r.max, ", expected ", ref.max);
    expect(std::fabs(double(r.log_sum_exp) - ref.lse) <= tol * std::max(1.0, std::fabs(ref.lse)), "token_statistics ",
           where(), ": lse ", r.log_sum_exp, ", expected ", ref.lse);
    // top-p's cut is exact to the rounding of the row's mass: the kept count may differ by
    // tokens lighter than that (as in the test), or by tokens whose preceding mass is within that
    // rounding of top_p (the comparison with top_p may fall either way). The checks below then
    // use the reference for the kernel's cut.
    const bool filtered = s.top_p < 1 || (s.top_k > 0 && s.top_k < V);
    if (!filtered) {
        // documented: unfiltered, kept counts the vocabulary minus the suppressed ids (-inf
        // logits included)
        expect(r.kept == V - suppress.size(), "token_statistics ", where(), ": kept ", r.kept, ", expected ",
               V - suppress.size());
    } else if (r.kept != ref.kept) {
        const std::size_t lo = std::min(r.kept, ref.kept), hi = std::max(r.kept, ref.kept);
        bool rounding = s.top_p < 1 && hi <= V;
        for (std::size_t j = lo; rounding && j < hi; ++j)
            rounding = ref.sorted_q[j] <= tol || std::fabs(ref.mass_before(j) - s.top_p) <= tol;
        expect(rounding, "token_statistics ", where(), ": kept ", r.kept, ", expected ", ref.kept);
        ref = reference_of(l, s, r.kept);
    }
    expect(r.token < V && !removed[r.token] && row[r.token] > -std::numeric_limits<T>::infinity(), "token_statistics ",
           where(), ": token ", r.token, " is suppressed or -inf");
    expect(ref.keep[r.token], "token_statistics ", where(), ": token ", r.token, " is not kept");
    if (!sample) {
        expect(r.token == ref.argmax, "token_statistics ", where(), ": argmax ", r.token, ", expected ", ref.argmax);
    } else if (d.method == gd::token_sampling::inverse_cdf) {
        double before = 0;
        for (std::size_t v = 0; v < r.token; ++v) before += ref.q[v];
        expect(before <= d.uniform + tol && before + ref.q[r.token] >= d.uniform - tol, "token_statistics ", where(),
               ": inverse CDF drew ", r.token, " with mass before ", before, " and q ", ref.q[r.token]);
    } else {
        // The races over the kept tokens; the first maximum wins.
        const bool race = d.method == gd::token_sampling::exponential_race;
        double best = -1;
        std::size_t pick = V;
        std::vector<double> key(V, -1);
        for (std::size_t v = 0; v < V; ++v) {
            if (!ref.keep[v]) continue;
            key[v] = race ? ref.q[v] / per_token[v]
                          : std::exp(double(row[v])) / std::pow(-std::log(per_token[v]), s.temperature);
            if (key[v] > best) {
                best = key[v];
                pick = v;
            }
        }
        if (race) {
            // q_v / E_v is rounded to T by the kernel: the drawn key is the largest to rounding.
            expect(key[r.token] >= best * (1 - 4 * tol), "token_statistics ", where(), ": exponential race drew ",
                   r.token, " (key ", key[r.token], "), largest key ", best, " at ", pick);
        } else {
            expect(r.token == pick, "token_statistics ", where(), ": float64 Gumbel race drew ", r.token, ", expected ",
                   pick);
        }
    }
    expect(std::fabs(double(r.probability) - ref.q[r.token]) <= tol, "token_statistics ", where(), ": probability ",
           r.probability, ", expected ", ref.q[r.token]);
    expect(std::fabs(double(r.model_probability) - ref.model[r.token]) <= tol, "token_statistics ", where(),
           ": model probability ", r.model_probability, ", expected ", ref.model[r.token]);
    expect(std::fabs(double(r.margin) - ref.margin) <= tol, "token_statistics ", where(), ": margin ", r.margin,
           ", expected ", ref.margin);
    expect(std::fabs(double(r.neg_entropy) - ref.neg_entropy) <= tol * std::max(1.0, -ref.neg_entropy),
           "token_statistics ", where(), ": neg_entropy ", r.neg_entropy, ", expected ", ref.neg_entropy);
}

// ---- selections ----------------------------------------------------------------------------

template <class T>
bool before(const std::vector<T>& c, std::size_t a, std::size_t b) {
    return c[a] > c[b] || (c[a] == c[b] && a < b);
}

template <class T>
void selections(gmk_fuzz::input& in) {
    // The parameters first, then the confidences.
    const std::size_t which = in.choice(3);
    const std::size_t n = in.range(0, 200);
    const bool short_order = n > 0 && in.byte() < 8;
    const std::size_t k = in.range(0, n + 3);
    const double tau = in.byte() < 10 ? (in.flag() ? 0.0 : 1.5) : in.real(0, 1);
    const double temperature = in.byte() < 10 ? (in.flag() ? 0.0 : inf) : in.log_real(0.05, 20);
    const bool short_e = n > 0 && in.byte() < 8;
    const std::uint64_t seed = in.bits<std::uint64_t>();
    std::vector<T> c(n);
    // Confidences in [0, 1] as the samplers give them, or on a grid of any scale.
    const std::size_t kind = in.choice(4);
    const double scale = kind == 3 ? double(std::numeric_limits<T>::max()) / 128 : kind == 2 ? 1e3 : 1.0 / 8;
    for (auto& x : c) {
        const std::uint8_t b = in.byte();
        if (b < 6)
            x = b < 3    ? -std::numeric_limits<T>::infinity()
                : b == 3 ? std::numeric_limits<T>::quiet_NaN()
                : b == 4 ? std::numeric_limits<T>::infinity()
                         : T(0);
        else
            x = kind == 0 ? T(double(b - 6) / 249.0) : T(double(int(b) - 130) * scale);
    }
    std::vector<std::size_t> cand;
    for (std::size_t i = 0; i < n; ++i)
        if (c[i] > -std::numeric_limits<T>::infinity()) cand.push_back(i);
    std::vector<std::size_t> sorted = cand;
    std::sort(sorted.begin(), sorted.end(), [&](std::size_t a, std::size_t b) { return before(c, a, b); });
    std::vector<std::size_t> order(short_order ? n - 1 : n, std::size_t(-1));
    const gmk::span<const T> cs(c.data(), n);
    const gmk::span<std::size_t> os(order.data(), order.size());

    if (which == 0) {
        std::size_t got = 0;
        if (!gmk_fuzz::call_checked(!short_order, "select_top_k", [&] { got = gd::select_top_k<T>(cs, k, os); }))
            return;
        const std::size_t want = std::min(k, cand.size());
        expect(got == want, "select_top_k n ", n, " k ", k, ": returned ", got, ", expected ", want);
        for (std::size_t j = 0; j < got; ++j)
            expect(order[j] == sorted[j], "select_top_k n ", n, " k ", k, ": order[", j, "] = ", order[j],
                   ", expected ", sorted[j]);
    } else if (which == 1) {
        const bool valid = !short_order && tau > 0 && tau <= 1;
        std::size_t got = 0;
        if (!gmk_fuzz::call_checked(valid, "select_threshold", [&] { got = gd::select_threshold<T>(cs, tau, os); }))
            return;
        std::vector<std::size_t> want;
        for (std::size_t j = 0; j < sorted.size(); ++j)
            if (j == 0 || double(c[sorted[j]]) >= tau) want.push_back(sorted[j]);
        expect(got == want.size(), "select_threshold n ", n, " tau ", tau, ": returned ", got, ", expected ",
               want.size());
        for (std::size_t j = 0; j < got; ++j)
            expect(order[j] == want[j], "select_threshold n ", n, " tau ", tau, ": order[", j, "] = ", order[j],
                   ", expected ", want[j]);
    } else {
        std::vector<double> e(n);
        gmk_fuzz::mix m(seed);
        for (auto& x : e) x = -std::log((double(m.next() >> 11) + 0.5) * 0x1p-53);
        const gmk::span<const double> es(e.data(), short_e ? n - 1 : n);
        const bool valid = !short_order && !short_e && temperature > 0 && std::isfinite(temperature);
        // softmax(c / temperature) is defined for finite confidences only (an infinite one
        // would take all the mass: not a case the samplers produce).
        for (std::size_t i : cand)
            if (std::isinf(c[i])) return;
        std::size_t got = 0;
        if (!gmk_fuzz::call_checked(valid, "select_sampled",
                                    [&] { got = gd::select_sampled<T>(cs, temperature, k, es, os); }))
            return;
        const std::size_t want = std::min(k, cand.size());
        expect(got == want, "select_sampled n ", n, " k ", k, ": returned ", got, ", expected ", want);
        if (got == 0) return;
        // Keys w_i / E_i with w = softmax(c / temperature), in double: the selected are distinct
        // candidates, in descending key order, and no other candidate's key is larger than the
        // last selected one (each to the rounding of T).
        double top = -inf;
        for (std::size_t i : cand) top = std::max(top, double(c[i]));
        double z = 0;
        for (std::size_t i : cand) z += std::exp((double(c[i]) - top) / temperature);
        std::vector<double> key(n, -1);
        for (std::size_t i : cand) key[i] = std::exp((double(c[i]) - top) / temperature) / z / e[i];
        const double rel = 8 * std::numeric_limits<T>::epsilon() * (1 + std::fabs(top) / temperature);
        // (a weight below T's smallest normal may be flushed or rounded: slack min / E)
        const auto slack = [&](std::size_t i) { return double(std::numeric_limits<T>::min()) / e[i]; };
        // (the key plus its rounding; rel is infinite where |top| / T overflows: no bound then,
        // and a key of 0 stays 0 rather than 0 * inf)
        const auto above = [&](double x) { return x == 0 ? 0.0 : x * (1 + rel); };
        std::vector<bool> chosen(n, false);
        for (std::size_t j = 0; j < got; ++j) {
            expect(order[j] < n && key[order[j]] >= 0 && !chosen[order[j]], "select_sampled: order[", j,
                   "] = ", order[j], " is not a new candidate");
            chosen[order[j]] = true;
            if (j > 0)
                expect(key[order[j]] - slack(order[j]) <= above(key[order[j - 1]]) + slack(order[j - 1]),
                       "select_sampled n ", n, " k ", k, " T ", temperature, ": keys not descending at ", j, ": ",
                       key[order[j - 1]], " then ", key[order[j]]);
        }
        const std::size_t last = order[got - 1];
        for (std::size_t i : cand)
            expect(chosen[i] || key[i] - slack(i) <= above(key[last]) + slack(last), "select_sampled n ", n, " k ",
                   k, " T ", temperature, ": candidate ", i, " (key ", key[i], ") left out, last selected key ",
                   key[last]);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    gmk_fuzz::input in(data, size);
    const std::size_t what = in.choice(4);
    if (what >= 2) {
        what == 2 ? selections<float>(in) : selections<double>(in);
        return 0;
    }
    gmk_fuzz::with_backend(in.byte(), [&](auto b) {
        using B = decltype(b);
        if (what == 0)
            token_stats_case<B, float>(in);
        else
            token_stats_case<B, double>(in);
    });
    return 0;
}
