// gmk: adapters from Eigen dense objects to gmk views, without copying (optional include).
//
//   Eigen::VectorXf v(n);         gmk::span<float> s = v;               // implicit, contiguous
//   auto col = gmk::as_strided(m.row(2));                              // any inner stride
//   gmk::matrix_view<float> mv = gmk::as_matrix_view(m);               // any storage order
//
// Only compile-time vectors with unit inner stride convert implicitly to gmk::span: a matrix,
// a row of a column-major matrix or a strided Map never converts silently.
//
// gmk::flash_attention over Eigen matrices (one head, row-major Q, K, V, O): <gmk/attention/eigen.hpp>,
// included at the end of this header.
#pragma once

// xsimd first: it includes the compiler's intrinsic headers under the one diagnostic guard gmk
// needs (see simd/xsimd.hpp), before Eigen includes them unguarded.
#include "simd/xsimd.hpp"

#include <Eigen/Core>

#include <type_traits>

#include "core/view.hpp"

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
#error "gmk needs Eigen 3.4 or newer"
#endif

namespace gmk {

namespace detail {
template <class D>
constexpr bool is_eigen_contiguous_vector() {
    if constexpr (std::is_base_of_v<Eigen::DenseBase<D>, D>) {
        return D::IsVectorAtCompileTime && (int(D::InnerStrideAtCompileTime) == 1) &&
               (int(Eigen::internal::traits<D>::Flags) & Eigen::DirectAccessBit) != 0;
    } else {
        return false;
    }
}
}  // namespace detail

/// Eigen vectors (Matrix, Map, Ref, Block) whose elements are contiguous convert to gmk::span.
template <class D>
struct contiguous_traits<D, std::enable_if_t<detail::is_eigen_contiguous_vector<D>()>> {
    static constexpr bool value = true;
    static constexpr bool borrowed = !std::is_base_of_v<Eigen::PlainObjectBase<D>, D>;
    static auto data(D& d) { return d.data(); }
    static auto data(const D& d) { return d.data(); }
    static std::size_t size(const D& d) { return static_cast<std::size_t>(d.size()); }
};

/// A strided view of an Eigen vector expression with direct access (any inner stride).
template <class D>
auto as_strided(D&& v) {
    using E = std::remove_reference_t<D>;
    static_assert(E::IsVectorAtCompileTime, "gmk::as_strided: needs an Eigen vector expression");
    static_assert((int(Eigen::internal::traits<std::remove_cv_t<E>>::Flags) & Eigen::DirectAccessBit) != 0,
                  "gmk::as_strided: the expression must have direct access to its storage");
    using T = std::remove_pointer_t<decltype(v.data())>;
    return strided_span<T>(v.data(), static_cast<std::size_t>(v.size()),
                           static_cast<std::ptrdiff_t>(v.innerStride()));
}

/// A matrix view of an Eigen matrix expression with direct access, in either storage order.
template <class D>
auto as_matrix_view(D&& m) {
    using E = std::remove_cv_t<std::remove_reference_t<D>>;
    static_assert((int(Eigen::internal::traits<E>::Flags) & Eigen::DirectAccessBit) != 0,
                  "gmk::as_matrix_view: the expression must have direct access to its storage");
    using T = std::remove_pointer_t<decltype(m.data())>;
    const auto inner = static_cast<std::ptrdiff_t>(m.innerStride());
    const auto outer = static_cast<std::ptrdiff_t>(m.outerStride());
    const bool row_major = E::IsRowMajor;
    return matrix_view<T>(m.data(), static_cast<std::size_t>(m.rows()),
                          static_cast<std::size_t>(m.cols()), row_major ? outer : inner,
                          row_major ? inner : outer);
}

}  // namespace gmk

// The attention overloads for Eigen matrices (after the adapters above, which they use).
#include "attention/eigen.hpp"
