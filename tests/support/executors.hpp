// Executors the parallel tests share.
#pragma once

#include <gmk/core/parallel.hpp>

#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace gmk_test {

/// `threads` std::threads taking the tasks from the back, so the order and the thread of each
/// task differ from the serial run.
inline gmk::executor reverse_pool_executor(unsigned threads) {
    return gmk::executor([threads](std::size_t count, gmk::task_ref task) {
        std::atomic<std::size_t> next{0};
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t)
            pool.emplace_back([&] {
                for (std::size_t i; (i = next.fetch_add(1)) < count;) task(count - 1 - i);
            });
        for (auto& th : pool) th.join();
    });
}

}  // namespace gmk_test
