// Conv2d layers (KFC, Grosse & Martens 2016): ā is the input patch at each output location, g the output gradient
// there; the output grid is the layer's set of shared positions.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>

#include "kfac/layers/kind_definition.h"

namespace kfac {

struct Conv2dGeometry {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
};

/// A convolution's geometry over `spatial` (1 or 2) dims from its module settings (stride, padding as numbers or
/// 'valid' / 'same', dilation, the kernel from the weight), as (height, width) with height 1 for one dim; or why
/// K-FAC has no block for it (groups other than 1, a padding mode other than 'zeros', a 'same' padding that pads
/// one side more): the returned refusal, empty when `geometry` is set.
std::string conv_geometry(const ModuleConfig& config, int spatial, Conv2dGeometry& geometry);

/// The definition of a convolution kind over `spatial` dims: its geometry (conv_geometry) or the refusal, then `make`.
KindDefinition conv_definition(
    std::string name, int spatial,
    std::function<std::shared_ptr<LayerKind>(const ModuleConfig&, const Conv2dGeometry&)> make);

class Conv2dKind final : public LayerKind {
 public:
  Conv2dKind(at::Tensor weight, at::Tensor bias, Conv2dGeometry geometry);
  std::string kind_name() const override { return "Conv2d"; }
  int64_t dim_a() const override;
  int64_t dim_g() const override;
  at::Tensor expand_input(const at::Tensor& input) const override;
  at::Tensor expand_input_at(const at::Tensor& input, const at::Tensor& positions) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
  std::array<int64_t, 2> grid(const at::Tensor& grad_output) const override;
  const Conv2dGeometry& geometry() const { return geometry_; }

 private:
  /// The input's receptive fields at every output location: [B, C, Ho, Wo, kh, kw], a view of the padded input.
  at::Tensor windows(const at::Tensor& input) const;
  Conv2dGeometry geometry_;
};

}  // namespace kfac
