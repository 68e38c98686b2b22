// gmk: what a sampler knows of the network: a callable that writes its raw output for x at a
// noise level, and the parameterisation that output is in.
//
//   auto net = gmk::make_model(gmk::prediction::epsilon,
//                              [&](const float* x, float* out, const gmk::model_call& call) {
//                                  run_unet(x, out, call.level.model_time);  // the user's network
//                              });
//
// x holds call.batch samples of call.sample_size elements, all at the one level call.level
// (x = alpha x0 + sigma eps; model_time is what the network is conditioned on). The callable
// writes call.output_size() elements to out: the prediction, and for a sampler that asks for
// a learned variance (ddpm with variance::learned_range) per sample first the prediction and
// then the variance channel, as a network with 2C output channels lays them out.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "noise_levels.hpp"
#include "parameterization.hpp"

namespace gmk {

/// One model evaluation, as the sampler asks for it.
struct model_call {
    noise_level level;             ///< where x is: alpha, sigma, model_time
    std::size_t step = 0;          ///< the sampler step this call belongs to, 0 .. steps - 1
    std::size_t steps = 0;         ///< N, the number of steps of the grid
    std::size_t batch = 1;         ///< samples in x
    std::size_t sample_size = 0;   ///< elements per sample
    bool learned_variance = false; ///< out holds [prediction, variance] per sample

    /// Elements of x: batch * sample_size.
    std::size_t size() const noexcept { return batch * sample_size; }
    /// Elements the model writes: size(), or 2 size() with a learned variance.
    std::size_t output_size() const noexcept { return learned_variance ? 2 * size() : size(); }
    /// Elements of one sample of the output: sample_size, or 2 sample_size.
    std::size_t output_sample_size() const noexcept { return learned_variance ? 2 * sample_size : sample_size; }
};

/// A model for gmk::sample: the callable f(const T* x, T* out, const model_call&) and what it
/// predicts.
template <class F>
class model_function {
public:
    model_function(prediction p, F f) : prediction_(p), f_(std::move(f)) {}
    /// The parameterisation of the output.
    prediction predicts() const noexcept { return prediction_; }
    template <class T>
    void operator()(const T* x, T* out, const model_call& call) {
        f_(x, out, call);
    }
    F& function() noexcept { return f_; }

private:
    prediction prediction_;
    F f_;
};

/// Wraps the user's callable f(const T* x, T* out, const gmk::model_call&) as a model whose
/// output is in parameterisation p.
template <class F>
model_function<std::decay_t<F>> make_model(prediction p, F&& f) {
    return model_function<std::decay_t<F>>(p, std::forward<F>(f));
}

}  // namespace gmk
