// The declared treatment of every parameter that no layer kind covers (option `fallback`, the `fallback` block):
//   identity  the raw gradient (the outer optimizer sees it unchanged)
//   adam      Adam's second-moment normalization: v ← β₂v + (1 − β₂)g², g ← fallback_scale · g / (√(v / (1 − β₂ᵏ)) + ε)
// It runs in Preconditioner::step() after the layers are preconditioned, on the same (averaged) gradients on every
// rank, and its state is checkpointed with the preconditioner. The KL clip of KfacOptimizer covers the K-FAC blocks
// only.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "kfac/preconditioner/options.h"
#include "kfac/util/archive_fwd.h"

namespace kfac {

class Fallback {
 public:
  Fallback(std::vector<at::Tensor> parameters, FallbackOptions options);
  /// Rewrites the parameters' gradients (parameters without a gradient are left alone).
  void apply();
  const std::vector<at::Tensor>& parameters() const { return parameters_; }
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  std::vector<at::Tensor> parameters_;
  FallbackOptions options_;
  std::vector<at::Tensor> second_moments_;
  int64_t steps_ = 0;
};

}  // namespace kfac
