// gmk: streaming sliding-window extrema. monotonic_deque keeps the extremum of the last `window`
// values of a stream; monotonic_minmax keeps the maximum and the minimum together with Lemire's
// algorithm (D. Lemire, "Streaming maximum-minimum filter using no more than three comparisons
// per element", Nordic Journal of Computing 13(4), 2006).
//
// Both are fixed-capacity rings: the one allocation is in the constructor, push never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../simd/ops.hpp"  // GMK_INLINE

namespace gmk {

namespace detail::window {
// A streaming filter's window, checked: at least 1.
inline std::size_t checked_window(std::size_t window, const char* function) {
    check_argument(window >= 1, function, "window", window, "must be at least 1");
    return window;
}

// The smallest power of two >= n: the ring index is then a mask, not a division.
inline std::size_t ring_capacity(std::size_t n) noexcept {
    std::size_t c = 1;
    while (c < n) c <<= 1;
    return c;
}

// A ring of (value, stream index) entries kept monotone by its owner: the front is the extremum
// of the window and no entry is better than the one before it (ties are kept, so the front is
// the oldest of tied extrema).
template <class T>
class ring {
public:
    explicit ring(std::size_t window) : entries_(ring_capacity(window)), mask_(entries_.size() - 1) {}

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    const T& front() const noexcept { return entries_[head_].value; }
    std::uint64_t front_index() const noexcept { return entries_[head_].index; }
    const T& back() const noexcept { return entries_[(head_ + size_ - 1) & mask_].value; }
    std::uint64_t back_index() const noexcept { return entries_[(head_ + size_ - 1) & mask_].index; }
    void pop_front() noexcept {
        head_ = (head_ + 1) & mask_;
        --size_;
    }
    void pop_back() noexcept { --size_; }
    // Pops the entries at the back that `worse` holds for. They form a run at the back (the ring
    // is monotone), so counting them among the last 8 without branches finds them: on random data
    // how many go is unpredictable, and a loop that stops at the first survivor mispredicts its
    // exit nearly every push. Entries beyond size() are read (they are initialised) and ignored.
    template <class Worse>
    GMK_INLINE void pop_back_while(Worse worse) noexcept {
        constexpr std::size_t probe = 8;
        for (;;) {
            const std::size_t live = size_ < probe ? size_ : probe;
            std::size_t count = 0;
            for (std::size_t i = 0; i < probe; ++i)
                count += static_cast<std::size_t>((i < live) & worse(entries_[(head_ + size_ - 1 - i) & mask_].value));
            size_ -= count;
            if (count < probe) return;
        }
    }
    void push_back(const T& value, std::uint64_t index) noexcept {
        entries_[(head_ + size_) & mask_] = {value, index};
        ++size_;
    }
    // Drops the front when it has left the window that ends at stream index `now`.
    void expire(std::uint64_t now, std::size_t window) noexcept {
        if (size_ != 0 && entries_[head_].index + window <= now) pop_front();
    }
    void clear() noexcept { head_ = size_ = 0; }

private:
    struct entry {
        T value;
        std::uint64_t index;
    };
    std::vector<entry> entries_;
    std::size_t mask_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};
}  // namespace detail::window

/// The extremum of the last `window` values pushed, in O(1) amortised per push (the monotonic
/// deque of LeetCode 239). Compare follows std::priority_queue: std::less<T> keeps the maximum,
/// std::greater<T> the minimum. Compare must be a strict weak order over the pushed values
/// (so no NaN with std::less); ties go to the oldest value, as gmk::sliding_argmax's do.
template <class T, class Compare = std::less<T>>
class monotonic_deque {
public:
    /// A deque for windows of `window` >= 1 values; allocates its ring once, here.
    explicit monotonic_deque(std::size_t window, Compare compare = Compare())
        : window_(detail::window::checked_window(window, "monotonic_deque")), ring_(window), compare_(std::move(compare)) {}

    /// Appends the next value of the stream; the value `window` pushes ago leaves the window.
    void push(const T& value) {
        ring_.expire(next_, window_);
        // Entries worse than the new value can never be the extremum again: it outlives them.
        ring_.pop_back_while([&](const T& back) { return compare_(back, value); });
        ring_.push_back(value, next_);
        ++next_;
    }
    /// The extremum of the last min(count(), window()) values. Precondition: count() > 0.
    const T& front() const noexcept { return ring_.front(); }
    /// The stream position (0 for the first push) of front(): the oldest of tied extrema.
    std::uint64_t front_index() const noexcept { return ring_.front_index(); }
    /// Number of values pushed since construction or clear().
    std::uint64_t count() const noexcept { return next_; }
    std::size_t window() const noexcept { return window_; }
    /// Number of candidates held (at most window()).
    std::size_t size() const noexcept { return ring_.size(); }
    /// Forgets the stream; keeps the ring's storage.
    void clear() noexcept {
        ring_.clear();
        next_ = 0;
    }

private:
    std::size_t window_;
    detail::window::ring<T> ring_;
    Compare compare_;
    std::uint64_t next_ = 0;
};

/// The maximum and the minimum of the last `window` values of a stream, with Lemire's (2006)
/// algorithm: one comparison against the previous value decides which of the two monotone
/// deques the new value can shorten, so each push costs at most 3 comparisons amortised instead
/// of the 4 of two independent deques. Values must not be NaN; ties go to the oldest value.
template <class T>
class monotonic_minmax {
public:
    /// A filter for windows of `window` >= 1 values; allocates its two rings once, here.
    explicit monotonic_minmax(std::size_t window) : window_(detail::window::checked_window(window, "monotonic_minmax")), hi_(window), lo_(window) {}

    /// Appends the next value of the stream.
    void push(const T& value) {
        hi_.expire(next_, window_);
        lo_.expire(next_, window_);
        // Every value is pushed to both rings, so the previous value is the back of both unless
        // it has just left a window of 1.
        if (next_ != 0) {
            if (prev_ < value) {
                // Rising: the previous value, back of the min ring, is below `value`, so the min
                // ring keeps everything; the max ring loses the previous value without another
                // comparison, then whatever else is below `value`.
                if (!hi_.empty() && hi_.back_index() + 1 == next_) hi_.pop_back();
                hi_.pop_back_while([&](const T& back) { return back < value; });
            } else {
                // Not rising: symmetric, the max ring keeps everything.
                lo_.pop_back_while([&](const T& back) { return value < back; });
            }
        }
        hi_.push_back(value, next_);
        lo_.push_back(value, next_);
        prev_ = value;
        ++next_;
    }
    /// The maximum of the last min(count(), window()) values. Precondition: count() > 0.
    const T& max() const noexcept { return hi_.front(); }
    /// The minimum of the last min(count(), window()) values. Precondition: count() > 0.
    const T& min() const noexcept { return lo_.front(); }
    std::uint64_t count() const noexcept { return next_; }
    std::size_t window() const noexcept { return window_; }
    void clear() noexcept {
        hi_.clear();
        lo_.clear();
        next_ = 0;
    }

private:
    std::size_t window_;
    detail::window::ring<T> hi_, lo_;
    T prev_{};
    std::uint64_t next_ = 0;
};

}  // namespace gmk
