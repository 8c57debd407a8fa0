// The preconditioner: owns the registered layers and their curvatures, runs the schedules, and rewrites each
// layer's .grad() into its natural-gradient direction, so that any torch::optim optimizer (or kfac::KfacOptimizer)
// can follow it.
//
//   kfac::Preconditioner precond(*model, kfac::PreconditionerOptions().damping(1e-3));
//   for (...) {
//     precond.update_statistics([&](const at::Tensor& x) { return model->forward(x); }, x,
//                               kfac::LossKind::SoftmaxCrossEntropy);          // no-op off statistics steps
//     opt.zero_grad();
//     kfac::loss(model->forward(x), y, kfac::LossKind::SoftmaxCrossEntropy).backward();
//     kfac::StepStats s = precond.step();  // s.skipped: non-finite gradients, do not apply the update
//     if (!s.skipped) opt.step();
//   }
//
// It is assembled from parts, each checkpointing its own state: the Schedule (which steps update statistics and
// refresh), the StatisticsPass (the capture protocols and the targets' generator), the curvature of each layer
// (kfac/curvature/), a RefreshExecutor (inline, background or owner rank) with its FailurePolicy, the Placement of
// work among ranks and the optional GlobalStage. step() is the script that runs them; the parts that are not API
// are private headers in src/preconditioner/.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/distributed/communicator.h"
#include "kfac/fisher/fisher_products.h"
#include "kfac/fisher/likelihood.h"
#include "kfac/global/global_stage.h"
#include "kfac/layers/layer.h"
#include "kfac/preconditioner/options.h"
#include "kfac/preconditioner/registration.h"
#include "kfac/util/archive_fwd.h"

namespace torch::nn {
class Module;
}
namespace kfac {

class GlobalStage;
class Placement;
// The parts behind the preconditioner (private headers in src/preconditioner/).
class Schedule;
class StatisticsPass;
class RefreshExecutor;
class FailurePolicy;
class Fallback;

/// What one step did. Returned by Preconditioner::step and KfacOptimizer::step.
struct StepStats {
  int64_t step = 0;                   ///< index of this step (0-based)
  double damping = 0;                 ///< λ used
  bool statistics_updated = false;    ///< factors were updated
  bool statistics_skipped = false;    ///< captured statistics were non-finite and were dropped
  bool refreshed = false;             ///< decompositions were recomputed (for at least one layer)
  bool skipped = false;               ///< non-finite gradients: nothing was preconditioned, do not apply the step
  int64_t refresh_failures = 0;       ///< layers whose refresh failed this step (previous decomposition kept)
  int64_t fallback_layers = 0;        ///< layers preconditioned as gradient / λ (no decomposition yet)
  int64_t frozen_layers = 0;          ///< layers frozen after construction, skipped (LayerKind::frozen)
  double grad_dot_direction = 0;      ///< Σ_l ⟨v_l, g_l⟩ of preconditioned and raw gradients (before any clipping)
  double clip_factor = 1;             ///< scale applied by the step rule (KL clipping), 1 if none
  std::vector<std::string> messages;  ///< human-readable reports of anything unusual
  // Wall time of step()'s phases, seconds: factor update (incl. distributed averaging), refresh, per-layer
  // preconditioning, global stage.
  double seconds_statistics = 0, seconds_refresh = 0, seconds_precondition = 0, seconds_global = 0;
};

class Preconditioner : public StageView {
 public:
  /// `communicator`: the ranks of a data-parallel run (kfac/distributed/placement.h); nullptr = one process. Every
  /// rank then calls the same methods in the same order on its own shard of each batch, with gradients already
  /// averaged (kfac::all_reduce_gradients; KfacOptimizer does it).
  Preconditioner(std::vector<Layer> layers, PreconditionerOptions options = {},
                 std::shared_ptr<Communicator> communicator = nullptr);
  /// Registers every module of `model` that a registered layer kind covers (kfac/nn/module_registry.h), named as
  /// in model.named_modules(); every other parameter gets the fallback (options().fallback()). registration() says
  /// which got what. Refuses tied weights between a layer and another module, naming both.
  explicit Preconditioner(torch::nn::Module& model, PreconditionerOptions options = {},
                          std::shared_ptr<Communicator> communicator = nullptr);
  /// The same from a model seen as its layers and its modules' parameters (what the Python bindings build from a
  /// torch.nn.Module): every parameter of `modules` that no layer holds gets the fallback.
  Preconditioner(std::vector<Layer> layers, const std::vector<ModuleParameters>& modules,
                 PreconditionerOptions options = {}, std::shared_ptr<Communicator> communicator = nullptr);
  ~Preconditioner();
  Preconditioner(const Preconditioner&) = delete;
  Preconditioner& operator=(const Preconditioner&) = delete;

  /// Whether the next step() updates statistics.
  bool is_statistics_step() const;

  /// The statistics pass (true or empirical Fisher per options().fisher()): runs `forward` on the first
  /// ceil(stats_fraction·B) examples of `inputs` with capture on, and back-propagates model-sampled targets
  /// (or `targets`) to every layer output. Does nothing and returns false off statistics steps.
  bool update_statistics(const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs,
                         LossKind loss, const at::Tensor& targets = {});

  /// Alternative to update_statistics that shares the training forward (one forward less per statistics step;
  /// needs stats_fraction 1): call capture_forward() before the training forward, run the forward and the loss's
  /// backward with retain_graph=true, then statistics_from_forward(output, loss, targets). Same statistics, same
  /// sampled targets. capture_forward returns false (and arms nothing) off statistics steps.
  bool capture_forward();
  void statistics_from_forward(const at::Tensor& output, LossKind loss, const at::Tensor& targets = {});

  /// Alternative to update_statistics: capture from the user's own training forward/backward (empirical Fisher,
  /// no extra pass). Call before that forward on statistics steps; `grad_scale` turns the loss gradient into
  /// per-example gradients (the batch size for a mean-reduced loss; kfac::loss_terms(targets, kind) for kfac::loss).
  /// Returns false off statistics steps.
  bool capture_backward(double grad_scale);
  /// Changes an armed capture_backward's grad_scale between the training forward and its backward, for a scale
  /// known only from the model's output (kfac::loss_terms of a loss per position).
  void set_capture_scale(double grad_scale);

  /// Updates statistics (if captured), refreshes on schedule, and replaces each layer's .grad() by its
  /// preconditioned direction. Leaves gradients untouched and reports `skipped` if any is non-finite. A layer frozen
  /// after construction (no parameter requires grad) is skipped, its .grad left undefined, until it is unfrozen; each
  /// change is reported once in `messages`.
  StepStats step();

  /// The registered layers' current gradients as [d_G, d_A] matrices.
  std::vector<at::Tensor> gradient_matrices() const;
  /// Preconditions [d_G, d_A] matrices (one per layer) with the current decompositions, damping and global stage
  /// (two-level correction), without touching any state or gradient.
  std::vector<at::Tensor> precondition(const std::vector<at::Tensor>& matrices) const;
  /// The one-level part only: each layer's M_i⁻¹ (no global stage).
  std::vector<at::Tensor> precondition_layers(const std::vector<at::Tensor>& matrices) const override;
  /// Exact Fisher–vector products on the last statistics batch; empty unless options().retain_statistics() or a
  /// two-level space is set.
  const CapturedFisher& captured_fisher() const override { return captured_; }
  /// Distributed runs average the Kronecker factors lazily: they are read only by refreshes, so each rank keeps its
  /// local running factors between refreshes and they are averaged just before one (the EMA is linear, so this is
  /// exact). Collective: call on every rank before rank 0 saves a checkpoint. A no-op with one process.
  void synchronize_statistics();
  /// The ranks this preconditioner shares its work with (a SingleProcess when not distributed).
  Communicator& communicator() const override;
  const Placement& placement() const { return *placement_; }
  /// The global stage after the per-layer preconditioning (nullptr when one-level).
  const GlobalStage* global_stage() const { return global_.get(); }
  /// Refreshes every layer now, synchronously (e.g. after set_damping with the factored damping form), under the
  /// failure policy; pending background results are dropped.
  StepStats refresh_all();

  /// Multiplies every registered layer's gradient by `factor` (used by step rules such as KL clipping).
  void scale_gradients(double factor) const;

  double damping() const override { return damping_; }
  void set_damping(double damping);
  int64_t steps() const override;
  const PreconditionerOptions& options() const { return options_; }
  const std::vector<Layer>& layers() const { return layers_; }
  const Curvature& curvature(size_t layer) const override { return *curvatures_.at(layer); }
  Curvature& curvature(size_t layer) { return *curvatures_.at(layer); }
  /// Parameters of all registered layers.
  std::vector<at::Tensor> parameters() const;
  /// What was registered, and the fallback parameters (those of the model that no layer holds; none when the
  /// preconditioner was built from a list of layers).
  const Registration& registration() const { return registration_; }
  int64_t memory_bytes() const;

  void save(torch::serialize::OutputArchive& archive) const;
  /// Strict: every layer must be present with the same shapes, or it throws naming the layer. Options that differ
  /// from the ones the checkpoint was saved with are allowed (a resumed run may change the damping, say); each is
  /// reported by a warning (TORCH_WARN) and in option_changes().
  void load(torch::serialize::InputArchive& archive);
  /// What the last load() found changed: "refresh_period: 10 (saved) -> 20 (now)", one line per option.
  const std::vector<std::string>& option_changes() const { return option_changes_; }

 private:
  /// Folds this step's captures into the running statistics (every rank agrees to skip non-finite ones).
  void update_factors(StepStats& stats);
  /// Running statistics of every layer and the global stage: the symmetric factors (averaged lazily in distributed
  /// runs) when `factors`, the others (averaged at once) otherwise.
  std::vector<std::pair<at::Tensor*, bool>> running_statistics(bool factors);
  /// Refreshes the layers that are due (scheduled, or with statistics but no decomposition) through the executor,
  /// and books the outcomes under the failure policy.
  void refresh(StepStats& stats, bool scheduled, bool synchronous = false);
  /// Notes the layers frozen or unfrozen since the last step in `stats` (each change once) and counts them.
  void report_frozen(StepStats& stats);
  /// `stats` of a step whose gradients are not finite: skipped, this step's captures dropped, nothing changed.
  StepStats skip_nonfinite_gradients(StepStats stats);
  std::vector<std::string> layer_names() const;
  void load_background_refresh(torch::serialize::InputArchive& archive);

  std::vector<std::string> excluded_;  // layers left out by the option exclude (before layers_: it is filled first)
  std::vector<Layer> layers_;
  PreconditionerOptions options_;
  std::vector<std::unique_ptr<Curvature>> curvatures_;
  std::unique_ptr<GlobalStage> global_;
  std::unique_ptr<Placement> placement_;
  std::unique_ptr<Schedule> schedule_;
  std::unique_ptr<StatisticsPass> statistics_;
  std::unique_ptr<RefreshExecutor> executor_;
  std::unique_ptr<FailurePolicy> failures_;
  bool factors_pending_ = false;  // distributed: local factor updates not yet averaged over ranks
  CapturedFisher captured_;
  Registration registration_;
  std::unique_ptr<Fallback> fallback_;
  std::vector<std::string> option_changes_;
  std::vector<bool> frozen_;  // per layer, as of the last step (report_frozen)
  double damping_;
};

/// Serialization in the torch idiom: torch::save(precond, path) / torch::load(precond, path).
torch::serialize::OutputArchive& operator<<(torch::serialize::OutputArchive& archive, const Preconditioner& p);
torch::serialize::InputArchive& operator>>(torch::serialize::InputArchive& archive, Preconditioner& p);

}  // namespace kfac
