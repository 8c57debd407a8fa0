// Conv1d: a Conv2d of height 1 (KFC over the output positions, which are its shared positions: expand or reduce).
// Input [B, C, L], weight [out, C, k]; ā is the patch (c, j) at each output position, as weight.view(out, -1).
#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/layers/conv2d_kind.h"
#include "kfac/layers/kind_definition.h"

namespace kfac {

namespace {
class Conv1dKind final : public LayerKind {
 public:
  Conv1dKind(const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& geometry)
      : LayerKind(weight, bias),
        as_2d_(weight.detach().unsqueeze(2), bias.defined() ? bias.detach() : at::Tensor(), geometry) {}
  std::string kind_name() const override { return "Conv1d"; }
  int64_t dim_a() const override { return as_2d_.dim_a(); }
  int64_t dim_g() const override { return as_2d_.dim_g(); }
  at::Tensor expand_input(const at::Tensor& input) const override { return as_2d_.expand_input(rows(input)); }
  at::Tensor expand_input_at(const at::Tensor& input, const at::Tensor& positions) const override {
    return as_2d_.expand_input_at(rows(input), positions);
  }
  at::Tensor expand_output_grad(const at::Tensor& g) const override {
    return as_2d_.expand_output_grad(g.unsqueeze(-2));
  }
  std::array<int64_t, 2> grid(const at::Tensor& grad_output) const override { return {1, grad_output.size(-1)}; }

 private:
  /// [B, C, L] → [B, C, 1, L]
  at::Tensor rows(const at::Tensor& input) const {
    KFAC_CHECK(input.dim() == 3 && input.size(1) == weight_.size(1), "Conv1d input must be [B, ", weight_.size(1),
               ", L], got shape ", input.sizes());
    return input.unsqueeze(2);
  }
  Conv2dKind as_2d_;  // the same layer as a Conv2d of height 1 (views of the weight, for its shapes)
};
}  // namespace

KindDefinition conv1d_definition() {
  return conv_definition("Conv1d", 1, [](const ModuleConfig& c, const Conv2dGeometry& g) {
    return std::make_shared<Conv1dKind>(c.tensor("weight"), c.tensor("bias"), g);
  });
}

}  // namespace kfac
