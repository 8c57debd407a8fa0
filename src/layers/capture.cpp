#include "kfac/layers/capture.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"

namespace kfac {

void Slot::arm(Mode mode, double grad_scale) {
  clear();
  mode_ = mode;
  grad_scale_ = grad_scale;
}

void Slot::clear() {
  taps_ = 0;
  input_ = at::Tensor();
  output_ = at::Tensor();
  grad_output_ = at::Tensor();
}

void Slot::record(at::Tensor input, at::Tensor grad_outputs) {
  taps_ = 1;
  input_ = std::move(input);
  grad_output_ = std::move(grad_outputs);
}

void Slot::tap(const at::Tensor& input, const at::Tensor& output) {
  if (mode_ == Mode::Off) return;
  ++taps_;
  KFAC_CHECK(taps_ == 1, "layer '", name_, "' ran ", taps_,
             " times in one statistics pass; a K-FAC layer must run once per forward (weight sharing is not "
             "supported): use a separate layer per use");
  input_ = input.detach();
  if (mode_ == Mode::RetainOutput) {
    KFAC_CHECK(output.requires_grad(), "layer '", name_,
               "': its output does not require grad in a statistics pass; do not run the statistics forward under "
               "torch::NoGradGuard");
    output_ = output;
  } else {
    const double scale = grad_scale_;
    if (output.requires_grad()) {
      output.register_hook([this, scale](const at::Tensor& g) {
        grad_output_ = (scale == 1.0 ? g.detach() : g.detach() * scale).unsqueeze(0);
      });
    }
  }
}

}  // namespace kfac
