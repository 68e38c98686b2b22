// Fuzz target: sliding-window extrema (gmk/window/) against a naive O(n k) reference.
//
// One input is: element type, backend, n, k, mode, NaN policy, output size, then the data. The
// batch forms (sliding_max / sliding_min, their index forms, the row form over a matrix on an
// executor that runs its tasks in reverse order) must equal the reference exactly under the
// documented semantics: NaN propagates or is skipped (a window of NaN only gives NaN), -0 and
// +0 tie (either may be reported), argmax/argmin report the lowest index among ties (under
// propagate the first NaN, under ignore NaN loses to every number and an all-NaN window gives
// its first index). The streaming forms (monotonic_deque with std::less and std::greater,
// monotonic_minmax) run over the same data with NaN replaced (they require no NaN) and must
// report, push by push, the oldest of the tied extrema of the last `window` values.
#include <gmk/window/monotonic_deque.hpp>
#include <gmk/window/sliding_extremum.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using gmk_fuzz::expect;
using gmk_fuzz::same_value;

template <class T>
bool is_nan(T x) noexcept {
    if constexpr (std::is_floating_point_v<T>)
        return x != x;
    else
        return false;
}

// The index of the extremum of x[lo .. hi] under the policy: lowest index among ties; under
// propagate the first NaN; under ignore NaN loses to every number (first index if all NaN).
template <class T>
std::size_t reference_arg(const std::vector<T>& x, std::size_t lo, std::size_t hi, bool is_max, bool ignore) {
    std::size_t best = lo;
    for (std::size_t i = lo + 1; i <= hi; ++i) {
        const T a = x[i], b = x[best];
        const bool an = is_nan(a), bn = is_nan(b);
        bool better;
        if (an || bn)
            better = ignore ? (!an && bn) : (an && !bn);
        else
            better = is_max ? b < a : a < b;
        if (better) best = i;
    }
    return best;
}

// The extremum value of the window (NaN when it holds NaN under propagate, or only NaN).
template <class T>
T reference_value(const std::vector<T>& x, std::size_t lo, std::size_t hi, bool is_max, bool ignore) {
    return x[reference_arg(x, lo, hi, is_max, ignore)];
}

// A value equal to the reference: bitwise, except that -0 and +0 tie.
template <class T>
bool matches(T got, T want) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
        if (want == T(0)) return got == T(0);
    }
    return same_value(got, want);
}

template <class T>
std::vector<T> decode_data(gmk_fuzz::input& in, std::size_t n) {
    std::vector<T> x(n);
    const std::size_t how = in.choice(3);
    if (how == 2) {
        // many elements from a seed: long runs exercise the van Herk blocks
        gmk_fuzz::mix m(in.bits<std::uint64_t>());
        const std::size_t alphabet = in.range(1, 255);
        for (auto& e : x) {
            const auto b = std::uint8_t(8 + m.next() % alphabet);
            if constexpr (std::is_floating_point_v<T>)
                e = gmk_fuzz::special_or_grid<T>(m.next() % 64 == 0 ? std::uint8_t(m.next() % 8) : b);
            else
                e = T(int(b) - 136);
        }
        return x;
    }
    for (auto& e : x) {
        if (how == 0) {
            const std::uint8_t b = in.byte();
            if constexpr (std::is_floating_point_v<T>)
                e = gmk_fuzz::special_or_grid<T>(b);
            else if (b < 4)
                e = b == 0   ? std::numeric_limits<T>::min()
                    : b == 1 ? std::numeric_limits<T>::max()
                    : b == 2 ? std::numeric_limits<T>::min() + 1
                             : std::numeric_limits<T>::max() - 1;
            else
                e = T(int(b) - 136);
        } else {
            e = in.bits<T>();  // raw bit patterns (any NaN payload, subnormals, extremes)
        }
    }
    return x;
}

template <class B, class T>
void batch_forms(gmk_fuzz::input& in, const std::vector<T>& x, std::size_t k, gmk::window_mode mode,
                 gmk::nan_policy nan) {
    const std::size_t n = x.size();
    const bool ignore = nan == gmk::nan_policy::ignore && std::is_floating_point_v<T>;
    const bool valid_k = k >= 1 && k <= n;
    const std::size_t m = !valid_k ? 0 : mode == gmk::window_mode::valid ? n - k + 1 : n;
    // Sometimes one output too few: must be rejected.
    const bool short_out = in.byte() < 16 && m > 0;
    const std::size_t out_size = short_out ? m - 1 : m;
    const bool valid = valid_k && !short_out;
    // Window i covers x[lo(i) .. hi(i)].
    const auto lo = [&](std::size_t i) { return mode == gmk::window_mode::valid ? i : (i + 1 >= k ? i + 1 - k : 0); };
    const auto hi = [&](std::size_t i) { return mode == gmk::window_mode::valid ? i + k - 1 : i; };
    const T sentinel = T(77);

    for (const bool is_max : {true, false}) {
        std::vector<T> out(m + 1, sentinel);
        gmk_fuzz::call_checked(valid, is_max ? "sliding_max" : "sliding_min", [&] {
            if (is_max)
                gmk::sliding_max<B>(x.data(), n, k, out.data(), out_size, mode, nan);
            else
                gmk::sliding_min<B>(x.data(), n, k, out.data(), out_size, mode, nan);
        });
        if (!valid) continue;
        for (std::size_t i = 0; i < m; ++i) {
            const T want = reference_value(x, lo(i), hi(i), is_max, ignore);
            expect(matches(out[i], want), is_max ? "sliding_max" : "sliding_min", " ", gmk::simd::backend_name<B>(),
                   " n=", n, " k=", k, " mode=", int(mode), " nan=", int(nan), " out[", i, "] = ", out[i],
                   ", expected ", want);
        }
        expect(same_value(out[m], sentinel), "sliding extremum wrote past its outputs");

        std::vector<std::size_t> idx(m + 1, std::size_t(-1));
        gmk_fuzz::call_checked(valid, "sliding_arg", [&] {
            if (is_max)
                gmk::sliding_argmax(x.data(), n, k, idx.data(), out_size, mode, nan);
            else
                gmk::sliding_argmin(x.data(), n, k, idx.data(), out_size, mode, nan);
        });
        for (std::size_t i = 0; i < m; ++i) {
            const std::size_t want = reference_arg(x, lo(i), hi(i), is_max, ignore);
            expect(idx[i] == want, is_max ? "sliding_argmax" : "sliding_argmin", " n=", n, " k=", k,
                   " mode=", int(mode), " nan=", int(nan), " out[", i, "] = ", idx[i], ", expected ", want);
        }
        expect(idx[m] == std::size_t(-1), "sliding_arg wrote past its outputs");
    }
}

// The row form: x repeated over `rows` rows (row r shifted by r), padded row strides, rows on an
// executor that runs its tasks in reverse order.
template <class B, class T>
void row_form(gmk_fuzz::input& in, const std::vector<T>& x, std::size_t k, gmk::window_mode mode, gmk::nan_policy nan) {
    const std::size_t n = x.size();
    if (k < 1 || k > n) return;
    const bool ignore = nan == gmk::nan_policy::ignore && std::is_floating_point_v<T>;
    const std::size_t rows = in.range(1, 3), pad = in.range(0, 3);
    const std::size_t m = mode == gmk::window_mode::valid ? n - k + 1 : n;
    const std::size_t xs = n + pad, os = m + pad;
    std::vector<T> xm(rows * xs, T(5)), om(rows * os, T(77));
    std::vector<std::vector<T>> row_data(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        row_data[r].resize(n);
        for (std::size_t j = 0; j < n; ++j) row_data[r][j] = xm[r * xs + j] = x[(j + r) % n];
    }
    const gmk::executor reverse([](std::size_t count, gmk::task_ref task) {
        for (std::size_t i = count; i-- > 0;) task(i);
    });
    const bool is_max = in.flag();
    const gmk::matrix_view<const T> xv(xm.data(), rows, n, std::ptrdiff_t(xs), 1);
    const gmk::matrix_view<T> ov(om.data(), rows, m, std::ptrdiff_t(os), 1);
    if (is_max)
        gmk::sliding_max<B>(xv, k, ov, mode, nan, reverse);
    else
        gmk::sliding_min<B>(xv, k, ov, mode, nan, reverse);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < m; ++i) {
            const std::size_t l = mode == gmk::window_mode::valid ? i : (i + 1 >= k ? i + 1 - k : 0);
            const std::size_t h = mode == gmk::window_mode::valid ? i + k - 1 : i;
            const T want = reference_value(row_data[r], l, h, is_max, ignore);
            expect(matches(om[r * os + i], want), "row-form sliding extremum, row ", r, " out[", i,
                   "] = ", om[r * os + i], ", expected ", want);
        }
}

// The streaming forms over x (NaN replaced by 0: they require no NaN), window w, with clear()
// at position `restart` (none when >= n).
template <class T>
void streaming(gmk_fuzz::input& in, std::vector<T> x) {
    for (auto& e : x)
        if (is_nan(e)) e = T(0);
    const std::size_t n = x.size();
    const std::size_t w = in.range(0, n + 3);
    const std::size_t restart = in.range(0, 2 * n);
    if (w == 0) {
        expect(gmk_fuzz::rejects([] { gmk::monotonic_deque<T> d(0); }), "monotonic_deque(0) accepted");
        expect(gmk_fuzz::rejects([] { gmk::monotonic_minmax<T> d(0); }), "monotonic_minmax(0) accepted");
        return;
    }
    gmk::monotonic_deque<T> dmax(w);
    gmk::monotonic_deque<T, std::greater<T>> dmin(w);
    gmk::monotonic_minmax<T> both(w);
    std::size_t start = 0;  // stream position 0 of the deques, in x
    for (std::size_t i = 0; i < n; ++i) {
        if (i == restart) {
            dmax.clear();
            dmin.clear();
            both.clear();
            start = i;
        }
        dmax.push(x[i]);
        dmin.push(x[i]);
        both.push(x[i]);
        const std::size_t lo = std::max(start, i + 1 >= w ? i + 1 - w : 0);
        const std::size_t amax = reference_arg(x, lo, i, true, false), amin = reference_arg(x, lo, i, false, false);
        expect(dmax.count() == i - start + 1 && dmax.size() >= 1 && dmax.size() <= w, "monotonic_deque count/size");
        expect(dmax.front_index() == amax - start && same_value(dmax.front(), x[amax]), "monotonic_deque<less> at ", i,
               " window ", w, ": front ", dmax.front(), " at ", dmax.front_index(), ", expected ", x[amax], " at ",
               amax - start);
        expect(dmin.front_index() == amin - start && same_value(dmin.front(), x[amin]), "monotonic_deque<greater> at ",
               i, " window ", w, ": front ", dmin.front(), " at ", dmin.front_index(), ", expected ", x[amin], " at ",
               amin - start);
        expect(same_value(both.max(), x[amax]) && same_value(both.min(), x[amin]), "monotonic_minmax at ", i,
               " window ", w, ": max ", both.max(), " min ", both.min(), ", expected ", x[amax], " and ", x[amin]);
    }
}

template <class T>
void run(gmk_fuzz::input& in) {
    const std::size_t backend = in.byte();
    const std::size_t n = in.range(0, in.flag() ? 40 : 700);
    const std::size_t k = in.range(0, n + 1);
    const auto mode = in.flag() ? gmk::window_mode::trailing : gmk::window_mode::valid;
    const auto nan = in.flag() ? gmk::nan_policy::ignore : gmk::nan_policy::propagate;
    const std::vector<T> x = decode_data<T>(in, n);
    if (n == 0) {
        T out[1];
        expect(gmk_fuzz::rejects([&] { gmk::sliding_max(static_cast<const T*>(nullptr), 0, k, out, 1); }),
               "sliding_max accepted n = 0");
        return;
    }
    gmk_fuzz::with_backend(backend, [&](auto b) {
        using B = decltype(b);
        batch_forms<B>(in, x, k, mode, nan);
        row_form<B>(in, x, k, mode, nan);
    });
    streaming(in, x);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    gmk_fuzz::input in(data, size);
    switch (in.choice(4)) {
        case 0:
            run<float>(in);
            break;
        case 1:
            run<double>(in);
            break;
        case 2:
            run<std::int32_t>(in);
            break;
        default:
            run<std::int64_t>(in);
            break;
    }
    return 0;
}
