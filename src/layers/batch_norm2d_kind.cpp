// BatchNorm2d (Ioffe & Szegedy 2015): x̂ normalizes each channel by the batch's statistics in training (or without
// running statistics), by the running ones in evaluation; γ and β per channel.
#include <ATen/ATen.h>

#include "kfac/layers/kind_definition.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac {

namespace {
class BatchNorm2dKind final : public ScaleShiftKind {
 public:
  BatchNorm2dKind(at::Tensor scale, at::Tensor shift, at::Tensor running_mean, at::Tensor running_var, double eps)
      : ScaleShiftKind(std::move(scale), std::move(shift), Features::Channels, "BatchNorm2d"),
        running_mean_(std::move(running_mean)),
        running_var_(std::move(running_var)),
        eps_(eps) {}
  at::Tensor statistics_input(const at::Tensor& input, bool training) const override {
    const bool batch = training || !running_mean_.defined();
    return at::batch_norm(input, {}, {}, batch ? at::Tensor() : running_mean_, batch ? at::Tensor() : running_var_,
                          batch, 0.0, eps_, at::globalContext().userEnabledCuDNN());
  }

 private:
  at::Tensor running_mean_, running_var_;  // the module's own buffers (shared), undefined without running statistics
  double eps_;
};
}  // namespace

KindDefinition batch_norm2d_definition() {
  return {"BatchNorm2d",
          {"torch.nn.BatchNorm2d"},
          {"weight", "bias", "running_mean", "running_var", "eps"},
          [](const ModuleConfig& c) {
            if (!c.tensor("weight").defined())
              return KindChoice::refuse("affine False: BatchNorm2d has no scale and shift to precondition");
            return KindChoice::accept(std::make_shared<BatchNorm2dKind>(c.tensor("weight"), c.tensor("bias"),
                                                                        c.tensor("running_mean"),
                                                                        c.tensor("running_var"), c.real("eps", 1e-5)));
          },
          "torch::nn::BatchNorm2dImpl",
          "kfac::nn::BatchNorm2d"};
}

}  // namespace kfac
