// The attention cases the tests and the fuzz target share: the options a case sets, and the bias
// and mask layouts it may use.
#pragma once

#include <gmk/attention/flash_attention.hpp>

#include <cstddef>

namespace gmk_test {

/// What a case masks and adds. Bias and mask layouts: 0 none; 1 the default, one seq_q x seq_k
/// matrix; 2 dense [b, h, i, j]; 3 per head; 4 per batch and key (key padding); 5 per head and
/// key, broadcast over queries (ALiBi-like).
struct attention_options {
    bool causal = false;
    gmk::causal_alignment alignment = gmk::causal_alignment::bottom_right;
    long left = -1, right = -1;
    double scale = 0, softcap = 0;
    int bias = 0, mask = 0;
};

/// The strides of bias / mask layout `kind` (default-constructed for 0 and 1).
inline gmk::attention_bias_strides layout(int kind, const gmk::attention_shape& s) {
    using st = gmk::attention_bias_strides;
    switch (kind) {
        case 2: return st::dense(s.heads_q, s.seq_q, s.seq_k);
        case 3: return st::per_head(s.seq_q, s.seq_k);
        case 4: return st::per_batch_keys(s.seq_k);
        case 5: return {0, std::ptrdiff_t(s.seq_k), 0, 1};
        default: return {};
    }
}

/// Elements layout `kind` needs (with the default strides: seq_q x seq_k).
inline std::size_t layout_size(int kind, const gmk::attention_shape& s) {
    switch (kind) {
        case 2: return s.batch * s.heads_q * s.seq_q * s.seq_k;
        case 3: return s.heads_q * s.seq_q * s.seq_k;
        case 4: return s.batch * s.seq_k;
        case 5: return s.heads_q * s.seq_k;
        default: return s.seq_q * s.seq_k;
    }
}

}  // namespace gmk_test
