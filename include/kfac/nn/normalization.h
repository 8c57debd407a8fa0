// Capture-enabled normalization layers: kfac::nn::LayerNorm, BatchNorm2d, GroupNorm and RMSNorm have torch.nn's
// options, parameters, buffers and math; their forward taps the module's input and output, and their layer kind
// (src/layers/*_norm_kind.cpp) turns the input into the normalized x̂ of a scale-and-shift block
// (kfac/layers/scale_shift_kind.h). They need their scale (elementwise_affine / affine true).
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "kfac/nn/stand_in.h"

namespace kfac::nn {

class LayerNormImpl : public torch::nn::LayerNormImpl, public StandIn {
 public:
  explicit LayerNormImpl(const torch::nn::LayerNormOptions& options);
  explicit LayerNormImpl(std::vector<int64_t> normalized_shape)
      : LayerNormImpl(torch::nn::LayerNormOptions(std::move(normalized_shape))) {}
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "LayerNorm"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(LayerNorm);

/// Its own module (LibTorch 1.13 does not export what a subclass of torch::nn::BatchNorm2dImpl needs), with the
/// stock module's options and parameter and buffer names, so state dicts carry over.
class BatchNorm2dImpl : public torch::nn::Module, public StandIn {
 public:
  explicit BatchNorm2dImpl(const torch::nn::BatchNormOptions& options);
  explicit BatchNorm2dImpl(int64_t features) : BatchNorm2dImpl(torch::nn::BatchNormOptions(features)) {}
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "BatchNorm2d"; }
  ModuleConfig config() const override;

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(BatchNorm2d);

/// torch::nn::GroupNorm on [B, C, ...]: each example's channels normalized in groups; γ and β per channel.
class GroupNormImpl : public torch::nn::GroupNormImpl, public StandIn {
 public:
  explicit GroupNormImpl(const torch::nn::GroupNormOptions& options);
  GroupNormImpl(int64_t num_groups, int64_t num_channels)
      : GroupNormImpl(torch::nn::GroupNormOptions(num_groups, num_channels)) {}
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "GroupNorm"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(GroupNorm);

/// torch.nn.RMSNorm's options (LibTorch has no RMSNorm): eps unset means the input dtype's machine epsilon.
struct RMSNormOptions {
  /* implicit */ RMSNormOptions(std::vector<int64_t> normalized_shape)
      : normalized_shape_(std::move(normalized_shape)) {}
  TORCH_ARG(std::vector<int64_t>, normalized_shape);
  TORCH_ARG(c10::optional<double>, eps) = c10::nullopt;
  TORCH_ARG(bool, elementwise_affine) = true;
};

/// y = γ ⊙ x / sqrt(mean(x²) + eps) over the trailing normalized_shape, as torch.nn.RMSNorm (Llama-style models).
class RMSNormImpl : public torch::nn::Module, public StandIn {
 public:
  explicit RMSNormImpl(RMSNormOptions options);
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "RMSNorm"; }
  ModuleConfig config() const override;

  RMSNormOptions options;
  torch::Tensor weight;
};
TORCH_MODULE(RMSNorm);

}  // namespace kfac::nn
