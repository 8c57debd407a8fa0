#include "preconditioner/fallback.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "util/serialize.h"

namespace kfac {

Fallback::Fallback(std::vector<at::Tensor> parameters, FallbackOptions options)
    : parameters_(std::move(parameters)), options_(options) {
  if (options_.fallback() == FallbackKind::Adam)
    for (const auto& p : parameters_) second_moments_.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous));
}

void Fallback::apply() {
  if (options_.fallback() == FallbackKind::Identity || parameters_.empty()) return;
  ++steps_;
  const double beta2 = options_.fallback_beta2();
  const double correction = 1.0 - std::pow(beta2, static_cast<double>(steps_));
  for (size_t i = 0; i < parameters_.size(); ++i) {
    auto& grad = parameters_[i].mutable_grad();
    if (!grad.defined()) continue;
    auto& v = second_moments_[i];
    v.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
    const auto denominator = (v / correction).sqrt_().add_(options_.fallback_epsilon());
    grad.div_(denominator).mul_(options_.fallback_scale());
  }
}

void Fallback::save(torch::serialize::OutputArchive& archive) const {
  archive.write("fallback_steps", c10::IValue(steps_));
  write_tensors(archive, "fallback_v", second_moments_);
}

void Fallback::load(torch::serialize::InputArchive& archive) {
  c10::IValue steps;
  if (!archive.try_read("fallback_steps", steps)) return;  // written before the fallback existed: a fresh state
  steps_ = steps.toInt();
  auto loaded = read_tensors(archive, "fallback_v", second_moments_, "the fallback's second moments");
  for (size_t i = 0; i < loaded.size(); ++i)
    if (loaded[i].defined()) second_moments_[i] = loaded[i];
}

}  // namespace kfac
