// Tests of gmk/discrete/generate.hpp and gmk/discrete/transfer.hpp: parity with the reference
// decoding loops (tests/golden/discrete.py ran LLaDA's generate, Dream's _sample and Fast-dLLM's
// threshold decoding on PyTorch with an integer-hash toy model and recorded every draw), the
// transfer schedules and selections, the loop's callback and early stop, and bad input.
#include <gmk/discrete/generate.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/testing.hpp"

namespace simd = gmk::simd;
namespace gd = gmk::discrete;
namespace gt = gmk_test;
using gd::token;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// ---- the toy model of tests/golden/discrete.py ---------------------------------------------

std::uint64_t mix(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct toy_model {
    std::size_t V;
    token M;
    std::uint64_t s0;
    std::size_t calls = 0;

    toy_model(std::size_t vocab, token mask, std::uint64_t seed) : V(vocab), M(mask), s0(mix(seed)) {}

    std::uint64_t h(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) const {
        return mix(mix(mix(mix(s0 ^ a) ^ b) ^ c) ^ d);
    }

    template <class T>
    void operator()(const token* x, std::size_t batch, std::size_t L, T* out) {
        ++calls;
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t i = 0; i < L; ++i) {
                const std::uint64_t cur = std::uint64_t(x[b * L + i]);
                const std::uint64_t prev = i > 0 ? std::uint64_t(x[b * L + i - 1]) : V;
                std::uint64_t pref = h(3, i, prev, 0) % V;
                if (pref == std::uint64_t(M)) pref = (pref + 1) % V;
                const std::int64_t boost = std::int64_t(h(4, i, 0, 0) % 8);
                T* row = out + (b * L + i) * V;
                for (std::size_t v = 0; v < V; ++v) {
                    std::int64_t k = std::int64_t(h(1, i, cur, v) >> 44) - (1 << 19);
                    k += std::int64_t(h(2, prev, v, 0) >> 46) - (1 << 17);
                    if (v == pref) k += boost << 17;
                    if (v == std::size_t(M)) k -= std::int64_t(6) << 17;
                    row[v] = T(float(std::ldexp(double(k), -17)));
                }
            }
    }
};

// ---- the golden runs ------------------------------------------------------------------------

struct golden_run {
    std::string name;
    std::map<std::string, std::vector<double>> e;  // field -> values (floats widened)
    const std::vector<double>& operator[](const std::string& f) const {
        static const std::vector<double> none;
        const auto it = e.find(f);
        return it == e.end() ? none : it->second;
    }
};

const std::vector<golden_run>& golden_runs() {
    static const std::vector<golden_run> runs = [] {
        const gt::golden_file g = gt::read_golden("discrete.txt");
        std::vector<golden_run> out;
        for (const auto& c : g.cases) {
            const std::size_t dot = c.op.rfind('.');
            const std::string name = c.op.substr(0, dot), field = c.op.substr(dot + 1);
            if (out.empty() || out.back().name != name) out.push_back({name, {}});
            std::vector<double>& v = out.back().e[field];
            const gt::golden_call& call = c.calls.at(0);
            for (std::size_t j = 0; j < call.bits.size(); ++j)
                v.push_back(c.dtype == "float32" ? double(call.value<float>(j)) : call.value<double>(j));
        }
        return out;
    }();
    return runs;
}

// Replays the recorded torch draws in the order the reference consumed them, and counts them.
struct replay {
    const std::vector<double>* gumbel;
    const std::vector<double>* rand;
    const std::vector<double>* exps;
    std::size_t at_gumbel = 0, at_rand = 0, at_exp = 0;
    bool overrun = false;

    void take(const std::vector<double>& src, std::size_t& at, double* out, std::size_t n) {
        if (at + n > src.size()) {
            overrun = true;
            std::fill(out, out + n, 0.5);
            return;
        }
        std::copy(src.begin() + std::ptrdiff_t(at), src.begin() + std::ptrdiff_t(at + n), out);
        at += n;
    }
    void operator()(const gd::draw_request& r, double* out, std::size_t n) {
        switch (r.kind) {
            case gd::draw_kind::token_row_uniforms: take(*gumbel, at_gumbel, out, n); break;
            case gd::draw_kind::token_row_exponentials: take(*exps, at_exp, out, n); break;
            case gd::draw_kind::position_uniforms: take(*rand, at_rand, out, n); break;
            case gd::draw_kind::position_exponentials: take(*exps, at_exp, out, n); break;
            default: overrun = true; std::fill(out, out + n, 0.5);
        }
    }
    bool all_used() const {
        return !overrun && at_gumbel == gumbel->size() && at_rand == rand->size() && at_exp == exps->size();
    }
};

gd::generate_options options_of(const golden_run& g) {
    const auto& c = g["config"];
    const std::size_t V = std::size_t(c[0]), gen = std::size_t(c[3]), bl = std::size_t(c[4]), steps = std::size_t(c[5]);
    const token M = token(c[1]);
    const int alg = int(c[8]);
    gd::generate_options o;
    switch (alg) {
        case 0: o = gd::llada(V, M, gen, bl, steps, gd::llada_remasking::low_confidence); break;
        case 1: o = gd::llada(V, M, gen, bl, steps, gd::llada_remasking::random); break;
        case 2: o = gd::dream(V, M, gen, steps, gd::dream_algorithm::origin); break;
        case 3: o = gd::dream(V, M, gen, steps, gd::dream_algorithm::maskgit_plus); break;
        case 4: o = gd::dream(V, M, gen, steps, gd::dream_algorithm::topk_margin); break;
        case 5: o = gd::dream(V, M, gen, steps, gd::dream_algorithm::entropy); break;
        default: o = gd::fast_dllm(V, M, gen, bl, c[9]); break;
    }
    // The references' own draws: LLaDA's float64 Gumbel form, Dream's exponential race.
    if (alg <= 1) o.method = gd::token_sampling::gumbel_float64;
    if (alg >= 2 && alg <= 5) o.method = gd::token_sampling::exponential_race;
    o.cfg_scale = c[6];
    o.temperature = c[7];
    if (c[10] > 0) o.top_p = c[10];
    o.top_k = std::size_t(c[11]);
    o.alg_temperature = c[12];
    if (c[13] > 0) o.eps = c[13];
    return o;
}

// How many steps of a run can be compared: all, except after a tie that torch.topk broke
// towards the higher position (the docstring of discrete.py names the case and its step).
std::size_t comparable_steps(const golden_run& g) {
    return g.name == "dream.entropy.sampled" ? 2 : std::size_t(-1);
}

template <class B, class T>
GMK_TEST_NOINLINE void check_golden_run(const golden_run& g, gt::mismatch_log& log) {
    const gd::generate_options o = options_of(g);
    const auto& cfg = g["config"];
    const std::size_t L = std::size_t(cfg[2]) + o.gen_length;
    std::vector<token> prompt;
    for (double p : g["prompt"]) prompt.push_back(token(p));
    toy_model model(o.vocab, o.mask_id, std::uint64_t(cfg[14]));
    replay draws{&g["gumbel_u"], &g["rand_u"], &g["exp_q"]};
    const std::string where = gt::label<B, T>() + " " + g.name;

    // The golden rows the loop runs: LLaDA spends a model call on steps whose count is 0 (the
    // block is already decoded); generate() skips those.
    const auto& transfer = g["transfer"];
    const auto& tokens = g["tokens"];
    const auto& conf = g["confidence"];
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < transfer.size(); ++r)
        if (!(o.schedule == gd::transfer::linear && transfer[r] == 0)) rows.push_back(r);
    const std::size_t limit = std::min(comparable_steps(g), rows.size());

    std::size_t step = 0;
    bool ok = true;
    // Dream's confidences are float32 (and its entropy adds 1e-10 inside the log); LLaDA's and
    // Fast-dLLM's are float64.
    const bool float_reference = o.schedule == gd::transfer::dream || o.schedule == gd::transfer::origin;
    const double tol = std::is_same_v<T, float> || float_reference ? 2e-6 : 1e-12;
    const auto on_step = [&](const gd::step_info<T>& s) {
        if (step < limit) {
            const std::size_t r = rows[step];
            for (std::size_t i = 0; i < L; ++i) {
                if (double(s.tokens[i]) != tokens[r * L + i]) {
                    if (ok) log.add(where, ": step ", step, " position ", i, " token ", s.tokens[i], " vs ", tokens[r * L + i]);
                    ok = false;
                }
                const double ref = conf[r * L + i], got = double(s.confidence[i]);
                const bool origin = o.schedule == gd::transfer::origin;
                const bool same = origin ? got == -inf
                                  : ref == -inf ? got == -inf : std::abs(got - ref) <= tol * std::max(1.0, std::abs(ref));
                if (!same) {
                    if (ok) log.add(where, ": step ", step, " position ", i, " confidence ", got, " vs ", ref);
                    ok = false;
                }
            }
            if (s.committed.size() != std::size_t(transfer[r]) && o.schedule != gd::transfer::origin) {
                if (ok) log.add(where, ": step ", step, " committed ", s.committed.size(), " vs ", transfer[r]);
                ok = false;
            }
        }
        ++step;
    };
    const gd::generation result = gd::generate<B, T>(model, prompt, o, draws, on_step);
    const std::vector<token>& out = result.tokens;
    if (limit < rows.size()) return;  // the run after an unmatched tie is not comparable
    if (step != rows.size() || result.steps != step) log.add(where, ": ", step, " steps vs ", rows.size());
    if (model.calls != std::size_t(g["nfe"][0]) - (transfer.size() - rows.size()))
        log.add(where, ": ", model.calls, " model calls vs ", g["nfe"][0]);
    for (std::size_t i = 0; i < L; ++i)
        if (double(out[i]) != g["final"][i]) {
            log.add(where, ": final position ", i);
            break;
        }
    if (!draws.all_used())
        log.add(where, ": draws used gumbel ", draws.at_gumbel, "/", g["gumbel_u"].size(), " rand ", draws.at_rand, "/",
                g["rand_u"].size(), " exp ", draws.at_exp, "/", g["exp_q"].size());
}

}  // namespace

TEST_CASE("generate reproduces LLaDA, Dream and Fast-dLLM step by step", "[discrete][golden]") {
    const auto& runs = golden_runs();
    REQUIRE(runs.size() == 22);
    gt::mismatch_log log;
    gt::for_each_backend([&](auto b) {
        using B = decltype(b);
        gt::for_each_type<float, double>([&](auto t) {
            using T = typename decltype(t)::type;
            for (const golden_run& g : runs) check_golden_run<B, T>(g, log);
        });
    });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("the toy model and the golden first-step logits agree", "[discrete][golden]") {
    gt::mismatch_log log;
    for (const golden_run& g : golden_runs()) {
        const gd::generate_options o = options_of(g);
        const auto& cfg = g["config"];
        const std::size_t P = std::size_t(cfg[2]), L = P + o.gen_length, V = o.vocab;
        toy_model model(V, o.mask_id, std::uint64_t(cfg[14]));
        std::vector<token> x(2 * L, o.mask_id);
        for (std::size_t i = 0; i < P; ++i) x[i] = token(g["prompt"][i]);
        std::vector<float> l(2 * L * V);
        model(x.data(), 2, L, l.data());  // row 2 is the unconditional copy: the prompt masked
        for (std::size_t i = 0; i < L; ++i)
            for (std::size_t v = 0; v < V; ++v) {
                const std::size_t r = o.shift_logits && i > 0 ? i - 1 : i;
                float want = l[r * V + v];
                if (o.cfg_scale > 0) {
                    const float un = l[(L + r) * V + v];
                    want = un + float(o.cfg_scale + 1) * (want - un);
                }
                if (double(want) != g["logits0"][i * V + v]) {
                    log.add(g.name, ": logits0 position ", i, " token ", v);
                    i = L;
                    break;
                }
            }
    }
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("Dream's timesteps are torch.linspace's float32 values", "[discrete]") {
    for (const golden_run& g : golden_runs()) {
        const auto& ts = g["timesteps"];
        if (ts.empty()) continue;
        std::vector<float> got(ts.size());
        gd::dream_timesteps(ts.size() - 1, g["config"][13], got);
        for (std::size_t i = 0; i < ts.size(); ++i) {
            INFO(g.name << " timestep " << i);
            CHECK(double(got[i]) == ts[i]);
        }
    }
}

TEST_CASE("transfer counts: LLaDA's front-loaded remainder and Dream's truncated float32 product", "[discrete]") {
    // 10 masks over 4 steps: 3, 3, 2, 2; over 12 steps: ten 1s then two 0s.
    const std::size_t a[] = {3, 3, 2, 2};
    for (std::size_t j = 0; j < 4; ++j) CHECK(gd::linear_transfer_count(10, 4, j) == a[j]);
    std::size_t sum = 0;
    for (std::size_t j = 0; j < 12; ++j) sum += gd::linear_transfer_count(10, 12, j);
    CHECK(sum == 10);
    CHECK(gd::linear_transfer_count(10, 12, 9) == 1);
    CHECK(gd::linear_transfer_count(10, 12, 10) == 0);
    // Dream: 16 masks at step 0 of 16 commit int(16 * (1 - t1 / t0)) = 0 (the reference's count).
    std::vector<float> ts(17);
    gd::dream_timesteps(16, 1e-3, ts);
    CHECK(gd::dream_transfer_count(16, ts, 0) == 0);
    CHECK(gd::dream_transfer_count(5, ts, 15) == 5);  // the last step takes all
    CHECK(gd::dream_transfer_fraction(ts, 15) == 1.0f);
    gt::require_throws_naming([] { gd::linear_transfer_count(4, 0, 0); }, "steps");
    gt::require_throws_naming([] { gd::linear_transfer_count(4, 2, 2); }, "step");
    std::vector<float> bad(3);
    gt::require_throws_naming([&] { gd::dream_timesteps(4, 1e-3, bad); }, "out.size()");
    gt::require_throws_naming([&] { gd::dream_timesteps(2, 0, bad); }, "eps");
}

TEST_CASE("selections: top-k with ties to the lower position, threshold, sampled without replacement", "[discrete]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> c = {0.5, -inf, 0.9, 0.5, nan, 0.9, 0.1, 0.5};
    std::vector<std::size_t> order(c.size());
    REQUIRE(gd::select_top_k<double>(c, 4, order) == 4);
    CHECK(order[0] == 2);
    CHECK(order[1] == 5);
    CHECK(order[2] == 0);
    CHECK(order[3] == 3);
    CHECK(gd::select_top_k<double>(c, 100, order) == 6);  // -inf and NaN are not candidates
    CHECK(gd::select_top_k<double>(c, 0, order) == 0);
    // Threshold: >= tau kept (0.5 == tau), and at least the top one.
    REQUIRE(gd::select_threshold<double>(c, 0.5, order) == 5);
    CHECK(order[0] == 2);
    CHECK(order[1] == 5);
    CHECK(order[2] == 0);
    CHECK(order[4] == 7);
    REQUIRE(gd::select_threshold<double>(c, 1.0, order) == 1);
    CHECK(order[0] == 2);
    const std::vector<double> none(4, -inf);
    CHECK(gd::select_threshold<double>(none, 0.9, order) == 0);
    gt::require_throws_naming([&] { gd::select_threshold<double>(c, 0.0, order); }, "tau");
    gt::require_throws_naming([&] { gd::select_threshold<double>(c, 1.5, order); }, "tau");
    std::vector<std::size_t> small(3);
    gt::require_throws_naming([&] { gd::select_top_k<double>(c, 1, small); }, "order.size()");

    // Sampled: the first pick of select_sampled follows softmax(c / temperature) (chi-square),
    // and the k picks are distinct candidates.
    const std::vector<float> conf = {0.9f, 0.2f, -std::numeric_limits<float>::infinity(), 0.7f, 0.4f, 0.95f};
    const double temp = 0.3;
    std::vector<double> p(conf.size(), 0.0);
    double z = 0;
    for (std::size_t i = 0; i < conf.size(); ++i)
        if (i != 2) z += (p[i] = std::exp(double(conf[i]) / temp));
    for (double& x : p) x /= z;
    const std::size_t N = 40000;
    std::vector<std::size_t> first(conf.size());
    std::vector<double> e(conf.size());
    const gmk::random::philox_stream s(9, 1);
    for (std::size_t j = 0; j < N; ++j) {
        gmk::random::uniform_fill(s, j * e.size(), e.data(), e.size(), gmk::random::interval::open);
        for (double& x : e) x = -std::log(x);
        REQUIRE(gd::select_sampled<float>(conf, temp, 3, e, order) == 3);
        CHECK_FALSE((order[0] == order[1] || order[1] == order[2] || order[0] == order[2]));
        CHECK(order[0] != 2);
        ++first[order[0]];
    }
    double stat = 0;
    for (std::size_t i = 0; i < conf.size(); ++i)
        if (p[i] > 0) stat += (double(first[i]) - p[i] * N) * (double(first[i]) - p[i] * N) / (p[i] * N);
    CHECK(stat < 33.0);  // chi-square, 4 degrees of freedom, upper tail 1e-6
    gt::require_throws_naming([&] { gd::select_sampled<float>(conf, 0.0, 1, e, order); }, "temperature");
    // Confidences whose c / temperature overflows float (found by the discrete fuzz target, D2):
    // the weights are formed in double, so the largest takes all the mass and comes first, and
    // the rest (weight 0, key 0) follow by position.
    const std::vector<float> huge = {1e38f, 3e38f, -3e38f, 0.0f};
    const std::vector<double> ones(huge.size(), 1.0);
    REQUIRE(gd::select_sampled<float>(huge, 0.05, 4, ones, order) == 4);
    CHECK(order[0] == 1);
    CHECK(order[1] == 0);
    CHECK(order[2] == 2);
    CHECK(order[3] == 3);
}

namespace {

// A model that prefers token (position * 7 + 3) % V at every position, more strongly near the
// start, with a token (V - 1, "end of text") that would win everywhere unless suppressed.
struct preference_model {
    std::size_t V;
    std::size_t calls = 0;
    template <class T>
    void operator()(const token* x, std::size_t batch, std::size_t L, T* out) {
        ++calls;
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t i = 0; i < L; ++i) {
                T* row = out + (b * L + i) * V;
                for (std::size_t v = 0; v < V; ++v) row[v] = T(std::sin(double(v * 13 + i * 5 + std::size_t(x[b * L + i]))));
                row[(i * 7 + 3) % V] += T(4.0 / (1.0 + double(i)));
                row[V - 1] = T(10);
            }
    }
};

}  // namespace

TEST_CASE("generate: suppression, callback, early stop, draws that do not depend on threads", "[discrete]") {
    const std::size_t V = 40;
    const token M = 38, eot = token(V - 1);
    const std::vector<token> prompt = {1, 2, 3};
    gd::generate_options o = gd::llada(V, M, 12, 4, 6);
    o.suppress = {eot, M};
    preference_model model{V};
    std::vector<std::size_t> committed_per_step;
    std::vector<token> last;
    const auto out = gd::generate(model, prompt, o, {}, [&](const gd::step_info<float>& s) {
        committed_per_step.push_back(s.committed.size());
        last.assign(s.tokens.begin(), s.tokens.end());
        CHECK(s.block == s.step / 2);
    });
    REQUIRE(out.tokens.size() == 15);
    CHECK(out.steps == 6);
    CHECK_FALSE(out.stopped);
    CHECK(std::equal(prompt.begin(), prompt.end(), out.tokens.begin()));
    for (std::size_t i = 3; i < 15; ++i) {
        CHECK(out.tokens[i] != eot);
        CHECK(out.tokens[i] != M);
    }
    CHECK(committed_per_step == std::vector<std::size_t>{2, 2, 2, 2, 2, 2});
    CHECK(last == out.tokens);
    CHECK(model.calls == 6);

    // Steps beyond the masks are not run: 12 tokens with 24 steps in 3 blocks call the model 12 times.
    o.steps = 24;
    o.block_length = 4;
    model.calls = 0;
    gd::generate(model, prompt, o);
    CHECK(model.calls == 12);

    // Returning false stops the loop with the tokens as they are.
    std::size_t seen = 0;
    const auto partial = gd::generate(model, prompt, o, {}, [&](const gd::step_info<float>& s) {
        ++seen;
        return s.step < 2;
    });
    CHECK(seen == 3);
    CHECK(partial.stopped);
    CHECK(partial.steps == 3);
    CHECK(std::count(partial.tokens.begin(), partial.tokens.end(), M) == 12 - 3);

    // T > 0 with random remasking and CFG: the same tokens on 1 and 2 threads, and for a reused
    // workspace; a different seed gives a different answer.
    o = gd::llada(V, M, 12, 4, 6, gd::llada_remasking::random);
    o.method = gd::token_sampling::inverse_cdf;
    o.temperature = 0.8;
    o.cfg_scale = 0.5;
    o.suppress = {eot};
    gd::generate_workspace<float> w;
    const auto a = gd::generate(model, prompt, o, gd::philox_draws(5), {}, gmk::executor(), &w).tokens;
    const auto b = gd::generate(model, prompt, o, gd::philox_draws(5), {}, gt::threaded_executor(2), &w).tokens;
    const auto c = gd::generate(model, prompt, o, gd::philox_draws(6)).tokens;
    CHECK(a == b);
    CHECK(a != c);
    CHECK(std::count(a.begin(), a.end(), M) == 0);
    // The same options on every backend give the same tokens (the draws are the backend's only
    // difference, and the inverse CDF of well-separated weights does not see rounding).
    gt::for_each_backend([&](auto be) {
        using B = decltype(be);
        INFO(simd::backend_name<B>());
        CHECK(gd::generate<B>(model, prompt, o, gd::philox_draws(5)).tokens == a);
    });
    // Options that draw need a draw source, and say so before the first model call.
    model.calls = 0;
    gt::require_throws_naming([&] { gd::generate(model, prompt, o); }, "draws");
    CHECK(model.calls == 0);
    // The Philox source gives Exp(1) variates where the request asks for them (the races and
    // alg_temperature), uniforms elsewhere.
    std::vector<double> ex(20000), un(20000);
    gd::philox_draws(3)({gd::draw_kind::token_row_exponentials, 0, 1}, ex.data(), ex.size());
    gd::philox_draws(3)({gd::draw_kind::token_row_uniforms, 0, 1}, un.data(), un.size());
    double mean_e = 0, mean_u = 0;
    for (std::size_t i = 0; i < ex.size(); ++i) {
        mean_e += ex[i] / double(ex.size());
        mean_u += un[i] / double(un.size());
        CHECK((un[i] > 0 && un[i] < 1 && ex[i] > 0));
    }
    CHECK(mean_e == Approx(1).margin(0.03));
    CHECK(mean_u == Approx(0.5).margin(0.01));
}

TEST_CASE("generate rejects bad options and reports non-finite logits", "[discrete]") {
    const std::size_t V = 40;
    preference_model model{V};
    const std::vector<token> prompt = {1, 2, 3};
    const auto run = [&](const gd::generate_options& o) { gd::generate(model, prompt, o, gd::philox_draws(1)); };
    gd::generate_options o = gd::llada(V, 38, 12, 5, 6);
    gt::require_throws_naming([&] { run(o); }, "gen_length");  // not a multiple of block_length
    o = gd::llada(V, 38, 12, 4, 7);
    gt::require_throws_naming([&] { run(o); }, "steps");  // 3 blocks
    o = gd::llada(0, 0, 12, 4, 6);
    gt::require_throws_naming([&] { run(o); }, "vocab");
    o = gd::llada(V, 40, 12, 4, 6);
    gt::require_throws_naming([&] { run(o); }, "mask_id");
    o = gd::llada(V, -1, 12, 4, 6);
    gt::require_throws_naming([&] { run(o); }, "mask_id");
    o = gd::fast_dllm(V, 38, 12, 4, 0.0);
    gt::require_throws_naming([&] { run(o); }, "threshold");
    o = gd::fast_dllm(V, 38, 12, 4, 1.01);
    gt::require_throws_naming([&] { run(o); }, "threshold");
    o = gd::dream(V, 38, 12, 6);
    o.top_p = 0;
    gt::require_throws_naming([&] { run(o); }, "top_p");
    o = gd::dream(V, 38, 12, 6);
    o.temperature = -0.5;
    gt::require_throws_naming([&] { run(o); }, "temperature");
    o = gd::dream(V, 38, 12, 6);
    o.suppress = {40};
    gt::require_throws_naming([&] { run(o); }, "suppress[i]");
    o = gd::dream(V, 38, 12, 0);
    gt::require_throws_naming([&] { run(o); }, "steps");
    o = gd::dream(V, 38, 0, 6);
    gt::require_throws_naming([&] { run(o); }, "gen_length");
    o = gd::dream(V, 38, 12, 6);
    const std::vector<token> masked_prompt = {1, 38};
    gt::require_throws_naming([&] { gd::generate(model, masked_prompt, o); }, "prompt[i]");

    // A NaN row from the model: std::domain_error naming the step and the position.
    const auto nan_model = [](const token*, std::size_t batch, std::size_t L, float* out) {
        std::fill(out, out + batch * L * 40, 0.5f);
        out[(L - 1) * 40 + 7] = std::numeric_limits<float>::quiet_NaN();
    };
    o = gd::llada(V, 38, 12, 12, 6);
    try {
        gd::generate(nan_model, prompt, o);
        FAIL("no exception");
    } catch (const std::domain_error& e) {
        CHECK(std::string(e.what()).find("step 0, position 14") != std::string::npos);
    }
}
