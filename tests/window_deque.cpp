// Tests of gmk/window/monotonic_deque.hpp: the streaming deque and Lemire's joint max-min filter
// give, push by push, what the batch sliding_max/min/argmax give in trailing mode; the ring never
// grows beyond the window; ascending and descending streams (the deques' worst cases).
#include <gmk/gmk.hpp>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"
#include "support/window_reference.hpp"

namespace gt = gmk_test;
using gmk::window_mode;

namespace {

using gt::check_stream;

template <class T>
GMK_TEST_NOINLINE void check_type(gt::mismatch_log& log) {
    for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(17), std::size_t(200)})
        for (std::size_t k = 1; k <= n; k += (k < 20 ? 1 : 23)) {
            std::vector<T> ties(n);
            gt::rng r(n * 31 + k);
            for (auto& v : ties) v = static_cast<T>(r.integer(-3, 3));
            check_stream(ties, k, "ties", log);
            check_stream(gt::uniform_vector<T>(n, -1e6, 1e6, n * 37 + k), k, "random", log);
            std::vector<T> up(n), down(n);
            for (std::size_t i = 0; i < n; ++i) {
                up[i] = T(i);
                down[i] = T(n - i);
            }
            check_stream(up, k, "ascending", log);
            check_stream(down, k, "descending", log);
        }
}

}  // namespace

TEST_CASE("monotonic_deque and monotonic_minmax equal the batch trailing windows, push by push", "[window][deque]") {
    gt::mismatch_log log;
    gt::for_each_type<float, double, std::int32_t, std::int64_t>([&](auto t) { check_type<typename decltype(t)::type>(log); });
    GMK_REQUIRE_NO_MISMATCH(log);
}

TEST_CASE("monotonic_deque: ties go to the oldest value, windows of 0 are rejected", "[window][deque]") {
    gmk::monotonic_deque<int> d(3);
    for (int v : {5, 5, 5}) d.push(v);
    REQUIRE(d.front_index() == 0);
    d.push(5);  // index 0 leaves the window
    REQUIRE(d.front_index() == 1);
    d.push(6);
    REQUIRE(d.front() == 6);
    REQUIRE(d.front_index() == 4);
    REQUIRE(d.size() == 1);
    REQUIRE_THROWS_AS(gmk::monotonic_deque<float>(0), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::monotonic_minmax<double>(0), std::invalid_argument);
}
