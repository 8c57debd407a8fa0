// The tool's two transformer benchmarks (issue 15), built from kfac::nn modules so that the preconditioner registers
// their Linear (attention projections, MLP), Embedding and LayerNorm blocks; the positional embeddings get the
// fallback.
//   vit:     Fashion-MNIST 28x28 as 16 patches of 7x7, width 64, 4 heads, 2 pre-LN blocks with GELU MLPs (x2),
//            mean-pooled tokens, linear classifier.
//   char-lm: a causal character transformer on 64-character windows of the King James Bible (kjv dataset), vocabulary
//            of 96 (printable ASCII and newline), width 64, 4 heads, 2 pre-LN blocks; logits at every position.
#pragma once

#include "models.h"

namespace kfac::tool {

/// Token ids of the char-lm vocabulary: printable ASCII 32..126 → 0..94, newline → 95, anything else → space.
constexpr int64_t kCharVocabulary = 96;
int64_t char_id(char c);

Model build_vit();
Model build_char_lm();

}  // namespace kfac::tool
