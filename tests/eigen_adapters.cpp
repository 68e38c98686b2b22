// Tests of gmk/eigen.hpp: Eigen dense objects as gmk views, without copying.
#include <gmk/eigen.hpp>
#include <gmk/gmk.hpp>

#include <type_traits>

#include "support/catch.hpp"

namespace {
double total(gmk::span<const double> s) { return gmk::simd::sum(s.data(), s.size()); }
}  // namespace

TEST_CASE("eigen: contiguous vectors convert to gmk::span without copying", "[eigen]") {
    Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(11, 0.0, 10.0);
    REQUIRE(total(v) == 55.0);
    gmk::span<double> s = v;
    REQUIRE(s.data() == v.data());
    s[0] = 100;
    REQUIRE(v[0] == 100);

    Eigen::MatrixXd m = Eigen::MatrixXd::Random(4, 3);
    REQUIRE(total(m.col(1)) == Approx(m.col(1).sum()).epsilon(1e-15));  // a column is contiguous
    Eigen::Map<const Eigen::VectorXd> map(m.data() + 4, 4);
    REQUIRE(total(map) == Approx(m.col(1).sum()).epsilon(1e-15));
    Eigen::Ref<const Eigen::VectorXd> ref = m.col(2);
    REQUIRE(gmk::span<const double>(ref).data() == m.col(2).data());
}

TEST_CASE("eigen: strided or 2-D expressions never convert to a span silently", "[eigen]") {
    using M = Eigen::MatrixXd;
    STATIC_REQUIRE(!std::is_convertible_v<M&, gmk::span<const double>>);
    STATIC_REQUIRE(!std::is_convertible_v<decltype(std::declval<M&>().row(0)), gmk::span<const double>>);
    STATIC_REQUIRE(!std::is_convertible_v<Eigen::VectorXd&&, gmk::span<double>>);
    STATIC_REQUIRE(std::is_convertible_v<Eigen::VectorXd&&, gmk::span<const double>>);  // read-only: as std::span
    STATIC_REQUIRE(!std::is_convertible_v<Eigen::VectorXf&, gmk::span<const double>>);
    STATIC_REQUIRE(!std::is_convertible_v<const Eigen::VectorXd&, gmk::span<double>>);
}

TEST_CASE("eigen: as_strided and as_matrix_view expose any storage", "[eigen]") {
    Eigen::MatrixXf col_major(3, 4);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major(3, 4);
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) col_major(r, c) = row_major(r, c) = float(10 * r + c);

    const auto row = gmk::as_strided(col_major.row(2));
    REQUIRE(row.size() == 4);
    REQUIRE(row.stride() == 3);
    for (std::size_t c = 0; c < 4; ++c) REQUIRE(row[c] == col_major(2, int(c)));

    const auto a = gmk::as_matrix_view(col_major);
    const auto b = gmk::as_matrix_view(row_major);
    REQUIRE_FALSE(a.rows_contiguous());
    REQUIRE(b.rows_contiguous());
    const auto block = gmk::as_matrix_view(row_major.block(1, 1, 2, 2));
    REQUIRE(block.rows() == 2);
    REQUIRE(block.row_stride() == 4);
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < 4; ++c) {
            REQUIRE(a(r, c) == col_major(int(r), int(c)));
            REQUIRE(b(r, c) == row_major(int(r), int(c)));
        }
    REQUIRE(block(1, 1) == row_major(2, 2));
}

TEST_CASE("eigen: the SIMD reductions take Eigen vectors directly", "[eigen]") {
    Eigen::VectorXf v(6);
    v << 1.0f, 5.0f, -2.0f, 5.0f, 0.5f, 3.0f;
    REQUIRE(gmk::simd::sum(v) == Approx(v.sum()));
    REQUIRE(gmk::simd::max_value(v) == v.maxCoeff());
    REQUIRE(gmk::simd::argmax(v) == 1);
    Eigen::MatrixXf m = Eigen::MatrixXf::Random(5, 3);
    REQUIRE(gmk::simd::min_value(m.col(2)) == m.col(2).minCoeff());
}
