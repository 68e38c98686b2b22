// gmk: the SIMD layer in one include: backends, the vector interface, aligned memory and the
// shared loops (map, reductions).
#pragma once

#include "algorithm.hpp"
#include "backend.hpp"
#include "memory.hpp"
#include "ops.hpp"
