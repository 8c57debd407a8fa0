// Capture-enabled normalization layers: kfac::nn::LayerNorm and kfac::nn::BatchNorm2d are torch::nn::LayerNorm /
// BatchNorm2d (same options, parameters, buffers and math) whose forward taps the normalized input x̂ and the output
// γ ⊙ x̂ + β, so that their scale and shift get a scale-and-shift block (kfac/layers/scale_shift_kind.h). They need
// the affine parameters (elementwise_affine / affine true).
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "kfac/layers/capture.h"
#include "kfac/layers/layer_registry.h"

namespace kfac::nn {

class LayerNormImpl : public torch::nn::LayerNormImpl {
 public:
  explicit LayerNormImpl(const torch::nn::LayerNormOptions& options);
  explicit LayerNormImpl(std::vector<int64_t> normalized_shape)
      : LayerNormImpl(torch::nn::LayerNormOptions(std::move(normalized_shape))) {}
  torch::Tensor forward(const torch::Tensor& input);
  const std::shared_ptr<Slot>& slot() const { return slot_; }

 private:
  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
};
TORCH_MODULE(LayerNorm);

/// Its own module (LibTorch 1.13 does not export what a subclass of torch::nn::BatchNorm2dImpl needs), with the
/// stock module's options and parameter and buffer names, so state dicts carry over.
class BatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit BatchNorm2dImpl(const torch::nn::BatchNormOptions& options);
  explicit BatchNorm2dImpl(int64_t features) : BatchNorm2dImpl(torch::nn::BatchNormOptions(features)) {}
  torch::Tensor forward(const torch::Tensor& input);
  const std::shared_ptr<Slot>& slot() const { return slot_; }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
};
TORCH_MODULE(BatchNorm2d);

/// The registry entries (kfac/layers/layer_registry.h) of kfac::nn::LayerNorm and kfac::nn::BatchNorm2d.
LayerFactory layer_norm_factory();
LayerFactory batch_norm2d_factory();

}  // namespace kfac::nn
