// Tests of gmk/core/error.hpp: argument checks throw std::invalid_argument naming the
// function, the argument, the value and the rule.
#include <gmk/core/error.hpp>

#include <string>

#include "support/catch.hpp"

namespace {
std::string message_of(void (*f)()) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no exception";
}
}  // namespace

TEST_CASE("core::check_argument passes valid arguments through", "[core][error]") {
    REQUIRE_NOTHROW(gmk::check_argument(true, "f", "k", 3, "must be positive"));
    const float data[2] = {1.0f, 2.0f};
    REQUIRE_NOTHROW(gmk::check_pointer(data, 2, "f", "x"));
    REQUIRE_NOTHROW(gmk::check_pointer(static_cast<const float*>(nullptr), 0, "f", "x"));
}

TEST_CASE("core::check_argument names function, argument, value and rule", "[core][error]") {
    const std::string m = message_of([] {
        gmk::check_argument(false, "sliding_max", "k", std::size_t(0), "must be in [1, n] = [1, 10]");
    });
    REQUIRE(m == "gmk::sliding_max: k = 0 is invalid (must be in [1, n] = [1, 10])");

    const std::string d = message_of([] { gmk::check_argument(false, "f", "rho", -0.5, "must be > 0"); });
    REQUIRE(d == "gmk::f: rho = -0.5 is invalid (must be > 0)");

    const std::string b = message_of([] { gmk::check_argument(false, "f", "causal", true, "x"); });
    REQUIRE(b.find("causal = true") != std::string::npos);

    const std::string c = message_of([] { gmk::check_argument(false, "f", "c", std::int8_t(-3), "x"); });
    REQUIRE(c.find("c = -3") != std::string::npos);  // not printed as a character
}

TEST_CASE("core::check_pointer rejects null with elements to access", "[core][error]") {
    const std::string m = message_of([] {
        gmk::check_pointer(static_cast<const double*>(nullptr), 5, "sum", "x");
    });
    REQUIRE(m == "gmk::sum: x = null is invalid (must point to 5 elements)");
}
