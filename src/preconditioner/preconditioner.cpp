#include "kfac/preconditioner/preconditioner.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <utility>

#include "kfac/curvature/registry.h"
#include "kfac/distributed/placement.h"
#include "kfac/errors.h"
#include "kfac/nn/module_registry.h"
#include "linalg/one_thread.h"
#include "preconditioner/fallback.h"
#include "preconditioner/refresh_executor.h"
#include "preconditioner/schedule.h"
#include "preconditioner/statistics_pass.h"
#include "util/text.h"
#include "kfac/global/stage_registry.h"
#include "util/serialize.h"
#include "kfac/linalg/psd.h"

namespace kfac {

Preconditioner::Preconditioner(torch::nn::Module& model, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : Preconditioner(find_layers(model), module_parameters(model), std::move(options), std::move(communicator)) {}

Preconditioner::Preconditioner(std::vector<Layer> layers, const std::vector<ModuleParameters>& modules,
                               PreconditionerOptions options, std::shared_ptr<Communicator> communicator)
    : Preconditioner(std::move(layers), std::move(options), std::move(communicator)) {
  registration_.fallback = fallback_parameters(modules, layers_, &registration_.frozen);
  std::vector<at::Tensor> params;
  params.reserve(registration_.fallback.size());
  for (const auto& f : registration_.fallback) params.push_back(f.parameter);
  fallback_ = std::make_unique<Fallback>(std::move(params), options_.fallback_options());
}

namespace {
// The layers whose names do not match `pattern` (the option exclude); the others' names go to `excluded`.
std::vector<Layer> without_excluded(std::vector<Layer> layers, const std::string& pattern,
                                    std::vector<std::string>& excluded) {
  if (pattern.empty()) return layers;
  const std::regex re(pattern);
  std::vector<Layer> kept;
  for (auto& l : layers) {
    if (std::regex_search(l.name, re))
      excluded.push_back(l.name);
    else
      kept.push_back(std::move(l));
  }
  return kept;
}

// λ enters the factors as λ·π and λ/π and the spectrum as products with eigenvalues: beyond the square root of the
// factor dtype's largest value they overflow to infinity (1e80 in float32, 1e300 in float64).
void check_damping_fits(double damping, at::ScalarType dtype) {
  const double largest = dtype == at::kDouble     ? std::numeric_limits<double>::max()
                         : dtype == at::kHalf     ? 65504.0
                         : dtype == at::kBFloat16 ? 3.38e38
                                                  : static_cast<double>(std::numeric_limits<float>::max());
  const double bound = std::sqrt(largest);
  KFAC_CHECK(damping <= bound, "damping ", damping, " does not fit ", c10::toString(dtype),
             " factors: it must be at "
             "most ",
             bound,
             " (the square root of the dtype's largest value) so that damped factors stay finite; "
             "lower it, or use factor_dtype float64");
}
}  // namespace

Preconditioner::Preconditioner(std::vector<Layer> layers, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : layers_((validate(options), without_excluded(std::move(layers), options.exclude(), excluded_))),
      options_(std::move(options)),
      schedule_(std::make_unique<Schedule>(options_.schedule_options())),
      statistics_(std::make_unique<StatisticsPass>(layers_, options_.fisher_options())),
      failures_(std::make_unique<FailurePolicy>(layers_.size(), options_.max_consecutive_failures())),
      damping_(options_.damping()) {
  registration_.excluded = excluded_;
  KFAC_CHECK(!layers_.empty(), excluded_.empty()
                                   ? "no K-FAC layers to precondition; build the model from kfac::nn::Linear / "
                                     "kfac::nn::Conv2d or pass kfac::Layer values explicitly"
                                   : "no K-FAC layers to precondition: the option exclude ('" + options_.exclude() +
                                         "') matches every layer (" + join_quoted(excluded_) + ")");
  std::set<std::string> names;
  std::map<const void*, std::string> params;  // parameter → its layer
  for (auto& layer : layers_) {
    KFAC_CHECK(layer.kind && layer.slot, "layer '", layer.name, "' has no layer kind or capture slot");
    KFAC_CHECK(names.insert(layer.name).second, "layer name '", layer.name, "' is registered twice");
    for (const auto& p : layer.kind->parameters()) {
      const auto [it, fresh] = params.emplace(parameter_storage(p), layer.name);
      KFAC_CHECK(fresh, "layers '", it->second, "' and '", layer.name,
                 "' share a parameter (tied weights): one block would see only its own uses. Untie the weights, "
                 "or register one module that is called twice");
    }
    if (!layer.weight_sharing) layer.weight_sharing = options_.weight_sharing();
    layer.slot->set_name(layer.name);
    layer.slot->set_kind(layer.kind);
    const auto& w = layer.kind->weight();
    // Factors of bf16/fp16 parameters accumulate and decompose in float32: half precision loses the eigenvectors
    // of the small eigenvalues (and LibTorch has no bf16 trace or eigh). Directions are cast back to the parameter.
    const bool reduced = w.scalar_type() == at::kBFloat16 || w.scalar_type() == at::kHalf;
    const auto dtype = options_.factor_dtype().value_or(reduced ? at::kFloat : w.scalar_type());
    check_damping_fits(damping_, dtype);
    CurvatureContext context{layer.name,
                             {layer.kind->dim_a(), layer.kind->dim_g()},
                             options_.damping_mode(),
                             options_.numerics_options(),
                             options_.own_blocks().subset(method_option_tables(options_.method())),
                             w.options().dtype(dtype),
                             options_.layer_options(),
                             options_.method(),
                             *layer.weight_sharing,
                             statistics_product_dtype(options_.statistics_precision(), w.is_cuda())};
    auto own = make_kind_curvature(layer.kind->own_block(), context);
    curvatures_.push_back(own ? std::move(own) : make_curvature(options_.method(), std::move(context)));
    const auto& curvature = *curvatures_.back();
    const auto form = curvature.form();
    registration_.blocks.push_back({layer.name, layer.kind->kind_name(),
                                    form.empty() ? to_string(*layer.weight_sharing) : form, curvature.structure(),
                                    curvature.memory_bytes(), curvature.diagonal_by_size()});
  }
  global_ = make_global_stage(options_.global_stage(),
                              {options_.own_blocks(), options_.method(), options_.damping_mode()});
  for (const auto& layer : layers_)  // both form Fisher-vector products from the Kronecker statistics
    KFAC_CHECK(!(global_ || options_.retain_statistics()) || layer.kind->kronecker(),
               global_ ? "the global stage (" + global_->name() + ")" : "retain_statistics",
               " needs Kronecker blocks (Linear, Conv2d, ...), but layer '", layer.name, "' is a ",
               layer.kind->kind_name(), " block; use global_stage none, or leave that module out of K-FAC");
  std::vector<BlockShape> shapes;
  for (const auto& c : curvatures_) shapes.push_back(c->shape());
  placement_ = std::make_unique<Placement>(std::move(communicator), shapes, options_.grad_worker_fraction());
  KFAC_CHECK(!placement_->distributed() || !global_ || placement_->everyone_works(), "the global stage (",
             global_->name(),
             ") applies the one-level solve to arbitrary vectors on every "
             "rank: it needs grad_worker_fraction 1, got ",
             options_.grad_worker_fraction());
  if (placement_->distributed() || options_.background_refresh())  // both move state by running_statistics()
    for (const auto& c : curvatures_)
      KFAC_CHECK(!c->running_statistics().empty(), "method '", c->method(),
                 "' does not declare its running "
                 "statistics (Curvature::running_statistics), so it cannot be used in a distributed run or with "
                 "background_refresh");
  executor_ = make_refresh_executor(options_, *placement_);
  registration_.fallback_kind = to_string(options_.fallback());
}

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
