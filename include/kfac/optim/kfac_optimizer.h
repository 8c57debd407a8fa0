// A ready K-FAC optimizer: the preconditioner's direction, KL-clipped (Ba, Grosse & Martens 2017), followed with
// heavy-ball momentum and weight decay. It is a torch::optim::Optimizer, so LibTorch's learning-rate schedulers
// (torch::optim::StepLR, ...) drive its learning rate.
//
// One step, with v the preconditioned and g the raw gradient of the K-FAC layers:
//   ν = min(1, √(κ / (η² |Σ vᵀg|)))           KL clip (κ = kl_clip; 0 disables)
//   d = ν·v (K-FAC layers) or g (other parameters), plus weight_decay·θ (after preconditioning)
//   m ← μ m + d,  θ ← θ − η m
// Each parameter group has its own η, μ and weight decay; the KL clip (one factor for the whole step) reads the first
// group's η and κ. The options are described once in table() (the Python keywords come from it).
// The caller runs the statistics pass and the backward before step(); see Preconditioner.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>

#include "kfac/preconditioner/preconditioner.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct KfacOptimizerOptions : public torch::optim::OptimizerCloneableOptions<KfacOptimizerOptions> {
  KfacOptimizerOptions(double lr = 0.01) : lr_(lr) {}  // NOLINT: implicit like torch::optim::SGDOptions
  static const OptionTable<KfacOptimizerOptions>& table();
  /// Learning rate η. > 0. Default 0.01.
  TORCH_ARG(double, lr);
  /// Heavy-ball momentum μ. In [0, 1). Default 0.9.
  TORCH_ARG(double, momentum) = 0.9;
  /// L2 weight decay added after preconditioning. >= 0. Default 0.
  TORCH_ARG(double, weight_decay) = 0.0;
  /// KL-clip bound κ on η²·vᵀg. >= 0, 0 disables. Default 1e-3.
  TORCH_ARG(double, kl_clip) = 1e-3;

  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Throws naming the first option outside its range (table()).
void validate(const KfacOptimizerOptions& options);

class KfacOptimizer : public torch::optim::Optimizer {
 public:
  /// `params`: every trainable parameter of the model; those of the preconditioner's layers are preconditioned.
  KfacOptimizer(std::vector<at::Tensor> params, std::shared_ptr<Preconditioner> preconditioner,
                const KfacOptimizerOptions& options = {});
  /// Several parameter groups; a group without options takes `defaults`.
  KfacOptimizer(std::vector<torch::optim::OptimizerParamGroup> groups, std::shared_ptr<Preconditioner> preconditioner,
                const KfacOptimizerOptions& defaults = {});

  /// Preconditions, clips and updates. A non-finite gradient skips the update (see last_stats().skipped).
  at::Tensor step(LossClosure closure = nullptr) override;
  const StepStats& last_stats() const { return last_; }
  Preconditioner& preconditioner() { return *preconditioner_; }

  /// Saves momentum buffers and the preconditioner's state together.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  static KfacOptimizerOptions& options(torch::optim::OptimizerParamGroup& group);
  std::vector<at::Tensor> all_parameters() const;
  std::shared_ptr<Preconditioner> preconditioner_;
  std::vector<std::vector<at::Tensor>> momentum_;  // per group, per parameter
  StepStats last_;
};

}  // namespace kfac
