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

#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

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

}  // namespace detail

/// Throws std::invalid_argument naming `function`, `argument`, `value` and `rule` unless `ok`.
template <class V>
inline void check_argument(bool ok, const char* function, const char* argument, const V& value,
                           const std::string& rule) {
    if (!ok) detail::throw_invalid_argument(function, argument, detail::value_text(value), rule);
}

/// Throws std::invalid_argument unless `pointer` is non-null (or `count` is zero, when nothing
/// will be read or written through it).
template <class P>
inline void check_pointer(const P* pointer, std::size_t count, const char* function,
                          const char* argument) {
    if (pointer == nullptr && count != 0)
        detail::throw_invalid_argument(function, argument, "null",
                                       "must point to " + std::to_string(count) + " elements");
}

}  // namespace gmk
