// Tests of gmk/core/parallel.hpp: chunking, executors and thread-count independence.
#include <gmk/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/executors.hpp"

using gmk_test::reverse_pool_executor;

TEST_CASE("core::parallel_for covers the range once, in chunks of the grain", "[core][parallel]") {
    for (std::size_t n : {0u, 1u, 7u, 64u, 1000u}) {
        for (std::size_t grain : {1u, 3u, 64u, 5000u}) {
            std::vector<int> hits(n + 5, 0);
            std::vector<std::pair<std::size_t, std::size_t>> chunks;
            std::mutex mu;
            gmk::parallel_for(5, n + 5, grain, [&](std::size_t lo, std::size_t hi) {
                std::lock_guard<std::mutex> lock(mu);
                chunks.emplace_back(lo, hi);
                for (std::size_t i = lo; i < hi; ++i) ++hits[i];
            }, reverse_pool_executor(3));
            for (std::size_t i = 0; i < 5; ++i) REQUIRE(hits[i] == 0);
            for (std::size_t i = 5; i < n + 5; ++i) REQUIRE(hits[i] == 1);
            REQUIRE(chunks.size() == (n + grain - 1) / grain);
            for (const auto& [lo, hi] : chunks) {
                REQUIRE((lo - 5) % grain == 0);
                REQUIRE(hi - lo == std::min(grain, n + 5 - lo));
            }
        }
    }
}

TEST_CASE("core::parallel_for gives identical results for 1, 2 and 4 threads", "[core][parallel]") {
    const std::size_t n = 10007;
    auto run = [&](const gmk::executor& exec) {
        std::vector<double> out(n);
        gmk::parallel_for(0, n, 97, [&](std::size_t lo, std::size_t hi) {
            double acc = 0;  // a per-chunk running sum: depends on the chunking, not the threads
            for (std::size_t i = lo; i < hi; ++i) out[i] = (acc += 1.0 / double(i + 1));
        }, exec);
        return out;
    };
    const auto serial = run(gmk::executor::serial());
    REQUIRE(run(gmk::executor()) == serial);
    REQUIRE(run(reverse_pool_executor(1)) == serial);
    REQUIRE(run(reverse_pool_executor(2)) == serial);
    REQUIRE(run(reverse_pool_executor(4)) == serial);
#if defined(_OPENMP)
    REQUIRE(run(gmk::executor::openmp(2)) == serial);
#endif
}

TEST_CASE("core::parallel_for rejects a bad range or grain", "[core][parallel]") {
    auto body = [](std::size_t, std::size_t) {};
    REQUIRE_THROWS_AS(gmk::parallel_for(5, 4, 1, body), std::invalid_argument);
    REQUIRE_THROWS_AS(gmk::parallel_for(0, 4, 0, body), std::invalid_argument);
    REQUIRE_NOTHROW(gmk::parallel_for(0, 4, std::size_t(-1), body));
}
