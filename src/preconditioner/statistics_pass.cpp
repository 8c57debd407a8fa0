#include "preconditioner/statistics_pass.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>  // torch::AutoGradMode (the precompiled header hid its absence)

#include <algorithm>
#include <cmath>
#include <utility>

#include "kfac/errors.h"
#include "util/text.h"

namespace kfac {

void StatisticsPass::clear() {
  nonfinite_outputs_ = false;  // a skipped step's refusal must not drop the next step's statistics
  for (auto& l : layers_) {
    l.slot->disarm();
    l.slot->clear();
  }
}

void StatisticsPass::run(const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs,
                         LossKind loss, const at::Tensor& targets, int64_t step) {
  KFAC_CHECK(inputs.dim() >= 1 && inputs.size(0) > 0, "update_statistics needs a non-empty batch, got shape ",
             inputs.sizes());
  KFAC_CHECK(options_.fisher() != FisherType::Empirical || targets.defined(),
             "the empirical Fisher (fisher=empirical) needs the training targets in update_statistics");
  const int64_t batch = inputs.size(0);
  KFAC_CHECK(!targets.defined() || (targets.dim() >= 1 && targets.size(0) == batch), "update_statistics: the targets ",
             "must have one row per example of the inputs (", batch, "), got shape ", targets.sizes());
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
    clear();
    throw;
  }
  record_output_gradients(output, loss, y, step);
}

void StatisticsPass::arm_forward() {
  KFAC_CHECK(options_.stats_fraction() == 1.0,
             "capture_forward shares the training forward, so the statistics use the whole batch; it needs "
             "stats_fraction 1 (got ",
             options_.stats_fraction(), "); use update_statistics for a subsample");
  for (auto& l : layers_) l.slot->arm(Slot::Mode::RetainOutput);
}

void StatisticsPass::from_forward(const at::Tensor& output, LossKind loss, const at::Tensor& targets, int64_t step) {
  KFAC_CHECK(options_.fisher() != FisherType::Empirical || targets.defined(),
             "the empirical Fisher (fisher=empirical) needs the training targets in statistics_from_forward");
  record_output_gradients(output, loss, targets, step);
}

void StatisticsPass::arm_backward(double grad_scale) {
  KFAC_CHECK(std::isfinite(grad_scale) && grad_scale > 0, "grad_scale must be finite and > 0, got ", grad_scale);
  for (auto& l : layers_) l.slot->arm(Slot::Mode::HookGradient, grad_scale);
}

void StatisticsPass::set_backward_scale(double grad_scale) {
  bool armed = false;
  for (auto& l : layers_)
    if (l.slot->mode() == Slot::Mode::HookGradient) {
      l.slot->set_grad_scale(grad_scale);
      armed = true;
    }
  KFAC_CHECK(armed, "set_capture_scale changes the scale of capture_backward, which is not armed: call "
                    "capture_backward(grad_scale) before the training forward of a statistics step");
}

namespace {

// SplitMix-style mix of (seed, step, stream): reproducible per step, so a resumed run draws the same numbers.
uint64_t mixed_seed(uint64_t seed, int64_t step, uint64_t stream = 0) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(step + 1) + 0xD1B54A32D192ED03ULL * stream;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

at::Generator StatisticsPass::generator(int64_t step) const {
  const auto device = layers_.front().kind->weight().device();
  // Cloned once per device and reseeded every step: LibTorch 1.13 leaks each clone (about 2.6 KB per step).
  if (!generator_.defined() || generator_.device() != device)
    generator_ = at::globalContext().defaultGenerator(device).clone();
  generator_.set_current_seed(mixed_seed(options_.seed(), step));
  return generator_;
}

at::Tensor StatisticsPass::positions_to_sample(int64_t positions, int64_t step, size_t layer) const {
  const int64_t count = options_.stats_positions();
  if (count == 0 || positions <= count) return {};
  if (!positions_generator_.defined()) positions_generator_ = at::globalContext().defaultGenerator(at::kCPU).clone();
  positions_generator_.set_current_seed(mixed_seed(options_.seed(), step, layer + 1));
  // Each position is in the sample with probability k/T, so the mean over the sample estimates the mean over every
  // position without bias: A = E[ā āᵀ] and G = E[g gᵀ] stay unbiased (docs/design.md §5).
  return std::get<0>(at::randperm(positions, positions_generator_, at::kLong).narrow(0, 0, count).sort());
}

void StatisticsPass::record_output_gradients(const at::Tensor& output, LossKind loss, const at::Tensor& y,
                                             int64_t step) {
  std::vector<at::Tensor> outputs;  // every tap's output, layer by layer
  std::vector<std::string> missing;
  for (auto& l : layers_) {
    l.slot->disarm();
    if (l.slot->taps() == 0 && !l.kind->frozen()) missing.push_back(l.name);
    for (const auto& t : l.slot->recorded()) outputs.push_back(t.output);
  }
  if (!missing.empty()) {
    clear();
    KFAC_CHECK(false, "layer(s) ", join_quoted(missing),
               " did not run in the statistics forward; every registered "
               "layer must be used by the model's forward (or not registered)");
  }

  if (outputs.empty()) return;  // every layer is frozen: nothing to differentiate
  // Targets are sampled from the model's outputs: a NaN or an infinity there (NaN inputs, weights that overflowed)
  // would make the sampler abort. The statistics of this step are dropped instead and step() reports it.
  if (!at::isfinite(output.detach()).all().item<bool>()) {
    clear();
    nonfinite_outputs_ = true;
    return;
  }
  const auto rows = output_gradient_rows(output.detach(), loss, options_.fisher(), options_.fisher_samples(), y,
                                         generator(step));  // [S, n, C]
  const int64_t samples = rows.size(0);
  std::vector<std::vector<at::Tensor>> per_tap(outputs.size());
  for (int64_t s = 0; s < samples; ++s) {
    auto grads = torch::autograd::grad({output}, outputs, {rows[s].reshape(output.sizes())},
                                       /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
    size_t k = 0;
    for (const auto& l : layers_)
      for (int64_t t = 0; t < l.slot->taps(); ++t, ++k) {
        if (!grads[k].defined()) {
          const auto name = l.name;
          clear();
          KFAC_CHECK(false, "layer '", name, "' ran in the statistics forward but does not influence the output");
        }
        per_tap[k].push_back(grads[k]);
      }
  }
  size_t k = 0;
  for (auto& l : layers_) {
    std::vector<at::Tensor> grad_outputs;
    for (int64_t t = 0; t < l.slot->taps(); ++t) grad_outputs.push_back(at::stack(per_tap[k++]));
    l.slot->set_grad_outputs(std::move(grad_outputs));  // releases the retained outputs and their graph
  }
}

bool StatisticsPass::captured() const {
  if (nonfinite_outputs_) return true;
  for (const auto& l : layers_)
    if (l.slot->taps() > 0) return true;
  return false;
}

StatisticsPass::Capture StatisticsPass::collect(const std::vector<at::ScalarType>& dtypes, int64_t step,
                                                const std::vector<bool>& sample) {
  Capture c;
  if (std::exchange(nonfinite_outputs_, false)) {
    clear();  // the other ranks may still hold captures
    c.nonfinite_outputs = true;
    return c;
  }
  for (const auto& l : layers_) {
    if (l.slot->complete())
      c.any = true;
    else if (l.slot->taps() > 0 || !l.kind->frozen())
      c.missing.push_back(l.name);
  }
  if (!c.any || !c.missing.empty()) return c;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    const auto& taps = l.slot->recorded();
    if (taps.empty()) {  // frozen: no statistics this step
      c.batch.emplace_back();
      continue;
    }
    const auto sharing = l.weight_sharing.value_or(WeightSharing::Expand);
    at::Tensor positions;
    if (sample[i] && taps.size() == 1 && sharing == WeightSharing::Expand) {
      const auto grid = l.kind->grid(taps[0].grad_output);
      positions = positions_to_sample(grid[0] * grid[1], step, i);
    }
    c.batch.push_back(positions.defined()
                          ? l.kind->statistics_at(taps[0], positions.to(taps[0].input.device()), dtypes[i])
                          : l.kind->statistics(taps, sharing, dtypes[i]));
  }
  clear();
  return c;
}

}  // namespace kfac
