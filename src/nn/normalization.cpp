#include "kfac/nn/normalization.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "kfac/errors.h"
#include "kfac/layers/rms_norm_kind.h"

namespace kfac::nn {

LayerNormImpl::LayerNormImpl(const torch::nn::LayerNormOptions& options) : torch::nn::LayerNormImpl(options) {
  check_accepted();
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::LayerNormImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig LayerNormImpl::config() const {
  return ModuleConfig().set("weight", weight).set("bias", bias).set("eps", options.eps());
}

BatchNorm2dImpl::BatchNorm2dImpl(const torch::nn::BatchNormOptions& o) : options(o) {
  if (o.affine()) {
    weight = register_parameter("weight", torch::ones({o.num_features()}));
    bias = register_parameter("bias", torch::zeros({o.num_features()}));
  }
  if (o.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({o.num_features()}));
    running_var = register_buffer("running_var", torch::ones({o.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
  }
  check_accepted();
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& input) {
  KFAC_CHECK(input.dim() == 4 && input.size(1) == options.num_features(), "BatchNorm2d expects [B, ",
             options.num_features(), ", H, W], got shape ", input.sizes());
  // The running statistics exactly as torch::nn::BatchNorm2d keeps them.
  double factor = options.momentum() ? *options.momentum() : 0.0;
  if (is_training() && options.track_running_stats() && num_batches_tracked.defined()) {
    num_batches_tracked += 1;
    if (!options.momentum()) factor = 1.0 / num_batches_tracked.item<double>();
  }
  auto output = at::batch_norm(input, weight, bias, running_mean, running_var,
                               is_training() || !options.track_running_stats(), factor, options.eps(),
                               at::globalContext().userEnabledCuDNN());
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig BatchNorm2dImpl::config() const {
  return ModuleConfig()
      .set("weight", weight)
      .set("bias", bias)
      .set("running_mean", running_mean)
      .set("running_var", running_var)
      .set("eps", options.eps());
}

GroupNormImpl::GroupNormImpl(const torch::nn::GroupNormOptions& options) : torch::nn::GroupNormImpl(options) {
  check_accepted();
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::GroupNormImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig GroupNormImpl::config() const {
  return ModuleConfig()
      .set("weight", weight)
      .set("bias", bias)
      .set("num_groups", options.num_groups())
      .set("eps", options.eps());
}

RMSNormImpl::RMSNormImpl(RMSNormOptions o) : options(std::move(o)) {
  if (options.elementwise_affine()) weight = register_parameter("weight", torch::ones(options.normalized_shape()));
  check_accepted();
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& input) {
  const auto& shape = options.normalized_shape();
  const auto n = static_cast<int64_t>(shape.size());
  KFAC_CHECK(input.dim() >= n && input.sizes().slice(input.dim() - n).vec() == shape, "RMSNorm expects [..., ",
             c10::IntArrayRef(shape), "], got shape ", input.sizes());
  auto output = rms_normalized(input, n, options.eps());
  if (weight.defined()) output = output * weight;
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig RMSNormImpl::config() const {
  ModuleConfig c;
  c.set("weight", weight);
  if (options.eps()) c.set("eps", *options.eps());
  return c;
}

}  // namespace kfac::nn
