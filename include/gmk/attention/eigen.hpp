// gmk: gmk::flash_attention over Eigen matrices, one head (optional include: needs Eigen).
//
//   Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> q(seq_q, d), k(seq_k, d),
//       v(seq_k, d), o;
//   gmk::flash_attention(q, k, v, o);                          // o resized to seq_q x d
//   Eigen::VectorXf lse(seq_q);
//   gmk::attention_params<float> p;  p.causal = true;
//   gmk::flash_attention(q, k, v, o, lse.data(), p);
//
// Q, K, V and O are any Eigen expressions with direct access whose rows are contiguous (RowMajor
// matrices, and Maps or row blocks of them, any row stride); a column-major operand is rejected
// with std::invalid_argument. A plain matrix o is resized to seq_q x head_dim; any other o must
// have that size already. Storage as in flash_attention.hpp (float, double, Eigen::half,
// Eigen::bfloat16), the same scalar type for all four.
#pragma once

#include "../eigen.hpp"
#include "flash_attention.hpp"

#include <type_traits>

namespace gmk {

namespace detail::attention {

template <class D>
inline constexpr bool is_eigen_dense = std::is_base_of_v<Eigen::DenseBase<D>, D>;

template <class M>
attention_tensor<typename M::element_type> one_head(const M& m, const char* name) {
    check_argument(m.rows_contiguous(), "flash_attention", name, m.col_stride(),
                   "must have contiguous rows (a RowMajor matrix, or a Map / row block of one)");
    return {m.data(), {0, 0, m.row_stride(), 1}};
}

}  // namespace detail::attention

/// Attention of one head: q (seq_q x d), k and v (seq_k x d), o (seq_q x d, resized when it is a
/// plain matrix), lse (seq_q elements) when not null.
template <class B = simd::native, class DQ, class DK, class DV, class DO, class T,
          std::enable_if_t<detail::attention::is_eigen_dense<std::remove_cv_t<std::remove_reference_t<DO>>>, int> = 0>
void flash_attention(const Eigen::DenseBase<DQ>& q, const Eigen::DenseBase<DK>& k, const Eigen::DenseBase<DV>& v,
                     DO&& o, detail::attention::identity_t<T>* lse, const attention_params<T>& params) {
    using E = std::remove_cv_t<std::remove_reference_t<DO>>;
    using S = typename DQ::Scalar;
    static_assert(std::is_same_v<typename DK::Scalar, S> && std::is_same_v<typename DV::Scalar, S> &&
                      std::is_same_v<typename E::Scalar, S>,
                  "gmk::flash_attention: q, k, v and o must hold the same scalar type");
    const auto d = static_cast<std::size_t>(q.cols());
    check_argument(static_cast<std::size_t>(k.cols()) == d, "flash_attention", "k.cols()", k.cols(), "must equal q.cols()");
    check_argument(static_cast<std::size_t>(v.cols()) == d, "flash_attention", "v.cols()", v.cols(), "must equal q.cols()");
    check_argument(v.rows() == k.rows(), "flash_attention", "v.rows()", v.rows(), "must equal k.rows()");
    if constexpr (std::is_base_of_v<Eigen::PlainObjectBase<E>, E>) {
        o.resize(q.rows(), q.cols());
    } else {
        check_argument(o.rows() == q.rows(), "flash_attention", "o.rows()", o.rows(), "must equal q.rows()");
        check_argument(o.cols() == q.cols(), "flash_attention", "o.cols()", o.cols(), "must equal q.cols()");
    }
    attention_shape shape;
    shape.seq_q = static_cast<std::size_t>(q.rows());
    shape.seq_k = static_cast<std::size_t>(k.rows());
    shape.head_dim = d;
    const auto tq = detail::attention::one_head(as_matrix_view(q.derived()), "q.col_stride");
    const auto tk = detail::attention::one_head(as_matrix_view(k.derived()), "k.col_stride");
    const auto tv = detail::attention::one_head(as_matrix_view(v.derived()), "v.col_stride");
    const auto to = detail::attention::one_head(as_matrix_view(o), "o.col_stride");
    flash_attention<B>(tq, tk, tv, to, lse, shape, params);
}

/// One head with the default options (scale 1 / sqrt(d), no mask, attention_compute_t), no lse.
template <class B = simd::native, class DQ, class DK, class DV, class DO,
          std::enable_if_t<detail::attention::is_eigen_dense<std::remove_cv_t<std::remove_reference_t<DO>>>, int> = 0>
void flash_attention(const Eigen::DenseBase<DQ>& q, const Eigen::DenseBase<DK>& k, const Eigen::DenseBase<DV>& v,
                     DO&& o) {
    using T = attention_compute_t<typename DQ::Scalar>;
    flash_attention<B>(q, k, v, std::forward<DO>(o), static_cast<T*>(nullptr), attention_params<T>{});
}

}  // namespace gmk
