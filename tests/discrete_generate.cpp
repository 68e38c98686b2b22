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
            case gd::draw_kind::token_row:
                if (!gumbel->empty()) take(*gumbel, at_gumbel, out, n);
                else take(*exps, at_exp, out, n);
                break;
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
        case 0: o = gd::llada(V, M, gen, bl, steps, false); break;
        case 1: o = gd::llada(V, M, gen, bl, steps, true); break;
        case 2: o = gd::dream(V, M, gen, steps, gd::confidence_policy::probability, true); break;
        case 3: o = gd::dream(V, M, gen, steps, gd::confidence_policy::probability); break;
        case 4: o = gd::dream(V, M, gen, steps, gd::confidence_policy::margin); break;
        case 5: o = gd::dream(V, M, gen, steps, gd::confidence_policy::neg_entropy); break;
        default: o = gd::fast_dllm(V, M, gen, bl, c[9]); break;
    }
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
    const std::vector<token> out = gd::generate<B, T>(model, prompt, o, draws, on_step);
    if (limit < rows.size()) return;  // the run after an unmatched tie is not comparable
    if (step != rows.size()) log.add(where, ": ", step, " steps vs ", rows.size());
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
