// gmk: which of a discrete model's training timesteps a sampler visits (diffusers'
// `timestep_spacing`; the three spacings of Lin et al. 2023, Table 2), in descending order.
//
//   gmk::timesteps(spacing, T, steps, steps_offset)             integers: DDPM, DDIM, DPM-Solver
//   gmk::timesteps_fractional(spacing, T, steps, steps_offset)  doubles: EulerDiscrete (linspace
//                                                               keeps the fractional values)
//
// T = 1000, steps = 10: linspace 999, 888, ..., 111, 0; leading (steps_offset 1) 901, 801, ..., 1;
// trailing 999, 899, ..., 99.
#pragma once

#include "../core/error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gmk {

/// How `steps` timesteps are chosen from [0, T).
enum class timestep_spacing {
    linspace,  ///< linspace(0, T - 1, steps), reversed (rounded half to even for the integer form)
    leading,   ///< arange(steps) * (T / steps, floored), reversed, plus steps_offset
    trailing   ///< round(arange(T, 0, -T / steps)) - 1: always starts at T - 1
};

/// The largest num_train_timesteps the spacings accept (2^53: every timestep exact in double).
inline constexpr std::size_t max_train_timesteps = std::size_t(1) << 53;

namespace detail {

inline void check_timestep_settings(const char* fn, timestep_spacing spacing, std::size_t num_train_timesteps,
                                    std::size_t steps, std::ptrdiff_t steps_offset, bool integer) {
    // Timesteps are computed in double: every integer up to T must be exact there.
    check_argument(num_train_timesteps >= 1 && num_train_timesteps <= max_train_timesteps, fn,
                   "num_train_timesteps", num_train_timesteps, "must be in [1, 2^53]");
    check_argument(steps >= 1, fn, "steps", steps, "must be >= 1");
    check_argument(spacing == timestep_spacing::linspace || spacing == timestep_spacing::leading ||
                       spacing == timestep_spacing::trailing,
                   fn, "spacing", int(spacing), "not a gmk::timestep_spacing");
    // Integer spacings cannot give more distinct timesteps than there are; fractional linspace can.
    if (integer || spacing != timestep_spacing::linspace)
        check_argument(steps <= num_train_timesteps, fn, "steps", steps,
                       "must be <= num_train_timesteps = " + std::to_string(num_train_timesteps));
    if (spacing == timestep_spacing::leading) {
        // The largest leading timestep is (steps - 1) * (T / steps) + steps_offset < T; the
        // product is below T, so the comparison cannot overflow.
        const std::size_t top = (steps - 1) * (num_train_timesteps / steps);
        check_argument(steps_offset >= 0 && std::size_t(steps_offset) < num_train_timesteps - top, fn,
                       "steps_offset", steps_offset, "leading timesteps must stay in [0, num_train_timesteps)");
    }
}

// numpy's round: half to even (the default rounding mode of std::nearbyint).
inline double round_half_even(double x) {
    const double r = std::floor(x), d = x - r;
    if (d > 0.5) return r + 1;
    if (d < 0.5) return r;
    return std::fmod(r, 2.0) == 0 ? r : r + 1;
}

inline std::vector<double> timesteps_double(timestep_spacing spacing, std::size_t T, std::size_t steps,
                                            std::ptrdiff_t steps_offset, bool integer) {
    std::vector<double> t(steps);
    switch (spacing) {
        case timestep_spacing::linspace: {
            // numpy.linspace(0, T - 1, steps): i * step, the last one exactly T - 1.
            const double step = steps > 1 ? double(T - 1) / double(steps - 1) : 0.0;
            for (std::size_t i = 0; i < steps; ++i) {
                const double v = (steps > 1 && i == steps - 1) ? double(T - 1) : double(i) * step;
                t[steps - 1 - i] = integer ? round_half_even(v) : v;
            }
            break;
        }
        case timestep_spacing::leading: {
            const std::size_t ratio = T / steps;
            for (std::size_t i = 0; i < steps; ++i) t[steps - 1 - i] = double(i * ratio) + double(steps_offset);
            break;
        }
        case timestep_spacing::trailing: {
            // numpy.arange(T, 0, -T/steps): T - i * (T/steps). For some steps (T = 1000: 61, 103,
            // ...) rounding makes numpy's arange one element longer, and diffusers then appends a
            // timestep -1; gmk gives exactly `steps` timesteps.
            const double ratio = double(T) / double(steps);
            for (std::size_t i = 0; i < steps; ++i) t[i] = round_half_even(double(T) + double(i) * -ratio) - 1;
            break;
        }
    }
    return t;
}

}  // namespace detail

/// The integer timesteps of diffusers' DDPMScheduler / DDIMScheduler.set_timesteps (descending).
/// steps_offset applies to leading spacing only, as in diffusers. Throws std::invalid_argument
/// for steps = 0, steps > num_train_timesteps, or a leading timestep outside [0, T).
inline std::vector<std::int64_t> timesteps(timestep_spacing spacing, std::size_t num_train_timesteps,
                                           std::size_t steps, std::ptrdiff_t steps_offset = 0) {
    detail::check_timestep_settings("timesteps", spacing, num_train_timesteps, steps, steps_offset, true);
    const std::vector<double> t = detail::timesteps_double(spacing, num_train_timesteps, steps, steps_offset, true);
    return std::vector<std::int64_t>(t.begin(), t.end());
}

/// The timesteps of diffusers' EulerDiscreteScheduler.set_timesteps (descending): linspace keeps
/// fractional values (e.g. 999, 957.375, ...), leading and trailing are the integers of
/// gmk::timesteps. diffusers stores them in float32; these are the doubles those round.
inline std::vector<double> timesteps_fractional(timestep_spacing spacing, std::size_t num_train_timesteps,
                                                std::size_t steps, std::ptrdiff_t steps_offset = 0) {
    detail::check_timestep_settings("timesteps_fractional", spacing, num_train_timesteps, steps, steps_offset,
                                    false);
    return detail::timesteps_double(spacing, num_train_timesteps, steps, steps_offset, false);
}

}  // namespace gmk
