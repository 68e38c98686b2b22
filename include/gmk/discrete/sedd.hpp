// gmk: score-entropy discrete diffusion (SEDD: Lou, Meng and Ermon, ICML 2024, arXiv 2310.16834)
// on the absorbing-state ("masked") process, for models that output log score ratios.
//
// At a masked position the model gives one row of V log scores log s_j: s_j is the concrete score
// p_t(x with x_i = j) / p_t(x) of leaving the mask for token j (the mask's own column means
// nothing and is ignored). Under the log-linear noise sigma(t) = -log(1 - (1 - eps) t) a step from
// t to t - dt moves a masked position to token j with probability r s_j and leaves it masked with
// probability 1 - r S, S = sum_{j != mask} s_j, where
//   euler     r = dt sigma'(t)                       (sampling.py EulerPredictor: the
//             tau-leaping step with graph_lib.py Absorbing.reverse_rate and sample_rate)
//   analytic  r = e^(sigma(t) - sigma(t - dt)) - 1   (AnalyticPredictor: staggered_score times
//             transp_transition; the SEDD model writes log s = 0 in the mask column, which is
//             what makes the stay weight of the reference 1 - r S)
// and the final denoising step at t = t_end draws j proportional to s_j (Denoiser: the mask
// column dropped), which is the limit r -> infinity. When r S > 1 the stay weight is negative; the
// reference samples argmax(p / E) over exponential variates E, in which a negative weight never
// wins, so it is clamped at 0 and the tokens keep P(j) = s_j / S. With exact scores of a data
// distribution, s_j = alpha / (1 - alpha) p(x_i = j | unmasked context) with alpha = e^-sigma, and
// both steps give r S = (alpha(t - dt) - alpha(t)) / (1 - alpha(t)) = dt / t on this schedule:
// the masked-diffusion unmasking rule (../shared/FORMULAS.md, SEDD).
//
// How a row is drawn. One pass of token_statistics (temperature 0, the mask suppressed) gives
// log S; the mask column is then overwritten with log(max(0, 1/r - S)), the stay weight relative
// to the tokens' r s_j, so that softmax(row) is the transition distribution, and a second
// token_statistics (temperature 1, nothing suppressed) draws from it by inverse CDF with the
// position's uniform. The denoising step draws once, with the mask suppressed. So each step
// writes the mask column of the masked rows of the caller's score matrix (documented per call).
//
// Randomness: the uniform of position i at step k is element i of the Philox stream (seed, k), so
// results depend neither on the thread count nor on which positions are still masked; or the
// caller's uniforms, one per position. Differences from the reference: everything is in double
// (the reference runs its time grid and noise in float32) and draws are by inverse CDF rather
// than argmax(p / (1e-10 - log(u + 1e-10))); both sample the same distribution.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../random/fill.hpp"
#include "token_stats.hpp"

namespace gmk::discrete {

/// SEDD's log-linear noise (noise_lib.py LogLinearNoise): 1 - e^-sigma(t) = (1 - eps) t, t in [0, 1].
struct loglinear_noise {
    double eps = 1e-3;  ///< in (0, 1): sigma(1) = -log eps

    /// sigma(t) = -log(1 - (1 - eps) t), the total noise.
    double sigma(double t) const noexcept { return -std::log1p(-(1 - eps) * t); }
    /// sigma'(t) = (1 - eps) / (1 - (1 - eps) t), the noise rate.
    double rate(double t) const noexcept { return (1 - eps) / (1 - (1 - eps) * t); }
};

/// The two predictors of sampling.py.
enum class sedd_predictor {
    euler,     ///< tau-leaping: r = dt sigma'(t)
    analytic,  ///< r = e^(sigma(t) - sigma(t - dt)) - 1
};

/// The rate of the final denoising step: tokens drawn proportional to s_j, none stays masked.
inline constexpr double sedd_denoise_rate = std::numeric_limits<double>::infinity();

/// The random input of one step: element i of the Philox stream (seed, step) for position i, or,
/// when `uniforms` is not empty, uniforms[i] in [0, 1).
struct sedd_draws {
    std::uint64_t seed = 0;
    std::uint64_t step = 0;
    span<const double> uniforms;
};

/// What the model of sedd_sample() is called with: the step (steps for the denoising step), its
/// time t and noise level sigma(t), on which the reference conditions the network.
struct sedd_call {
    std::size_t step = 0;
    double t = 1;
    double sigma = 0;
};

/// The settings of sedd_sample(); the defaults are run_sample.py's (analytic, 1024 steps,
/// get_pc_sampler's eps = 1e-5, LogLinearNoise's eps = 1e-3; training snapshots use euler, 128).
struct sedd_options {
    sedd_predictor predictor = sedd_predictor::analytic;
    std::size_t steps = 1024;
    loglinear_noise noise{};
    double t_end = 1e-5;  ///< timesteps linspace(1, t_end, steps + 1), dt = (1 - t_end) / steps
    bool denoise = true;  ///< the final denoising step at t_end (config noise_removal)
    std::uint64_t seed = 0;
};

namespace detail::sedd {

// torch.linspace(1, t_end, steps + 1)[i] by torch's CPU formula (see detail::linspace in
// schedules/betas.hpp): both ends exact.
inline double time_at(std::size_t i, std::size_t steps, double t_end) noexcept {
    const double step = (t_end - 1) / double(steps);
    return i < (steps + 1) / 2 ? 1 + step * double(i) : t_end - step * double(steps - i);
}

// log(max(0, 1/r - S)) from log S in double: log(1 - r S) - log r, with log(1 - e^x) taken by
// expm1 or log1p on either side of -log 2 (x = log(r S) < 0).
inline double log_stay(double rate, double log_s) noexcept {
    if (rate == sedd_denoise_rate) return -std::numeric_limits<double>::infinity();
    const double x = std::log(rate) + log_s;
    if (x >= 0) return -std::numeric_limits<double>::infinity();
    const double l1m = x > -0.6931471805599453 ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
    return l1m - std::log(rate);  // NaN stays NaN
}

// row[mask] = log(max(0, 1/r - S)), S from token_statistics' log-sum-exp with the mask suppressed.
template <class B, class T>
T write_stay(T* row, std::size_t vocab, token mask, double rate) {
    const token suppressed[1] = {mask};
    sampling sum_only;
    sum_only.suppress = span<const token>(suppressed, 1);
    const double log_s = rate == sedd_denoise_rate ? 0.0 : double(token_statistics<B>(row, vocab, sum_only).log_sum_exp);
    return row[mask] = T(log_stay(rate, log_s));
}

// One masked row: the new token (the mask when it stays masked).
template <class B, class T>
token step_row(T* row, std::size_t vocab, token mask, double rate, double u) {
    const token suppressed[1] = {mask};
    sampling s;
    s.temperature = 1;
    if (rate == sedd_denoise_rate) s.suppress = span<const token>(suppressed, 1);  // the column dropped
    else write_stay<B>(row, vocab, mask, rate);
    token_draw d;
    d.uniform = u;
    const token_stats<T> st = token_statistics<B>(row, vocab, s, d);
    // No weight anywhere (the denoising step on a row of -inf scores): it stays masked.
    return st.log_sum_exp == -std::numeric_limits<T>::infinity() ? mask : static_cast<token>(st.token);
}

template <class T>
void check_rows(matrix_view<T> log_scores, span<token> tokens, token mask, const char* fn) {
    check_argument(log_scores.cols() >= 2, fn, "log_scores.cols()", log_scores.cols(),
                   "must be at least 2 (the mask and one token)");
    check_argument(log_scores.rows_contiguous(), fn, "log_scores.col_stride()", log_scores.col_stride(), "must be 1");
    check_argument(std::is_same_v<T, double> || log_scores.cols() < (std::size_t(1) << 24), fn, "log_scores.cols()",
                   log_scores.cols(), "must be below 2^24 for float rows");
    check_argument(mask >= 0 && static_cast<std::size_t>(mask) < log_scores.cols(), fn, "mask", mask,
                   "must be a token id in [0, vocab)");
    check_argument(tokens.size() == log_scores.rows(), fn, "tokens.size()", tokens.size(),
                   "must equal log_scores.rows()");
    check_pointer(tokens.data(), tokens.size(), fn, "tokens");
    check_pointer(log_scores.data(), log_scores.rows() * log_scores.cols(), fn, "log_scores");
}

}  // namespace detail::sedd

/// The time grid of the sampler: linspace(1, t_end, steps + 1) (sampling.py get_pc_sampler).
inline std::vector<double> sedd_timesteps(std::size_t steps, double t_end = 1e-5) {
    constexpr const char* fn = "discrete::sedd_timesteps";
    check_argument(steps >= 1, fn, "steps", steps, "must be >= 1");
    check_argument(t_end > 0 && t_end < 1, fn, "t_end", t_end, "must lie in (0, 1)");
    std::vector<double> t(steps + 1);
    for (std::size_t i = 0; i <= steps; ++i) t[i] = detail::sedd::time_at(i, steps, t_end);
    return t;
}

/// The rate r of a step from t to t - dt: euler dt sigma'(t), analytic e^(sigma(t) - sigma(t - dt)) - 1.
inline double sedd_rate(sedd_predictor predictor, const loglinear_noise& noise, double t, double dt) {
    constexpr const char* fn = "discrete::sedd_rate";
    check_argument(noise.eps > 0 && noise.eps < 1, fn, "noise.eps", noise.eps, "must lie in (0, 1)");
    check_argument(t > 0 && t <= 1, fn, "t", t, "must lie in (0, 1]");
    check_argument(dt > 0 && dt <= t, fn, "dt", dt, "must lie in (0, t]");
    check_argument(predictor == sedd_predictor::euler || predictor == sedd_predictor::analytic, fn, "predictor",
                   static_cast<int>(predictor), "must be euler or analytic");
    if (predictor == sedd_predictor::euler) return dt * noise.rate(t);
    return std::expm1(noise.sigma(t) - noise.sigma(t - dt));
}

/// Writes log(max(0, 1/r - S)) into row[mask] (S = sum_{j != mask} e^row[j]), so that softmax(row)
/// is the masked position's transition: P(j) = r s_j / Z, P(stay) = max(0, 1 - r S) / Z, Z = max(1, r S).
/// r = sedd_denoise_rate writes -inf. Returns the value written.
template <class B = simd::native, class T>
T sedd_transition_row(T* row, std::size_t vocab, token mask, double rate) {
    constexpr const char* fn = "discrete::sedd_transition_row";
    check_argument(vocab >= 2, fn, "vocab", vocab, "must be at least 2 (the mask and one token)");
    check_pointer(row, vocab, fn, "row");
    check_argument(mask >= 0 && static_cast<std::size_t>(mask) < vocab, fn, "mask", mask,
                   "must be a token id in [0, vocab)");
    check_argument(rate > 0, fn, "rate", rate, "must be > 0 (sedd_denoise_rate: infinity)");
    return detail::sedd::write_stay<B>(row, vocab, mask, rate);
}

/// One SEDD step at rate r (sedd_rate, or sedd_denoise_rate for the final denoising step) over the
/// positions i = rows of `log_scores` (L x V, log s_j at masked positions): tokens[i] == mask moves
/// to a token or stays, other positions are frozen. The mask column of every masked row is
/// overwritten (sedd_transition_row; not by the denoising step). Rows run over `exec`; the
/// result does not depend on it. A row with no finite score stays masked; a NaN or +inf score
/// takes the first such entry (token_statistics' rule; the mask column, holding NaN when the sum
/// is NaN, counts). Returns the number of positions still masked.
template <class B = simd::native, class T>
std::size_t sedd_step(matrix_view<T> log_scores, span<token> tokens, token mask, double rate, const sedd_draws& draws,
                      const executor& exec = executor()) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gmk::discrete: T must be float or double");
    constexpr const char* fn = "discrete::sedd_step";
    detail::sedd::check_rows(log_scores, tokens, mask, fn);
    check_argument(rate > 0, fn, "rate", rate, "must be > 0 (sedd_denoise_rate: infinity)");
    check_argument(draws.uniforms.empty() || draws.uniforms.size() == tokens.size(), fn, "draws.uniforms.size()",
                   draws.uniforms.size(), "must be 0 (Philox) or equal tokens.size()");
    for (double u : draws.uniforms)
        check_argument(u >= 0 && u < 1, fn, "draws.uniforms[i]", u, "must lie in [0, 1)");
    const random::philox_stream stream(draws.seed, draws.step);
    constexpr std::size_t grain = 64;  // rows per task; its uniforms on the stack
    const std::size_t vocab = log_scores.cols();
    parallel_for(0, tokens.size(), grain, [&](std::size_t lo, std::size_t hi) {
        double u[grain];
        if (draws.uniforms.empty()) random::uniform_fill<B>(stream, lo, u, hi - lo);
        else std::copy(draws.uniforms.begin() + lo, draws.uniforms.begin() + hi, u);
        for (std::size_t i = lo; i < hi; ++i)
            if (tokens[i] == mask) tokens[i] = detail::sedd::step_row<B>(&log_scores(i, 0), vocab, mask, rate, u[i - lo]);
    }, exec);
    return static_cast<std::size_t>(std::count(tokens.begin(), tokens.end(), mask));
}

/// Samples `tokens` (usually all mask; other positions are kept, as a prompt) with the user's
/// model `model(span<const token> tokens, matrix_view<T> log_scores, const sedd_call&)`, which
/// writes the L x V log scores into `log_scores` (the caller's buffer: nothing is allocated). Runs
/// o.steps predictor steps from t = 1, then the denoising step at t_end; stops early (no further
/// model calls) once nothing is masked. Returns the number of positions left masked.
template <class B = simd::native, class T, class Model>
std::size_t sedd_sample(Model&& model, span<token> tokens, matrix_view<T> log_scores, token mask,
                        const sedd_options& o = {}, const executor& exec = executor()) {
    constexpr const char* fn = "discrete::sedd_sample";
    detail::sedd::check_rows(log_scores, tokens, mask, fn);
    check_argument(o.steps >= 1, fn, "options.steps", o.steps, "must be >= 1");
    check_argument(o.noise.eps > 0 && o.noise.eps < 1, fn, "options.noise.eps", o.noise.eps, "must lie in (0, 1)");
    check_argument(o.t_end > 0 && o.t_end < 1, fn, "options.t_end", o.t_end, "must lie in (0, 1)");
    check_argument(o.predictor == sedd_predictor::euler || o.predictor == sedd_predictor::analytic, fn,
                   "options.predictor", static_cast<int>(o.predictor), "must be euler or analytic");
    const std::size_t vocab = log_scores.cols();
    for (token x : tokens)
        check_argument(x >= 0 && static_cast<std::size_t>(x) < vocab, fn, "tokens[i]", x, "must be a token id in [0, vocab)");
    const span<const token> seen(tokens.data(), tokens.size());
    std::size_t masked = static_cast<std::size_t>(std::count(tokens.begin(), tokens.end(), mask));
    const double dt = (1 - o.t_end) / double(o.steps);
    for (std::size_t k = 0; k < o.steps && masked > 0; ++k) {
        const double t = detail::sedd::time_at(k, o.steps, o.t_end);
        model(seen, log_scores, sedd_call{k, t, o.noise.sigma(t)});
        masked = sedd_step<B>(log_scores, tokens, mask, sedd_rate(o.predictor, o.noise, t, std::min(dt, t)),
                              sedd_draws{o.seed, k, {}}, exec);
    }
    if (o.denoise && masked > 0) {
        model(seen, log_scores, sedd_call{o.steps, o.t_end, o.noise.sigma(o.t_end)});
        masked = sedd_step<B>(log_scores, tokens, mask, sedd_denoise_rate, sedd_draws{o.seed, o.steps, {}}, exec);
    }
    return masked;
}

}  // namespace gmk::discrete
