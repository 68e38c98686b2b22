// Tests of gmk/core/view.hpp: span, strided_span and matrix_view.
#include <gmk/core/view.hpp>

#include <array>
#include <type_traits>
#include <vector>

#include "support/catch.hpp"

namespace {
float total(gmk::span<const float> s) {
    float t = 0;
    for (float v : s) t += v;
    return t;
}
}  // namespace

TEST_CASE("core::span views vectors, arrays and C arrays without copying", "[core][view]") {
    std::vector<float> v{1, 2, 3};
    std::array<float, 4> a{1, 2, 3, 4};
    float c[5] = {1, 1, 1, 1, 1};
    REQUIRE(total(v) == 6);
    REQUIRE(total(a) == 10);
    REQUIRE(total(c) == 5);

    gmk::span<float> s = v;
    REQUIRE(s.data() == v.data());
    REQUIRE(s.size() == 3);
    s[1] = 7;
    REQUIRE(v[1] == 7);

    gmk::span<const float> cs = s;  // span<T> -> span<const T>
    REQUIRE(cs.data() == v.data());
    const auto sub = cs.subspan(1, 2);
    REQUIRE(sub.size() == 2);
    REQUIRE(sub[0] == 7);
    REQUIRE(gmk::as_span(a).size() == 4);
    REQUIRE(std::is_same_v<decltype(gmk::as_span(std::as_const(v))), gmk::span<const float>>);
}

TEST_CASE("core::span never converts what it must not view", "[core][view]") {
    // Element type changes, const dropping and writable views of temporaries are rejected; a
    // read-only view of a temporary is allowed (std::span<const T> semantics: it lives until the
    // end of the call it is an argument of).
    STATIC_REQUIRE(!std::is_convertible_v<std::vector<double>&, gmk::span<const float>>);
    STATIC_REQUIRE(!std::is_convertible_v<const std::vector<float>&, gmk::span<float>>);
    STATIC_REQUIRE(!std::is_convertible_v<std::vector<float>&&, gmk::span<float>>);
    STATIC_REQUIRE(std::is_convertible_v<std::vector<float>&&, gmk::span<const float>>);
    STATIC_REQUIRE(!std::is_convertible_v<gmk::span<const float>, gmk::span<float>>);
    STATIC_REQUIRE(std::is_convertible_v<std::vector<float>&, gmk::span<const float>>);
}

TEST_CASE("core::strided_span addresses every stride-th element", "[core][view]") {
    std::vector<int> v(12);
    for (int i = 0; i < 12; ++i) v[static_cast<std::size_t>(i)] = i;
    gmk::strided_span<int> every_third(v.data() + 1, 4, 3);
    REQUIRE(every_third[0] == 1);
    REQUIRE(every_third[3] == 10);
    REQUIRE_FALSE(every_third.is_contiguous());
    gmk::strided_span<const int> backwards(v.data() + 11, 12, -1);
    REQUIRE(backwards[0] == 11);
    REQUIRE(backwards[11] == 0);
    gmk::strided_span<const int> from_span = gmk::span<int>(v);
    REQUIRE(from_span.is_contiguous());
    REQUIRE(from_span.size() == 12);
}

TEST_CASE("core::matrix_view handles row-major, column-major and padded storage", "[core][view]") {
    std::vector<double> m(3 * 5);  // 3 x 4 row-major with a padded row stride of 5
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < 5; ++c) m[r * 5 + c] = double(10 * r + c);
    gmk::matrix_view<double> padded(m.data(), 3, 4, 5);
    REQUIRE(padded(2, 3) == 23);
    REQUIRE(padded.rows_contiguous());
    REQUIRE(padded.row(1)[2] == 12);
    REQUIRE(padded.col(3)[2] == 23);

    gmk::matrix_view<const double> transposed(m.data(), 4, 3, 1, 5);  // column-major view
    REQUIRE(transposed(3, 2) == 23);
    REQUIRE_FALSE(transposed.rows_contiguous());

    gmk::matrix_view<const double> dense(m.data(), 5, 3);
    REQUIRE(dense.row_stride() == 3);
    REQUIRE(dense(1, 0) == m[3]);
}
