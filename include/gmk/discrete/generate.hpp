// gmk: the masked discrete-diffusion decoding loop of diffusion language models (LLaDA, Dream,
// Fast-dLLM): gmk::discrete::generate().
//
// The answer starts as gen_length mask tokens after the prompt and is decoded block by block
// (semi-autoregressive: block b is finished before block b + 1 is looked at). Each step calls the
// model once on the whole sequence (twice, as a batch of two, under classifier-free guidance),
// predicts a token and a confidence for every masked position of the current block from its row
// of logits (token_statistics), and commits some of them:
//   transfer::linear     LLaDA: a fixed count per step (linear_transfer_count), the most confident
//   transfer::dream      Dream: int(n (1 - s / t)) on Dream's float32 timesteps, the most
//                        confident, or sampled at alg_temperature > 0 (select_sampled)
//   transfer::origin     Dream's "origin": each masked position with probability 1 - s / t
//   transfer::threshold  Fast-dLLM: every position with confidence >= tau, at least one; a block
//                        takes as many steps as it needs (`steps` is not used)
// Confidences (confidence_policy): the model's probability of the token (LLaDA low_confidence,
// Fast-dLLM), the probability under the sampling distribution (Dream maskgit_plus), the top-1 /
// top-2 margin (Dream topk_margin), the negative entropy (Dream entropy: the most peaked position
// first), or a uniform draw (LLaDA random). Classifier-free guidance follows LLaDA: the
// unconditional copy has the prompt masked, logits = un + (cfg + 1) (cond - un). Dream reads the
// logits shifted right by one position (position i uses the model's row i - 1; position 0 its
// own). Steps whose block has no mask left are not run, and the loop ends when nothing is masked.
//
// Randomness comes from a draw source (philox_draws: counter-based, so results do not depend on
// threads), asked in a fixed order each step; a source that replays torch's draws
// reproduces the references' runs (tests/golden/discrete.py lists the order).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../random/fill.hpp"
#include "token_stats.hpp"
#include "transfer.hpp"

namespace gmk::discrete {

/// How many masked positions a step commits (see the file comment).
enum class transfer { linear, dream, origin, threshold };

/// Which number ranks the masked positions.
enum class confidence_policy {
    model_probability,  ///< softmax(l)(x0): LLaDA low_confidence, Fast-dLLM
    probability,        ///< q(x0) under the sampling distribution: Dream maskgit_plus
    margin,             ///< q1 - q2: Dream topk_margin
    neg_entropy,        ///< sum q log q: Dream entropy
    random,             ///< a uniform per position: LLaDA random remasking
};

/// Everything generate() needs besides the model, the prompt and the draws.
struct generate_options {
    std::size_t vocab = 0;           ///< V: the model writes V logits per position
    token mask_id = -1;              ///< the mask token, in [0, V)
    std::size_t gen_length = 128;    ///< tokens to generate
    std::size_t block_length = 0;    ///< 0: one block of gen_length
    std::size_t steps = 128;         ///< model calls in all (threshold: unused), a multiple of the blocks
    transfer schedule = transfer::linear;
    confidence_policy policy = confidence_policy::model_probability;
    double temperature = 0;          ///< 0: argmax
    double top_p = 1;                ///< Dream's top-p (applied at T = 0 too)
    std::size_t top_k = 0;           ///< Dream's top-k (0: off)
    std::vector<token> suppress;     ///< token ids never generated (any order)
    token_sampling method = token_sampling::inverse_cdf;  ///< how tokens are drawn at T > 0
    double cfg_scale = 0;            ///< classifier-free guidance (0: off)
    bool shift_logits = false;       ///< Dream: position i reads the model's row i - 1
    double alg_temperature = 0;      ///< Dream: > 0 samples the positions (transfer::dream)
    double eps = 1e-3;               ///< Dream's final timestep
    double threshold = 0.9;          ///< Fast-dLLM's tau, in (0, 1]
};

namespace detail::gen {
inline generate_options sized(std::size_t vocab, token mask_id, std::size_t gen_length, std::size_t block_length,
                              std::size_t steps) {
    generate_options o;
    o.vocab = vocab;
    o.mask_id = mask_id;
    o.gen_length = gen_length;
    o.block_length = block_length;
    o.steps = steps;
    return o;
}
}  // namespace detail::gen

/// LLaDA's remasking strategies.
enum class llada_remasking { low_confidence, random };

/// LLaDA's generate(): blocks of block_length, linear counts, low_confidence or random
/// remasking. Tokens are drawn at T > 0 by inverse CDF (one uniform per row); set method =
/// token_sampling::gumbel_float64 for LLaDA's own add_gumbel_noise, which picks LLaDA's tokens
/// given torch's uniforms (V draws per row, every row: a parity mode, not a fast one).
inline generate_options llada(std::size_t vocab, token mask_id, std::size_t gen_length, std::size_t block_length,
                              std::size_t steps, llada_remasking remasking = llada_remasking::low_confidence) {
    generate_options o = detail::gen::sized(vocab, mask_id, gen_length, block_length, steps);
    o.schedule = transfer::linear;
    o.policy = remasking == llada_remasking::random ? confidence_policy::random : confidence_policy::model_probability;
    return o;
}

/// Dream's algorithms (its `alg` argument).
enum class dream_algorithm { origin, maskgit_plus, topk_margin, entropy };

/// Dream's _sample: one block, Dream's schedule (transfer::origin for origin), shifted logits.
/// Tokens are drawn at T > 0 by inverse CDF; method = token_sampling::exponential_race is
/// torch.multinomial's draw, which picks Dream's tokens given torch's exponentials.
inline generate_options dream(std::size_t vocab, token mask_id, std::size_t gen_length, std::size_t steps,
                              dream_algorithm alg = dream_algorithm::maskgit_plus) {
    generate_options o = detail::gen::sized(vocab, mask_id, gen_length, 0, steps);
    o.schedule = alg == dream_algorithm::origin ? transfer::origin : transfer::dream;
    o.policy = alg == dream_algorithm::topk_margin ? confidence_policy::margin
               : alg == dream_algorithm::entropy   ? confidence_policy::neg_entropy
                                                   : confidence_policy::probability;
    o.shift_logits = true;
    return o;
}

/// Fast-dLLM's threshold decoding (LLaDA blocks, model probability, tau).
inline generate_options fast_dllm(std::size_t vocab, token mask_id, std::size_t gen_length, std::size_t block_length,
                                  double tau = 0.9) {
    generate_options o = detail::gen::sized(vocab, mask_id, gen_length, block_length, gen_length);
    o.schedule = transfer::threshold;
    o.policy = confidence_policy::model_probability;
    o.threshold = tau;
    return o;
}

// ---- draws ---------------------------------------------------------------------------------

/// What a step asks of the draw source, in this order within a step: the token draws
/// (token_uniforms for inverse_cdf; one token_row_* request per row for the races), then the
/// position draws.
enum class draw_kind {
    token_uniforms,          ///< uniforms in [0, 1), one per position (n = L): inverse_cdf at T > 0
    token_row_exponentials,  ///< Exp(1) variates for one row (n = V): exponential_race
    token_row_uniforms,      ///< uniforms in (0, 1) for one row (n = V): gumbel_float64
    position_uniforms,       ///< uniforms in [0, 1): random remasking (n = L), origin (n = masked positions)
    position_exponentials,   ///< Exp(1) per position (n = L): alg_temperature > 0
};

/// One request: fill n values for step `step` (and row `row` for the token_row_* kinds).
struct draw_request {
    draw_kind kind;
    std::size_t step = 0;
    std::size_t row = 0;
};

/// The draw source to use: counter-based Philox streams, one per (seed, step, kind), a row's
/// values at element row * n of its stream. The same values for any thread count and any order
/// of requests.
class philox_draws {
public:
    explicit philox_draws(std::uint64_t seed = 0) noexcept : seed_(seed) {}

    void operator()(const draw_request& r, double* out, std::size_t n) const {
        const random::philox_stream s(seed_, (static_cast<std::uint64_t>(r.step) << 3) | static_cast<std::uint64_t>(r.kind));
        const bool row = r.kind == draw_kind::token_row_exponentials || r.kind == draw_kind::token_row_uniforms;
        random::uniform_fill(s, row ? static_cast<std::uint64_t>(r.row) * n : 0, out, n, random::interval::open);
        if (r.kind == draw_kind::token_row_exponentials || r.kind == draw_kind::position_exponentials)
            for (std::size_t i = 0; i < n; ++i) out[i] = -std::log(out[i]);  // u in (0, 1): finite
    }

private:
    std::uint64_t seed_;
};

/// The default source, for options that draw nothing (T = 0, no random policy, no origin, no
/// alg_temperature): generate() rejects options that need draws before it starts.
struct no_draws {
    void operator()(const draw_request&, double*, std::size_t) const {
        throw std::logic_error("gmk::discrete::no_draws: asked for random numbers");
    }
};

/// True when decoding with `o` draws random numbers.
inline bool needs_draws(const generate_options& o) noexcept {
    return o.temperature > 0 || o.policy == confidence_policy::random || o.schedule == transfer::origin ||
           (o.schedule == transfer::dream && o.alg_temperature > 0);
}

// ---- steps ---------------------------------------------------------------------------------

/// What the step callback sees after each step.
template <class T>
struct step_info {
    std::size_t step = 0;               ///< this step's index (0-based, over all blocks)
    std::size_t block = 0;              ///< the block decoded
    span<const token> tokens;           ///< the whole sequence, prompt included
    span<const std::size_t> committed;  ///< positions committed by this step, in commit order
    span<const T> confidence;           ///< per position: the ranked confidence (-inf: not a candidate)
    std::size_t masked = 0;             ///< mask tokens left in the whole answer
};

/// What generate() returns.
struct generation {
    std::vector<token> tokens;  ///< the whole sequence, prompt included
    std::size_t steps = 0;      ///< steps run (model calls: steps, each a batch of 2 under CFG)
    bool stopped = false;       ///< the callback stopped the loop (masks may remain)
};

/// Reusable buffers of generate(): sized on first use, reused (no allocation) afterwards.
template <class T>
struct generate_workspace {
    std::vector<float> timesteps;
    std::vector<T> logits;  // batch x L x V
    std::vector<token> tokens;
    std::vector<token> suppress;
    std::vector<token_stats<T>> stats;
    std::vector<T> confidence;
    std::vector<double> uniforms, row_draws, positions;
    std::vector<std::size_t> order, candidates, committed;
    std::vector<token> x0;
};

namespace detail::gen {

struct ignore_step {
    template <class I>
    void operator()(const I&) const noexcept {}
};

inline void check(span<const token> prompt, const generate_options& o) {
    constexpr const char* fn = "discrete::generate";
    check_argument(o.vocab >= 1, fn, "vocab", o.vocab, "must be at least 1");
    check_argument(o.mask_id >= 0 && static_cast<std::size_t>(o.mask_id) < o.vocab, fn, "mask_id", o.mask_id,
                   "must be a token id in [0, vocab)");
    check_argument(o.gen_length >= 1, fn, "gen_length", o.gen_length, "must be at least 1");
    const std::size_t bl = o.block_length == 0 ? o.gen_length : o.block_length;
    check_argument(o.gen_length % bl == 0, fn, "gen_length", o.gen_length, "must be a multiple of block_length");
    const std::size_t blocks = o.gen_length / bl;
    if (o.schedule != transfer::threshold) {
        check_argument(o.steps >= 1, fn, "steps", o.steps, "must be at least 1");
        check_argument(o.steps % blocks == 0, fn, "steps", o.steps,
                       "must be a multiple of the number of blocks (gen_length / block_length)");
    }
    check_argument(std::isfinite(o.temperature) && o.temperature >= 0, fn, "temperature", o.temperature,
                   "must be finite and >= 0");
    check_argument(o.top_p > 0 && o.top_p <= 1, fn, "top_p", o.top_p, "must lie in (0, 1]");
    check_argument(std::isfinite(o.cfg_scale) && o.cfg_scale >= 0, fn, "cfg_scale", o.cfg_scale, "must be finite and >= 0");
    check_argument(std::isfinite(o.alg_temperature) && o.alg_temperature >= 0, fn, "alg_temperature",
                   o.alg_temperature, "must be finite and >= 0");
    check_argument(o.eps > 0 && o.eps < 1, fn, "eps", o.eps, "must lie in (0, 1)");
    check_argument(o.schedule != transfer::threshold || (o.threshold > 0 && o.threshold <= 1), fn, "threshold",
                   o.threshold, "must lie in (0, 1]");
    check_argument(o.schedule != transfer::origin || o.policy != confidence_policy::random, fn, "policy", 0,
                   "has no meaning under transfer::origin (positions are drawn, not ranked)");
    for (token t : o.suppress)
        check_argument(t >= 0 && static_cast<std::size_t>(t) < o.vocab, fn, "suppress[i]", t,
                       "must be a token id in [0, vocab)");
    check_pointer(prompt.data(), prompt.size(), fn, "prompt");
    for (token t : prompt) {
        check_argument(t >= 0 && static_cast<std::size_t>(t) < o.vocab, fn, "prompt[i]", t, "must be a token id in [0, vocab)");
        check_argument(t != o.mask_id, fn, "prompt[i]", t, "must not be the mask id");
    }
}

template <class T>
T confidence_of(const token_stats<T>& s, confidence_policy p) noexcept {
    switch (p) {
        case confidence_policy::model_probability: return s.model_probability;
        case confidence_policy::probability: return s.probability;
        case confidence_policy::margin: return s.margin;
        case confidence_policy::neg_entropy: return s.neg_entropy;
        default: return s.probability;
    }
}

[[noreturn]] GMK_COLD inline void throw_non_finite(std::size_t step, std::size_t position) {
    throw std::domain_error("gmk::discrete::generate: step " + std::to_string(step) + ", position " +
                            std::to_string(position) +
                            ": the logits row is not finite (NaN, +inf, or no finite logit left after suppression)");
}

}  // namespace detail::gen

/// Decodes gen_length tokens after `prompt` with `model` and returns the whole sequence (prompt
/// included) and the number of steps. model(const token* tokens, std::size_t batch,
/// std::size_t length, T* logits) writes batch x length x vocab logits (T: float unless given)
/// for batch sequences of `length` tokens (batch is 2 under CFG: the sequence, then its
/// unconditional copy). draws(const draw_request&, double* out, n) fills random numbers
/// (philox_draws(seed); the default no_draws suits options that need none, and `{}` passes it
/// when a callback follows). on_step(const step_info<T>&) runs after every step; returning
/// false (when it returns bool) stops the loop with the tokens as they are. Rows are processed
/// on `exec`; the result does not depend on it. With a workspace, the loop allocates nothing
/// but the returned tokens. Throws std::invalid_argument for bad options and std::domain_error
/// for a non-finite row of logits.
template <class B = simd::native, class T = float, class Model, class Draws = no_draws,
          class OnStep = detail::gen::ignore_step>
generation generate(Model&& model, span<const token> prompt, const generate_options& o, Draws&& draws = {},
                    OnStep&& on_step = {}, const executor& exec = executor(), generate_workspace<T>* workspace = nullptr) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gmk::discrete::generate: T must be float or double");
    detail::gen::check(prompt, o);
    if constexpr (std::is_same_v<std::decay_t<Draws>, no_draws>)
        check_argument(!needs_draws(o), "discrete::generate", "draws", "no_draws",
                       "must be a draw source (e.g. philox_draws(seed)): these options draw random numbers");
    generate_workspace<T> local;
    generate_workspace<T>& w = workspace ? *workspace : local;

    const std::size_t P = prompt.size(), L = P + o.gen_length, V = o.vocab;
    const std::size_t bl = o.block_length == 0 ? o.gen_length : o.block_length;
    const std::size_t blocks = o.gen_length / bl;
    const std::size_t spb = o.schedule == transfer::threshold ? bl : o.steps / blocks;  // threshold: a bound
    const bool cfg = o.cfg_scale > 0;
    const std::size_t batch = cfg ? 2 : 1;
    const bool sample = o.temperature > 0;
    const bool races = sample && o.method != token_sampling::inverse_cdf;

    // Set-up: every buffer at its final size.
    w.logits.resize(batch * L * V);
    w.tokens.assign(batch * L, o.mask_id);
    std::copy(prompt.begin(), prompt.end(), w.tokens.begin());
    w.suppress = o.suppress;
    std::sort(w.suppress.begin(), w.suppress.end());
    w.suppress.erase(std::unique(w.suppress.begin(), w.suppress.end()), w.suppress.end());
    w.stats.resize(L);
    w.confidence.resize(L);
    w.uniforms.resize(L);
    w.positions.resize(L);
    w.row_draws.resize(races ? V : 0);
    w.order.resize(L);
    w.candidates.resize(L);
    w.committed.resize(L);
    w.x0.resize(L);
    w.timesteps.resize(spb + 1);
    const span<const float> timesteps(w.timesteps.data(), w.timesteps.size());
    if (o.schedule == transfer::dream || o.schedule == transfer::origin) dream_timesteps(spb, o.eps, w.timesteps);

    sampling s;
    s.temperature = o.temperature;
    s.top_p = o.top_p;
    s.top_k = o.top_k;
    s.suppress = w.suppress;
    token* x = w.tokens.data();
    const T neg_inf = -std::numeric_limits<T>::infinity();
    std::size_t masked_total = o.gen_length;
    std::size_t step = 0;

    for (std::size_t b = 0; b < blocks && masked_total > 0; ++b) {
        const std::size_t lo = P + b * bl, hi = lo + bl;
        std::size_t block_masked = 0;
        for (std::size_t i = lo; i < hi; ++i) block_masked += x[i] == o.mask_id;
        const std::size_t at_start = block_masked;
        for (std::size_t j = 0; j < spb && block_masked > 0; ++j, ++step) {
            // The model, on the sequence and (CFG) its copy with the prompt masked.
            if (cfg) {
                std::copy(x, x + L, x + L);
                std::fill(x + L, x + L + P, o.mask_id);
            }
            model(static_cast<const token*>(x), batch, L, w.logits.data());
            const auto row = [&](std::size_t i) { return w.logits.data() + (o.shift_logits && i > 0 ? i - 1 : i) * V; };

            // The candidates: masked positions of the block.
            std::size_t nc = 0;
            for (std::size_t i = lo; i < hi; ++i)
                if (x[i] == o.mask_id) w.candidates[nc++] = i;
            if (cfg) {  // guided rows, in place in the conditional half (only the rows used)
                const T k = static_cast<T>(o.cfg_scale + 1);
                for (std::size_t c = 0; c < nc; ++c) {
                    const std::size_t i = w.candidates[c];
                    const std::size_t r = o.shift_logits && i > 0 ? i - 1 : i;
                    T* cond = w.logits.data() + r * V;
                    const T* un = w.logits.data() + (L + r) * V;
                    simd::map<B>(V, simd::out(cond), simd::in(cond, un), [k](const auto& c1, const auto& u) {
                        const auto d = c1 - u;
                        return u + decltype(d)(k) * d;
                    });
                }
            }

            // Origin: which positions move this step (one uniform per masked position).
            std::size_t nsel = nc;
            if (o.schedule == transfer::origin) {
                draws(draw_request{draw_kind::position_uniforms, step, 0}, w.positions.data(), nc);
                const float p = dream_transfer_fraction(timesteps, j);
                nsel = 0;
                for (std::size_t c = 0; c < nc; ++c)
                    if (static_cast<float>(w.positions[c]) < p) w.order[nsel++] = w.candidates[c];
            } else {
                std::copy(w.candidates.begin(), w.candidates.begin() + nc, w.order.begin());
            }
            const std::size_t* rows = w.order.data();  // the rows whose token is predicted

            // Tokens and their statistics.
            if (!races) {
                if (sample) draws(draw_request{draw_kind::token_uniforms, step, 0}, w.uniforms.data(), L);
                parallel_for(0, nsel, 1, [&](std::size_t a, std::size_t e) {
                    for (std::size_t c = a; c < e; ++c) {
                        const std::size_t i = rows[c];
                        token_draw d;
                        if (sample) d.uniform = std::min(w.uniforms[i], 0.99999999999999989);
                        w.stats[i] = token_statistics<B>(row(i), V, s, d);
                    }
                }, exec);
            } else {
                token_draw d;
                d.method = o.method;
                d.per_token = w.row_draws.data();
                if (o.method == token_sampling::gumbel_float64) {  // LLaDA draws every row, in order
                    for (std::size_t i = 0, c = 0; i < L; ++i) {
                        draws(draw_request{draw_kind::token_row_uniforms, step, i}, w.row_draws.data(), V);
                        if (c < nsel && rows[c] == i) w.stats[i] = token_statistics<B>(row(i), V, s, d), ++c;
                    }
                } else {
                    for (std::size_t c = 0; c < nsel; ++c) {
                        draws(draw_request{draw_kind::token_row_exponentials, step, rows[c]}, w.row_draws.data(), V);
                        w.stats[rows[c]] = token_statistics<B>(row(rows[c]), V, s, d);
                    }
                }
            }
            for (std::size_t c = 0; c < nsel; ++c) {
                const std::size_t i = rows[c];
                if (!(std::isfinite(w.stats[i].max) && w.stats[i].probability == w.stats[i].probability))
                    detail::gen::throw_non_finite(step, i);
                w.x0[i] = static_cast<token>(w.stats[i].token);
            }

            // Which positions to commit.
            std::fill(w.confidence.begin(), w.confidence.end(), neg_inf);
            std::size_t ncommit = 0;
            if (o.schedule == transfer::origin) {
                ncommit = nsel;
                std::copy(w.order.begin(), w.order.begin() + nsel, w.committed.begin());
            } else {
                if (o.policy == confidence_policy::random) {
                    draws(draw_request{draw_kind::position_uniforms, step, 0}, w.positions.data(), L);
                    for (std::size_t c = 0; c < nc; ++c) w.confidence[w.candidates[c]] = static_cast<T>(w.positions[w.candidates[c]]);
                } else {
                    for (std::size_t c = 0; c < nc; ++c)
                        w.confidence[w.candidates[c]] = detail::gen::confidence_of(w.stats[w.candidates[c]], o.policy);
                }
                const span<const T> conf(w.confidence.data(), L);
                if (o.schedule == transfer::threshold) {
                    ncommit = select_threshold(conf, o.threshold, span<std::size_t>(w.order.data(), L));
                } else {
                    const std::size_t k = o.schedule == transfer::linear ? linear_transfer_count(at_start, spb, j)
                                                                         : dream_transfer_count(block_masked, timesteps, j);
                    if (o.schedule == transfer::dream && o.alg_temperature > 0 && k > 0) {
                        draws(draw_request{draw_kind::position_exponentials, step, 0}, w.positions.data(), L);
                        ncommit = select_sampled(conf, o.alg_temperature, k, span<const double>(w.positions.data(), L),
                                                 span<std::size_t>(w.order.data(), L));
                    } else {
                        ncommit = select_top_k(conf, k, span<std::size_t>(w.order.data(), L));
                    }
                }
                std::copy(w.order.begin(), w.order.begin() + ncommit, w.committed.begin());
            }
            for (std::size_t c = 0; c < ncommit; ++c) x[w.committed[c]] = w.x0[w.committed[c]];
            block_masked -= ncommit;
            masked_total -= ncommit;

            step_info<T> info;
            info.step = step;
            info.block = b;
            info.tokens = span<const token>(x, L);
            info.committed = span<const std::size_t>(w.committed.data(), ncommit);
            info.confidence = span<const T>(w.confidence.data(), L);
            info.masked = masked_total;
            if constexpr (std::is_same_v<decltype(on_step(info)), bool>) {
                if (!on_step(info)) return generation{std::vector<token>(x, x + L), step + 1, true};
            } else {
                on_step(info);
            }
        }
    }
    return generation{std::vector<token>(x, x + L), step, false};
}

}  // namespace gmk::discrete
