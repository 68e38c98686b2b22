// gmk: the sampling loop. gmk::sample walks a sampler over a noise_grid: at each step the
// sampler calls the model (once, twice for heun), draws noise from the noise source when it
// needs it, and updates x in place; a progress callback sees every step and may stop early.
//
//   gmk::noise_grid grid = gmk::noise_grid::ve(gmk::sigmas_karras(20, 0.03, 14.6));
//   gmk::philox_noise noise(seed);
//   std::vector<float> x(n);                                   // x = sigma_0 z, e.g. add_noise
//   gmk::sample(gmk::dpmpp_2m{}, model, grid, gmk::latent<float>(x.data(), batch, n / batch), noise);
//
// Image-to-image: start = img2img_start(grid.steps(), strength), x = add_noise(grid[start],
// image, z), then sample(..., sample_options{start}).
//
// Allocation: sample() allocates its buffers once (a sampler_workspace) before the first step;
// pass a workspace of your own to keep a loop that runs many generations allocation-free. The
// steps allocate nothing.
//
// Non-finite values: each step tracks, inside its fused pass, whether the new x is finite.
// If it is not, sample() throws gmk::non_finite_error naming the step, and whether the model
// output was already non-finite (a model that writes NaN) or the update overflowed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "../random/noise.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/memory.hpp"
#include "model.hpp"
#include "noise_levels.hpp"
#include "samplers.hpp"

namespace gmk {

/// x: `batch` samples of `sample_size` contiguous elements, sharing one grid.
template <class T>
struct latent {
    T* data = nullptr;
    std::size_t batch = 1;
    std::size_t sample_size = 0;

    latent() = default;
    latent(T* x, std::size_t batch_, std::size_t sample_size_) noexcept : data(x), batch(batch_), sample_size(sample_size_) {}
    /// One sample of size elements.
    latent(T* x, std::size_t size) noexcept : data(x), batch(1), sample_size(size) {}
    std::size_t size() const noexcept { return batch * sample_size; }
};

/// The noise source of a deterministic sampler: throws if a step asks it for noise.
struct no_noise {
    template <class T>
    void operator()(T*, std::size_t, const noise_request& r) const {
        detail::fail_argument("sample", "noise", "no_noise",
                              "the sampler draws noise at step " + std::to_string(r.step) + ": pass a noise source");
    }
};

/// Where sampling starts, and whether steps check their result.
struct sample_options {
    std::size_t start_step = 0;  ///< first step (image-to-image: img2img_start)
    bool check_finite = true;    ///< throw non_finite_error when x stops being finite
};

/// What the progress callback sees after each step: x at level step + 1 and the step's
/// denoised estimate (for heun, the one at the start of the step, as k-diffusion reports it).
template <class T>
struct sample_progress {
    std::size_t step;       ///< the step just taken
    std::size_t steps;      ///< N
    const T* x;             ///< batch * sample_size elements
    const T* denoised;      ///< batch * sample_size elements
    std::size_t size;       ///< batch * sample_size
    const noise_level& level;  ///< the level x is now at (grid[step + 1])
};

/// What sample() did.
struct sample_result {
    std::size_t steps_taken = 0;      ///< steps run
    std::size_t model_calls = 0;      ///< network evaluations
    bool stopped = false;             ///< the callback asked to stop
};

/// A step produced a non-finite x (thrown by sample()).
class non_finite_error : public std::runtime_error {
public:
    non_finite_error(std::size_t step, bool model_output, const std::string& what)
        : std::runtime_error(what), step_(step), model_output_(model_output) {}
    /// The step whose result was not finite.
    std::size_t step() const noexcept { return step_; }
    /// Whether the model's output was already non-finite at that step.
    bool model_output() const noexcept { return model_output_; }

private:
    std::size_t step_;
    bool model_output_;
};

/// The buffers of a sampler run: the model output, the denoised estimate, the sampler's own
/// (history, predictor, noise) and a sample-sized scratch for dynamic thresholding. Reused
/// across runs; grows when a run needs more.
template <class T>
class sampler_workspace {
public:
    /// Makes room for `sampler` over x (allocates only when it needs more than it has).
    template <class Sampler>
    void reserve(const Sampler& sampler, const latent<T>& x) {
        const std::size_t n = x.size();
        const std::size_t need = (sampler.learned_variance() ? 2 : 1) * n + n + sampler.buffers() * n + x.sample_size;
        if (storage_.size() < need) storage_.resize(need);
    }
    T* data() noexcept { return storage_.data(); }
    std::size_t size() const noexcept { return storage_.size(); }

private:
    simd::aligned_vector<T> storage_;
};

/// A callback that never stops sampling.
struct no_progress {
    template <class T>
    bool operator()(const sample_progress<T>&) const noexcept {
        return true;
    }
};

namespace detail {

// What a sampler step sees (the "step context" of samplers.hpp).
template <class Noise, class T, class = void>
struct fills_pieces : std::false_type {};
template <class Noise, class T>
struct fills_pieces<Noise, T,
                    std::void_t<decltype(std::declval<Noise&>().fill(std::declval<T*>(), std::size_t(), std::size_t(),
                                                                      std::declval<const noise_request&>()))>>
    : std::true_type {};

template <class B, class T, class Model, class Noise>
struct step_context {
    using value_type = T;
    using backend = B;
    static constexpr bool piecewise = fills_pieces<Noise, T>::value;

    const noise_grid& grid;
    Model& model;
    Noise& noise;
    T* x;
    std::size_t batch, sample_size, n, steps, first;
    bool learned_variance;
    T* out;      // model output
    T* den;      // denoised estimate of the step
    T* bufs[2];  // sampler buffers
    T* scratch;  // sample_size elements
    std::size_t model_calls = 0;
    bool check = true;
    simd::mask<T, B> bad = simd::mask<T, B>(false);  // set in a lane once a result was not finite

    T* buffer(std::size_t k) const noexcept { return bufs[k]; }
    void swap_den(std::size_t k) noexcept { std::swap(den, bufs[k]); }

    // Runs the model at level l on xin (n elements) into out; the coefficients of D.
    x0_eps_coefficients evaluate(const T* xin, const noise_level& l, std::size_t step) {
        model_call call;
        call.level = l;
        call.step = step;
        call.steps = steps;
        call.batch = batch;
        call.sample_size = sample_size;
        call.learned_variance = learned_variance;
        model(xin, out, call);
        ++model_calls;
        return to_x0_eps_coefficients(model.predicts(), l);
    }

    noise_request request(std::size_t i) const noexcept { return {i, grid.ratio(i), grid.ratio(i + 1)}; }

    // n normals for step i into z: the request carries the VE ratios r_i -> r_{i+1}.
    void draw(T* z, std::size_t i) { noise(z, n, request(i)); }

    // A draw the reference makes and does not use: consumes a sequential source the same way;
    // a source with fill() is a pure function of the step, so nothing needs drawing.
    void skip_noise(std::size_t i, T* z) {
        if constexpr (!piecewise) draw(z, i);
    }

    // body(at, count, z) over [0, n) with z[0 .. count) the noise of step i at elements
    // [at, at + count): in L1-sized pieces from a source with fill(), else one whole-array draw
    // into `z`.
    template <class F>
    void with_noise(std::size_t i, T* z, F&& body) {
        if constexpr (piecewise) {
            constexpr std::size_t piece = 2048;
            alignas(64) T buf[piece];
            const noise_request r = request(i);
            for (std::size_t at = 0; at < n; at += piece) {
                const std::size_t count = std::min(piece, n - at);
                noise.fill(buf, at, count, r);
                body(at, count, static_cast<const T*>(buf));
            }
        } else {
            draw(z, i);
            body(0, n, static_cast<const T*>(z));
        }
    }

    // simd::map over `count` elements, folding the finiteness of the first output into `bad`
    // (y - y is 0 for finite y and NaN for inf or NaN; the fold is one OR of masks, so it adds
    // no dependency chain longer than a cycle to the pass).
    template <class... O, class... I, class F>
    void map(std::size_t count, simd::outputs<O...> o, simd::inputs<I...> in, F f) {
        if (!check) return simd::map<B>(count, o, in, f);
        auto acc = bad;
        simd::map<B>(count, o, in, [&acc, &f](const auto&... v) {
            auto r = f(v...);
            if constexpr (simd::detail::is_tuple<decltype(r)>::value)
                acc = acc | simd::isnan(std::get<0>(r) - std::get<0>(r));
            else
                acc = acc | simd::isnan(r - r);
            return r;
        });
        bad = acc;
    }

    bool finite() const noexcept { return !simd::any(bad); }
};

}  // namespace detail

/// Runs `sampler` over grid steps [options.start_step, N) on x in place. model: a gmk::make_model
/// (or any object with predicts() and operator()(const T*, T*, const model_call&)); noise: a
/// source of <gmk/random/noise.hpp> (gmk::no_noise for deterministic samplers); progress:
/// bool(const sample_progress<T>&) (return false to stop) or void(...). Throws
/// std::invalid_argument for a null x, an empty latent, a start step past the grid, sampler
/// options or a grid the sampler cannot run on, or a model prediction undefined at a level it
/// is called at (epsilon at alpha = 0); gmk::non_finite_error as described at the top.
template <class B = simd::native, class T, class Sampler, class Model, class Noise, class Progress = no_progress>
sample_result sample(const Sampler& sampler, Model&& model, const noise_grid& grid, latent<T> x, Noise&& noise,
                     sampler_workspace<T>& workspace, const sample_options& options = {}, Progress&& progress = {}) {
    static_assert(std::is_floating_point_v<T>, "gmk::sample: T must be float or double");
    constexpr const char* fn = "sample";
    check_argument(x.sample_size >= 1, fn, "x.sample_size", x.sample_size, "must be >= 1");
    check_argument(x.batch >= 1, fn, "x.batch", x.batch, "must be >= 1");
    check_pointer(x.data, x.size(), fn, "x.data");
    if (options.start_step >= grid.steps())  // the message is composed only on failure
        detail::fail_argument(fn, "options.start_step", options.start_step,
                              "must be < grid.steps() = " + std::to_string(grid.steps()));
    sampler.check(grid, options.start_step);
    // A model predicting epsilon cannot give x0 where alpha = 0 (pure noise).
    if (model.predicts() == prediction::epsilon && grid[options.start_step].alpha == 0)
        detail::fail_argument(fn, "grid[start_step].alpha", 0.0,
                              "must be > 0 for an epsilon-prediction model (x0 = (x - sigma eps) / alpha)");
    workspace.reserve(sampler, x);
    const std::size_t n = x.size();
    T* w = workspace.data();
    using M = std::remove_reference_t<Model>;
    using N = std::remove_reference_t<Noise>;
    detail::step_context<B, T, M, N> c{grid, model, noise, x.data, x.batch, x.sample_size, n, grid.steps(),
                                       options.start_step, sampler.learned_variance(), nullptr, nullptr,
                                       {nullptr, nullptr}, nullptr};
    c.out = w;
    w += (sampler.learned_variance() ? 2 : 1) * n;
    c.den = w;
    w += n;
    for (std::size_t k = 0; k < sampler.buffers() && k < 2; ++k, w += n) c.bufs[k] = w;
    c.scratch = w;
    c.check = options.check_finite;
    sample_result result;
    for (std::size_t i = options.start_step; i < grid.steps(); ++i) {
        sampler.step(c, i);
        ++result.steps_taken;
        result.model_calls = c.model_calls;
        if (c.check && !c.finite()) {
            const std::size_t out_size = (sampler.learned_variance() ? 2 : 1) * n;
            // the first element that is NaN or inf (x - x is NaN only there)
            const bool bad_model = simd::find_first<B>(out_size, simd::in(static_cast<const T*>(c.out)), [](const auto& v) {
                                       return simd::isnan(v - v);
                                   }) < out_size;
            throw non_finite_error(i, bad_model,
                                   std::string("gmk::sample: ") + Sampler::name + " step " + std::to_string(i) + " of " +
                                       std::to_string(grid.steps()) +
                                       (bad_model ? ": the model output is not finite (NaN or inf)"
                                                  : ": x is no longer finite (the update overflowed)"));
        }
        const sample_progress<T> p{i, grid.steps(), x.data, c.den, n, grid[i + 1]};
        if constexpr (std::is_same_v<decltype(progress(p)), void>) {
            progress(p);
        } else if (!progress(p)) {
            result.stopped = i + 1 < grid.steps();
            break;
        }
    }
    return result;
}

/// As above, with a workspace of its own (allocated once, before the first step).
template <class B = simd::native, class T, class Sampler, class Model, class Noise, class Progress = no_progress>
sample_result sample(const Sampler& sampler, Model&& model, const noise_grid& grid, latent<T> x, Noise&& noise,
                     const sample_options& options = {}, Progress&& progress = {}) {
    sampler_workspace<T> workspace;
    return sample<B>(sampler, std::forward<Model>(model), grid, x, std::forward<Noise>(noise), workspace, options,
                     std::forward<Progress>(progress));
}

/// x = alpha x0 + sigma z at `level` (diffusers add_noise / scale_noise, k-diffusion's
/// x0 + sigma z): the forward process, to start image-to-image sampling at that level, or
/// (x0 = 0) the initial noise sigma_0 z. out may alias x0 or z.
template <class B = simd::native, class T>
void add_noise(const noise_level& level, const T* x0, const T* z, T* out, std::size_t n) {
    constexpr const char* fn = "add_noise";
    check_pointer(x0, n, fn, "x0");
    check_pointer(z, n, fn, "z");
    check_pointer(out, n, fn, "out");
    detail::check_level(fn, level);
    const T a = T(level.alpha), s = T(level.sigma);
    simd::map<B>(n, simd::out(out), simd::in(x0, z), [=](const auto& xv, const auto& zv) {
        using V = std::decay_t<decltype(xv)>;
        return detail::lin(V(a), xv, V(s), zv);
    });
}

/// The first step of image-to-image sampling at `strength` in [0, 1] over an N-step grid
/// (diffusers' img2img pipelines): N - min(floor(N strength), N). strength 1 starts from pure
/// noise (step 0); a strength that leaves no step gives N, which sample() rejects (nothing to
/// do), so callers check it.
inline std::size_t img2img_start(std::size_t steps, double strength) {
    constexpr const char* fn = "img2img_start";
    check_argument(steps >= 1, fn, "steps", steps, "must be >= 1");
    check_argument(strength >= 0 && strength <= 1, fn, "strength", strength, "must be in [0, 1]");
    const std::size_t init = std::min(std::size_t(double(steps) * strength), steps);
    return steps - init;
}

}  // namespace gmk
