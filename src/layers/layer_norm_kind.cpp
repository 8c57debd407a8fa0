// LayerNorm (Ba et al. 2016): x̂ normalizes each position over the trailing normalized_shape; γ and β of that
// shape. Without a bias (torch.nn.LayerNorm(bias=False)) the block is the scale's alone.
#include <ATen/ATen.h>

#include "kfac/layers/kind_definition.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac {

namespace {
class LayerNormKind final : public ScaleShiftKind {
 public:
  LayerNormKind(at::Tensor scale, at::Tensor shift, double eps)
      : ScaleShiftKind(std::move(scale), std::move(shift), Features::Last, "LayerNorm"), eps_(eps) {}
  at::Tensor statistics_input(const at::Tensor& input, bool /*training*/) const override {
    return at::layer_norm(input, weight_.sizes(), {}, {}, eps_);
  }

 private:
  double eps_;
};
}  // namespace

KindDefinition layer_norm_definition() {
  return {"LayerNorm",
          {"torch.nn.LayerNorm"},
          {"weight", "bias", "eps"},
          [](const ModuleConfig& c) {
            if (!c.tensor("weight").defined())
              return KindChoice::refuse("elementwise_affine False: LayerNorm has no scale to precondition");
            return KindChoice::accept(std::make_shared<LayerNormKind>(c.tensor("weight"), c.tensor("bias"),
                                                                      c.real("eps", 1e-5)));
          },
          "torch::nn::LayerNormImpl",
          "kfac::nn::LayerNorm"};
}

}  // namespace kfac
