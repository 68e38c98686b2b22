// gmk: small non-owning views of contiguous, strided and two-dimensional arrays.
//
// Public functions take raw pointer + size, or one of these views. A view is
// built implicitly from std::vector, std::array, C arrays and other views;
// <gmk/eigen.hpp> adds Eigen dense objects (without copying). Types opt in
// through gmk::contiguous_traits, so a container whose data() is not one
// contiguous run of size() elements (an Eigen block with an inner stride, say)
// never converts silently.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "error.hpp"

namespace gmk {

/// Customisation point: specialise with `static constexpr bool value = true`,
/// `data(c)` and `size(c)` for a container type whose elements are contiguous, and
/// `static constexpr bool borrowed = true` if the type is itself a view (so that a temporary
/// of it may be viewed, as an Eigen Block or Map may).
template <class C, class Enable = void>
struct contiguous_traits {
    static constexpr bool value = false;
};

template <class T, class A>
struct contiguous_traits<std::vector<T, A>> {
    static constexpr bool value = true;
    static T* data(std::vector<T, A>& c) { return c.data(); }
    static const T* data(const std::vector<T, A>& c) { return c.data(); }
    static std::size_t size(const std::vector<T, A>& c) { return c.size(); }
};

template <class T, std::size_t N>
struct contiguous_traits<std::array<T, N>> {
    static constexpr bool value = true;
    static T* data(std::array<T, N>& c) { return c.data(); }
    static const T* data(const std::array<T, N>& c) { return c.data(); }
    static std::size_t size(const std::array<T, N>&) { return N; }
};

namespace detail {
template <class C>
using traits_of = contiguous_traits<std::remove_cv_t<std::remove_reference_t<C>>>;

// True when container C (possibly const) converts to a view of T: it is
// contiguous and its element pointer converts to T* without a change of type.
template <class C, class T, class = void>
struct converts_to_view : std::false_type {};
template <class C, class T>
struct converts_to_view<C, T, std::enable_if_t<traits_of<C>::value>>
    : std::is_convertible<std::remove_pointer_t<decltype(traits_of<C>::data(std::declval<C&>()))> (*)[],
                          T (*)[]> {};

template <class C, class = void>
struct is_borrowed : std::false_type {};
template <class C>
struct is_borrowed<C, std::enable_if_t<traits_of<C>::borrowed>> : std::true_type {};

// An lvalue container, a temporary of a type that is itself a view, or any temporary when the
// view is read-only (as std::span<const T>: the temporary outlives the call it is passed to, so
// gmk::noise_grid::ve(gmk::sigmas_karras(...)) reads as written; a writable view of a temporary
// would lose its writes, so that stays an error).
template <class C, class T>
inline constexpr bool viewable = converts_to_view<C, T>::value &&
                                 (std::is_lvalue_reference_v<C> || is_borrowed<C>::value || std::is_const_v<T>);
}  // namespace detail

/// A contiguous run of `size()` elements of T (T may be const).
template <class T>
class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr span() noexcept = default;
    constexpr span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /// From any contiguous container (std::vector, std::array, Eigen vectors with <gmk/eigen.hpp>).
    template <class C, std::enable_if_t<detail::viewable<C, T>, int> = 0>
    constexpr span(C&& c) noexcept
        : data_(detail::traits_of<C>::data(c)), size_(detail::traits_of<C>::size(c)) {}
    /// span<T> converts to span<const T>.
    template <class U, std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>, int> = 0>
    constexpr span(const span<U>& other) noexcept : data_(other.data()), size_(other.size()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    /// Elements [offset, offset + count).
    constexpr span subspan(std::size_t offset, std::size_t count) const noexcept {
        return {data_ + offset, count};
    }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

template <class T, std::size_t N>
span(T (&)[N]) -> span<T>;
template <class T, class A>
span(std::vector<T, A>&) -> span<T>;
template <class T, class A>
span(const std::vector<T, A>&) -> span<const T>;
template <class T, std::size_t N>
span(std::array<T, N>&) -> span<T>;
template <class T, std::size_t N>
span(const std::array<T, N>&) -> span<const T>;

/// `size()` elements of T, `stride()` elements apart (the stride may be negative or zero).
template <class T>
class strided_span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr strided_span() noexcept = default;
    constexpr strided_span(T* data, std::size_t size, std::ptrdiff_t stride = 1) noexcept
        : data_(data), size_(size), stride_(stride) {}
    /// A contiguous span is a strided span of stride 1.
    template <class U, std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>, int> = 0>
    constexpr strided_span(const span<U>& s) noexcept : data_(s.data()), size_(s.size()) {}
    template <class U, std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>, int> = 0>
    constexpr strided_span(const strided_span<U>& s) noexcept
        : data_(s.data()), size_(s.size()), stride_(s.stride()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr std::ptrdiff_t stride() const noexcept { return stride_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr bool is_contiguous() const noexcept { return stride_ == 1 || size_ <= 1; }
    constexpr T& operator[](std::size_t i) const noexcept {
        return data_[static_cast<std::ptrdiff_t>(i) * stride_];
    }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
    std::ptrdiff_t stride_ = 1;
};

/// A rows x cols matrix of T with element (r, c) at data[r * row_stride + c * col_stride]
/// (strides in elements). Row-major contiguous by default.
template <class T>
class matrix_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr matrix_view() noexcept = default;
    constexpr matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept
        : data_(data), rows_(rows), cols_(cols), row_stride_(static_cast<std::ptrdiff_t>(cols)) {}
    constexpr matrix_view(T* data, std::size_t rows, std::size_t cols, std::ptrdiff_t row_stride,
                          std::ptrdiff_t col_stride = 1) noexcept
        : data_(data), rows_(rows), cols_(cols), row_stride_(row_stride), col_stride_(col_stride) {}
    template <class U, std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>, int> = 0>
    constexpr matrix_view(const matrix_view<U>& m) noexcept
        : data_(m.data()), rows_(m.rows()), cols_(m.cols()), row_stride_(m.row_stride()),
          col_stride_(m.col_stride()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t rows() const noexcept { return rows_; }
    constexpr std::size_t cols() const noexcept { return cols_; }
    constexpr std::ptrdiff_t row_stride() const noexcept { return row_stride_; }
    constexpr std::ptrdiff_t col_stride() const noexcept { return col_stride_; }
    constexpr bool empty() const noexcept { return rows_ == 0 || cols_ == 0; }
    /// True when each row is one contiguous run (col_stride 1), as the SIMD kernels need.
    constexpr bool rows_contiguous() const noexcept { return col_stride_ == 1 || cols_ <= 1; }
    constexpr T& operator()(std::size_t r, std::size_t c) const noexcept {
        return data_[static_cast<std::ptrdiff_t>(r) * row_stride_ +
                     static_cast<std::ptrdiff_t>(c) * col_stride_];
    }
    constexpr strided_span<T> row(std::size_t r) const noexcept {
        return {data_ + static_cast<std::ptrdiff_t>(r) * row_stride_, cols_, col_stride_};
    }
    constexpr strided_span<T> col(std::size_t c) const noexcept {
        return {data_ + static_cast<std::ptrdiff_t>(c) * col_stride_, rows_, row_stride_};
    }

private:
    T* data_ = nullptr;
    std::size_t rows_ = 0;
    std::size_t cols_ = 0;
    std::ptrdiff_t row_stride_ = 0;
    std::ptrdiff_t col_stride_ = 1;
};

template <class T>
struct contiguous_traits<span<T>> {
    static constexpr bool value = true;
    static constexpr bool borrowed = true;
    static T* data(const span<T>& s) { return s.data(); }
    static std::size_t size(const span<T>& s) { return s.size(); }
};

/// True for the types a gmk::span can view: std::vector, std::array, gmk::span, and Eigen
/// vectors with unit inner stride once <gmk/eigen.hpp> is included.
template <class C>
inline constexpr bool is_contiguous_range_v = detail::traits_of<C>::value;

/// A view of a contiguous container, e.g. `gmk::as_span(vec)`.
template <class C, std::enable_if_t<detail::traits_of<C>::value, int> = 0>
constexpr auto as_span(C& c) noexcept {
    using P = decltype(detail::traits_of<C>::data(c));
    return span<std::remove_pointer_t<P>>(detail::traits_of<C>::data(c),
                                          detail::traits_of<C>::size(c));
}

}  // namespace gmk
