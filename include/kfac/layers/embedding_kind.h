// Embedding layers: a lookup W[idx] (W: [V, d]) is a linear layer on one-hot inputs e_idx, so its input factor is
// diagonal, the token frequencies (docs/design.md §13). The matrix view is Wᵀ ([d_G = d, d_A = V]); the statistics
// carry the token ids as ā ([B, T, 1], int64), never the one-hot vectors, and EmbeddingCurvature keeps A as a
// vector: memory O(V + d²) for K-FAC, O(V·d) for EKFAC's spectrum, never O(V²). Supported methods: kfac and ekfac.
#pragma once

#include "kfac/layers/layer_kind.h"

namespace kfac {

class EmbeddingKind final : public LayerKind {
 public:
  explicit EmbeddingKind(at::Tensor weight);
  std::string kind_name() const override { return "Embedding"; }
  int64_t dim_a() const override { return weight_.size(0); }  // V
  int64_t dim_g() const override { return weight_.size(1); }  // d
  /// Token ids [B, ...] → [B, T, 1].
  at::Tensor expand_input(const at::Tensor& ids) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
  at::Tensor to_matrix(const std::vector<at::Tensor>& tensors) const override;
  std::vector<at::Tensor> from_matrix(const at::Tensor& matrix) const override;
  /// The positions stay expanded; EmbeddingCurvature applies the flavour (it needs per-example token counts).
  LayerStatistics statistics(const std::vector<Tap>& taps, WeightSharing sharing, at::ScalarType dtype) const override;
  std::string own_block() const override { return "embedding"; }  // EmbeddingCurvature
  bool kronecker() const override { return false; }               // ā holds ids, not the one-hot rows
};

}  // namespace kfac
