// Tiny models built from kfac::nn layers, for oracle tests (float64 by default).
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace kfac::test {

/// Linear layers of the given widths with tanh between them (none if `linear` is true).
torch::nn::Sequential mlp(const std::vector<int64_t>& widths, bool bias = true, bool linear = false);
/// conv(3x3, pad 1) → tanh → conv(2x2, stride 2) → tanh → flatten → linear: input [B, 2, 5, 5].
torch::nn::Sequential cnn(int64_t outputs, bool bias = true);
/// Token ids [B, T] in [0, 7) → Embedding(7, 4) + a positional parameter (a fallback) → LayerNorm(4) → tanh →
/// Linear(4, 3): logits [B, T, 3] (a softmax per position). T ≤ 5.
torch::nn::Sequential token_model();

}  // namespace kfac::test
