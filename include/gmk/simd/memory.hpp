// gmk: aligned storage for SIMD data, independent of the xsimd version (whose
// aligned_allocator changed its default alignment between releases).
#pragma once

#include <cstddef>
#include <limits>
#include <new>
#include <vector>

namespace gmk::simd {

/// Alignment, in bytes, that suits every backend (a cache line; AVX-512 needs 64).
inline constexpr std::size_t default_alignment = 64;

/// A standard allocator whose storage is aligned to `Align` bytes.
template <class T, std::size_t Align = default_alignment>
class aligned_allocator {
    static_assert(Align >= alignof(T) && (Align & (Align - 1)) == 0,
                  "gmk::simd::aligned_allocator: Align must be a power of two >= alignof(T)");

public:
    using value_type = T;
    static constexpr std::size_t alignment = Align;
    template <class U>
    struct rebind {
        using other = aligned_allocator<U, Align>;
    };

    aligned_allocator() noexcept = default;
    template <class U>
    aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(Align)));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(Align)); }

    template <class U>
    bool operator==(const aligned_allocator<U, Align>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const aligned_allocator<U, Align>&) const noexcept { return false; }
};

/// std::vector with storage aligned for every backend.
template <class T>
using aligned_vector = std::vector<T, aligned_allocator<T>>;

}  // namespace gmk::simd
