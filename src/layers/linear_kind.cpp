#include "kfac/layers/linear_kind.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/layers/kind_definition.h"

namespace kfac {

LinearKind::LinearKind(at::Tensor weight, at::Tensor bias) : LayerKind(std::move(weight), std::move(bias)) {
  KFAC_CHECK(weight_.dim() == 2, "Linear weight must be 2-D [out, in], got shape ", weight_.sizes());
}
int64_t LinearKind::dim_a() const { return weight_.size(1) + (has_bias() ? 1 : 0); }
int64_t LinearKind::dim_g() const { return weight_.size(0); }

at::Tensor LinearKind::expand_input(const at::Tensor& input) const {
  KFAC_CHECK(input.dim() >= 2 && input.size(-1) == weight_.size(1), "Linear input must be [B, ..., ", weight_.size(1),
             "] (batch first, features last), got shape ", input.sizes());
  const int64_t batch = input.size(0), positions = input.numel() / std::max<int64_t>(1, batch * input.size(-1));
  auto x = input.reshape({batch, positions, weight_.size(1)});
  if (!has_bias()) return x;
  auto out = at::empty({batch, positions, dim_a()}, input.options());
  out.narrow(2, 0, weight_.size(1)).copy_(x);
  out.select(2, weight_.size(1)).fill_(1);
  return out;
}

at::Tensor LinearKind::expand_output_grad(const at::Tensor& g) const {
  KFAC_CHECK(g.dim() >= 3 && g.size(-1) == dim_g(), "Linear output gradients must be [S, B, ..., ", dim_g(),
             "], got shape ", g.sizes());
  return g.reshape({g.size(0), g.size(1), -1, dim_g()});
}

KindDefinition linear_definition() {
  return {"Linear",
          {"torch.nn.Linear"},
          {"weight", "bias"},
          [](const ModuleConfig& c) {
            return KindChoice::accept(std::make_shared<LinearKind>(c.tensor("weight"), c.tensor("bias")));
          },
          "torch::nn::LinearImpl",
          "kfac::nn::Linear"};
}

}  // namespace kfac
