// gmk example: masked discrete diffusion, the decoding loop of diffusion language models (LLaDA,
// Dream, Fast-dLLM), run by gmk::discrete::generate on a toy word-level "language model" and
// printed step by step, so that the order in which each policy unmasks the answer can be seen.
//
// The toy model knows five answers of 12 words. Its logits are a deterministic function of the
// current tokens: each answer has a prior weight (dog sentences are more common; an answer about
// the animal the prompt names counts 4x) and loses a factor e^5 for every decoded word it
// disagrees with; a masked position predicts the words of the answers in proportion to their
// weights, blurred towards all words by 2% per position of distance to the nearest known word
// (decoded, or the end of the prompt). So positions next to what is known are the confident ones,
// words all answers agree on ("the", ",", "then") are confident from afar, and the policies
// differ in how they rank positions: the model's probability, the margin of the best word over
// the second, the entropy, a random order, or a threshold.
//
// One line per step: the step, the answer so far (masks '_', the words this step committed in
// brackets) and, after '@', the committed positions counted from the start of the answer.
#include <gmk/gmk.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace gd = gmk::discrete;
using gd::token;

namespace {

// ---- the toy model -------------------------------------------------------------------------

const char* const words[] = {
    "_",  // the mask token (id 0)
    "what", "does", "the", "cat", "do", "all", "day", "?", "sleeps", "on", "warm", "mat", ",",
    "then", "eats", "fish", ".", "sits", "old", "drinks", "milk", "dog", "rug", "meat", "runs",
    "in", "big", "park", "water", "a", "bird", "sings", "tree", "house", "is", "and", "red", "it"};
constexpr std::size_t vocab = sizeof(words) / sizeof(words[0]);  // 39
constexpr token mask = 0;
constexpr std::size_t answer_length = 12;

token id(const char* word) {  // -1 for a word not in the vocabulary
    for (std::size_t v = 0; v < vocab; ++v)
        if (std::strcmp(words[v], word) == 0) return token(v);
    return -1;
}

std::vector<token> ids(std::initializer_list<const char*> text) {
    std::vector<token> out;
    for (const char* w : text) out.push_back(id(w));
    return out;
}

struct answer {
    std::vector<token> words;
    double popularity;  // prior weight when the prompt does not name its subject
    token subject;      // the animal it is about
};

const std::vector<answer> answers = {
    {ids({"the", "cat", "sleeps", "on", "the", "warm", "mat", ",", "then", "eats", "fish", "."}), 1.0, id("cat")},
    {ids({"the", "cat", "sleeps", "on", "the", "warm", "mat", ",", "then", "drinks", "milk", "."}), 0.7, id("cat")},
    {ids({"the", "cat", "sits", "on", "the", "old", "mat", ",", "then", "drinks", "milk", "."}), 1.2, id("cat")},
    {ids({"the", "dog", "sleeps", "on", "the", "warm", "rug", ",", "then", "eats", "meat", "."}), 2.0, id("dog")},
    {ids({"the", "dog", "runs", "in", "the", "big", "park", ",", "then", "drinks", "water", "."}), 1.5, id("dog")},
};

struct toy_lm {
    std::size_t prompt_length;
    bool shifted;           // Dream: row i predicts position i + 1, as in the autoregressive model it comes from
    std::size_t calls = 0;  // one per step; a CFG step sends a batch of two sequences

    // The model interface of generate(): `batch` sequences of `length` tokens in, one row of
    // `vocab` logits per token out.
    void operator()(const token* x, std::size_t batch, std::size_t length, float* logits) {
        ++calls;
        for (std::size_t b = 0; b < batch; ++b) sequence(x + b * length, length, logits + b * length * vocab);
    }

    void sequence(const token* x, std::size_t length, float* logits) const {
        const token* a = x + prompt_length;  // the answer part
        std::vector<double> weight(answers.size()), p(vocab);
        double total = 0;
        for (std::size_t k = 0; k < answers.size(); ++k) {
            const bool named = std::count(x, x + prompt_length, answers[k].subject) > 0;
            int mismatches = 0;
            for (std::size_t j = 0; j < answer_length; ++j) mismatches += a[j] != mask && a[j] != answers[k].words[j];
            weight[k] = answers[k].popularity * (named ? 4.0 : 1.0) * std::exp(-5.0 * mismatches);
            total += weight[k];
        }
        // Under CFG the unconditional copy has the prompt masked: then nothing anchors position 0.
        const bool prompt_seen = prompt_length > 0 && x[prompt_length - 1] != mask;
        for (std::size_t r = 0; r < length; ++r) {
            const std::size_t t = shifted ? r + 1 : r;  // the position row r predicts
            std::fill(p.begin(), p.end(), 0.0);
            double blur = 0.02;  // the share spread evenly over all words
            if (t >= prompt_length && t < length) {
                const std::size_t j = t - prompt_length;
                for (std::size_t k = 0; k < answers.size(); ++k) p[std::size_t(answers[k].words[j])] += weight[k] / total;
                std::size_t d = prompt_seen ? j + 1 : answer_length;  // the prompt ends at position -1
                for (std::size_t i = 0; i < answer_length; ++i)
                    if (a[i] != mask) d = std::min(d, i > j ? i - j : j - i);
                // 0.1% more per position to the right breaks exact ties (say between "sleeps"
                // and "warm" below), which rounding would otherwise decide differently on
                // different SIMD backends.
                blur = 0.02 * double(std::max<std::size_t>(d, 1)) + 0.001 * double(j);
            } else if (t < length) {
                p[std::size_t(x[t])] = 1;  // a prompt position: its own word
            }
            float* row = logits + r * vocab;
            for (std::size_t v = 0; v < vocab; ++v) row[v] = float(std::log((1 - blur) * p[v] + blur / double(vocab - 1)));
            row[mask] = -30;  // never predicts the mask
        }
    }
};

// ---- decoding, printed ---------------------------------------------------------------------

const std::vector<token> prompt = ids({"what", "does", "the", "cat", "do", "all", "day", "?"});

// Decodes the answer with options `o` and draw source `draws`, printing every step; returns
// whether every mask was filled.
template <class Draws>
bool run(const char* title, const gd::generate_options& o, Draws&& draws) {
    toy_lm model{prompt.size(), o.shift_logits};
    std::printf("\n%s\n", title);
    // Runs after every step: s.tokens is the whole sequence (prompt first), s.committed the
    // positions (in the sequence) this step filled.
    const auto on_step = [&](const gd::step_info<float>& s) {
        std::string line, at;
        for (std::size_t j = 0; j < answer_length; ++j) {
            const std::size_t i = prompt.size() + j;
            const bool now = std::find(s.committed.begin(), s.committed.end(), i) != s.committed.end();
            line += std::string(j ? " " : "") + (now ? "[" : "") + words[s.tokens[i]] + (now ? "]" : "");
        }
        for (std::size_t i : s.committed) at += ' ' + std::to_string(i - prompt.size());
        std::printf("%3zu  %-62s @%s\n", s.step + 1, line.c_str(), at.empty() ? " -" : at.c_str());
    };
    const gd::generation out = gd::generate(model, prompt, o, draws, on_step);
    std::printf("     %zu steps, %zu model calls%s\n", out.steps, model.calls, o.cfg_scale > 0 ? " (batches of 2)" : "");
    return std::find(out.tokens.begin(), out.tokens.end(), mask) == out.tokens.end();
}

}  // namespace

int main() {
    std::printf("prompt:");
    for (token t : prompt) std::printf(" %s", words[t]);
    std::printf("\n");
    bool ok = true;

    // LLaDA: two blocks of 6 positions decoded left to right, 6 steps each (one word per step).
    ok &= run("LLaDA low_confidence: the most probable word first, blocks of 6, 12 steps",
              gd::llada(vocab, mask, answer_length, 6, 12), gd::no_draws{});
    ok &= run("LLaDA random remasking: a random order within each block",
              gd::llada(vocab, mask, answer_length, 6, 12, gd::llada_remasking::random), gd::philox_draws(7));
    // Guidance: logits = un + (2 + 1) (cond - un), un from the sequence with its prompt masked.
    // It amplifies what the prompt adds, so "cat" is now decided second, not fourth.
    gd::generate_options guided = gd::llada(vocab, mask, answer_length, 6, 12);
    guided.cfg_scale = 2;
    ok &= run("LLaDA low_confidence with classifier-free guidance 2", guided, gd::no_draws{});

    // Dream: one block, 8 steps whose counts follow Dream's timesteps; the model's row i
    // predicts position i + 1 (the presets set shift_logits). The order decides the answer:
    // while position 2 is open, "drinks" and "milk" are the likelier words at 9 and 10, so a
    // policy that commits one of them first ends with milk, one that settles "sleeps" first with
    // fish.
    ok &= run("Dream maskgit_plus: the most probable word first",
              gd::dream(vocab, mask, answer_length, 8, gd::dream_algorithm::maskgit_plus), gd::no_draws{});
    ok &= run("Dream topk_margin: the largest lead of the best word over the second",
              gd::dream(vocab, mask, answer_length, 8, gd::dream_algorithm::topk_margin), gd::no_draws{});
    ok &= run("Dream entropy: the most peaked distribution first",
              gd::dream(vocab, mask, answer_length, 8, gd::dream_algorithm::entropy), gd::no_draws{});
    // origin picks positions at random and fills each with its own most probable word.
    ok &= run("Dream origin: each masked position with probability 1 - t_next / t",
              gd::dream(vocab, mask, answer_length, 8, gd::dream_algorithm::origin),
              gd::philox_draws(7));
    // Sampling: words drawn from softmax(logits / 0.8) cut to the smallest set holding 90% (the
    // blur's long tail goes); this seed finds the third cat answer. Words committed in the same
    // step are drawn without seeing each other, so other seeds mix answers in the last step
    // ("sleeps on the old mat").
    gd::generate_options hot = gd::dream(vocab, mask, answer_length, 8);
    hot.temperature = 0.8;
    hot.top_p = 0.9;
    ok &= run("Dream maskgit_plus at temperature 0.8, top-p 0.9", hot, gd::philox_draws(2));

    // Fast-dLLM: every position of the block whose probability reaches 0.9, at least one a step;
    // as many steps as that takes.
    ok &= run("Fast-dLLM threshold 0.9, blocks of 6", gd::fast_dllm(vocab, mask, answer_length, 6, 0.9), gd::no_draws{});
    return ok ? 0 : 1;
}
