// The frame of the optimizers that update each parameter from its own gradient and state alone: Muon, Shampoo and
// SOAP (kfac/optim/muon.h, shampoo.h, soap.h), the methods a user would pick instead of K-FAC. It is a
// torch::optim::Optimizer, so LibTorch's learning-rate schedulers drive it, and it owns what the three share:
//
//   - the step counter t (1-based in update(); a skipped step does not advance it);
//   - the numerical policy of the K-FAC family (KfacOptimizer): every parameter's new value and state are computed
//     first and committed only if every new value is finite; a non-finite gradient or update skips the whole step,
//     leaves weights and state unchanged and says why in last_stats();
//   - the checkpoint: the step, each parameter's named state tensors and its shape, checked on load (0-dim entries
//     are counters and stay on the CPU);
//   - Adam's moments (adam_direction), which Muon's AdamW parameters and Shampoo's grafting and 1-D fallback use, and
//     the gradient's Kronecker factors (gradient_factor: K-FAC's factor EMA on the gradient), Shampoo's and SOAP's.
//
// Data-parallel training averages the gradients before step() (the kfac tool does), as for torch::optim's.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kfac {

/// One parameter's state: named tensors ("exp_avg", "left.0", ...), empty before its first update.
using TensorState = std::map<std::string, at::Tensor>;

/// What one step did.
struct ParameterwiseStats {
  int64_t step = 0;                   ///< t of this step (1-based; the last taken when skipped)
  bool skipped = false;               ///< non-finite gradient or update: nothing changed
  bool refreshed = false;             ///< a preconditioner's decomposition was recomputed (Shampoo, SOAP)
  int64_t refresh_failures = 0;       ///< decompositions that failed (the previous one kept)
  std::vector<std::string> messages;  ///< human-readable reports of anything unusual
};

/// A parameter's update from update(): its new value and the state entries that change (committed together).
struct ParameterUpdate {
  at::Tensor value;
  TensorState state;
  bool refreshed = false;
  int64_t refresh_failures = 0;
  std::vector<std::string> messages;
};

class ParameterwiseOptimizer : public torch::optim::Optimizer {
 public:
  /// Computes every parameter's update, then commits all of them or (a non-finite value) none.
  at::Tensor step(LossClosure closure = nullptr) override;
  const ParameterwiseStats& last_stats() const { return last_; }
  /// Steps taken so far (skipped ones not counted).
  int64_t steps_taken() const { return step_; }
  /// A parameter's state (group g, index i), empty before its first update: tests and reports read it.
  const TensorState& parameter_state(size_t group, size_t index) const { return state_.at(group).at(index); }
  /// The method's name, as its checkpoint records it ("muon", "shampoo", "soap").
  const std::string& method() const { return method_; }

  void save(torch::serialize::OutputArchive& archive) const override;
  /// Throws naming the parameter and both shapes when the checkpoint is another model's or another method's.
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  ParameterwiseOptimizer(std::vector<torch::optim::OptimizerParamGroup> groups,
                         std::unique_ptr<torch::optim::OptimizerOptions> defaults, std::string method);
  /// The update of one parameter with a gradient at step t (1-based). `state` is read-only: what changes goes into
  /// the result. `name` ("parameter 2 of group 0 [64, 32]") is for messages.
  virtual ParameterUpdate update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                                 const torch::optim::OptimizerOptions& options, int64_t t, const std::string& name) = 0;
  /// Checks a group's options (called at construction and before every step).
  virtual void validate_group(const torch::optim::OptimizerOptions& options, size_t group) const = 0;
  /// validate_group for every group: the derived constructors call it (a base constructor cannot).
  void validate_groups() const;

 private:
  std::string method_;
  std::vector<std::vector<TensorState>> state_;  // per group, per parameter
  int64_t step_ = 0;
  ParameterwiseStats last_;
};

/// What every method shares given its options block `Options` (a TORCH_ARG struct with a table()): the constructor,
/// the options of a group, and their check against the table.
template <class Options>
class ParameterwiseOptimizerOf : public ParameterwiseOptimizer {
 protected:
  ParameterwiseOptimizerOf(std::vector<torch::optim::OptimizerParamGroup> groups, const Options& defaults,
                           std::string method)
      : ParameterwiseOptimizer(std::move(groups), std::make_unique<Options>(defaults), std::move(method)) {}
  static const Options& options_of(const torch::optim::OptimizerOptions& o) { return static_cast<const Options&>(o); }
  void validate_group(const torch::optim::OptimizerOptions& options, size_t) const override {
    Options::table().validate(options_of(options));
  }
};

/// Every parameter in one group (the optimizers' single-list constructors).
std::vector<torch::optim::OptimizerParamGroup> one_group(std::vector<at::Tensor> params);

/// "parameter I of group G [shape]": how messages name a parameter.
std::string parameter_name(size_t group, size_t index, const at::Tensor& param);

/// Adam's bias-corrected direction m̂ / (√v̂ + eps) at step t (Kingma & Ba 2015), from the moments state[prefix +
/// "exp_avg"] and [prefix + "exp_avg_sq"] (zero when absent); the new moments go into `out`.
at::Tensor adam_direction(const at::Tensor& grad, const TensorState& state, TensorState& out, double beta1,
                          double beta2, double eps, int64_t t, const std::string& prefix = "");

/// A gradient's Kronecker factor, a new tensor: β·state[key] + (1 − β)·xᵀx (state[key] zero when absent), by
/// linalg::factor_update_, the K-FAC factors' EMA. x: the rows (Gᵀ for L = E[G Gᵀ], G for R = E[Gᵀ G]).
at::Tensor gradient_factor(const TensorState& state, const std::string& key, const at::Tensor& x, double beta);

}  // namespace kfac
