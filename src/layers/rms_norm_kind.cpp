// RMSNorm (Zhang & Sennrich 2019; torch.nn.RMSNorm, every Llama-style model): x̂ = x / sqrt(mean(x²) + eps) over
// the trailing normalized_shape, output γ ⊙ x̂: a scale and no shift. eps unset means the input dtype's machine
// epsilon, as torch.nn.functional.rms_norm takes it.
#include <ATen/ATen.h>

#include <limits>

#include "kfac/layers/kind_definition.h"
#include "kfac/layers/rms_norm_kind.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac {

at::Tensor rms_normalized(const at::Tensor& input, int64_t dims, c10::optional<double> eps) {
  std::vector<int64_t> trailing;
  for (int64_t i = 1; i <= dims; ++i) trailing.push_back(-i);
  double machine_epsilon = std::numeric_limits<float>::epsilon();
  if (input.scalar_type() == at::kDouble) machine_epsilon = std::numeric_limits<double>::epsilon();
  if (input.scalar_type() == at::kHalf) machine_epsilon = 0.0009765625;   // 2^-10
  if (input.scalar_type() == at::kBFloat16) machine_epsilon = 0.0078125;  // 2^-7
  return input * at::rsqrt(input.pow(2).mean(trailing, /*keepdim=*/true) + eps.value_or(machine_epsilon));
}

namespace {

class RMSNormKind final : public ScaleShiftKind {
 public:
  RMSNormKind(at::Tensor scale, c10::optional<double> eps)
      : ScaleShiftKind(std::move(scale), {}, Features::Last, "RMSNorm"), eps_(eps) {}
  at::Tensor statistics_input(const at::Tensor& input, bool /*training*/) const override {
    return rms_normalized(input, weight_.dim(), eps_);
  }

 private:
  c10::optional<double> eps_;
};
}  // namespace

KindDefinition rms_norm_definition() {
  return {"RMSNorm",
          {"torch.nn.RMSNorm"},
          {"weight", "eps"},
          [](const ModuleConfig& c) {
            if (!c.tensor("weight").defined())
              return KindChoice::refuse("elementwise_affine False: RMSNorm has no scale to precondition");
            const auto eps = c.has("eps") ? c10::optional<double>(c.real("eps", 0)) : c10::nullopt;
            return KindChoice::accept(std::make_shared<RMSNormKind>(c.tensor("weight"), eps));
          },
          "",
          ""};
}

}  // namespace kfac
