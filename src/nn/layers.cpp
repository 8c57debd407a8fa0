#include "kfac/nn/layers.h"

#include "kfac/errors.h"
#include "kfac/layers/kind_registry.h"

// LibTorch 1.x has its own c10::variant; 2.x options use std::variant.
#if __has_include(<c10/util/variant.h>)
#include <c10/util/variant.h>
namespace variant_ns = c10;
#else
#include <variant>
namespace variant_ns = std;
#endif

namespace kfac {

namespace {
std::vector<int64_t> numbers(at::IntArrayRef values) { return values.vec(); }

/// A convolution's options as torch.nn's attributes.
template <size_t D>
ModuleConfig conv_config(const torch::nn::detail::ConvNdOptions<D>& o, const at::Tensor& weight,
                         const at::Tensor& bias) {
  ModuleConfig c;
  c.set("weight", weight).set("bias", bias);
  c.set("stride", numbers(*o.stride())).set("dilation", numbers(*o.dilation())).set("groups", o.groups());
  if (variant_ns::get_if<torch::enumtype::kSame>(&o.padding()))
    c.set("padding", std::string("same"));
  else if (variant_ns::get_if<torch::enumtype::kValid>(&o.padding()))
    c.set("padding", std::string("valid"));
  else
    c.set("padding", numbers(**variant_ns::get_if<torch::ExpandingArray<D>>(&o.padding())));
  const auto& mode = o.padding_mode();
  c.set("padding_mode", std::string(variant_ns::get_if<torch::enumtype::kZeros>(&mode)       ? "zeros"
                                    : variant_ns::get_if<torch::enumtype::kReflect>(&mode)   ? "reflect"
                                    : variant_ns::get_if<torch::enumtype::kReplicate>(&mode) ? "replicate"
                                                                                             : "circular"));
  return c;
}

/// The Layer of a stock module, tapped by hand: an error with the kind's reason if it has no block.
Layer stock_layer(const std::string& kind, const std::string& name, const ModuleConfig& config) {
  std::string refusal;
  auto layer = layer_of_kind(kind, name, config, std::make_shared<Slot>(name), &refusal);
  KFAC_CHECK(layer.has_value(), kind, " '", name, "': ", refusal);
  return *layer;
}
}  // namespace

namespace nn {

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::LinearImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig LinearImpl::config() const { return ModuleConfig().set("weight", weight).set("bias", bias); }

Conv2dImpl::Conv2dImpl(const torch::nn::Conv2dOptions& options) : torch::nn::Conv2dImpl(options) { check_accepted(); }

torch::Tensor Conv2dImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::Conv2dImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig Conv2dImpl::config() const { return conv_config(options, weight, bias); }

Conv1dImpl::Conv1dImpl(const torch::nn::Conv1dOptions& options) : torch::nn::Conv1dImpl(options) { check_accepted(); }

torch::Tensor Conv1dImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::Conv1dImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig Conv1dImpl::config() const { return conv_config(options, weight, bias); }

EmbeddingImpl::EmbeddingImpl(const torch::nn::EmbeddingOptions& options) : torch::nn::EmbeddingImpl(options) {
  check_accepted();
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::EmbeddingImpl::forward(input);
  slot_->tap(input, output, is_training());
  return output;
}

ModuleConfig EmbeddingImpl::config() const {
  ModuleConfig c;
  c.set("weight", weight).set("sparse", options.sparse());
  if (options.max_norm()) c.set("max_norm", *options.max_norm());
  return c;
}

}  // namespace nn

Layer linear_layer(const std::string& name, const torch::nn::LinearImpl& module) {
  return stock_layer("Linear", name, ModuleConfig().set("weight", module.weight).set("bias", module.bias));
}

Layer conv2d_layer(const std::string& name, const torch::nn::Conv2dImpl& module) {
  return stock_layer("Conv2d", name, conv_config(module.options, module.weight, module.bias));
}

}  // namespace kfac
