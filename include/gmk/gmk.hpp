// gmk: generative-model math kernels. The umbrella header: everything but the optional
// Eigen adapters (<gmk/eigen.hpp>).
#pragma once

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/version.hpp"
#include "core/view.hpp"
#include "random/brownian.hpp"
#include "random/fill.hpp"
#include "random/noise.hpp"
#include "random/philox.hpp"
#include "random/philox_generator.hpp"
#include "random/torch_cpu.hpp"
#include "random/torch_cuda.hpp"
#include "schedules/betas.hpp"
#include "schedules/flow.hpp"
#include "schedules/sigmas.hpp"
#include "schedules/timesteps.hpp"
#include "simd/simd.hpp"
#include "window/monotonic_deque.hpp"
#include "window/sliding_extremum.hpp"
