#include "kfac/preconditioner/preconditioner.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "kfac/preconditioner/background_refresh.h"
#include "kfac/curvature/registry.h"
#include "kfac/distributed/placement.h"
#include "kfac/errors.h"
#include "kfac/global/global_stage.h"
#include "kfac/util/serialize.h"
#include "kfac/linalg/psd.h"

namespace kfac {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}
}  // namespace

Preconditioner::Preconditioner(torch::nn::Module& model, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : Preconditioner(find_layers(model), std::move(options), std::move(communicator)) {}

namespace {
// λ enters the factors as λ·π and λ/π and the spectrum as products with eigenvalues: beyond the square root of the
// factor dtype's largest value they overflow to infinity (1e80 in float32, 1e300 in float64).
void check_damping_fits(double damping, at::ScalarType dtype) {
  const double largest = dtype == at::kDouble ? std::numeric_limits<double>::max()
                         : dtype == at::kHalf ? 65504.0
                         : dtype == at::kBFloat16 ? 3.38e38
                                                : static_cast<double>(std::numeric_limits<float>::max());
  const double bound = std::sqrt(largest);
  KFAC_CHECK(damping <= bound, "damping ", damping, " does not fit ", c10::toString(dtype), " factors: it must be at "
             "most ", bound, " (the square root of the dtype's largest value) so that damped factors stay finite; "
             "lower it, or use factor_dtype float64");
}
}  // namespace

Preconditioner::Preconditioner(std::vector<Layer> layers, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : layers_(std::move(layers)), options_(std::move(options)), damping_(options_.damping()) {
  validate(options_);
  KFAC_CHECK(!layers_.empty(), "no K-FAC layers to precondition; build the model from kfac::nn::Linear / "
             "kfac::nn::Conv2d or pass kfac::Layer values explicitly");
  std::set<std::string> names;
  std::set<const void*> params;
  for (auto& layer : layers_) {
    KFAC_CHECK(layer.kind && layer.slot, "layer '", layer.name, "' has no layer kind or capture slot");
    KFAC_CHECK(names.insert(layer.name).second, "layer name '", layer.name, "' is registered twice");
    for (const auto& p : layer.kind->parameters())
      KFAC_CHECK(params.insert(p.unsafeGetTensorImpl()).second, "a parameter of layer '", layer.name,
                 "' is already registered by another layer");
    layer.slot->set_name(layer.name);
    const auto& w = layer.kind->weight();
    const auto dtype = options_.factor_dtype().value_or(w.scalar_type());
    check_damping_fits(damping_, dtype);
    CurvatureContext context{layer.name,
                             {layer.kind->dim_a(), layer.kind->dim_g()},
                             options_.damping_options(),
                             options_.numerics_options(),
                             options_.method_blocks().subset(method_option_tables(options_.method())),
                             w.options().dtype(dtype)};
    curvatures_.push_back(make_curvature(options_.method(), std::move(context)));
  }
  consecutive_failures_.assign(layers_.size(), 0);
  decomposed_.assign(layers_.size(), false);
  global_ = make_global_stage(options_);
  std::vector<BlockShape> shapes;
  for (const auto& c : curvatures_) shapes.push_back(c->shape());
  placement_ = std::make_unique<Placement>(std::move(communicator), shapes, options_.grad_worker_fraction());
  if (placement_->distributed()) {
    KFAC_CHECK(!options_.background_refresh(), "background_refresh is not supported in distributed runs (each "
               "layer's owner rank refreshes it and broadcasts the result at once); turn it off");
    KFAC_CHECK(!global_ || placement_->everyone_works(), "the global stage (", options_.global_options().describe(),
               ") applies the one-level solve to arbitrary vectors on every rank: it needs grad_worker_fraction 1, "
               "got ", options_.grad_worker_fraction());
  }
  if (placement_->distributed() || options_.background_refresh())  // both move state by running_statistics()
    for (const auto& c : curvatures_)
      KFAC_CHECK(!c->running_statistics().empty(), "method '", c->method(), "' does not declare its running "
                 "statistics (Curvature::running_statistics), so it cannot be used in a distributed run or with "
                 "background_refresh");
  if (options_.background_refresh()) background_ = std::make_unique<BackgroundRefresh>();
}

Communicator& Preconditioner::communicator() const { return placement_->communicator(); }

Preconditioner::~Preconditioner() { clear_slots(); }

bool Preconditioner::is_statistics_step() const { return step_ % options_.stats_period() == 0; }

void Preconditioner::set_damping(double damping) {
  KFAC_CHECK(std::isfinite(damping) && damping > 0, "damping must be finite and > 0, got ", damping);
  for (const auto& c : curvatures_) check_damping_fits(damping, c->dtype());
  damping_ = damping;
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

void Preconditioner::clear_slots() {
  for (auto& l : layers_) {
    l.slot->disarm();
    l.slot->clear();
  }
}

bool Preconditioner::capture_backward(double grad_scale) {
  KFAC_CHECK(std::isfinite(grad_scale) && grad_scale > 0, "grad_scale must be finite and > 0, got ", grad_scale);
  if (!is_statistics_step()) return false;
  for (auto& l : layers_) l.slot->arm(Slot::Mode::HookGradient, grad_scale);
  return true;
}

at::Generator Preconditioner::step_generator() const {
  const auto device = layers_.front().kind->weight().device();
  // Cloned once per device and reseeded every step: LibTorch 1.13 leaks each clone (about 2.6 KB per step).
  if (!sampling_generator_.defined() || sampling_generator_.device() != device)
    sampling_generator_ = at::globalContext().defaultGenerator(device).clone();
  auto& gen = sampling_generator_;
  // SplitMix-style mix of (seed, step): reproducible per step, so a resumed run samples the same targets.
  uint64_t z = options_.seed() + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(step_ + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  gen.set_current_seed(z ^ (z >> 31));
  return gen;
}

void Preconditioner::update_factors(StepStats& stats) {
  if (std::exchange(nonfinite_outputs_, false)) {
    // Every rank agrees to skip (the others still hold captures, released here).
    clear_slots();
    placement_->all_agree(false);
    stats.statistics_skipped = true;
    stats.messages.push_back("step " + std::to_string(step_) +
                             ": non-finite model outputs in the statistics pass (NaN or infinite inputs, or weights "
                             "that overflowed); no targets sampled, statistics not updated");
    return;
  }
  std::vector<std::string> missing;
  size_t captured = 0;
  for (const auto& l : layers_) {
    if (l.slot->taps() > 0 && l.slot->grad_output().defined())
      ++captured;
    else
      missing.push_back(l.name);
  }
  if (captured == 0 && !is_statistics_step()) return;
  KFAC_CHECK(missing.empty(), "step ", step_, " updates statistics but layer(s) ", join_names(missing),
             captured == 0 ? " captured nothing; call update_statistics(...) or capture_backward(...) and run the "
                             "forward (and backward) before step() on statistics steps (see is_statistics_step())"
                           : " did not run in the statistics pass; every registered layer must be used by the "
                             "forward, or must not be registered");

  std::vector<LayerStatistics> batch;
  std::vector<at::Tensor> finite;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& kind = *layers_[i].kind;
    const auto dtype = curvatures_[i]->dtype();
    const auto& grad_output = layers_[i].slot->grad_output();  // [S, B, C] or [S, B, C, H, W]
    LayerStatistics s{kind.expand_input(layers_[i].slot->input()).to(dtype),
                      kind.expand_output_grad(grad_output).to(dtype)};
    if (grad_output.dim() == 5) s.grid = {grad_output.size(3), grad_output.size(4)};
    finite.push_back(s.a.sum());  // a NaN or an infinity makes the sum non-finite; one read, no mask
    finite.push_back(s.g.sum());
    batch.push_back(std::move(s));
  }
  clear_slots();
  if (!placement_->all_agree(at::isfinite(at::stack(finite)).all().item<bool>())) {
    stats.statistics_skipped = true;
    stats.messages.push_back("step " + std::to_string(step_) +
                             ": non-finite activations or output gradients in the statistics pass; statistics "
                             "not updated");
    return;
  }
  ++statistics_updates_;
  const double decay = std::min(1.0 - 1.0 / static_cast<double>(statistics_updates_), options_.ema_decay());
  for (size_t i = 0; i < layers_.size(); ++i) curvatures_[i]->update(batch[i], decay);
  if (global_ || options_.retain_statistics())
    captured_ = CapturedFisher(std::move(batch), placement_->distributed() ? placement_->shared_communicator() : nullptr);
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
  if (background_ && (scheduled || synchronous)) {  // adopt what the worker computed since the last schedule
    for (auto& r : background_->take()) {
      if (synchronous) continue;  // about to be recomputed from fresher statistics
      if (r.copy) curvatures_[r.layer]->adopt_refresh_from(*r.copy);
      record_refresh(stats, r.layer, r.copy != nullptr, r.error);
    }
  }
  std::vector<size_t> due, later;  // identical on every rank: counters and decomposed_ are
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!curvatures_[i]->has_statistics() || !(scheduled || !decomposed_[i])) continue;
    (background_ && !synchronous && decomposed_[i] ? later : due).push_back(i);
  }
  if (!later.empty()) {
    std::vector<BackgroundRefresh::Result> copies;
    for (size_t i : later) {
      BackgroundRefresh::Result r;
      r.layer = i;
      r.copy = make_curvature(options_.method(), curvatures_[i]->context());
      r.copy->copy_state_from(*curvatures_[i]);
      copies.push_back(std::move(r));
    }
    background_->launch(std::move(copies), damping_);
  }
  if (due.empty()) return;
  synchronize_statistics();
  std::vector<Curvature*> curvatures;
  for (auto& c : curvatures_) curvatures.push_back(c.get());
  std::map<size_t, std::string> errors;  // on the owner rank
  const auto ok = placement_->refresh(
      due,
      [&](size_t i) {
        try {
          curvatures_[i]->refresh(damping_);
          return true;
        } catch (const NumericalError& e) {
          errors[i] = e.what();
          return false;
        }
      },
      curvatures);
  for (size_t k = 0; k < due.size(); ++k) {
    const size_t i = due[k];
    const auto error = errors.count(i) ? errors[i]
                                       : "refresh of layer '" + layers_[i].name + "' failed on its owner rank " +
                                             std::to_string(placement_->owner(i));
    record_refresh(stats, i, ok[k], error);
  }
}

void Preconditioner::record_refresh(StepStats& stats, size_t i, bool ok, const std::string& error) {
  if (ok) {
    consecutive_failures_[i] = 0;
    decomposed_[i] = true;
    stats.refreshed = true;
    return;
  }
  ++stats.refresh_failures;
  const auto n = ++consecutive_failures_[i];
  stats.messages.push_back(error + (decomposed_[i] ? " (keeping the previous decomposition)"
                                                   : " (no decomposition yet: using gradient/λ)"));
  KFAC_CHECK(n < options_.max_consecutive_failures(), "layer '", layers_[i].name, "': ", n,
             " consecutive refresh failures (max_consecutive_failures=", options_.max_consecutive_failures(),
             "). Last error: ", stats.messages.back(), ". Try a larger damping, a smaller learning rate, "
             "factor_dtype float64, or check the data for NaN/Inf");
}

StepStats Preconditioner::step() {
  StepStats stats;
  stats.step = step_;
  stats.damping = damping_;

  std::vector<at::Tensor> grads;
  std::vector<at::Tensor> finite;
  for (const auto& l : layers_) {
    auto v = l.kind->grad_matrix();
    KFAC_CHECK(v.defined(), "layer '", l.name, "' has no gradient; call backward() on the loss before step()");
    finite.push_back(v.sum());
    grads.push_back(std::move(v));
  }
  if (!at::isfinite(at::stack(finite)).all().item<bool>()) {
    clear_slots();
    stats.skipped = true;
    stats.messages.push_back("step " + std::to_string(step_) +
                             ": non-finite gradient; step skipped, curvature state unchanged");
    return stats;
  }

  // Wall time of each phase (CPU clock; on an accelerator the phases overlap with queued work).
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto t = Clock::now();
  update_factors(stats);
  stats.seconds_statistics = since(t), t = Clock::now();
  refresh(stats, step_ % options_.refresh_period() == 0);
  stats.seconds_refresh = since(t), t = Clock::now();

  for (size_t i = 0; i < layers_.size(); ++i)
    if (!decomposed_[i]) ++stats.fallback_layers;
  auto directions = precondition_layers(grads);
  stats.seconds_precondition = since(t), t = Clock::now();
  if (global_) {
    global_->prepare(grads, directions, *this, stats);
    directions = global_->apply(grads, std::move(directions), *this);
    stats.seconds_global = since(t);
  }
  std::vector<at::Tensor> dots, sums;
  for (size_t i = 0; i < layers_.size(); ++i) {
    dots.push_back((directions[i] * grads[i]).sum().to(at::kDouble));
    sums.push_back(directions[i].sum().to(at::kDouble));
  }
  ++step_;  // the statistics and refresh of this step are kept either way
  // A direction that overflowed (a damping too small for the factors, say) never reaches the gradients.
  if (!placement_->all_agree(at::isfinite(at::stack(sums)).all().item<bool>())) {
    stats.skipped = true;
    stats.messages.push_back("step " + std::to_string(step_ - 1) +
                             ": non-finite preconditioned direction; step skipped, gradients and weights unchanged "
                             "(raise the damping or use factor_dtype float64)");
    return stats;
  }
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i].kind->set_grad_matrix(directions[i]);
  stats.grad_dot_direction = at::stack(dots).sum().item<double>();
  return stats;
}

std::vector<at::Tensor> Preconditioner::gradient_matrices() const {
  std::vector<at::Tensor> out;
  for (const auto& l : layers_) {
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
  KFAC_CHECK(matrices.size() == layers_.size(), "precondition: ", matrices.size(), " matrices for ",
             layers_.size(), " layers");
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& c = *curvatures_[i];
    out.push_back(placement_->is_worker(i)
                      ? c.precondition(matrices[i].to(c.dtype()), damping_).to(matrices[i].scalar_type())
                      : at::zeros_like(matrices[i]));
  }
  placement_->share_directions(out);
  return out;
}

StepStats Preconditioner::refresh_all() {
  StepStats stats;
  stats.step = step_;
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
