// The sliding-window references the window tests share: the extremum and its index over a
// window [a, b], written from the definitions, and the streaming deques checked push by push
// against the batch trailing windows.
#pragma once

#include <gmk/window/monotonic_deque.hpp>
#include <gmk/window/sliding_extremum.hpp>

#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

#include "testing.hpp"

namespace gmk_test {

/// The maximum (IsMax) or minimum of x[a..b]; NaN if the window holds one and the policy is
/// propagate, or holds nothing else.
template <bool IsMax, class T>
T naive_extremum(const T* x, std::size_t a, std::size_t b, gmk::nan_policy nan) {
    bool any = false, any_nan = false;
    T best{};
    for (std::size_t i = a; i <= b; ++i) {
        if (is_nan(x[i])) {
            any_nan = true;
            continue;
        }
        if (!any || (IsMax ? best < x[i] : x[i] < best)) best = x[i];
        any = true;
    }
    if (any_nan && (nan == gmk::nan_policy::propagate || !any)) return std::numeric_limits<T>::quiet_NaN();
    return best;
}

/// The index of the extremum, the lowest among ties; propagate: the first NaN; ignore: NaN ranks
/// below every number, an all-NaN window gives a.
template <bool IsMax, class T>
std::size_t naive_arg(const T* x, std::size_t a, std::size_t b, gmk::nan_policy nan) {
    if (nan == gmk::nan_policy::propagate)
        for (std::size_t i = a; i <= b; ++i)
            if (is_nan(x[i])) return i;
    std::size_t best = b + 1;
    for (std::size_t i = a; i <= b; ++i) {
        if (is_nan(x[i])) continue;
        if (best > b || (IsMax ? x[best] < x[i] : x[i] < x[best])) best = i;
    }
    return best > b ? a : best;
}

/// Equal values; any NaN matches any NaN, -0 matches +0 (documented: either may be reported).
template <class T>
bool same_extremum(T a, T b) {
    if (is_nan(a) || is_nan(b)) return is_nan(a) && is_nan(b);
    return a == b;
}

/// monotonic_deque (max and min) and monotonic_minmax over the stream x with window k give,
/// push by push, the batch trailing sliding_max/min/argmax/argmin, and hold at most k entries;
/// clear() restarts the stream. x has no NaN.
template <class T>
GMK_TEST_NOINLINE void check_stream(const std::vector<T>& x, std::size_t k, const char* what, mismatch_log& log) {
    using gmk::window_mode;
    const std::size_t n = x.size();
    std::vector<T> hi(n), lo(n);
    std::vector<std::size_t> ahi(n), alo(n);
    gmk::sliding_max(x.data(), n, k, hi.data(), n, window_mode::trailing);
    gmk::sliding_min(x.data(), n, k, lo.data(), n, window_mode::trailing);
    gmk::sliding_argmax(x.data(), n, k, ahi.data(), n, window_mode::trailing);
    gmk::sliding_argmin(x.data(), n, k, alo.data(), n, window_mode::trailing);
    gmk::monotonic_deque<T> dmax(k);
    gmk::monotonic_deque<T, std::greater<T>> dmin(k);
    gmk::monotonic_minmax<T> both(k);
    for (std::size_t i = 0; i < n; ++i) {
        dmax.push(x[i]);
        dmin.push(x[i]);
        both.push(x[i]);
        if (dmax.front() != hi[i] || dmin.front() != lo[i] || dmax.front_index() != ahi[i] ||
            dmin.front_index() != alo[i] || both.max() != hi[i] || both.min() != lo[i] || dmax.size() > k ||
            dmin.size() > k || dmax.count() != i + 1) {
            log.add(type_name<T>(), " ", what, " n=", n, " k=", k, " push ", i, ": deque ", show(dmax.front()), " at ",
                    dmax.front_index(), " / ", show(dmin.front()), " at ", dmin.front_index(), " (sizes ", dmax.size(),
                    ", ", dmin.size(), "), minmax ", show(both.max()), " / ", show(both.min()), "; batch ", show(hi[i]),
                    " at ", ahi[i], " / ", show(lo[i]), " at ", alo[i]);
            return;
        }
    }
    dmax.clear();
    both.clear();
    dmax.push(x[n - 1]);
    both.push(x[n - 1]);
    if (dmax.front() != x[n - 1] || dmax.front_index() != 0 || both.max() != x[n - 1] || both.min() != x[n - 1])
        log.add(type_name<T>(), " ", what, ": clear() did not restart the stream");
}

}  // namespace gmk_test
