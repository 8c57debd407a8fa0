// One statistics step of one layer, as the curvature methods see it: every example's inputs and output gradients at
// every shared position (kfac/layers/layer_kind.h has the conventions).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace kfac {

/// One statistics step for one layer, in the factor dtype.
struct LayerStatistics {
  at::Tensor a;  ///< [B, T, d_A] expanded inputs (patches, homogeneous coordinate) at T shared positions
  at::Tensor g;  ///< [S, B, T, d_G] per-example output gradients; the Fisher is (1/B) Σ_s Σ_b ∇_sb ∇_sbᵀ
  /// The shared positions as (height, width), T = height·width: a conv's output grid, {1, T} for a sequence, {1, 1}
  /// for a Linear layer on [B, d] or for any layer whose positions were reduced (WeightSharing::Reduce).
  std::array<int64_t, 2> grid{1, 1};
  /// T of the layer when a and g hold a sample of its positions (LayerKind::statistics_at); 0 otherwise.
  int64_t sampled_from = 0;
  int64_t examples() const { return a.size(0); }
  /// The positions a and g hold.
  int64_t locations() const { return a.size(1); }
  /// The positions the layer applies its weight at: the Kronecker form's T (docs/design.md §13).
  int64_t shared_positions() const { return sampled_from > 0 ? sampled_from : locations(); }
};

}  // namespace kfac
