// Layer kinds: how a layer's activations, output gradients and parameters look as K-FAC matrices.
//
// Conventions (written once here; the derivations are in docs/design.md §13):
//  * Gradient matrix V = [W.view(d_out, -1) | b] of shape [d_G, d_A], d_G = output units, d_A = inputs (+1 if bias):
//    the bias is folded in as a homogeneous coordinate, ā = [a; 1]. to_matrix / from_matrix convert between the
//    parameters' tensors and this view; the dense oracle (kfac/fisher/dense_fisher.h) uses the same view.
//  * vec is column-major: vec(V) = V.t().reshape(-1), so vec(g āᵀ) = ā ⊗ g and a Fisher block is A ⊗ G
//    (torch::kron(A, G)).
//  * Each kind is one file in src/layers/ (its definition, kind_definition.h) and one line in
//    src/layers/kind_registry.cpp.
//  * Shared positions: a layer applies its weight at T positions per example (a conv's output locations, a Linear
//    layer's sequence positions [B, ..., d], every use of a layer called several times). Expanded tensors are
//    [B, T, d]; a Linear layer on [B, d] has T = 1. Conv2d (KFC): ā is a patch of the input (torch unfold order,
//    channel-major (c, i, j) like weight.view) at each output location, g the output gradient there.
//  * WeightSharing (Eschenhagen et al. 2023): Expand treats the positions as extra examples (KFC is this case);
//    Reduce takes the mean of ā and the sum of g over the positions first, leaving T = 1.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kfac/layers/capture.h"
#include "kfac/layers/layer_statistics.h"
#include "kfac/layers/weight_sharing.h"

namespace kfac {

class LayerKind {
 public:
  virtual ~LayerKind() = default;
  virtual std::string kind_name() const = 0;
  /// Rows of the A factor: inputs (+1 with bias). Columns of the gradient matrix.
  virtual int64_t dim_a() const = 0;
  /// Rows of the G factor: output units (channels). Rows of the gradient matrix.
  virtual int64_t dim_g() const = 0;
  virtual bool has_bias() const { return bias_.defined(); }
  /// What the statistics need of the module's input, recorded at each tap (the default: the input itself; a
  /// normalization layer's normalized input). `training`: the module's mode at that forward.
  virtual at::Tensor statistics_input(const at::Tensor& input, bool /*training*/) const { return input; }
  /// Layer input x → ā of shape [B, T, d_A] (patches for Conv2d, with the homogeneous 1 when there is a bias).
  virtual at::Tensor expand_input(const at::Tensor& input) const = 0;
  /// dLoss/d(output) [S, B, ...] → [S, B, T, d_G].
  virtual at::Tensor expand_output_grad(const at::Tensor& grad_output) const = 0;
  /// The positions of one tap as (height, width), from its output gradients [S, B, ...]; the default is {1, T}.
  virtual std::array<int64_t, 2> grid(const at::Tensor& grad_output) const;
  /// expand_input(input) at the given positions only ([k] int64, indices into T): [B, k, d_A]. The default expands
  /// every position and selects; Conv2d gathers only the sampled windows.
  virtual at::Tensor expand_input_at(const at::Tensor& input, const at::Tensor& positions) const;

  /// Tensors shaped like parameters() → the [d_G, d_A] matrix. The default is [W.view(d_G, -1) | b].
  virtual at::Tensor to_matrix(const std::vector<at::Tensor>& tensors) const;
  /// A [d_G, d_A] matrix → tensors shaped like parameters() (views where possible), in the parameters' dtype.
  virtual std::vector<at::Tensor> from_matrix(const at::Tensor& matrix) const;

  /// One statistics step from the recorded taps (every tap a set of shared positions), in `dtype`. The default
  /// expands every tap, concatenates their positions and applies `sharing`.
  virtual LayerStatistics statistics(const std::vector<Tap>& taps, WeightSharing sharing, at::ScalarType dtype) const;
  /// Expanded statistics of one tap at a sample of its positions (option stats_positions; weight sharing expand):
  /// `sampled_from` holds the tap's T.
  LayerStatistics statistics_at(const Tap& tap, const at::Tensor& positions, at::ScalarType dtype) const;
  /// The name of the kind's own block for a block that is not a curvature method's Kronecker form ("embedding",
  /// "scale-shift": kfac/curvature/registry.h, make_kind_curvature); empty, the default: the method's.
  virtual std::string own_block() const { return ""; }
  /// Whether the block is the Kronecker form of the expanded statistics (per-example gradient Σ_t g āᵀ), as the
  /// global stages and the exact Fisher–vector products assume.
  virtual bool kronecker() const { return true; }
  /// The parameters' current gradient as the [d_G, d_A] matrix V (undefined if no gradient exists yet).
  at::Tensor grad_matrix() const;
  /// Writes a [d_G, d_A] matrix back into the parameters' .grad().
  void set_grad_matrix(const at::Tensor& matrix) const;
  /// The parameters as the [d_G, d_A] matrix (a copy).
  at::Tensor param_matrix() const;
  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }
  std::vector<at::Tensor> parameters() const;
  /// None of its parameters requires grad (frozen, e.g. for fine-tuning): the layer is then skipped, neither tapped
  /// nor preconditioned, until it is unfrozen.
  bool frozen() const;

 protected:
  LayerKind(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  /// Every tap expanded, the positions concatenated (no reduction); ā in `input_dtype` when given (ids stay int64).
  LayerStatistics expanded(const std::vector<Tap>& taps, at::ScalarType dtype,
                           c10::optional<at::ScalarType> input_dtype = c10::nullopt) const;
  at::Tensor weight_, bias_;
};

}  // namespace kfac
