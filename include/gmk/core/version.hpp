// gmk: version of the library. CMake reads the version from this file.
#pragma once

#define GMK_VERSION_MAJOR 0
#define GMK_VERSION_MINOR 1
#define GMK_VERSION_PATCH 0

namespace gmk {

/// The library version as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";

/// The library version as one number: major * 10000 + minor * 100 + patch.
inline constexpr int version_number =
    GMK_VERSION_MAJOR * 10000 + GMK_VERSION_MINOR * 100 + GMK_VERSION_PATCH;

}  // namespace gmk
