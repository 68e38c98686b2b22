// gmk: guidance: classifier-free guidance, its rescale, and classifier guidance, as element-wise
// kernels and as model adaptors that gmk::sample runs like any model.
//
//   classifier-free guidance (Ho & Salimans 2022)   standard: out = u + w (c - u)
//                                                    original: out = (1 + w) c - w u
//   guidance_rescale (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are
//   Flawed", eq. 15-16; diffusers rescale_noise_cfg), per sample with the unbiased std over all
//   of the sample's elements:   out = phi out std(c) / std(out) + (1 - phi) out
//   classifier guidance (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", Algorithm 2):
//   the score gains scale * grad log p(y | x); at level (a, s) that is eps -= s scale grad and
//   x0 += (s^2 / a) scale grad, applied to the model output in its own parameterisation.
//
// Guidance acts on the model output in the model's parameterisation (epsilon, v, ...), as the
// diffusers pipelines do. With a learned variance (2C output channels) only the prediction
// channels are guided; the variance channels are the conditional model's.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>

#include "../core/error.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/memory.hpp"
#include "../simd/ops.hpp"
#include "model.hpp"

namespace gmk {

/// How the guidance scale enters (see the top of this file). original with scale w equals
/// standard with scale w + 1.
enum class cfg_formulation { standard, original };

/// out = uncond + scale (cond - uncond) (standard) or (1 + scale) cond - scale uncond (original),
/// over n elements. out may alias either input.
template <class B = simd::native, class T>
void classifier_free_guidance(const T* uncond, const T* cond, T* out, std::size_t n, double scale,
                              cfg_formulation formulation = cfg_formulation::standard) {
    constexpr const char* fn = "classifier_free_guidance";
    check_pointer(uncond, n, fn, "uncond");
    check_pointer(cond, n, fn, "cond");
    check_pointer(out, n, fn, "out");
    check_argument(std::isfinite(scale), fn, "scale", scale, "must be finite");
    if (formulation == cfg_formulation::standard) {
        const T w = T(scale);
        simd::map<B>(n, simd::out(out), simd::in(uncond, cond), [=](const auto& u, const auto& c) {
            using V = std::decay_t<decltype(u)>;
            return simd::fma(V(w), c - u, u);
        });
    } else {
        const T w1 = T(1 + scale), w = T(-scale);
        simd::map<B>(n, simd::out(out), simd::in(uncond, cond), [=](const auto& u, const auto& c) {
            using V = std::decay_t<decltype(u)>;
            return simd::fma(V(w1), c, V(w) * u);
        });
    }
}

namespace detail {

// Unbiased standard deviation of x[0..n), n >= 2, two passes (mean, then squared deviations).
template <class B, class T>
double sample_std(const T* x, std::size_t n) {
    const double mean = double(simd::sum<B>(x, n)) / double(n);
    const T m = T(mean);
    const T ss = simd::reduce_add(simd::transform_reduce<B>(
        n, T(0), simd::in(x),
        [=](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            const V d = v - V(m);
            return d * d;
        },
        [](const auto& a, const auto& b) { return a + b; }));
    return std::sqrt(double(ss) / double(n - 1));
}

// The rescale of one sample given std(cond): g *= phi sc / std(g) + 1 - phi (left alone where
// std(g) = 0).
template <class B, class T>
void rescale_sample(T* g, std::size_t n, double sc, double phi) {
    const double sg = sample_std<B>(static_cast<const T*>(g), n);
    if (!(sg > 0)) return;
    const T f = T(phi * (sc / sg) + (1 - phi));
    simd::map<B>(n, simd::out(g), simd::in(static_cast<const T*>(g)), [=](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        return v * V(f);
    });
}

}  // namespace detail

/// guidance_rescale in place: for each of `batch` samples of `sample_size` elements (>= 2),
/// guided = phi guided std(cond) / std(guided) + (1 - phi) guided, phi in [0, 1]. A sample whose
/// guided output has std 0 is left as it is (the rescale is undefined there; diffusers would
/// give NaN). Sample b starts at b * stride (0: sample_size) of each array.
template <class B = simd::native, class T>
void guidance_rescale(T* guided, const T* cond, std::size_t batch, std::size_t sample_size, double phi,
                      std::size_t cond_stride = 0, std::size_t guided_stride = 0) {
    constexpr const char* fn = "guidance_rescale";
    check_argument(sample_size >= 2 || batch == 0, fn, "sample_size", sample_size, "must be >= 2 (an unbiased std)");
    check_argument(phi >= 0 && phi <= 1, fn, "phi", phi, "must be in [0, 1]");
    if (cond_stride == 0) cond_stride = sample_size;
    if (guided_stride == 0) guided_stride = sample_size;
    check_pointer(guided, batch * guided_stride, fn, "guided");
    check_pointer(cond, batch * cond_stride, fn, "cond");
    for (std::size_t b = 0; b < batch; ++b)
        detail::rescale_sample<B>(guided + b * guided_stride, sample_size,
                                  detail::sample_std<B>(cond + b * cond_stride, sample_size), phi);
}

/// The settings of guided_model.
struct cfg_options {
    double scale = 7.5;                                   ///< w
    cfg_formulation formulation = cfg_formulation::standard;
    double rescale = 0;                                   ///< guidance_rescale phi, 0 = off
    double start = 0;                                     ///< guide steps with start <= step / steps < stop
    double stop = 1;                                      ///< (the others call the conditional model only)
};

/// A model that evaluates a conditional and an unconditional model and returns the classifier-
/// free guided output (with the rescale when options.rescale > 0). Outside [start, stop) of the
/// sampling (as a fraction step / steps) only the conditional model runs. Both models must
/// predict the same parameterisation. Holds one output-sized buffer, allocated at construction
/// for outputs of `output_size` elements (model_call::output_size()).
template <class T, class Cond, class Uncond, class B = simd::native>
class guided_model {
public:
    guided_model(Cond cond, Uncond uncond, const cfg_options& options, std::size_t output_size)
        : cond_(std::move(cond)), uncond_(std::move(uncond)), options_(options), buffer_(output_size) {
        constexpr const char* fn = "guided_model";
        if (cond_.predicts() != uncond_.predicts())
            detail::fail_argument(fn, "uncond.predicts()", prediction_name(uncond_.predicts()),
                                  std::string("must equal cond.predicts() = ") + prediction_name(cond_.predicts()));
        check_argument(std::isfinite(options.scale), fn, "options.scale", options.scale, "must be finite");
        check_argument(options.rescale >= 0 && options.rescale <= 1, fn, "options.rescale", options.rescale,
                       "must be in [0, 1]");
        check_argument(options.start >= 0 && options.start <= options.stop && options.stop <= 1, fn, "options.start",
                       options.start, "must satisfy 0 <= start <= stop <= 1");
    }

    prediction predicts() const noexcept { return cond_.predicts(); }
    const cfg_options& options() const noexcept { return options_; }

    /// Whether step `step` of `steps` is guided.
    bool guides(std::size_t step, std::size_t steps) const noexcept {
        const double f = steps ? double(step) / double(steps) : 0.0;
        return f >= options_.start && f < options_.stop;
    }

    void operator()(const T* x, T* out, const model_call& call) {
        check_argument(call.output_size() <= buffer_.size(), "guided_model", "call.output_size()", call.output_size(),
                       "must not exceed the output_size the adaptor was built for");
        cond_(x, out, call);
        if (!guides(call.step, call.steps)) return;
        uncond_(x, buffer_.data(), call);
        const std::size_t ss = call.sample_size, os = call.output_sample_size();
        for (std::size_t b = 0; b < call.batch; ++b) {
            T* o = out + b * os;
            const T* u = buffer_.data() + b * os;
            // the rescale needs std(cond): take it before out is overwritten
            const double sc = options_.rescale > 0 ? detail::sample_std<B>(static_cast<const T*>(o), ss) : 0.0;
            classifier_free_guidance<B>(u, static_cast<const T*>(o), o, ss, options_.scale, options_.formulation);
            if (options_.rescale > 0) detail::rescale_sample<B>(o, ss, sc, options_.rescale);
        }
    }

private:
    Cond cond_;
    Uncond uncond_;
    cfg_options options_;
    simd::aligned_vector<T> buffer_;
};

/// guided_model<T> from the two models.
template <class T, class Cond, class Uncond>
guided_model<T, std::decay_t<Cond>, std::decay_t<Uncond>> make_guided(Cond&& cond, Uncond&& uncond,
                                                                      const cfg_options& options,
                                                                      std::size_t output_size) {
    return {std::forward<Cond>(cond), std::forward<Uncond>(uncond), options, output_size};
}

/// The change of a model output in parameterisation p at `level` when the score gains g (per
/// unit g): out = m_x0 x0 + m_eps eps with x0 += (s^2 / a) g, eps -= s g.
inline double score_shift_coefficient(prediction p, const noise_level& level) {
    const double a = level.alpha, s = level.sigma;
    double m_x0 = 0, m_eps = 0;
    switch (p) {
        case prediction::epsilon: m_eps = 1; break;
        case prediction::sample: m_x0 = 1; break;
        case prediction::v: m_x0 = -s; m_eps = a; break;
        case prediction::flow_velocity: m_x0 = -1; m_eps = 1; break;
    }
    return m_x0 * (s * s / a) - m_eps * s;
}

/// Classifier guidance: a model whose output is the wrapped model's, shifted so that its score
/// gains scale * grad log p(y | x). gradient(const T* x, T* grad, const model_call&) writes
/// grad log p(y | x) at the call's level. Skipped where alpha = 0 (x carries no signal; the
/// shift (s^2 / a) is undefined). Holds one x-sized buffer for the gradient.
template <class T, class Model, class Gradient, class B = simd::native>
class classifier_guided_model {
public:
    classifier_guided_model(Model model, Gradient gradient, double scale, std::size_t size)
        : model_(std::move(model)), gradient_(std::move(gradient)), scale_(scale), grad_(size) {
        check_argument(std::isfinite(scale), "classifier_guided_model", "scale", scale, "must be finite");
    }

    prediction predicts() const noexcept { return model_.predicts(); }

    void operator()(const T* x, T* out, const model_call& call) {
        check_argument(call.size() <= grad_.size(), "classifier_guided_model", "call.size()", call.size(),
                       "must not exceed the size the adaptor was built for");
        model_(x, out, call);
        if (!(call.level.alpha > 0) || scale_ == 0) return;
        gradient_(x, grad_.data(), call);
        const T k = T(scale_ * score_shift_coefficient(model_.predicts(), call.level));
        const std::size_t ss = call.sample_size, os = call.output_sample_size();
        for (std::size_t b = 0; b < call.batch; ++b) {
            T* o = out + b * os;
            const T* g = grad_.data() + b * ss;
            simd::map<B>(ss, simd::out(o), simd::in(static_cast<const T*>(o), g), [=](const auto& ov, const auto& gv) {
                using V = std::decay_t<decltype(ov)>;
                return simd::fma(V(k), gv, ov);
            });
        }
    }

private:
    Model model_;
    Gradient gradient_;
    double scale_;
    simd::aligned_vector<T> grad_;
};

/// classifier_guided_model<T> from the model and the gradient callable.
template <class T, class Model, class Gradient>
classifier_guided_model<T, std::decay_t<Model>, std::decay_t<Gradient>> make_classifier_guided(
    Model&& model, Gradient&& gradient, double scale, std::size_t size) {
    return {std::forward<Model>(model), std::forward<Gradient>(gradient), scale, size};
}

}  // namespace gmk
