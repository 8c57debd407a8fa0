#include "kfac/layers/capture.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/layers/layer_kind.h"

namespace kfac {

void Slot::arm(Mode mode, double grad_scale) {
  clear();
  mode_ = mode;
  grad_scale_ = grad_scale;
}

void Slot::clear() {
  taps_.clear();
  ++*generation_;
}

bool Slot::complete() const {
  if (taps_.empty()) return false;
  for (const auto& t : taps_)
    if (!t.grad_output.defined()) return false;
  return true;
}

void Slot::set_grad_outputs(std::vector<at::Tensor> grad_outputs) {
  KFAC_CHECK(grad_outputs.size() == taps_.size(), "layer '", name_, "': ", grad_outputs.size(),
             " output gradients for ", taps_.size(), " taps");
  for (size_t i = 0; i < taps_.size(); ++i) {
    taps_[i].output = at::Tensor();
    taps_[i].grad_output = std::move(grad_outputs[i]);
  }
}

void Slot::tap(const at::Tensor& input, const at::Tensor& output, bool training) {
  if (mode_ == Mode::Off || (kind_ && kind_->frozen())) return;  // a frozen layer has no statistics this step
  Tap t{{}, {}, {}};
  {
    at::NoGradGuard no_grad;
    t.input = kind_ ? kind_->statistics_input(input.detach(), training) : input.detach();
  }
  if (mode_ == Mode::RetainOutput) {
    KFAC_CHECK(output.requires_grad(), "layer '", name_,
               "': its output does not require grad in a statistics pass, so its output gradients cannot be "
               "captured: the forward ran with gradients off (Python torch.no_grad(), C++ torch::NoGradGuard); run "
               "the statistics forward with gradients on");
    t.output = output;
  } else if (output.requires_grad()) {
    // The hook holds the slot's generation counter, not the slot: it writes only into the pass that armed it.
    // The scale is read when the gradient arrives, so that set_grad_scale after the forward applies.
    const size_t index = taps_.size();
    const int64_t generation = *generation_;
    std::weak_ptr<int64_t> alive = generation_;
    output.register_hook([this, index, generation, alive](const at::Tensor& g) {
      const auto counter = alive.lock();
      if (!counter || *counter != generation || index >= taps_.size()) return;
      taps_[index].grad_output = (grad_scale_ == 1.0 ? g.detach() : g.detach() * grad_scale_).unsqueeze(0);
    });
  }
  taps_.push_back(std::move(t));
}

}  // namespace kfac
