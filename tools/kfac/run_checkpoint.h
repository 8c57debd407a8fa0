// Checkpoints of a `kfac train` run: model, optimizer (with the preconditioner), step, loss history and timing,
// written atomically (a temporary file renamed over the old one), so a crash never leaves a half-written file.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/optimizer.h>

#include <string>
#include <vector>

#include "kfac/optim/qmodel.h"
#include "train.h"

namespace kfac::tool {

struct RunState {
  int64_t next_step = 0;
  std::vector<HistoryPoint> history;
  int64_t skipped_steps = 0;
};

/// The optimizer is either `opt` (sgd, adam, kl-clip) or `qmodel`.
void save_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
              torch::optim::Optimizer* opt, QModelOptimizer* qmodel, const RunState& state);

/// Restores a run; throws naming the file and the mismatch if it was written for another model or method.
RunState load_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
                  torch::optim::Optimizer* opt, QModelOptimizer* qmodel);

}  // namespace kfac::tool
