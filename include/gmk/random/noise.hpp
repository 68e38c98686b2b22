// gmk: noise sources, the one interface through which samplers draw Gaussian noise.
//
// A sampler asks for n standard normals for one step of its grid:
//     source(T* out, std::size_t n, const gmk::noise_request& step)
// with T float or double. The request names the step and its interval sigma -> sigma_next, so a
// source may draw fresh noise per call (a generator), a pure function of the step (counter-
// based: the same noise whatever happened before), or the normalised increment of a Brownian
// path over the interval (SDE samplers that must look the same as the step count changes).
// A source whose draw is a pure function of (step, element) may also offer
//     source.fill(T* out, std::size_t first, std::size_t count, const gmk::noise_request& step)
// (elements [first, first + count) of that draw); samplers then draw it piece by piece inside
// their pass, and skip draws they do not use.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/memory.hpp"
#include "brownian.hpp"
#include "fill.hpp"

namespace gmk {

/// What a sampler asks of its noise source at one step.
struct noise_request {
    std::size_t step = 0;     ///< index of the step in the sampler's grid
    double sigma = 0;         ///< noise level at the start of the step
    double sigma_next = 0;    ///< noise level at its end
};

/// Noise from a generator (philox_generator, torch_cpu_generator, torch_cuda_generator, ...):
/// each request draws the generator's next n normals, as torch.randn_like does in a
/// diffusers or k-diffusion loop. Holds a reference: the generator must outlive it.
template <class Generator>
class generator_noise {
public:
    explicit generator_noise(Generator& g) noexcept : g_(&g) {}

    template <class T>
    void operator()(T* out, std::size_t n, const noise_request&) {
        g_->randn(out, n);
    }
    Generator& generator() const noexcept { return *g_; }

private:
    Generator* g_;
};

/// Counter-based noise: step k draws stream k of `seed`, so the noise of a step does not depend
/// on which steps ran before or on how many samples other calls drew (a restarted or resumed
/// sampler sees the same noise).
class philox_noise {
public:
    explicit philox_noise(std::uint64_t seed) noexcept : seed_(seed) {}

    template <class T>
    void operator()(T* out, std::size_t n, const noise_request& r) const {
        random::normal_fill(random::philox_stream(seed_, r.step), 0, out, n);
    }
    /// Elements [first, first + count) of the step's draw, the same values operator() puts
    /// there: samplers draw L1-sized pieces inside their pass instead of a whole array.
    template <class T>
    void fill(T* out, std::size_t first, std::size_t count, const noise_request& r) const {
        random::normal_fill(random::philox_stream(seed_, r.step), first, out, count);
    }
    std::uint64_t seed() const noexcept { return seed_; }

private:
    std::uint64_t seed_;
};

/// Brownian-tree noise (k-diffusion's BrownianTreeNoiseSampler): the request sigma -> sigma_next
/// gets (W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|) of one Brownian path W over
/// [sigma_min, sigma_max], so refining the grid refines the same path. n must equal the size the
/// source was built for; both levels must lie in [sigma_min, sigma_max] and snap to distinct
/// grid points. A sampler walks its grid, so W at the end of one step is kept for the start of
/// the next: one tree descent per step instead of two (the result is bitwise the same as
/// brownian_tree::normalized_increment either way).
template <class T>
class brownian_noise {
public:
    brownian_noise(double sigma_min, double sigma_max, std::size_t size, std::uint64_t seed, unsigned depth = 32)
        : tree_(sigma_min, sigma_max, size, seed, depth), w_from_(size), w_to_(size) {}

    void operator()(T* out, std::size_t n, const noise_request& r) {
        check_argument(n == tree_.size(), "brownian_noise", "n", n, "must equal the size the source was built for");
        check_pointer(out, n, "brownian_noise", "out");
        const double length = tree_.snapped_length(r.sigma, r.sigma_next);
        check_argument(length > 0, "brownian_noise", "sigma_next", r.sigma_next,
                       "snaps to the same point of the Brownian tree's grid as sigma");
        const double from = tree_.snap(r.sigma), to = tree_.snap(r.sigma_next);
        if (!(has_last_ && last_ == from)) tree_.value(r.sigma, w_from_.data());
        else std::swap(w_from_, w_to_);  // W(sigma) is the previous step's W(sigma_next)
        tree_.value(r.sigma_next, w_to_.data());
        last_ = to;
        has_last_ = true;
        const T scale = static_cast<T>(1 / std::sqrt(length));
        const T* a = w_from_.data();
        const T* b = w_to_.data();
        simd::map(n, simd::out(out), simd::in(b, a), [scale](auto wb, auto wa) { return (wb - wa) * decltype(wb)(scale); });
    }
    const brownian_tree<T>& tree() const noexcept { return tree_; }

private:
    brownian_tree<T> tree_;
    simd::aligned_vector<T> w_from_, w_to_;
    double last_ = 0;
    bool has_last_ = false;
};

}  // namespace gmk
