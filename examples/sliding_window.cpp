// gmk example: sliding-window maximum. LeetCode 239's example, then a rolling maximum and
// minimum (trailing windows, the form rolling statistics use) over a noisy signal, and the same
// online, one sample at a time, with the streaming filter.
#include <gmk/gmk.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    // LeetCode 239: nums = [1,3,-1,-3,5,3,6,7], k = 3 -> [3,3,5,5,6,7].
    const std::vector<int> nums{1, 3, -1, -3, 5, 3, 6, 7};
    const std::size_t k = 3;
    std::vector<int> best(nums.size() - k + 1);
    gmk::sliding_max(nums.data(), nums.size(), k, best.data(), best.size());
    std::printf("sliding max, k = 3:");
    for (int v : best) std::printf(" %d", v);
    std::printf("\n");
    const std::vector<int> expected{3, 3, 5, 5, 6, 7};
    if (best != expected) {
        std::printf("unexpected answer\n");
        return 1;
    }

    // A rolling envelope of a noisy sine: the maximum and minimum of the last 25 samples.
    const std::size_t n = 200, w = 25;
    std::vector<float> signal(n), upper(n), lower(n);
    for (std::size_t i = 0; i < n; ++i)
        signal[i] = std::sin(0.05f * float(i)) + 0.3f * std::sin(1.7f * float(i) * float(i % 7));
    gmk::sliding_max(signal.data(), n, w, upper.data(), n, gmk::window_mode::trailing);
    gmk::sliding_min(signal.data(), n, w, lower.data(), n, gmk::window_mode::trailing);

    // The streaming filter (Lemire's) gives the same envelope sample by sample, allocation-free.
    gmk::monotonic_minmax<float> online(w);
    std::size_t differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
        online.push(signal[i]);
        differ += online.max() != upper[i] || online.min() != lower[i];
    }
    std::printf("rolling envelope over %zu samples, window %zu:\n", n, w);
    for (std::size_t i = 0; i < n; i += 20)
        std::printf("  t=%3zu  signal %+.3f  min %+.3f  max %+.3f\n", i, signal[i], lower[i], upper[i]);
    std::printf("streaming filter differs from the batch at %zu samples\n", differ);
    return differ == 0 ? 0 : 1;
}
