// gmk: a virtual Brownian tree: W(t) of a vector Brownian motion at any time of [t0, t1], with
// no state beyond a seed.
//
// SDE samplers (k-diffusion's BrownianTreeNoiseSampler over torchsde's BrownianTree) ask for
// W(t) at arbitrary times, in any order, and need the same answer for the same t. Storing a path
// is out of the question, so W is a pure function of (seed, t), built by Levy's construction of
// Brownian motion on a dyadic grid (Karatzas & Shreve, Brownian Motion and Stochastic Calculus,
// sec. 2.3), which is exact in law at every grid point: no discretisation error, only the
// snapping of t to the grid. Bitwise parity with torchsde is neither possible nor wanted.
//
// The grid. [t0, t1] is cut into 2^depth equal cells; a query time t is snapped to the nearest
// grid point p = round((t - t0) / (t1 - t0) 2^depth) (ties away from t0), so the resolution is
// (t1 - t0) 2^-depth: 3.4e-9 for the default depth 32 over Karras sigmas in [0.03, 14.6].
//
// The tree. W(0) = 0 and W(2^depth) = sqrt(t1 - t0) Z_0. A node h covers the grid interval
// [a, b] (heap numbering: the whole span is node 1, the halves of node h are 2h and 2h + 1); if
// b - a >= 2, W at its midpoint m is the Brownian bridge between its ends,
//     W(m) = (W(a) + W(b)) / 2 + sqrt((t_b - t_a) / 4) Z_h,
// where (t_b - t_a) / 4 is the bridge's variance at its midpoint: (m - a)(b - m) / (b - a) in
// time units. Z_h is the normal vector of `size` elements, elements [0, size) of
// random::normal_fill on philox_stream(seed, 2^63 + h): stream numbers below 2^63 stay free for
// the caller's other noise under the same seed. Element i of W is one scalar Brownian motion,
// independent of the other elements, and does not depend on `size`.
//
// A node's stream and coefficient depend only on its level and position, not on depth: a deeper
// tree with the same seed refines a shallower one (W agrees bitwise at the shallow grid's points).
//
// Cost. One query descends from the root, keeping W at the ends of the current node, and stops
// when p is an end or the midpoint: at most depth + 1 normal fills of `size` elements (the
// root's end and one per level; a random t needs nearly all of them), and an increment is two
// descents. The normals dominate: about 33 normal_fill calls' worth per value() (0.3 ms for
// 16384 floats at depth 32 on an AVX-512 core), so a sampler that needs less resolution can
// halve it with depth 16. Elements are processed in chunks of 1024 that stay in cache through
// the whole descent, and the per-level update (average, plus noise) is one fused pass over a
// chunk; nothing is allocated after construction.
//
// Precision. W is computed in T. Its rounding error is a few eps sqrt(t - t0) (backends differ
// by that much: normals differ by up to 2 ulp, and the SSE/AVX tags have no fused multiply-add),
// so an increment over dt is accurate to about eps sqrt((t - t0) / dt) relative to its size:
// 1e-5 for a float increment over 1e-4 of a unit span, immaterial for a noise sample.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/error.hpp"
#include "../simd/algorithm.hpp"
#include "../simd/backend.hpp"
#include "../simd/memory.hpp"
#include "../simd/ops.hpp"
#include "fill.hpp"

namespace gmk {

/// A virtual Brownian tree of `size` independent Brownian motions on [t0, t1] (T float or double).
/// Queries use workspace held by the tree: one tree per thread (copies are independent and give
/// the same answers).
template <class T>
class brownian_tree {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gmk::brownian_tree: T must be float or double");

public:
    /// A tree of `size` elements on [t0, t1] (finite, t0 < t1) with 2^depth grid cells,
    /// depth in [1, 62]. Allocates all the workspace queries need.
    brownian_tree(double t0, double t1, std::size_t size, std::uint64_t seed, unsigned depth = 32)
        : t0_(t0), t1_(t1), span_(t1 - t0), size_(size), seed_(seed), depth_(depth) {
        constexpr const char* fn = "brownian_tree";
        check_argument(std::isfinite(t0), fn, "t0", t0, "must be finite");
        check_argument(std::isfinite(t1), fn, "t1", t1, "must be finite");
        if (!(t0 < t1)) {
            detail::fail_argument(fn, "t1", t1, "must be greater than t0 = " + detail::value_text(t0));
        }
        check_argument(std::isfinite(span_), fn, "t1", t1, "t1 - t0 must be finite");
        check_argument(size > 0, fn, "size", size, "must be at least 1");
        check_argument(depth >= 1 && depth <= 62, fn, "depth", depth, "must be in [1, 62]");
        cells_ = std::uint64_t(1) << depth;
        // Coefficients in double, rounded to T once: the same for every query.
        root_scale_ = static_cast<T>(std::sqrt(span_));
        for (unsigned level = 0; level < depth; ++level)
            bridge_scale_[level] = static_cast<T>(std::sqrt(std::ldexp(span_, -static_cast<int>(level) - 2)));
        const std::size_t chunk = std::min(size, chunk_elements);
        wa_.resize(chunk);
        wb_.resize(chunk);
        z_.resize(chunk);
        w_from_.resize(chunk);
    }

    /// Start of the time span.
    double t0() const noexcept { return t0_; }
    /// End of the time span.
    double t1() const noexcept { return t1_; }
    /// Number of elements of W (independent Brownian motions).
    std::size_t size() const noexcept { return size_; }
    /// log2 of the number of grid cells.
    unsigned depth() const noexcept { return depth_; }
    /// Spacing of the grid query times snap to: (t1 - t0) 2^-depth.
    double resolution() const noexcept { return std::ldexp(span_, -static_cast<int>(depth_)); }
    /// The grid time t snaps to (t in [t0, t1]): the time W(t) is actually taken at.
    double snap(double t) const {
        const std::uint64_t p = grid_point(t, "brownian_tree::snap", "t");
        return p == cells_ ? t1_ : t0_ + span_ * std::ldexp(static_cast<double>(p), -static_cast<int>(depth_));
    }

    /// W(t) into out[0..size), t in [t0, t1] (snapped to the grid); W(t0) = 0 exactly.
    template <class B = simd::native>
    void value(double t, T* out) {
        constexpr const char* fn = "brownian_tree::value";
        check_pointer(out, size_, fn, "out");
        const std::uint64_t p = grid_point(t, fn, "t");
        for (std::size_t first = 0; first < size_; first += chunk_elements) {
            const std::size_t n = std::min(chunk_elements, size_ - first);
            descend<B>(p, first, n, out + first);
        }
    }

    /// W(tb) - W(ta) into out[0..size), ta and tb in [t0, t1] in either order; bitwise equal to
    /// value(tb) - value(ta).
    template <class B = simd::native>
    void increment(double ta, double tb, T* out) {
        constexpr const char* fn = "brownian_tree::increment";
        check_pointer(out, size_, fn, "out");
        const std::uint64_t pa = grid_point(ta, fn, "ta");
        const std::uint64_t pb = grid_point(tb, fn, "tb");
        difference<B>(pa, pb, T(1), false, out);
    }

    /// (W(tb) - W(ta)) / sqrt(|tb - ta|) into out[0..size), standard normal elements, with both
    /// times snapped to the grid; throws std::invalid_argument if they snap to the same point.
    template <class B = simd::native>
    void normalized_increment(double ta, double tb, T* out) {
        constexpr const char* fn = "brownian_tree::normalized_increment";
        check_pointer(out, size_, fn, "out");
        const std::uint64_t pa = grid_point(ta, fn, "ta");
        const std::uint64_t pb = grid_point(tb, fn, "tb");
        if (pa == pb) {
            detail::fail_argument(fn, "tb", tb,
                                  "snaps to the same grid point as ta = " + detail::value_text(ta) +
                                      "; the grid resolution is " + detail::value_text(resolution()));
        }
        difference<B>(pa, pb, normalizer(pa, pb), true, out);
    }

    /// |snap(tb) - snap(ta)|, the length normalized_increment divides by: |pb - pa| grid cells of
    /// (t1 - t0) 2^-depth each, exact up to one rounding.
    double snapped_length(double ta, double tb) const {
        const std::uint64_t pa = grid_point(ta, "brownian_tree::snapped_length", "ta");
        const std::uint64_t pb = grid_point(tb, "brownian_tree::snapped_length", "tb");
        return cells_length(pa < pb ? pb - pa : pa - pb);
    }

private:
    /// Elements per chunk: Wa, Wb, the node's noise and W(ta) of one chunk (16 KiB of floats,
    /// 32 KiB of doubles) stay in L1/L2 through all levels of a descent, so a query streams
    /// through `out` once, whatever `size` (measured: 256 to 16384 cost the same at size 16384).
    static constexpr std::size_t chunk_elements = 1024;

    /// Stream number of node h (h = 0: the end W(t1); h >= 1: a midpoint): bit 63 set keeps the
    /// tree clear of the small stream numbers a caller uses for other noise under this seed.
    static constexpr std::uint64_t node_stream(std::uint64_t h) noexcept {
        return (std::uint64_t(1) << 63) | h;
    }

    /// The grid point t snaps to, after checking t is in [t0, t1] (NaN is not).
    std::uint64_t grid_point(double t, const char* fn, const char* name) const {
        if (!(t >= t0_ && t <= t1_)) {
            detail::fail_argument(fn, name, t,
                                  "must be in [t0, t1] = [" + detail::value_text(t0_) + ", " +
                                      detail::value_text(t1_) + "]");
        }
        // x in [0, 1]: t - t0 <= t1 - t0 survives rounding (subtraction is monotone), and the
        // scaling by 2^depth is exact, so only llround rounds. 2^62 fits a long long.
        const double x = (t - t0_) / span_;
        const auto p = static_cast<std::uint64_t>(std::llround(std::ldexp(x, static_cast<int>(depth_))));
        return std::min(p, cells_);
    }

    double cells_length(std::uint64_t cells) const noexcept {
        return span_ * std::ldexp(static_cast<double>(cells), -static_cast<int>(depth_));
    }
    /// 1 / sqrt of the snapped length between two distinct grid points, in T.
    T normalizer(std::uint64_t pa, std::uint64_t pb) const noexcept {
        return static_cast<T>(1 / std::sqrt(cells_length(pa < pb ? pb - pa : pa - pb)));
    }

    /// (W(pb) - W(pa)) * scale into out (scale applied only when `scaled`; 1 would be exact too,
    /// but increment then need not multiply).
    template <class B>
    void difference(std::uint64_t pa, std::uint64_t pb, T scale, bool scaled, T* out) {
        for (std::size_t first = 0; first < size_; first += chunk_elements) {
            const std::size_t n = std::min(chunk_elements, size_ - first);
            T* const w_from = w_from_.data();
            T* const w_to = out + first;
            descend<B>(pa, first, n, w_from);
            descend<B>(pb, first, n, w_to);
            if (scaled) {
                simd::map<B>(n, simd::out(w_to), simd::in(static_cast<const T*>(w_to), static_cast<const T*>(w_from)),
                             [scale](auto to, auto from) { return (to - from) * decltype(to)(scale); });
            } else {
                simd::map<B>(n, simd::out(w_to), simd::in(static_cast<const T*>(w_to), static_cast<const T*>(w_from)),
                             [](auto to, auto from) { return to - from; });
            }
        }
    }

    /// Elements [first, first + n) of W at grid point p into w (n <= chunk_elements; w may be
    /// the caller's output, never the tree's wa_, wb_ or z_).
    template <class B>
    void descend(std::uint64_t p, std::size_t first, std::size_t n, T* w) {
        if (p == 0) {
            std::fill_n(w, n, T(0));
            return;
        }
        T* const wa = wa_.data();
        T* const wb = wb_.data();
        T* const z = z_.data();
        const T* const cwa = wa;
        const T* const cwb = wb;
        const T* const cz = z;
        // W(2^depth) = sqrt(t1 - t0) Z_0.
        T* const end = p == cells_ ? w : wb;
        random::normal_fill<B>(random::philox_stream(seed_, node_stream(0)), first, end, n);
        const T root = root_scale_;
        simd::map<B>(n, simd::out(end), simd::in(static_cast<const T*>(end)),
                     [root](auto e) { return e * decltype(e)(root); });
        if (p == cells_) return;
        std::fill_n(wa, n, T(0));
        // Invariant: a < p < b, so b - a >= 2 and the midpoint is a grid point; the interval
        // halves each level, so p is a midpoint by level depth - 1 at the latest.
        std::uint64_t a = 0, b = cells_, h = 1;
        for (unsigned level = 0;; ++level) {
            const std::uint64_t m = a + (b - a) / 2;
            random::normal_fill<B>(random::philox_stream(seed_, node_stream(h)), first, z, n);
            const T c = bridge_scale_[level];
            T* const dst = p == m ? w : (p < m ? wb : wa);
            // (W(a) + W(b)) / 2 + c Z: the halving is exact, one rounding each for the sum and
            // the fused multiply-add.
            simd::map<B>(n, simd::out(dst), simd::in(cwa, cwb, cz), [c](auto ya, auto yb, auto e) {
                using V = decltype(ya);
                return simd::fma(V(c), e, (ya + yb) * V(T(0.5)));
            });
            if (p == m) return;
            if (p < m) {
                b = m;
                h = 2 * h;
            } else {
                a = m;
                h = 2 * h + 1;
            }
        }
    }

    double t0_, t1_, span_;
    std::size_t size_;
    std::uint64_t seed_;
    unsigned depth_;
    std::uint64_t cells_ = 0;
    T root_scale_ = T(0);
    std::array<T, 62> bridge_scale_{};  ///< sqrt((t1 - t0) 2^-(level + 2)): the bridge's std. dev.
    simd::aligned_vector<T> wa_, wb_, z_, w_from_;
};

}  // namespace gmk
