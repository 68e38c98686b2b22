// gmk: argument checking for public entry points.
//
// Every public function validates its arguments before touching memory and
// reports a violation as std::invalid_argument whose message names the
// function, the argument, the offending value and the rule it broke:
//
//   gmk::sliding_max: k = 0 is invalid (must be in [1, n] = [1, 10])
//
// Inner loops never check; the checks sit at the API boundary only.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(__GNUC__) || defined(__clang__)
#define GMK_COLD __attribute__((noinline, cold))
#elif defined(_MSC_VER)
#define GMK_COLD __declspec(noinline)
#else
#define GMK_COLD
#endif

namespace gmk {
namespace detail {

template <class V>
std::string value_text(const V& value) {
    std::ostringstream os;
    os.precision(17);
    if constexpr (std::is_pointer_v<V>) {
        if (value == nullptr) return "null";
        os << static_cast<const void*>(value);
    } else if constexpr (std::is_same_v<V, bool>) {
        os << (value ? "true" : "false");
    } else if constexpr (std::is_integral_v<V> && sizeof(V) == 1) {
        os << static_cast<int>(value);
    } else {
        os << value;
    }
    return os.str();
}

[[noreturn]] inline void throw_invalid_argument(const char* function, const char* argument,
                                                const std::string& value, const std::string& rule) {
    throw std::invalid_argument(std::string("gmk::") + function + ": " + argument + " = " + value +
                                " is invalid (" + rule + ")");
}

[[noreturn]] GMK_COLD inline void fail_null(const char* function, const char* argument,
                                            std::size_t count) {
    throw_invalid_argument(function, argument, "null",
                           "must point to " + std::to_string(count) + " elements");
}

// The failing path, kept out of line so that a passing check costs one branch.
template <class V, class Rule>
[[noreturn]] GMK_COLD void fail_argument(const char* function, const char* argument, const V& value,
                                         const Rule& rule) {
    throw_invalid_argument(function, argument, value_text(value), rule);
}

}  // namespace detail

/// Throws std::invalid_argument naming `function`, `argument`, `value` and `rule` unless `ok`.
/// Nothing is allocated unless the check fails.
template <class V>
inline void check_argument(bool ok, const char* function, const char* argument, const V& value,
                           const char* rule) {
    if (!ok) detail::fail_argument(function, argument, value, rule);
}

/// As above, for a rule composed at run time (allocates: keep it off hot paths, or compose the
/// rule only once the check has failed).
template <class V>
inline void check_argument(bool ok, const char* function, const char* argument, const V& value,
                           const std::string& rule) {
    if (!ok) detail::fail_argument(function, argument, value, rule);
}

/// Throws std::invalid_argument unless `pointer` is non-null (or `count` is zero, when nothing
/// will be read or written through it).
template <class P>
inline void check_pointer(const P* pointer, std::size_t count, const char* function,
                          const char* argument) {
    if (pointer == nullptr && count != 0) detail::fail_null(function, argument, count);
}

}  // namespace gmk
