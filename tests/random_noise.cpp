// Tests of gmk/random/noise.hpp: the noise sources samplers draw from.
#include <gmk/random/noise.hpp>
#include <gmk/random/philox_generator.hpp>

#include <algorithm>
#include <vector>

#include "support/catch.hpp"
#include "support/testing.hpp"

TEST_CASE("noise sources: generator, counter-based and Brownian", "[random][noise]") {
    const gmk::noise_request step0{0, 14.6, 9.1}, step1{1, 9.1, 5.5};

    SECTION("generator_noise draws the generator's next normals, call after call") {
        gmk::philox_generator g(3), reference(3);
        gmk::generator_noise<gmk::philox_generator> source(g);
        std::vector<float> a(100), b(100), ra(100), rb(100);
        source(a.data(), a.size(), step0);
        source(b.data(), b.size(), step0);  // the same request again: fresh noise
        reference.randn(ra.data(), 100);
        reference.randn(rb.data(), 100);
        REQUIRE(a == ra);
        REQUIRE(b == rb);
        REQUIRE(a != b);
    }

    SECTION("philox_noise is a function of the step alone") {
        const gmk::philox_noise source(9);
        std::vector<double> a(50), b(50), again(50);
        source(b.data(), b.size(), step1);  // out of order
        source(a.data(), a.size(), step0);
        source(again.data(), again.size(), step1);
        REQUIRE(b == again);
        REQUIRE(a != b);
        std::vector<double> ref(50);
        gmk::random::normal_fill(gmk::random::philox_stream(9, 1), 0, ref.data(), 50);
        REQUIRE(b == ref);
    }

    SECTION("brownian_noise is the normalised increment of one path") {
        gmk::brownian_noise<float> source(0.03, 14.6, 1500, 5);
        gmk::brownian_tree<float> tree(0.03, 14.6, 1500, 5);
        std::vector<float> a(1500), ref(1500);
        // A walk down a grid (the end of each step is the next one's start, reused), then a jump
        // back (a fresh start), then a step whose start is not the previous end.
        const double grid[][2] = {{14.6, 9.1}, {9.1, 5.5}, {5.5, 0.03}, {9.1, 5.5}, {2.0, 1.0}};
        for (const auto& step : grid) {
            source(a.data(), a.size(), gmk::noise_request{0, step[0], step[1]});
            tree.normalized_increment(step[0], step[1], ref.data());
            INFO(step[0] << " -> " << step[1]);
            REQUIRE(std::equal(a.begin(), a.end(), ref.begin(), gmk_test::same_bits<float>));
        }
        REQUIRE_THROWS_AS(source(a.data(), 1499, step1), std::invalid_argument);
        REQUIRE_THROWS_AS(source(a.data(), 1500, gmk::noise_request{2, 0.03, 0.0}), std::invalid_argument);
        REQUIRE_THROWS_AS(source(a.data(), 1500, gmk::noise_request{2, 1.0, 1.0}), std::invalid_argument);
    }
}
