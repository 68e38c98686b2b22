// gmk: parallel_for over independent chunks, on the executor the caller chooses.
//
// Work is cut into chunks that depend only on the range and the grain, never on
// the number of threads, and each chunk writes its own outputs: a kernel built
// on parallel_for gives bitwise-identical results on 1 thread or 64.
//
// Executors: serial (the default), OpenMP (when the translation unit is built
// with OpenMP and GMK_USE_OPENMP is defined, or explicitly via
// executor::openmp()), or any callable the user supplies that runs
// task(0) ... task(count - 1) in any order on any threads, e.g. a thread pool:
//
//   gmk::executor pool_exec([&](std::size_t count, gmk::task_ref task) {
//       pool.run_n(count, [task](std::size_t i) { task(i); });
//   });
#pragma once

#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "error.hpp"

namespace gmk {

/// A non-owning reference to a callable `void(std::size_t)`; cheap to copy, never allocates.
class task_ref {
public:
    template <class F, std::enable_if_t<!std::is_same_v<std::decay_t<F>, task_ref>, int> = 0>
    task_ref(F& f) noexcept  // NOLINT: implicit by design
        : object_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, std::size_t i) {
              (*static_cast<F*>(o))(i);
          }) {}
    void operator()(std::size_t i) const { call_(object_, i); }

private:
    void* object_;
    void (*call_)(void*, std::size_t);
};

/// Runs `count` independent tasks. Default-constructed: serial, or OpenMP when GMK_USE_OPENMP
/// is defined in an OpenMP build.
class executor {
public:
    using function = std::function<void(std::size_t count, task_ref task)>;

    executor() = default;
    /// Wraps a callable `void(std::size_t count, gmk::task_ref task)` that must call
    /// task(i) exactly once for every i in [0, count) and return when all have finished.
    explicit executor(function run) : run_(std::move(run)) {}

    /// Runs every task on the calling thread, in order.
    static executor serial() { return executor(function([](std::size_t count, task_ref task) {
        for (std::size_t i = 0; i < count; ++i) task(i);
    })); }

#if defined(_OPENMP)
    /// Runs the tasks in an OpenMP parallel loop on `threads` threads (0: OpenMP's default).
    static executor openmp(int threads = 0) {
        return executor(function([threads](std::size_t count, task_ref task) {
            const int t = threads > 0 ? threads : omp_get_max_threads();
            const auto n = static_cast<long long>(count);
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
            for (long long i = 0; i < n; ++i) task(static_cast<std::size_t>(i));
        }));
    }
#endif

    /// Runs task(0) ... task(count - 1).
    void run(std::size_t count, task_ref task) const {
        if (run_ && count > 1) {
            run_(count, task);
            return;
        }
#if defined(_OPENMP) && defined(GMK_USE_OPENMP)
        if (!run_ && count > 1) {
            openmp().run(count, task);
            return;
        }
#endif
        for (std::size_t i = 0; i < count; ++i) task(i);
    }

private:
    function run_;
};

/// Calls body(lo, hi) for consecutive chunks [lo, hi) covering [begin, end), each of `grain`
/// elements except possibly the last. Chunks run in any order, possibly concurrently; the
/// chunking depends only on (begin, end, grain), so results never depend on the thread count.
template <class Body>
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, Body&& body,
                  const executor& exec = executor()) {
    check_argument(begin <= end, "parallel_for", "begin", begin, "must not exceed end");
    check_argument(grain >= 1, "parallel_for", "grain", grain, "must be at least 1");
    const std::size_t n = end - begin;
    if (n == 0) return;
    const std::size_t chunks = (n + grain - 1) / grain;
    auto task = [&](std::size_t c) {
        const std::size_t lo = begin + c * grain;
        const std::size_t hi = end - lo > grain ? lo + grain : end;
        body(lo, hi);
    };
    exec.run(chunks, task_ref(task));
}

}  // namespace gmk
