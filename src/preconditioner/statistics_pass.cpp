// The statistics pass of the preconditioner: a forward with capture on, then one autograd query per target row
// for dLoss/dOutput of every layer. Autograd computes only what those outputs need (no weight gradients).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "kfac/errors.h"
#include "kfac/preconditioner/preconditioner.h"

namespace kfac {

bool Preconditioner::update_statistics(const std::function<at::Tensor(const at::Tensor&)>& forward,
                                       const at::Tensor& inputs, LossKind loss, const at::Tensor& targets) {
  if (!is_statistics_step()) return false;
  KFAC_CHECK(inputs.dim() >= 1 && inputs.size(0) > 0, "update_statistics needs a non-empty batch, got shape ",
             inputs.sizes());
  KFAC_CHECK(options_.fisher() != FisherType::Empirical || targets.defined(),
             "the empirical Fisher (fisher=empirical) needs the training targets in update_statistics");
  const int64_t batch = inputs.size(0);
  const int64_t n = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(options_.stats_fraction() * static_cast<double>(batch))), 1, batch);
  const auto x = inputs.narrow(0, 0, n);
  const auto y = targets.defined() ? targets.narrow(0, 0, n) : targets;

  for (auto& l : layers_) l.slot->arm(Slot::Mode::RetainOutput);
  at::Tensor output;
  try {
    torch::AutoGradMode grad_on(true);
    output = forward(x);
  } catch (...) {
    clear_slots();
    throw;
  }
  record_output_gradients(output, loss, y);
  return true;
}

bool Preconditioner::capture_forward() {
  if (!is_statistics_step()) return false;
  KFAC_CHECK(options_.stats_fraction() == 1.0,
             "capture_forward shares the training forward, so the statistics use the whole batch; it needs "
             "stats_fraction 1 (got ", options_.stats_fraction(), "); use update_statistics for a subsample");
  for (auto& l : layers_) l.slot->arm(Slot::Mode::RetainOutput);
  return true;
}

void Preconditioner::statistics_from_forward(const at::Tensor& output, LossKind loss, const at::Tensor& targets) {
  if (!is_statistics_step()) return;
  KFAC_CHECK(options_.fisher() != FisherType::Empirical || targets.defined(),
             "the empirical Fisher (fisher=empirical) needs the training targets in statistics_from_forward");
  record_output_gradients(output, loss, targets);
}

void Preconditioner::record_output_gradients(const at::Tensor& output, LossKind loss, const at::Tensor& y) {
  std::vector<at::Tensor> outputs;
  std::vector<std::string> missing;
  for (auto& l : layers_) {
    l.slot->disarm();
    if (l.slot->taps() == 0) missing.push_back(l.name);
    outputs.push_back(l.slot->output());
  }
  if (!missing.empty()) {
    clear_slots();
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "'" : ", '") + m + "'";
    KFAC_CHECK(false, "layer(s) ", names, " did not run in the statistics forward; every registered layer must be "
               "used by the model's forward (or not registered)");
  }

  // Targets are sampled from the model's outputs: a NaN or an infinity there (NaN inputs, weights that overflowed)
  // would make the sampler abort. The statistics of this step are dropped instead and step() reports it.
  if (!at::isfinite(output.detach()).all().item<bool>()) {
    clear_slots();
    nonfinite_outputs_ = true;
    return;
  }
  const auto rows = output_gradient_rows(output.detach(), loss, options_.fisher(), options_.fisher_samples(), y,
                                         step_generator());  // [S, n, C]
  const int64_t samples = rows.size(0);
  std::vector<std::vector<at::Tensor>> per_layer(layers_.size());
  for (int64_t s = 0; s < samples; ++s) {
    auto grads = torch::autograd::grad({output}, outputs, {rows[s].reshape(output.sizes())},
                                       /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (!grads[i].defined()) {
        const auto name = layers_[i].name;
        clear_slots();
        KFAC_CHECK(false, "layer '", name, "' ran in the statistics forward but does not influence the output");
      }
      per_layer[i].push_back(grads[i]);
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& slot = *layers_[i].slot;
    auto input = slot.input();
    slot.clear();  // releases the retained output and its graph
    slot.record(std::move(input), at::stack(per_layer[i]));
  }
}

}  // namespace kfac
