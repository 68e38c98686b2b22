// Tests of gmk/simd/memory.hpp: aligned_allocator and aligned_vector give storage aligned for
// every backend, behave as standard allocators (rebind, equality, propagation through copies)
// and take a custom alignment.
#include <gmk/gmk.hpp>

#include <cstdint>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <type_traits>
#include <vector>

#include "support/catch.hpp"

namespace simd = gmk::simd;

namespace {
bool aligned_to(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }
}  // namespace

TEST_CASE("simd::aligned_vector storage is aligned to 64 bytes at every size", "[simd][memory]") {
    STATIC_REQUIRE(simd::default_alignment == 64);
    STATIC_REQUIRE(simd::aligned_allocator<float>::alignment == 64);
    // The alignment suits the aligned loads of every compiled backend.
    simd::compiled_backends::for_each([](auto b) {
        STATIC_REQUIRE(simd::default_alignment % decltype(b)::alignment() == 0);
    });

    // Many small allocations in a row: the heap would hand out 16-byte aligned blocks among them
    // if the allocator did not ask for more.
    std::vector<simd::aligned_vector<float>> keep;
    for (std::size_t n = 1; n <= 300; ++n) {
        keep.emplace_back(n, 1.0f);
        INFO("n = " << n);
        REQUIRE(aligned_to(keep.back().data(), 64));
    }
    for (std::size_t n : {1000u, 4096u, 65537u, 1u << 20}) {
        simd::aligned_vector<double> d(n);
        simd::aligned_vector<std::int32_t> i(n);
        simd::aligned_vector<char> c(n);
        INFO("n = " << n);
        REQUIRE(aligned_to(d.data(), 64));
        REQUIRE(aligned_to(i.data(), 64));
        REQUIRE(aligned_to(c.data(), 64));
    }
}

TEST_CASE("simd::aligned_vector stays aligned through growth, copies and moves", "[simd][memory]") {
    simd::aligned_vector<double> v;
    for (int k = 0; k < 2000; ++k) {
        v.push_back(k);
        REQUIRE(aligned_to(v.data(), 64));
    }
    REQUIRE(v[1999] == 1999.0);
    v.shrink_to_fit();
    REQUIRE(aligned_to(v.data(), 64));

    const simd::aligned_vector<double> copy = v;
    REQUIRE(aligned_to(copy.data(), 64));
    REQUIRE(copy == v);

    const double* before = v.data();
    simd::aligned_vector<double> moved = std::move(v);
    REQUIRE(moved.data() == before);  // equal allocators: the move takes the storage
    REQUIRE(moved.size() == 2000);

    simd::aligned_vector<double> assigned;
    assigned = copy;
    REQUIRE(aligned_to(assigned.data(), 64));
    REQUIRE(assigned == copy);
}

TEST_CASE("simd::aligned_allocator rebinds and compares like a stateless allocator", "[simd][memory]") {
    using A = simd::aligned_allocator<float>;
    using Traits = std::allocator_traits<A>;
    STATIC_REQUIRE(std::is_same_v<Traits::value_type, float>);
    STATIC_REQUIRE(std::is_same_v<Traits::rebind_alloc<double>, simd::aligned_allocator<double, 64>>);
    STATIC_REQUIRE(std::is_same_v<A::rebind<std::int64_t>::other, simd::aligned_allocator<std::int64_t, 64>>);
    STATIC_REQUIRE(std::is_same_v<simd::aligned_allocator<char, 256>::rebind<double>::other,
                                  simd::aligned_allocator<double, 256>>);
    STATIC_REQUIRE(Traits::is_always_equal::value);

    const A a;
    const simd::aligned_allocator<double> b(a);  // converting constructor
    REQUIRE(a == A());
    REQUIRE(a == b);
    REQUIRE_FALSE(a != b);

    // A rebound allocator keeps the alignment: allocate through it directly, and let std::list
    // and std::map rebind it to their node types.
    Traits::rebind_alloc<std::int64_t> r(a);
    std::int64_t* q = r.allocate(5);
    REQUIRE(aligned_to(q, 64));
    r.deallocate(q, 5);
    std::list<double, simd::aligned_allocator<double>> l(10, 2.0);
    REQUIRE(std::accumulate(l.begin(), l.end(), 0.0) == 20.0);
    std::map<int, int, std::less<int>, simd::aligned_allocator<std::pair<const int, int>>> m;
    for (int k = 0; k < 50; ++k) m[k] = k * k;
    REQUIRE(m.size() == 50);
    REQUIRE(m.at(7) == 49);

    // allocate / deallocate directly, including n = 1 of an over-aligned request.
    simd::aligned_allocator<std::int32_t> ai;
    std::int32_t* p = ai.allocate(3);
    REQUIRE(aligned_to(p, 64));
    p[0] = 1;
    p[2] = 3;
    ai.deallocate(p, 3);
}

TEST_CASE("simd::aligned_allocator rejects sizes whose byte count overflows", "[simd][memory]") {
    simd::aligned_allocator<double> a;
    REQUIRE_THROWS_AS(a.allocate(std::numeric_limits<std::size_t>::max() / 4), std::bad_array_new_length);
}

TEST_CASE("simd::aligned_allocator with a custom alignment works with std::vector", "[simd][memory]") {
    using V128 = std::vector<double, simd::aligned_allocator<double, 128>>;
    STATIC_REQUIRE(simd::aligned_allocator<double, 128>::alignment == 128);
    for (std::size_t n = 1; n <= 100; ++n) {
        V128 v(n);
        std::iota(v.begin(), v.end(), 0.0);
        INFO("n = " << n);
        REQUIRE(aligned_to(v.data(), 128));
        REQUIRE(v.back() == double(n - 1));
    }
    std::vector<float, simd::aligned_allocator<float, 4096>> page(10, 1.0f);
    REQUIRE(aligned_to(page.data(), 4096));
    // Different alignments are different allocator types; equal alignments compare equal.
    STATIC_REQUIRE_FALSE(std::is_same_v<simd::aligned_allocator<double, 128>, simd::aligned_allocator<double>>);
    REQUIRE(simd::aligned_allocator<double, 128>() == simd::aligned_allocator<float, 128>());
}
