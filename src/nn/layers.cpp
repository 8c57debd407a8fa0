#include "kfac/nn/layers.h"

#include "kfac/errors.h"
#include "kfac/layers/conv2d_kind.h"
#include "kfac/layers/embedding_kind.h"
#include "kfac/layers/linear_kind.h"

// LibTorch 1.x has its own c10::variant; 2.x options use std::variant.
#if __has_include(<c10/util/variant.h>)
#include <c10/util/variant.h>
namespace variant_ns = c10;
#else
#include <variant>
namespace variant_ns = std;
#endif

namespace kfac {

namespace nn {

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::LinearImpl::forward(input);
  slot_->tap(input, output);
  return output;
}

Conv2dImpl::Conv2dImpl(const torch::nn::Conv2dOptions& options)
    : torch::nn::Conv2dImpl(options), slot_(std::make_shared<Slot>()) {
  conv2d_layer("(new Conv2d)", *this);  // validates that K-FAC supports these options
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::Conv2dImpl::forward(input);
  slot_->tap(input, output);
  return output;
}

EmbeddingImpl::EmbeddingImpl(const torch::nn::EmbeddingOptions& options) : torch::nn::EmbeddingImpl(options) {
  KFAC_CHECK(!options.max_norm(), "kfac::nn::Embedding does not support max_norm (it rewrites the weight in the "
                                  "forward); leave it unset");
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& input) {
  auto output = torch::nn::EmbeddingImpl::forward(input);
  slot_->tap(input, output);
  return output;
}

}  // namespace nn

Layer linear_layer(const std::string& name, const torch::nn::LinearImpl& module) {
  return {name, std::make_shared<LinearKind>(module.weight, module.bias), std::make_shared<Slot>(name)};
}

Layer conv2d_layer(const std::string& name, const torch::nn::Conv2dImpl& module) {
  const auto& o = module.options;
  KFAC_CHECK(o.groups() == 1, "Conv2d '", name, "': K-FAC supports groups = 1 only, got groups = ", o.groups());
  KFAC_CHECK(variant_ns::get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr, "Conv2d '", name,
             "': K-FAC supports zero padding only (padding_mode zeros)");
  const auto* padding = variant_ns::get_if<torch::ExpandingArray<2>>(&o.padding());
  KFAC_CHECK(padding != nullptr, "Conv2d '", name,
             "': give the padding as numbers (kValid / kSame are not "
             "supported by K-FAC's patch extraction)");
  Conv2dGeometry g;
  for (int i = 0; i < 2; ++i) {
    g.stride[i] = (*o.stride())[i];
    g.padding[i] = (**padding)[i];
    g.dilation[i] = (*o.dilation())[i];
  }
  return {name, std::make_shared<Conv2dKind>(module.weight, module.bias, g), std::make_shared<Slot>(name)};
}

namespace nn {

namespace {
// The capture-enabled modules' Layer: the kind from the module, its own slot and weight-sharing choice.
template <class Impl>
LayerFactory capture_factory(Layer (*make)(const std::string&, Impl&)) {
  return module_factory<Impl>([make](const std::string& name, Impl& m) {
    auto layer = make(name, m);
    layer.slot = m.slot();
    layer.weight_sharing = m.weight_sharing();
    return layer;
  });
}
}  // namespace

LayerFactory linear_factory() {
  return capture_factory<LinearImpl>([](const std::string& name, LinearImpl& m) { return linear_layer(name, m); });
}

LayerFactory conv2d_factory() {
  return capture_factory<Conv2dImpl>([](const std::string& name, Conv2dImpl& m) { return conv2d_layer(name, m); });
}

LayerFactory embedding_factory() {
  return capture_factory<EmbeddingImpl>([](const std::string& name, EmbeddingImpl& m) {
    return Layer{name, std::make_shared<EmbeddingKind>(m.weight), nullptr};
  });
}

}  // namespace nn

}  // namespace kfac
