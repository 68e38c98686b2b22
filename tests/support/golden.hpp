// gmk tests: the golden data that tests/golden/*.py wrote from the reference implementations.
//
// Format (whitespace-separated; '#' starts a comment line):
//   device <multiprocessors> <max threads per multiprocessor>     (optional, CUDA files)
//   case <op> <dtype> <seed> <n1,n2,...>                         one generator, one call per n
//   call <k> <n> <count>                                        then <count> lines:
//   <index> <bits>                                              IEEE bits in hex, 8 or 16 digits
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef GMK_GOLDEN_DIR
#error "GMK_GOLDEN_DIR must name tests/golden (tests/CMakeLists.txt defines it)"
#endif

namespace gmk_test {

struct golden_call {
    std::size_t n = 0;
    std::vector<std::size_t> index;   // which elements of the call were kept
    std::vector<std::uint64_t> bits;  // their IEEE bits (float: the low 32)
    template <class T>
    T value(std::size_t j) const {
        T v;
        if constexpr (sizeof(T) == 4) {
            const auto b = static_cast<std::uint32_t>(bits[j]);
            std::memcpy(&v, &b, 4);
        } else {
            std::memcpy(&v, &bits[j], 8);
        }
        return v;
    }
};

struct golden_case {
    std::string op, dtype;
    std::uint64_t seed = 0;
    std::vector<golden_call> calls;
    std::string name() const {
        std::ostringstream s;
        s << op << ' ' << dtype << " seed " << seed << " calls";
        for (const auto& c : calls) s << ' ' << c.n;
        return s.str();
    }
};

struct golden_file {
    unsigned multiprocessors = 0, threads_per_multiprocessor = 0;
    std::vector<golden_case> cases;
};

/// Reads tests/golden/<name>; throws std::runtime_error if it is missing or malformed.
inline golden_file read_golden(const std::string& name) {
    const std::string path = std::string(GMK_GOLDEN_DIR) + "/" + name;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open golden file " + path);
    golden_file g;
    std::string word;
    while (in >> word) {
        if (word[0] == '#') {
            std::getline(in, word);
        } else if (word == "device") {
            in >> g.multiprocessors >> g.threads_per_multiprocessor;
        } else if (word == "case") {
            golden_case c;
            std::string sizes;
            in >> c.op >> c.dtype >> c.seed >> sizes;
            g.cases.push_back(c);
        } else if (word == "call") {
            std::size_t k = 0, count = 0;
            golden_call call;
            in >> k >> call.n >> count;
            call.index.resize(count);
            call.bits.resize(count);
            for (std::size_t j = 0; j < count; ++j) in >> std::dec >> call.index[j] >> std::hex >> call.bits[j] >> std::dec;
            if (!in || g.cases.empty() || k != g.cases.back().calls.size())
                throw std::runtime_error("malformed golden file " + path);
            g.cases.back().calls.push_back(std::move(call));
        } else {
            throw std::runtime_error("malformed golden file " + path + " at '" + word + "'");
        }
    }
    if (g.cases.empty()) throw std::runtime_error("no cases in golden file " + path);
    return g;
}

}  // namespace gmk_test
