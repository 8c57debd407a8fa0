#include "kfac/nn/normalization.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "kfac/errors.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac::nn {

LayerNormImpl::LayerNormImpl(const torch::nn::LayerNormOptions& options) : torch::nn::LayerNormImpl(options) {
  KFAC_CHECK(options.elementwise_affine(), "kfac::nn::LayerNorm needs elementwise_affine (its scale and shift)");
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& input) {
  const auto normalized = at::layer_norm(input, options.normalized_shape(), {}, {}, options.eps());
  auto output = normalized * weight + bias;
  slot_->tap(normalized, output);
  return output;
}

BatchNorm2dImpl::BatchNorm2dImpl(const torch::nn::BatchNormOptions& o) : options(o) {
  KFAC_CHECK(o.affine(), "kfac::nn::BatchNorm2d needs affine (its scale and shift)");
  weight = register_parameter("weight", torch::ones({o.num_features()}));
  bias = register_parameter("bias", torch::zeros({o.num_features()}));
  if (o.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({o.num_features()}));
    running_var = register_buffer("running_var", torch::ones({o.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
  }
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
  const auto normalized = at::batch_norm(input, {}, {}, running_mean, running_var,
                                         is_training() || !options.track_running_stats(), factor, options.eps(),
                                         at::globalContext().userEnabledCuDNN());
  auto output = normalized * weight.view({1, -1, 1, 1}) + bias.view({1, -1, 1, 1});
  slot_->tap(normalized, output);
  return output;
}

LayerFactory layer_norm_factory() {
  return module_factory<LayerNormImpl>([](const std::string& name, LayerNormImpl& m) {
    return Layer{name, std::make_shared<ScaleShiftKind>(m.weight, m.bias, ScaleShiftKind::Features::Last, "LayerNorm"),
                 m.slot()};
  });
}

LayerFactory batch_norm2d_factory() {
  return module_factory<BatchNorm2dImpl>([](const std::string& name, BatchNorm2dImpl& m) {
    return Layer{name,
                 std::make_shared<ScaleShiftKind>(m.weight, m.bias, ScaleShiftKind::Features::Channels, "BatchNorm2d"),
                 m.slot()};
  });
}

}  // namespace kfac::nn
