// GroupNorm (Wu & He 2018): x̂ normalizes each example's channels in num_groups groups (over the channels of a group
// and every position); γ and β per channel. Each example is normalized alone, so the per-example gradients, and the
// block, are exact in training as in evaluation.
#include <ATen/ATen.h>

#include "kfac/layers/kind_definition.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac {

namespace {
class GroupNormKind final : public ScaleShiftKind {
 public:
  GroupNormKind(at::Tensor scale, at::Tensor shift, int64_t groups, double eps)
      : ScaleShiftKind(std::move(scale), std::move(shift), Features::Channels, "GroupNorm"),
        groups_(groups),
        eps_(eps) {}
  at::Tensor statistics_input(const at::Tensor& input, bool /*training*/) const override {
    return at::group_norm(input, groups_, {}, {}, eps_);
  }

 private:
  int64_t groups_;
  double eps_;
};
}  // namespace

KindDefinition group_norm_definition() {
  return {"GroupNorm",
          {"torch.nn.GroupNorm"},
          {"weight", "bias", "num_groups", "eps"},
          [](const ModuleConfig& c) {
            if (!c.tensor("weight").defined())
              return KindChoice::refuse("affine False: GroupNorm has no scale and shift to precondition");
            return KindChoice::accept(std::make_shared<GroupNormKind>(c.tensor("weight"), c.tensor("bias"),
                                                                      c.integer("num_groups", 1), c.real("eps", 1e-5)));
          },
          "torch::nn::GroupNormImpl",
          "kfac::nn::GroupNorm"};
}

}  // namespace kfac
