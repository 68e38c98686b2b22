// Tests of gmk/discrete/sedd.hpp: the log-linear noise, the time grid and the step rates against
// their closed forms; each step's transition probabilities against a double reference on every
// backend, float and double; the draws by chi-square, with a deliberately wrong formula failing
// the same test; a full run with the exact scores of a known joint distribution reproducing it;
// bad input.
#include <gmk/discrete/sedd.hpp>
#include <gmk/random/fill.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gd = gmk::discrete;
namespace gt = gmk_test;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

bool close(double a, double b, double rel) { return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)); }

// ---- the reference ---------------------------------------------------------------------------

// A masked row's transition in double, from the definitions in sedd.hpp: P(j) = r s_j / Z,
// P(stay) = max(0, 1 - r S) / Z with Z = max(1, r S); the denoising step (r = inf) s_j / S.
template <class T>
std::vector<double> transition_of(const std::vector<T>& row, gd::token mask, double rate) {
    const std::size_t V = row.size(), m = std::size_t(mask);
    double S = 0;
    for (std::size_t j = 0; j < V; ++j)
        if (j != m) S += std::exp(double(row[j]));
    std::vector<double> p(V);
    const double z = rate == inf ? S : std::max(1.0, rate * S);
    for (std::size_t j = 0; j < V; ++j) p[j] = (rate == inf ? 1.0 : rate) * std::exp(double(row[j])) / z;
    p[m] = rate == inf ? 0.0 : std::max(0.0, 1 - rate * S) / z;
    return p;
}

template <class T>
double score_sum(const std::vector<T>& row, gd::token mask) {
    double S = 0;
    for (std::size_t j = 0; j < row.size(); ++j)
        if (j != std::size_t(mask)) S += std::exp(double(row[j]));
    return S;
}

// softmax(row) in double.
template <class T>
std::vector<double> softmax(const std::vector<T>& row) {
    double m = -inf, z = 0;
    for (T x : row) m = std::max(m, double(x));
    std::vector<double> p(row.size());
    for (std::size_t j = 0; j < row.size(); ++j) z += (p[j] = std::exp(double(row[j]) - m));
    for (double& x : p) x /= z;
    return p;
}

// Pearson's chi-square of `counts` (n draws) against p; a draw in a cell of probability 0 gives
// inf. df: the cells of positive probability, minus one.
double chi_square(const std::vector<std::size_t>& counts, const std::vector<double>& p, std::size_t& df) {
    std::size_t n = 0, cells = 0;
    for (std::size_t c : counts) n += c;
    double x = 0;
    for (std::size_t j = 0; j < p.size(); ++j) {
        if (p[j] <= 0) {
            if (counts[j] > 0) return inf;
            continue;
        }
        ++cells;
        const double e = double(n) * p[j];
        x += (double(counts[j]) - e) * (double(counts[j]) - e) / e;
    }
    df = cells - 1;
    return x;
}

// The chi-square value a correct sampler exceeds with probability 1e-6 (Wilson-Hilferty).
double chi_square_limit(std::size_t df) {
    const double k = double(df), z = 4.753;  // upper 1e-6 quantile of N(0, 1)
    const double a = 2 / (9 * k);
    return k * std::pow(1 - a + z * std::sqrt(a), 3);
}

std::vector<std::size_t> histogram(const std::vector<gd::token>& x, std::size_t cells) {
    std::vector<std::size_t> h(cells);
    for (gd::token v : x) ++h[std::size_t(v)];
    return h;
}

// n copies of one masked row, stepped once at `rate` (score matrix and tokens returned).
template <class B, class T>
std::vector<gd::token> step_copies(const std::vector<T>& row, gd::token mask, double rate, std::size_t n,
                                   const gd::sedd_draws& d, const gmk::executor& exec = gmk::executor()) {
    const std::size_t V = row.size();
    std::vector<T> scores(n * V);
    for (std::size_t i = 0; i < n; ++i) std::copy(row.begin(), row.end(), scores.begin() + std::ptrdiff_t(i * V));
    std::vector<gd::token> tokens(n, mask);
    gd::sedd_step<B>(gmk::matrix_view<T>(scores.data(), n, V), tokens, mask, rate, d, exec);
    return tokens;
}

// The rows the draws are tested on: log scores of a position at time t under the exact scores of
// a distribution p over the tokens, times `factor` (1: exact), and the step's rate.
struct scenario {
    const char* name;
    std::size_t vocab;
    gd::token mask;
    gd::sedd_predictor predictor;
    bool denoise;
    double t, dt, factor;
    bool power;  // whether the wrong formula (wrong_transition) is far enough off to fail at n draws
};

const scenario scenarios[] = {
    // the first of two analytic steps: e^dsigma - 1 = 496.5, dsigma = 6.2; r S = 1/2
    {"analytic t=1 dt=1/2", 7, 3, gd::sedd_predictor::analytic, false, 1.0, (1 - 1e-5) / 2, 1.0, true},
    // a late analytic step with r S = 0.2, where dsigma = 0.01046 and e^dsigma - 1 = 0.01052
    // differ by 0.5%: the wrong formula is not expected to fail here
    {"analytic t=0.05 dt=0.01", 11, 0, gd::sedd_predictor::analytic, false, 0.05, 0.01, 1.0, false},
    // Euler with scores 3x too large: r S = 1.5, the stay weight clamped at 0
    {"euler t=0.5 dt=1/4 scores x3", 5, 4, gd::sedd_predictor::euler, false, 0.5, 0.25, 3.0, true},
    // Euler, 128 steps, near the start: r S = dt / t = 0.0087
    {"euler t=0.9 dt=1/128", 13, 6, gd::sedd_predictor::euler, false, 0.9, 1.0 / 128, 1.0, true},
    // the final denoising step, the mask last as in the reference, on scores of an inexact model
    // (S = 1 rather than 1 / (e^sigma - 1) = 1e5)
    {"denoise", 9, 8, gd::sedd_predictor::euler, true, 1e-5, 0, 1e-5, true},
};

template <class T>
std::vector<T> scenario_row(const scenario& s, std::uint64_t seed) {
    const gd::loglinear_noise noise;
    std::vector<double> p = gt::uniform_vector<double>(s.vocab, 0.2, 3.0, seed);
    p[std::size_t(s.mask)] = 0;
    double total = 0;
    for (double x : p) total += x;
    std::vector<T> row(s.vocab);
    const double lr = -std::log(std::expm1(noise.sigma(s.t))) + std::log(s.factor);  // log(alpha / (1 - alpha))
    for (std::size_t j = 0; j < s.vocab; ++j) row[j] = T(lr + std::log(p[j] / total));
    row[std::size_t(s.mask)] = 0;  // as the SEDD network writes it; ignored
    return row;
}

double scenario_rate(const scenario& s) {
    return s.denoise ? gd::sedd_denoise_rate : gd::sedd_rate(s.predictor, gd::loglinear_noise{}, s.t, s.dt);
}

// The same rate in closed form, for the expected distribution: alpha = 1 - (1 - eps) t, euler
// dt sigma'(t) = dt (1 - eps) / alpha(t), analytic e^dsigma - 1 = alpha(t - dt) / alpha(t) - 1,
// which is the same expression.
double closed_form_rate(const scenario& s) {
    return s.denoise ? inf : s.dt * (1 - 1e-3) / (1 - (1 - 1e-3) * s.t);
}

// The scenario's transition under a deliberately wrong formula: r = dsigma for e^dsigma - 1
// (analytic), r = dt for dt sigma'(t) (euler), the mask column not dropped (denoising: it keeps
// the weight e^0 = 1 the network gives it).
std::vector<double> wrong_transition(const scenario& s, const std::vector<double>& row) {
    const gd::loglinear_noise n;
    if (s.denoise) return softmax(row);
    const double r = s.predictor == gd::sedd_predictor::analytic ? n.sigma(s.t) - n.sigma(s.t - s.dt) : s.dt;
    return transition_of(row, s.mask, r);
}

// ---- the full run: two positions, the exact scores of a known joint ------------------------------

// p(a, b) over the 5 tokens {0, 1, 3, 4, 5} of a 6-token vocabulary whose mask is 2; the model
// gives s_j = alpha / (1 - alpha) p(x_i = j | the other position if unmasked), alpha = e^-sigma,
// for each masked position of every pair (2k, 2k + 1).
struct pair_model {
    static constexpr std::size_t V = 6;
    static constexpr gd::token mask = 2;
    std::vector<double> joint = std::vector<double>(V * V);   // p(a, b), 0 in the mask's row and column
    std::vector<double> first = std::vector<double>(V), second = std::vector<double>(V);  // marginals
    // log p(x_i = j | other = o) for i = 0, 1 and o in [0, V) (o = mask: the marginal)
    std::vector<double> log_cond = std::vector<double>(2 * V * V);

    explicit pair_model(std::uint64_t seed) {
        gt::rng g(seed);
        double total = 0;
        for (std::size_t a = 0; a < V; ++a)
            for (std::size_t b = 0; b < V; ++b) {
                if (a == std::size_t(mask) || b == std::size_t(mask)) continue;
                // a dependent joint: a random table with a boosted diagonal
                double w = std::exp(g.uniform(-1.0, 1.0)) * (a == b ? 2.0 : 1.0);
                total += joint[a * V + b] = w;
            }
        for (double& x : joint) x /= total;
        for (std::size_t a = 0; a < V; ++a)
            for (std::size_t b = 0; b < V; ++b) {
                first[a] += joint[a * V + b];
                second[b] += joint[a * V + b];
            }
        for (std::size_t o = 0; o < V; ++o)
            for (std::size_t j = 0; j < V; ++j) {
                const bool m = o == std::size_t(mask);
                log_cond[(0 * V + o) * V + j] = std::log(m ? first[j] : joint[j * V + o] / second[o]);
                log_cond[(1 * V + o) * V + j] = std::log(m ? second[j] : joint[o * V + j] / first[o]);
            }
    }

    template <class T>
    void operator()(gmk::span<const gd::token> x, gmk::matrix_view<T> out, const gd::sedd_call& c) const {
        const double lr = -std::log(std::expm1(c.sigma));  // log(alpha / (1 - alpha))
        for (std::size_t pos = 0; pos < x.size(); ++pos) {
            if (x[pos] != mask) continue;
            const std::size_t i = pos % 2, o = std::size_t(x[pos ^ 1]);
            for (std::size_t j = 0; j < V; ++j) out(pos, j) = j == std::size_t(mask) ? T(0) : T(lr + log_cond[(i * V + o) * V + j]);
        }
    }
};

// The law of the sampler's pairs with exact scores: a masked position unmasks at step k with
// probability r_k S_k = dt / t_k (both predictors, S_k = 1 / (e^sigma(t_k) - 1)), independently
// of the other; two positions unmasked in the same step (or both by the denoising step) are drawn
// from the marginals, otherwise the second from its conditional. So q = (1 - c) p + c p1 p2, c
// the chance of a shared step.
double shared_step_chance(const gd::sedd_options& o) {
    const double dt = (1 - o.t_end) / double(o.steps);
    double both = 1, c = 0;  // both: P(both masked before step k)
    for (std::size_t k = 0; k < o.steps; ++k) {
        const double t = 1 - double(k) * dt, pi = std::min(1.0, dt / t);
        c += both * pi * pi;
        both *= (1 - pi) * (1 - pi);
    }
    return c + both;
}

}  // namespace

TEST_CASE("sedd: the log-linear noise, the time grid and the step rates", "[discrete][sedd]") {
    const gd::loglinear_noise noise;
    CHECK(noise.eps == 1e-3);
    CHECK(close(noise.sigma(1), 6.907755278982137, 1e-15));  // -log(1e-3)
    CHECK(noise.sigma(0) == 0);
    CHECK(close(noise.rate(1), 999, 1e-13));
    CHECK(close(noise.rate(0), 0.999, 1e-15));
    for (double t : {0.1, 0.5, 0.9}) {
        const double h = 1e-5;  // sigma' against a central difference
        CHECK(close((noise.sigma(t + h) - noise.sigma(t - h)) / (2 * h), noise.rate(t), 1e-8));
    }
    const std::vector<double> ts = gd::sedd_timesteps(4);
    REQUIRE(ts.size() == 5);
    CHECK(ts[0] == 1);
    CHECK(ts[4] == 1e-5);  // torch.linspace's ends are exact
    CHECK(close(ts[1], 1 - (1 - 1e-5) / 4, 1e-15));
    CHECK(close(ts[2], 0.500005, 1e-15));
    // euler: r = dt sigma'(t); analytic: r = e^dsigma - 1 = (alpha(t - dt) - alpha(t)) / alpha(t),
    // alpha = 1 - (1 - eps) t. With exact scores (S = 1 / (e^sigma - 1)) both unmask with
    // probability r S = dt / t: the masked-diffusion rule (alpha_s - alpha_t) / (1 - alpha_t).
    gt::mismatch_log log;
    for (std::size_t steps : {1u, 2u, 7u, 128u, 1000u}) {
        const std::vector<double> grid = gd::sedd_timesteps(steps);
        const double dt = (1 - 1e-5) / double(steps);
        for (std::size_t k = 0; k < steps; ++k) {
            const double t = grid[k], alpha = 1 - (1 - noise.eps) * t;
            const double re = gd::sedd_rate(gd::sedd_predictor::euler, noise, t, dt);
            const double ra = gd::sedd_rate(gd::sedd_predictor::analytic, noise, t, dt);
            const std::string at = "steps " + std::to_string(steps) + " k " + std::to_string(k);
            if (!close(re, dt * (1 - noise.eps) / alpha, 1e-14)) log.add(at, " euler ", re);
            if (!close(ra, (1 - noise.eps) * dt / alpha, 1e-11)) log.add(at, " analytic ", ra);
            if (!close(re / std::expm1(noise.sigma(t)), dt / t, 1e-12)) log.add(at, " euler r S");
            if (!close(ra / std::expm1(noise.sigma(t)), dt / t, 1e-11)) log.add(at, " analytic r S");
        }
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sedd_transition_row gives the closed-form transition on every backend", "[discrete][sedd]") {
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto tt) {
            using T = typename decltype(tt)::type;
            const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-13;
            std::uint64_t seed = 3;
            for (std::size_t V : {5u, 7u, 13u, 29u, 1001u}) {
                for (std::size_t m : {std::size_t(0), V / 2, V - 1}) {
                    // r S from tiny through 1 (stay weight near 0) to above 1 (clamped) and the denoising step
                    for (double rs : {1e-4, 0.3, 0.97, 0.999999, 1.000001, 2.5, inf}) {
                        const std::vector<T> row = gt::uniform_vector<T>(V, -4, 2, ++seed);
                        const gd::token mask = gd::token(m);
                        const double rate = rs == inf ? gd::sedd_denoise_rate : rs / score_sum(row, mask);
                        const std::vector<double> ref = transition_of(row, mask, rate);
                        std::vector<T> w = row, ws = row;
                        const T written = gd::sedd_transition_row<B>(w.data(), V, mask, rate);
                        const T scalar = gd::sedd_transition_row<simd::scalar>(ws.data(), V, mask, rate);
                        const std::string where = gt::label<B, T>() + " V " + std::to_string(V) + " mask " +
                                                  std::to_string(m) + " rS " + std::to_string(rs);
                        if (!(w[m] == written)) log.add(where, " returned value");
                        for (std::size_t j = 0; j < V; ++j)
                            if (j != m && !gt::same_bits(w[j], row[j])) log.add(where, " column ", j, " changed");
                        // the transition, against the reference and the scalar backend (the written
                        // log weight itself is ill-conditioned where 1 - r S cancels)
                        const std::vector<double> got = softmax(w), got_scalar = softmax(ws);
                        if (!(ws[m] == scalar)) log.add(where, " scalar returned value");
                        for (std::size_t j = 0; j < V; ++j) {
                            if (!(std::abs(got[j] - ref[j]) <= tol)) log.add(where, " P(", j, ") ", got[j], " vs ", ref[j]);
                            if (!(std::abs(got[j] - got_scalar[j]) <= tol))
                                log.add(where, " P(", j, ") ", got[j], " vs scalar ", got_scalar[j]);
                        }
                    }
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sedd_step draws by inverse CDF on every backend, the same tokens as the scalar backend", "[discrete][sedd]") {
    gt::mismatch_log log;
    constexpr std::size_t n = 1000;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto tt) {
            using T = typename decltype(tt)::type;
            const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-13;
            std::uint64_t seed = 100;
            for (const scenario& s : scenarios) {
                const std::vector<T> row = scenario_row<T>(s, ++seed);
                const double rate = scenario_rate(s);
                const std::vector<double> ref = transition_of(row, s.mask, rate);
                const std::vector<double> u = gt::uniform_vector<double>(n, 0, 1, ++seed);
                const gd::sedd_draws d{0, 0, u};
                const std::vector<gd::token> got = step_copies<B>(row, s.mask, rate, n, d);
                const std::vector<gd::token> scalar = step_copies<simd::scalar>(row, s.mask, rate, n, d);
                for (std::size_t i = 0; i < n; ++i) {
                    // u lies in the chosen outcome's interval of the CDF in index order
                    const std::size_t k = std::size_t(got[i]);
                    double before = 0;
                    for (std::size_t j = 0; j < k; ++j) before += ref[j];
                    const bool inside = ref[k] > 0 && before <= u[i] + tol && before + ref[k] >= u[i] - tol;
                    if (!inside) log.add(gt::label<B, T>(), " ", s.name, " u ", u[i], " drew ", k);
                    if (got[i] != scalar[i]) {
                        // allowed only at a boundary, where rounding decides
                        double edge = 0, nearest = inf;
                        for (double p : ref) nearest = std::min(nearest, std::abs(u[i] - (edge += p)));
                        if (nearest > tol) log.add(gt::label<B, T>(), " ", s.name, " draw ", i, " differs from scalar");
                    }
                }
            }
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("sedd_step: Philox draws, threads, frozen positions", "[discrete][sedd]") {
    const scenario& s = scenarios[0];
    const std::vector<float> row = scenario_row<float>(s, 7);
    const double rate = scenario_rate(s);
    constexpr std::size_t n = 1000;
    // the stream (seed, step): element i is position i's uniform
    std::vector<double> u(n);
    gmk::random::uniform_fill<simd::scalar>(gmk::random::philox_stream(42, 5), 0, u.data(), n);
    const std::vector<gd::token> given = step_copies<simd::native>(row, s.mask, rate, n, gd::sedd_draws{0, 0, u});
    CHECK(step_copies<simd::native>(row, s.mask, rate, n, gd::sedd_draws{42, 5, {}}) == given);
    CHECK(step_copies<simd::native>(row, s.mask, rate, n, gd::sedd_draws{42, 5, {}}, gt::threaded_executor(4)) == given);
    CHECK(step_copies<simd::native>(row, s.mask, rate, n, gd::sedd_draws{42, 6, {}}) != given);

    // Unmasked positions keep their token and their row; masked ones only see their mask column written.
    const std::size_t V = s.vocab;
    std::vector<float> scores(n * V);
    std::vector<gd::token> tokens(n, s.mask);
    for (std::size_t i = 0; i < n; ++i) {
        std::copy(row.begin(), row.end(), scores.begin() + std::ptrdiff_t(i * V));
        if (i % 3 == 0) tokens[i] = gd::token(i % V == std::size_t(s.mask) ? 0 : i % V);
    }
    const std::vector<gd::token> before = tokens;
    const std::size_t left = gd::sedd_step(gmk::matrix_view<float>(scores.data(), n, V), tokens, s.mask, rate, gd::sedd_draws{1, 0, {}});
    CHECK(left == std::size_t(std::count(tokens.begin(), tokens.end(), s.mask)));
    std::size_t frozen_bad = 0, rows_bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (before[i] != s.mask && tokens[i] != before[i]) ++frozen_bad;
        for (std::size_t j = 0; j < V; ++j) {
            const bool may_change = before[i] == s.mask && j == std::size_t(s.mask);
            if (!may_change && scores[i * V + j] != row[j]) ++rows_bad;
        }
    }
    CHECK(frozen_bad == 0);
    CHECK(rows_bad == 0);

    // A row with no finite token score stays masked, at a predictor step and at the denoising step.
    for (double r : {0.5, gd::sedd_denoise_rate}) {
        std::vector<double> dead(5, -inf);
        std::vector<gd::token> one(1, 2);
        CHECK(gd::sedd_step(gmk::matrix_view<double>(dead.data(), 1, 5), one, 2, r, gd::sedd_draws{}) == 1);
        CHECK(one[0] == 2);
    }
}

TEST_CASE("sedd_step samples each step's transition (chi-square); a wrong formula fails the same test", "[discrete][sedd]") {
    constexpr std::size_t n = 50000;
    gt::for_each_type<float, double>([&](auto tt) {
        using T = typename decltype(tt)::type;
        std::uint64_t seed = 500;
        for (const scenario& s : scenarios) {
            const std::vector<T> row = scenario_row<T>(s, ++seed);
            const double rate = scenario_rate(s);
            const std::vector<double> ref = transition_of(row, s.mask, closed_form_rate(s));
            const std::vector<gd::token> x = step_copies<simd::native>(row, s.mask, rate, n, gd::sedd_draws{++seed * sizeof(T), 0, {}});
            const std::vector<std::size_t> h = histogram(x, s.vocab);
            std::size_t df = 0, df_wrong = 0;
            const double stat = chi_square(h, ref, df);
            std::vector<double> row_d(row.begin(), row.end());
            const double wrong = chi_square(h, wrong_transition(s, row_d), df_wrong);
            const double limit = chi_square_limit(df), limit_wrong = chi_square_limit(std::max<std::size_t>(df_wrong, 1));
            INFO(gt::type_name<T>() << " " << s.name << ": chi2 " << stat << " (df " << df << ", limit " << limit
                                    << "), wrong formula " << wrong << " (limit " << limit_wrong << "), stays "
                                    << h[std::size_t(s.mask)] << " of " << n << " (P " << ref[std::size_t(s.mask)] << ")");
            CHECK(stat < limit);
            if (s.power) CHECK(wrong > limit_wrong);
            if (s.factor > 1 || s.denoise) CHECK(h[std::size_t(s.mask)] == 0);  // r S > 1: the stay weight is clamped at 0
        }
    });
}

TEST_CASE("sedd_sample with exact scores reproduces a known joint distribution", "[discrete][sedd]") {
    const pair_model model(2024);
    constexpr std::size_t V = pair_model::V, pairs = 10000;
    gt::for_each_type<float, double>([&](auto tt) {
        using T = typename decltype(tt)::type;
        for (gd::sedd_predictor pred : {gd::sedd_predictor::euler, gd::sedd_predictor::analytic}) {
            gd::sedd_options o;
            o.predictor = pred;
            o.steps = 48;
            o.seed = 77 + std::uint64_t(pred) + 10 * sizeof(T);
            std::vector<gd::token> x(2 * pairs, pair_model::mask);
            std::vector<T> scores(x.size() * V);
            const std::size_t left = gd::sedd_sample(model, x, gmk::matrix_view<T>(scores.data(), x.size(), V), pair_model::mask, o);
            REQUIRE(left == 0);
            std::vector<std::size_t> h(V * V);
            for (std::size_t k = 0; k < pairs; ++k) ++h[std::size_t(x[2 * k]) * V + std::size_t(x[2 * k + 1])];
            // p: the target; q: the sampler's exact law at this step count (p but for two
            // positions unmasked in one step, c of the time); p1 p2: what ignoring the context gives.
            const double c = shared_step_chance(o);
            std::vector<double> q(V * V), indep(V * V);
            double drift = 0;
            for (std::size_t a = 0; a < V; ++a)
                for (std::size_t b = 0; b < V; ++b) {
                    const double p = model.joint[a * V + b], pp = model.first[a] * model.second[b];
                    q[a * V + b] = (1 - c) * p + c * pp;
                    indep[a * V + b] = pp;
                    if (p > 0) drift += double(pairs) * (q[a * V + b] - p) * (q[a * V + b] - p) / p;
                }
            std::size_t df = 0, df_q = 0, df_i = 0;
            const double vs_p = chi_square(h, model.joint, df), vs_q = chi_square(h, q, df_q), vs_indep = chi_square(h, indep, df_i);
            const double limit = chi_square_limit(df);
            INFO(gt::type_name<T>() << (pred == gd::sedd_predictor::euler ? " euler" : " analytic") << ", " << o.steps
                                    << " steps, " << pairs << " pairs: chi2 vs p " << vs_p << ", vs the sampler's law q "
                                    << vs_q << ", vs p1 p2 " << vs_indep << " (df " << df << ", limit " << limit
                                    << "); shared-step chance " << c << ", noncentrality of q vs p " << drift);
            CHECK(drift < 3);  // the step count makes q close enough to p for the test against p to mean it
            CHECK(vs_p < limit);
            CHECK(vs_q < limit);
            CHECK(vs_indep > limit);  // the test can tell a sampler that ignores the context
        }
    });
}

TEST_CASE("sedd_sample does not depend on the executor", "[discrete][sedd]") {
    const pair_model model(5);
    constexpr std::size_t V = pair_model::V, L = 1500;
    gd::sedd_options o;
    o.predictor = gd::sedd_predictor::analytic;
    o.steps = 16;
    o.seed = 3;
    std::vector<gd::token> a(L, pair_model::mask), b = a;
    std::vector<double> sa(L * V), sb(L * V);
    gd::sedd_sample(model, a, gmk::matrix_view<double>(sa.data(), L, V), pair_model::mask, o);
    gd::sedd_sample(model, b, gmk::matrix_view<double>(sb.data(), L, V), pair_model::mask, o, gt::threaded_executor(3));
    CHECK(a == b);
    // a prompt stays, and the model is not called once nothing is masked
    std::vector<gd::token> c(L, 1);
    std::size_t calls = 0;
    auto counting = [&](gmk::span<const gd::token>, gmk::matrix_view<double>, const gd::sedd_call&) { ++calls; };
    CHECK(gd::sedd_sample(counting, c, gmk::matrix_view<double>(sa.data(), L, V), pair_model::mask, o) == 0);
    CHECK(calls == 0);
    CHECK(std::count(c.begin(), c.end(), 1) == std::ptrdiff_t(L));
}

TEST_CASE("sedd: bad input throws naming the argument", "[discrete][sedd]") {
    constexpr std::size_t L = 4, V = 6;
    std::vector<float> s(L * V);
    std::vector<gd::token> x(L, 2);
    const auto m = gmk::matrix_view<float>(s.data(), L, V);
    auto model = [](gmk::span<const gd::token>, gmk::matrix_view<float>, const gd::sedd_call&) {};
    const auto sample = [&](gd::sedd_options o, gmk::matrix_view<float> mv, gd::token mask) {
        return gd::sedd_sample(model, x, mv, mask, o);
    };
    gd::sedd_options o;
    gd::sedd_options bad = o;
    bad.steps = 0;
    gt::require_throws_naming([&] { sample(bad, m, 2); }, "options.steps");
    bad = o;
    bad.noise.eps = 0;
    gt::require_throws_naming([&] { sample(bad, m, 2); }, "options.noise.eps");
    bad.noise.eps = 1;
    gt::require_throws_naming([&] { sample(bad, m, 2); }, "options.noise.eps");
    bad = o;
    bad.t_end = 1;
    gt::require_throws_naming([&] { sample(bad, m, 2); }, "options.t_end");
    gt::require_throws_naming([&] { sample(o, gmk::matrix_view<float>(s.data(), L, 0), 0); }, "log_scores.cols()");
    gt::require_throws_naming([&] { sample(o, m, 6); }, "mask");
    gt::require_throws_naming([&] { sample(o, m, -1); }, "mask");
    gt::require_throws_naming([&] { sample(o, gmk::matrix_view<float>(s.data(), L - 1, V), 2); }, "tokens.size()");
    x[1] = 7;
    gt::require_throws_naming([&] { sample(o, m, 2); }, "tokens[i]");
    x[1] = 2;

    const std::vector<double> u3(3, 0.5), u_one(L, 1.0);
    gt::require_throws_naming([&] { gd::sedd_step(m, x, 2, 1.0, gd::sedd_draws{0, 0, u3}); }, "draws.uniforms.size()");
    gt::require_throws_naming([&] { gd::sedd_step(m, x, 2, 1.0, gd::sedd_draws{0, 0, u_one}); }, "draws.uniforms[i]");
    gt::require_throws_naming([&] { gd::sedd_step(m, x, 2, 0.0, gd::sedd_draws{}); }, "rate");
    gt::require_throws_naming([&] { gd::sedd_step(m, x, 2, std::nan(""), gd::sedd_draws{}); }, "rate");
    gt::require_throws_naming([&] { gd::sedd_step(m, x, 9, 1.0, gd::sedd_draws{}); }, "mask");
    gt::require_throws_naming([&] { gd::sedd_transition_row(s.data(), 0, 0, 1.0); }, "vocab");
    gt::require_throws_naming([&] { gd::sedd_transition_row(s.data(), V, 6, 1.0); }, "mask");
    gt::require_throws_naming([&] { gd::sedd_timesteps(0); }, "steps");
    gt::require_throws_naming([&] { gd::sedd_timesteps(4, 0.0); }, "t_end");
    const gd::loglinear_noise n;
    gt::require_throws_naming([&] { gd::sedd_rate(gd::sedd_predictor::euler, n, 0.5, 0.6); }, "dt");
    gt::require_throws_naming([&] { gd::sedd_rate(gd::sedd_predictor::euler, n, 1.5, 0.1); }, "t");
    gt::require_throws_naming([&] { gd::sedd_rate(gd::sedd_predictor::analytic, gd::loglinear_noise{2.0}, 0.5, 0.1); }, "noise.eps");
}
