// The optimizer of one run: a baseline from its table (baselines.h), or a curvature method's preconditioner behind
// the kl-clip (KfacOptimizer) or qmodel (QModelOptimizer) step rule. train() drives it through four calls per step.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <memory>
#include <string>

#include "kfac/distributed/communicator.h"
#include "kfac/optim/qmodel.h"
#include "kfac/preconditioner/preconditioner.h"
#include "models.h"
#include "step_profile.h"
#include "train.h"

namespace kfac::tool {

class RunOptimizer {
 public:
  /// Resolves the defaults of lr, momentum and the KL clip into `result` and builds the optimizer.
  RunOptimizer(const TrainConfig& cfg, Model& model, std::shared_ptr<Communicator> comm, TrainResult& result);

  /// How a statistics step takes its statistics from the training step.
  enum class Capture {
    None,              ///< not a statistics step, or a separate pass already ran (a subsample)
    SharedForward,     ///< the training forward is shared; the Fisher's backward runs after the loss's
    TrainingBackward,  ///< the empirical Fisher from the loss's own backward: no extra pass
  };
  /// Before the training forward: the statistics pass on statistics steps, or arming the capture.
  Capture before_forward(const at::Tensor& x, const at::Tensor& y, StepProfile& profile);
  /// After the loss's backward: the statistics of a shared forward.
  void after_backward(Capture capture, const at::Tensor& output, const at::Tensor& y, StepProfile& profile);
  /// Whether the backward must keep the graph (the quadratic model and a shared statistics forward reuse it).
  bool retains_graph(Capture capture) const { return qmodel_ != nullptr || capture == Capture::SharedForward; }
  /// Sets every parameter group's rate to its base rate (--lr, --fallback-lr) times `factor` (the schedule's).
  void scale_lr(double factor);
  /// Whether the optimizer averages the gradients of a distributed run itself (K-FAC's step rules do).
  bool averages_gradients() const { return precond_ != nullptr; }

  struct Outcome {
    bool skipped = false, refreshed = false;
    std::string skip_reason;  ///< the optimizer's message for a skipped step ("step 3: non-finite ...")
  };
  /// The update; `loss_at` re-evaluates the loss at the current weights (the quadratic model's line search).
  Outcome step(const at::Tensor& output, double loss, const std::function<double()>& loss_at, StepProfile& profile);

  /// Evaluation of the iterate average where the quadratic model keeps one.
  void use_averages_for_evaluation();
  torch::optim::Optimizer* optimizer() const { return opt_.get(); }
  QModelOptimizer* qmodel() const { return qmodel_.get(); }
  Preconditioner* preconditioner() const { return precond_.get(); }

 private:
  Model& model_;
  TrainConfig cfg_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::unique_ptr<QModelOptimizer> qmodel_;
  std::shared_ptr<Preconditioner> precond_;
  std::vector<double> base_lr_;  ///< per parameter group
};

}  // namespace kfac::tool
