// Scale-and-shift layers: the affine part γ ⊙ x̂ + β of a normalization layer (LayerNorm, BatchNorm2d, GroupNorm;
// γ ⊙ x̂ alone for RMSNorm), docs/design.md §13. There is no useful Kronecker structure; the block is the Fisher of
// (γ, β) from per-example gradients
//   ∂ℓ/∂γ = Σ_t g_t ⊙ x̂_t,   ∂ℓ/∂β = Σ_t g_t,
// full up to norm_full_max_features features and diagonal above (ScaleShiftCurvature), whatever the method.
// The matrix view is [d, 2] = [γ | β] ([d, 1] without a shift), so vec order is (γ, β). Statistics: ā = x̂
// [B, T, d], g [S, B, T, d], where T counts the positions normalized alike (a sequence for LayerNorm, the spatial
// grid for BatchNorm2d); the positions are never reduced (the per-example gradient is exact either way).
//
// Each normalization is a subclass in its own file (src/layers/*_norm_kind.cpp) that says how the module's input
// becomes x̂ (statistics_input).
#pragma once

#include "kfac/layers/layer_kind.h"

namespace kfac {

class ScaleShiftKind : public LayerKind {
 public:
  /// Where the features are: last (LayerNorm over the trailing dims) or second (BatchNorm's channels).
  enum class Features { Last, Channels };
  /// `shift` may be undefined (a scale alone); `kind_name` names the layer in reports ("LayerNorm").
  ScaleShiftKind(at::Tensor scale, at::Tensor shift, Features features, std::string kind_name);
  std::string kind_name() const override { return kind_name_; }
  int64_t dim_a() const override { return bias_.defined() ? 2 : 1; }
  int64_t dim_g() const override { return weight_.numel(); }
  at::Tensor expand_input(const at::Tensor& normalized) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
  at::Tensor to_matrix(const std::vector<at::Tensor>& tensors) const override;
  std::vector<at::Tensor> from_matrix(const at::Tensor& matrix) const override;
  LayerStatistics statistics(const std::vector<Tap>& taps, WeightSharing sharing, at::ScalarType dtype) const override;
  std::string own_block() const override { return "scale-shift"; }  // ScaleShiftCurvature
  bool kronecker() const override { return false; }

 private:
  /// [lead..., B, features..., spatial...] → [lead..., B, T, d]
  at::Tensor to_positions(const at::Tensor& x, int64_t lead) const;
  Features features_;
  std::string kind_name_;
};

}  // namespace kfac
