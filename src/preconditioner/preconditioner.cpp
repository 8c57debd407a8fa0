#include "kfac/preconditioner/preconditioner.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "kfac/distributed/placement.h"
#include "kfac/errors.h"
#include "linalg/one_thread.h"
#include "preconditioner/fallback.h"
#include "preconditioner/refresh_executor.h"
#include "preconditioner/schedule.h"
#include "preconditioner/statistics_pass.h"
#include "util/text.h"
#include "util/serialize.h"
#include "kfac/linalg/psd.h"

namespace kfac {

Communicator& Preconditioner::communicator() const { return placement_->communicator(); }

Preconditioner::~Preconditioner() { statistics_->clear(); }

int64_t Preconditioner::steps() const { return schedule_->step(); }

bool Preconditioner::is_statistics_step() const { return schedule_->is_statistics_step(); }

bool Preconditioner::update_statistics(const std::function<at::Tensor(const at::Tensor&)>& forward,
                                       const at::Tensor& inputs, LossKind loss, const at::Tensor& targets) {
  if (!is_statistics_step()) return false;
  statistics_->run(forward, inputs, loss, targets, schedule_->step());
  return true;
}

bool Preconditioner::capture_forward() {
  if (!is_statistics_step()) return false;
  statistics_->arm_forward();
  return true;
}

void Preconditioner::statistics_from_forward(const at::Tensor& output, LossKind loss, const at::Tensor& targets) {
  if (is_statistics_step()) statistics_->from_forward(output, loss, targets, schedule_->step());
}

bool Preconditioner::capture_backward(double grad_scale) {
  KFAC_CHECK(std::isfinite(grad_scale) && grad_scale > 0, "grad_scale must be finite and > 0, got ", grad_scale);
  if (!is_statistics_step()) return false;
  statistics_->arm_backward(grad_scale);
  return true;
}

void Preconditioner::set_capture_scale(double grad_scale) {
  KFAC_CHECK(std::isfinite(grad_scale) && grad_scale > 0, "grad_scale must be finite and > 0, got ", grad_scale);
  statistics_->set_backward_scale(grad_scale);
}

std::vector<at::Tensor> Preconditioner::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& l : layers_)
    for (auto& p : l.kind->parameters()) out.push_back(p);
  return out;
}

int64_t Preconditioner::memory_bytes() const {
  int64_t bytes = 0;
  for (const auto& c : curvatures_) bytes += c->memory_bytes();
  return bytes;
}

void Preconditioner::update_factors(StepStats& stats) {
  std::vector<at::ScalarType> dtypes;
  std::vector<bool> sample;  // positions sampled (stats_positions) where the curvature's statistics are means over
  // them and no global stage or Fisher-vector product needs every position
  const bool every_position_needed = global_ || options_.retain_statistics();
  for (const auto& c : curvatures_) {
    dtypes.push_back(c->dtype());
    sample.push_back(c->takes_sampled_positions() && !every_position_needed);
  }
  auto capture = statistics_->collect(dtypes, schedule_->step(), sample);
  const auto step = std::to_string(schedule_->step());
  if (capture.nonfinite_outputs) {
    placement_->all_agree(false);  // every rank agrees to skip
    stats.statistics_skipped = true;
    stats.messages.push_back("step " + step +
                             ": non-finite model outputs in the statistics pass (NaN or infinite "
                             "inputs, or weights that overflowed); no targets sampled, statistics not updated");
    return;
  }
  if (!capture.any && !is_statistics_step()) return;
  KFAC_CHECK(capture.missing.empty(), "step ", step, " updates statistics but layer(s) ", join_quoted(capture.missing),
             !capture.any ? " captured nothing; call update_statistics(...) or capture_backward(...) and run the "
                            "forward (and backward) before step() on statistics steps (see is_statistics_step())"
                          : " did not run in the statistics pass; every registered layer must be used by the "
                            "forward, or must not be registered");
  if (!capture.any) return;  // every layer is frozen
  std::vector<at::Tensor> finite;
  for (const auto& s : capture.batch) {
    if (!s.a.defined()) continue;  // frozen
    finite.push_back(s.a.sum());   // a NaN or an infinity makes the sum non-finite; one read, no mask
    finite.push_back(s.g.sum());
  }
  if (!placement_->all_agree(at::isfinite(at::stack(finite)).all().item<bool>())) {
    stats.statistics_skipped = true;
    stats.messages.push_back("step " + step +
                             ": non-finite activations or output gradients in the statistics "
                             "pass; statistics not updated");
    return;
  }
  const double decay = schedule_->next_decay();
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!capture.batch[i].a.defined()) continue;
    curvatures_[i]->set_refresh_follows(schedule_->is_refresh_step());
    curvatures_[i]->update(capture.batch[i], decay);
  }
  if (global_ || options_.retain_statistics())
    captured_ = CapturedFisher(std::move(capture.batch),
                               placement_->distributed() ? placement_->shared_communicator() : nullptr);
  if (global_) global_->update(captured_, decay);
  if (placement_->distributed()) {  // statistics read every step are averaged now, the factors before a refresh
    placement_->average(running_statistics(/*factors=*/false));
    factors_pending_ = true;
  }
  stats.statistics_updated = true;
}

std::vector<std::pair<at::Tensor*, bool>> Preconditioner::running_statistics(bool factors) {
  std::vector<std::pair<at::Tensor*, bool>> out;
  for (auto& c : curvatures_)
    for (const auto& r : c->running_statistics())
      if (r.second == factors) out.push_back(r);
  if (global_ && !factors)
    for (auto* t : global_->running_statistics()) out.emplace_back(t, false);
  return out;
}

void Preconditioner::synchronize_statistics() {
  if (!placement_->distributed() || !factors_pending_) return;
  placement_->average(running_statistics(/*factors=*/true));
  factors_pending_ = false;
}

void Preconditioner::refresh(StepStats& stats, bool scheduled, bool synchronous) {
  RefreshRequest request;
  const auto& decomposed = failures_->decomposed();
  for (size_t i = 0; i < layers_.size(); ++i)  // identical on every rank: counters and decomposed are
    if (curvatures_[i]->has_statistics() && (scheduled || !decomposed[i])) request.due.push_back(i);
  request.scheduled = scheduled;
  request.synchronous = synchronous;
  request.damping = damping_;
  request.curvatures = &curvatures_;
  request.decomposed = &decomposed;
  request.before_compute = [this] { synchronize_statistics(); };
  for (const auto& outcome : executor_->run(request)) {
    const auto message = failures_->record(outcome, layers_[outcome.layer].name);
    if (outcome.ok) {
      stats.refreshed = true;
    } else {
      ++stats.refresh_failures;
      stats.messages.push_back(message);
    }
  }
}

StepStats Preconditioner::skip_nonfinite_gradients(StepStats stats) {
  statistics_->clear();
  stats.skipped = true;
  stats.messages.push_back("step " + std::to_string(schedule_->step()) +
                           ": non-finite gradient; step skipped, curvature state unchanged");
  return stats;
}

void Preconditioner::report_frozen(StepStats& stats) {
  frozen_.resize(layers_.size(), false);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool frozen = layers_[i].kind->frozen();
    if (frozen == frozen_[i]) continue;
    frozen_[i] = frozen;
    stats.messages.push_back("layer '" + layers_[i].name +
                             (frozen ? "' is frozen (no parameter requires grad): it is skipped, neither tapped nor "
                                       "preconditioned, until it is unfrozen"
                                     : "' is unfrozen: preconditioned again (its statistics resume from where they "
                                       "stopped)"));
  }
  const bool any = std::any_of(frozen_.begin(), frozen_.end(), [](bool f) { return f; });
  for (bool f : frozen_) stats.frozen_layers += f ? 1 : 0;
  KFAC_CHECK(!any || !(global_ || options_.retain_statistics()),
             global_ ? "the global stage (" + global_->name() + ")" : std::string("retain_statistics"),
             " couples every layer, so a layer cannot be frozen after the optimizer was built; freeze before "
             "building it (frozen layers are then left out), or use global_stage none");
}

StepStats Preconditioner::step() {
  StepStats stats;
  stats.step = schedule_->step();
  stats.damping = damping_;
  report_frozen(stats);
  const auto grads = gradient_matrices();
  std::vector<at::Tensor> grad_sums;
  for (const auto& g : grads) grad_sums.push_back(g.sum().to(at::kDouble));
  const auto grads_sum = at::stack(grad_sums).sum();  // non-finite iff an entry is: one number to read, no mask
  // Host reads stall an accelerator's queue. A steady step (no statistics, no refresh due, every block decomposed,
  // no global stage) changes no curvature state before its directions are checked, so it reads the gradients'
  // finiteness together with them: one read per step. Any other step checks the gradients first, so that its
  // curvature update can be refused.
  const auto& decomposed = failures_->decomposed();
  const bool steady = !global_ && !schedule_->is_statistics_step() && !schedule_->is_refresh_step() &&
                      !statistics_->captured() &&
                      std::all_of(decomposed.begin(), decomposed.end(), [](bool d) { return d; });
  if (!steady && !std::isfinite(grads_sum.item<double>())) return skip_nonfinite_gradients(std::move(stats));

  // Wall time of each phase (CPU clock; on an accelerator the phases overlap with queued work).
  using Clock = std::chrono::steady_clock;
  auto t = Clock::now();
  auto lap = [&t] {
    const auto now = Clock::now();
    return std::chrono::duration<double>(now - std::exchange(t, now)).count();
  };
  update_factors(stats);
  stats.seconds_statistics = lap();
  refresh(stats, schedule_->is_refresh_step());
  stats.seconds_refresh = lap();
  for (size_t i = 0; i < layers_.size(); ++i) stats.fallback_layers += failures_->decomposed()[i] || frozen_[i] ? 0 : 1;
  auto directions = precondition_layers(grads);
  stats.seconds_precondition = lap();
  if (global_) {
    StageReport report{stats.refreshed, {}};
    global_->prepare(grads, directions, *this, report);
    stats.messages.insert(stats.messages.end(), report.messages.begin(), report.messages.end());
    directions = global_->apply(grads, std::move(directions), *this);
    stats.seconds_global = lap();
  }

  std::vector<at::Tensor> dots, sums;
  for (size_t i = 0; i < layers_.size(); ++i) {
    dots.push_back((directions[i] * grads[i]).sum().to(at::kDouble));
    sums.push_back(directions[i].sum().to(at::kDouble));
  }
  // The step's one read: the gradients' and the directions' finiteness and Σ⟨v, g⟩.
  const auto read = at::stack({grads_sum, at::stack(sums).sum(), at::stack(dots).sum()}).cpu();
  const double* values = read.data_ptr<double>();
  if (!std::isfinite(values[0])) return skip_nonfinite_gradients(std::move(stats));  // steady: nothing changed
  schedule_->advance();  // the statistics and refresh of this step are kept either way
  // A direction that overflowed (a damping too small for the factors, say) never reaches the gradients.
  if (!placement_->all_agree(std::isfinite(values[1]))) {
    stats.skipped = true;
    stats.messages.push_back("step " + std::to_string(stats.step) +
                             ": non-finite preconditioned direction; step skipped, gradients and weights unchanged "
                             "(raise the damping or use factor_dtype float64)");
    return stats;
  }
  for (size_t i = 0; i < layers_.size(); ++i)
    if (!frozen_[i]) layers_[i].kind->set_grad_matrix(directions[i]);  // a frozen layer's .grad stays undefined
  if (fallback_) fallback_->apply();
  stats.grad_dot_direction = values[2];
  return stats;
}

std::vector<at::Tensor> Preconditioner::gradient_matrices() const {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    if (l.kind->frozen()) {  // zeros: a frozen layer moves nowhere
      const auto shape = curvatures_[i]->shape();
      out.push_back(at::zeros({shape.dim_g, shape.dim_a}, l.kind->weight().options()));
      continue;
    }
    auto v = l.kind->grad_matrix();
    KFAC_CHECK(v.defined(), "layer '", l.name, "' has no gradient; call backward() on the loss first");
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<at::Tensor> Preconditioner::precondition(const std::vector<at::Tensor>& matrices) const {
  auto out = precondition_layers(matrices);
  return global_ ? global_->apply(matrices, std::move(out), *this) : out;
}

std::vector<at::Tensor> Preconditioner::precondition_layers(const std::vector<at::Tensor>& matrices) const {
  KFAC_CHECK(matrices.size() == layers_.size(), "precondition: ", matrices.size(), " matrices for ", layers_.size(),
             " layers");
  std::vector<at::Tensor> out(layers_.size());
  // The small blocks first, all on one thread (linalg/one_thread.h), then the others with every thread.
  const auto run = [&](bool small) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      const auto& c = *curvatures_[i];
      const auto [g, a] = std::make_pair(c.shape().dim_g, c.shape().dim_a);
      if ((g * a * (g + a) <= linalg::kOneThreadMaxPreconditionWork) != small) continue;
      out[i] = placement_->is_worker(i) && !layers_[i].kind->frozen()
                   ? c.precondition(matrices[i].to(c.dtype()), damping_).to(matrices[i].scalar_type())
                   : at::zeros_like(matrices[i]);
    }
  };
  {
    const linalg::OneThread one;
    run(true);
  }
  run(false);
  placement_->share_directions(out);
  return out;
}

StepStats Preconditioner::refresh_all() {
  StepStats stats;
  stats.step = schedule_->step();
  stats.damping = damping_;
  refresh(stats, /*scheduled=*/true, /*synchronous=*/true);
  return stats;
}

void Preconditioner::scale_gradients(double factor) const {
  if (factor == 1.0) return;
  for (const auto& l : layers_)
    for (auto& p : l.kind->parameters())
      if (p.grad().defined()) p.mutable_grad().mul_(factor);
}

}  // namespace kfac
