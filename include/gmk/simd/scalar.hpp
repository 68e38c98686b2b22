// gmk: the scalar backend's one-lane vector, a plain C++ value with the batch interface.
#pragma once

#include <cstddef>

namespace gmk::simd {

/// One-lane mask: the result of comparing two scalar_batch values.
template <class T>
struct scalar_batch;

template <class T>
struct scalar_mask {
    using value_type = bool;
    using batch_type = scalar_batch<T>;
    static constexpr std::size_t size = 1;
    bool value = false;

    constexpr scalar_mask() noexcept = default;
    constexpr scalar_mask(bool b) noexcept : value(b) {}  // NOLINT: implicit like xsimd
    constexpr bool get(std::size_t) const noexcept { return value; }

    friend constexpr scalar_mask operator&(scalar_mask a, scalar_mask b) noexcept { return a.value && b.value; }
    friend constexpr scalar_mask operator|(scalar_mask a, scalar_mask b) noexcept { return a.value || b.value; }
    friend constexpr scalar_mask operator^(scalar_mask a, scalar_mask b) noexcept { return a.value != b.value; }
    friend constexpr scalar_mask operator!(scalar_mask a) noexcept { return !a.value; }
    friend constexpr scalar_mask operator~(scalar_mask a) noexcept { return !a.value; }
    friend constexpr scalar_mask operator==(scalar_mask a, scalar_mask b) noexcept { return a.value == b.value; }
    friend constexpr scalar_mask operator!=(scalar_mask a, scalar_mask b) noexcept { return a.value != b.value; }
};

/// One-lane vector of T with the arithmetic, comparison and memory interface of xsimd::batch.
template <class T>
struct scalar_batch {
    using value_type = T;
    using batch_bool_type = scalar_mask<T>;
    static constexpr std::size_t size = 1;
    T value{};

    constexpr scalar_batch() noexcept = default;
    constexpr scalar_batch(T v) noexcept : value(v) {}  // NOLINT: implicit like xsimd::batch

    static scalar_batch load_aligned(const T* p) noexcept { return *p; }
    static scalar_batch load_unaligned(const T* p) noexcept { return *p; }
    void store_aligned(T* p) const noexcept { *p = value; }
    void store_unaligned(T* p) const noexcept { *p = value; }
    constexpr T get(std::size_t) const noexcept { return value; }

    friend constexpr scalar_batch operator+(scalar_batch a, scalar_batch b) noexcept { return T(a.value + b.value); }
    friend constexpr scalar_batch operator-(scalar_batch a, scalar_batch b) noexcept { return T(a.value - b.value); }
    friend constexpr scalar_batch operator*(scalar_batch a, scalar_batch b) noexcept { return T(a.value * b.value); }
    friend constexpr scalar_batch operator/(scalar_batch a, scalar_batch b) noexcept { return T(a.value / b.value); }
    friend constexpr scalar_batch operator-(scalar_batch a) noexcept { return T(-a.value); }
    friend constexpr scalar_batch operator+(scalar_batch a) noexcept { return a; }
    scalar_batch& operator+=(scalar_batch b) noexcept { value = T(value + b.value); return *this; }
    scalar_batch& operator-=(scalar_batch b) noexcept { value = T(value - b.value); return *this; }
    scalar_batch& operator*=(scalar_batch b) noexcept { value = T(value * b.value); return *this; }
    scalar_batch& operator/=(scalar_batch b) noexcept { value = T(value / b.value); return *this; }

    // Bitwise operators and shifts, for integer T (instantiated only where used).
    friend constexpr scalar_batch operator&(scalar_batch a, scalar_batch b) noexcept { return T(a.value & b.value); }
    friend constexpr scalar_batch operator|(scalar_batch a, scalar_batch b) noexcept { return T(a.value | b.value); }
    friend constexpr scalar_batch operator^(scalar_batch a, scalar_batch b) noexcept { return T(a.value ^ b.value); }
    friend constexpr scalar_batch operator~(scalar_batch a) noexcept { return T(~a.value); }
    friend constexpr scalar_batch operator<<(scalar_batch a, int s) noexcept { return T(a.value << s); }
    friend constexpr scalar_batch operator>>(scalar_batch a, int s) noexcept { return T(a.value >> s); }

    friend constexpr scalar_mask<T> operator==(scalar_batch a, scalar_batch b) noexcept { return a.value == b.value; }
    friend constexpr scalar_mask<T> operator!=(scalar_batch a, scalar_batch b) noexcept { return a.value != b.value; }
    friend constexpr scalar_mask<T> operator<(scalar_batch a, scalar_batch b) noexcept { return a.value < b.value; }
    friend constexpr scalar_mask<T> operator<=(scalar_batch a, scalar_batch b) noexcept { return a.value <= b.value; }
    friend constexpr scalar_mask<T> operator>(scalar_batch a, scalar_batch b) noexcept { return a.value > b.value; }
    friend constexpr scalar_mask<T> operator>=(scalar_batch a, scalar_batch b) noexcept { return a.value >= b.value; }
};

}  // namespace gmk::simd
