// gmk: the one place that includes xsimd, and the facts about its version.
#pragma once

// GCC 12's AVX-512 intrinsic headers trip -Wuninitialized on _mm512_undefined_*()
// (GCC PR 105593) once xsimd's exp/log inline them, and xsimd 13/14 pass 0xFFFF as a short
// in their SSE2/AVX2 int64 conversions (-Woverflow) when its headers are not system headers:
// false positives inside the compiler's and xsimd's own headers, silenced here and nowhere else.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Woverflow"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#if !defined(XSIMD_VERSION_MAJOR) || XSIMD_VERSION_MAJOR < 8 || \
    (XSIMD_VERSION_MAJOR == 8 && XSIMD_VERSION_MINOR < 1)
#error "gmk needs xsimd 8.1 or newer"
#endif

/// xsimd 9 renamed hadd to reduce_add, added reduce_max/min, batch_bool_cast and the
/// bitwise_cast<T>(batch) form. gmk/simd/ops.hpp routes each through one switch.
#define GMK_XSIMD_MODERN_API (XSIMD_VERSION_MAJOR >= 9)
