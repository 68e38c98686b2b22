// gmk: EDM preconditioning (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
// Generative Models", table 1, "Ours" column; NVlabs/edm EDMPrecond):
//   D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)
//   c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
//   c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = ln(sigma) / 4,  sd = sigma_data (0.5 by default).
// In the VE form of the EDM paper (alpha = 1). Computed in double, once per level.
#pragma once

#include <cmath>

#include "../core/error.hpp"

namespace gmk {

/// The four EDM preconditioning coefficients at one sigma.
struct edm_preconditioning {
    double c_skip, c_out, c_in, c_noise;
};

/// EDM's coefficients at sigma (> 0, finite: c_noise = ln(sigma) / 4 is -inf at 0) for data of
/// standard deviation sigma_data (> 0).
inline edm_preconditioning edm_precondition(double sigma, double sigma_data = 0.5) {
    constexpr const char* fn = "edm_precondition";
    check_argument(sigma > 0 && std::isfinite(sigma), fn, "sigma", sigma, "must be finite and > 0");
    check_argument(sigma_data > 0 && std::isfinite(sigma_data), fn, "sigma_data", sigma_data, "must be finite and > 0");
    // hypot avoids overflow of sigma^2 for huge sigma and keeps full precision for tiny ones.
    const double r = std::hypot(sigma, sigma_data);
    const double q = sigma_data / r;
    return {q * q, sigma * q, 1 / r, std::log(sigma) / 4};
}

}  // namespace gmk
