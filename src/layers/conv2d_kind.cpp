#include "kfac/layers/conv2d_kind.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/layers/kind_definition.h"

namespace kfac {

std::string conv_geometry(const ModuleConfig& c, int spatial, Conv2dGeometry& geometry) {
  const auto name = spatial == 1 ? std::string("Conv1d") : std::string("Conv2d");
  if (c.integer("groups", 1) != 1) return "groups " + c.show("groups") + ": K-FAC supports groups 1 only";
  if (c.has("padding_mode") && c.word("padding_mode") != "zeros")
    return "padding_mode " + c.show("padding_mode") + ": K-FAC supports 'zeros' only";
  const auto weight = c.tensor("weight");
  KFAC_CHECK(weight.defined() && weight.dim() == 2 + spatial, name, " weight must be ", 2 + spatial,
             "-D [out, in, kernel...], got ", weight.defined() ? weight.sizes().vec() : std::vector<int64_t>{});
  const auto stride = c.integers("stride", spatial, 1), dilation = c.integers("dilation", spatial, 1);
  std::vector<int64_t> padding;
  const auto word = c.word("padding");
  if (word == "same") {  // symmetric where the kernel's reach is even; PyTorch pads one side more otherwise
    for (int i = 0; i < spatial; ++i) {
      const int64_t reach = dilation[i] * (weight.size(2 + i) - 1);
      if (reach % 2 != 0)
        return "padding 'same' with kernel " + std::to_string(weight.size(2 + i)) + " and dilation " +
               std::to_string(dilation[i]) + " pads one side more; give the padding as numbers";
      padding.push_back(reach / 2);
    }
  } else if (word == "valid") {
    padding.assign(spatial, 0);
  } else {
    padding = c.integers("padding", spatial, 0);
  }
  const int first = 2 - spatial;  // one dim: height 1, no stride, padding or dilation there
  for (int i = 0; i < spatial; ++i) {
    geometry.stride[first + i] = stride[i];
    geometry.padding[first + i] = padding[i];
    geometry.dilation[first + i] = dilation[i];
  }
  return "";
}

KindDefinition conv_definition(
    std::string name, int spatial,
    std::function<std::shared_ptr<LayerKind>(const ModuleConfig&, const Conv2dGeometry&)> make) {
  auto choose = [spatial, make = std::move(make)](const ModuleConfig& c) {
    Conv2dGeometry g;
    auto refusal = conv_geometry(c, spatial, g);
    if (!refusal.empty()) return KindChoice::refuse(std::move(refusal));
    return KindChoice::accept(make(c, g));
  };
  return {name,
          {"torch.nn." + name},
          {"weight", "bias", "stride", "padding", "dilation", "groups", "padding_mode"},
          std::move(choose),
          "torch::nn::" + name + "Impl",
          "kfac::nn::" + name};
}

KindDefinition conv2d_definition() {
  return conv_definition("Conv2d", 2, [](const ModuleConfig& c, const Conv2dGeometry& g) {
    return std::make_shared<Conv2dKind>(c.tensor("weight"), c.tensor("bias"), g);
  });
}

Conv2dKind::Conv2dKind(at::Tensor weight, at::Tensor bias, Conv2dGeometry geometry)
    : LayerKind(std::move(weight), std::move(bias)), geometry_(geometry) {
  KFAC_CHECK(weight_.dim() == 4, "Conv2d weight must be 4-D [out, in, kh, kw], got shape ", weight_.sizes());
}
int64_t Conv2dKind::dim_a() const { return weight_.size(1) * weight_.size(2) * weight_.size(3) + (has_bias() ? 1 : 0); }
int64_t Conv2dKind::dim_g() const { return weight_.size(0); }

at::Tensor Conv2dKind::windows(const at::Tensor& input) const {
  KFAC_CHECK(input.dim() == 4 && input.size(1) == weight_.size(1), "Conv2d input must be [B, ", weight_.size(1),
             ", H, W], got shape ", input.sizes());
  const auto& g = geometry_;
  const int64_t kh = weight_.size(2), kw = weight_.size(3);
  const int64_t span_h = g.dilation[0] * (kh - 1) + 1, span_w = g.dilation[1] * (kw - 1) + 1;
  const auto padded = at::constant_pad_nd(input, {g.padding[1], g.padding[1], g.padding[0], g.padding[0]});
  return padded.unfold(2, span_h, g.stride[0])
      .unfold(3, span_w, g.stride[1])
      .slice(4, 0, span_h, g.dilation[0])
      .slice(5, 0, span_w, g.dilation[1]);  // [B, C, Ho, Wo, kh, kw], a view
}

at::Tensor Conv2dKind::expand_input(const at::Tensor& input) const {
  // Patches written straight into [B, T, d_A] (channel-major (c, i, j) like weight.view, then the homogeneous 1):
  // windows by unfold, one strided copy. Three times faster than at::im2col + transpose + cat on LibTorch 1.13.
  const auto windows = this->windows(input);
  const int64_t kh = weight_.size(2), kw = weight_.size(3), channels = weight_.size(1);
  const int64_t batch = input.size(0), ho = windows.size(2), wo = windows.size(3), d = channels * kh * kw;
  auto out = at::empty({batch, ho, wo, dim_a()}, input.options());
  out.narrow(3, 0, d).view({batch, ho, wo, channels, kh, kw}).copy_(windows.permute({0, 2, 3, 1, 4, 5}));
  if (has_bias()) out.select(3, d).fill_(1);
  return out.view({batch, ho * wo, dim_a()});
}

at::Tensor Conv2dKind::expand_input_at(const at::Tensor& input, const at::Tensor& positions) const {
  // Only the sampled windows are copied: location t is (t / Wo, t % Wo) of the output grid.
  const auto windows = this->windows(input);
  const int64_t wo = windows.size(3), k = positions.size(0), d = weight_.size(1) * weight_.size(2) * weight_.size(3);
  const auto rows = at::div(positions, wo, "floor"), cols = at::remainder(positions, wo);
  using at::indexing::Slice;
  const auto picked = windows.index({Slice(), Slice(), rows, cols});  // [B, C, k, kh, kw]
  auto out = at::empty({input.size(0), k, dim_a()}, input.options());
  out.narrow(2, 0, d)
      .view({input.size(0), k, weight_.size(1), weight_.size(2), weight_.size(3)})
      .copy_(picked.permute({0, 2, 1, 3, 4}));
  if (has_bias()) out.select(2, d).fill_(1);
  return out;
}

at::Tensor Conv2dKind::expand_output_grad(const at::Tensor& g) const {
  // [..., B, C, H, W] → [..., B, H·W, C]
  auto sizes = g.sizes().vec();
  KFAC_CHECK(sizes.size() >= 4, "Conv2d output gradient must be [B, C, H, W], got shape ", g.sizes());
  const int64_t hw = sizes[sizes.size() - 1] * sizes[sizes.size() - 2];
  sizes.pop_back();
  sizes.back() = hw;
  return g.reshape(sizes).transpose(-1, -2);
}

std::array<int64_t, 2> Conv2dKind::grid(const at::Tensor& grad_output) const {
  return {grad_output.size(-2), grad_output.size(-1)};
}

}  // namespace kfac
