// Linear layers on inputs [B, ..., d_in]: ā = [x; 1] at every position, g = dLoss/d(output) there.
#pragma once

#include "kfac/layers/layer_kind.h"

namespace kfac {

/// A Linear layer on inputs [B, ..., d_in]: every index between the batch and the features is a shared position.
class LinearKind final : public LayerKind {
 public:
  LinearKind(at::Tensor weight, at::Tensor bias);
  std::string kind_name() const override { return "Linear"; }
  int64_t dim_a() const override;
  int64_t dim_g() const override;
  at::Tensor expand_input(const at::Tensor& input) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
};

}  // namespace kfac
