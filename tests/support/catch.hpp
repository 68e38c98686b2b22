// gmk tests: one include for Catch2 v2 (Debian 12) and v3.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define GMK_CATCH_VERSION 3
// v2 declares Approx at global scope as well; v3 only as Catch::Approx.
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#define GMK_CATCH_VERSION 2
#endif
