// Checkpoints of a `kfac train` run: model, optimizer (with the preconditioner), step, loss history and timing,
// written atomically (atomic_file.h: a temporary file renamed over the old one, every write checked), so a crash or a
// full disk never leaves a half-written file.
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

/// Before training: a destination that cannot be written (missing folder, no permission) or is not a regular file (a
/// device, folder, fifo or socket, or a link to one) is an error now, not after the first steps; an existing
/// checkpoint is only replaced by --resume or --overwrite.
void check_checkpoint_destination(const TrainConfig& config);

/// Restores a run; throws naming the file and the mismatch if it was written for another model or method, if its
/// records are damaged (CRC-32), if any training option differs (each one named), or if --steps is below its step.
RunState load_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
                  torch::optim::Optimizer* opt, QModelOptimizer* qmodel);

}  // namespace kfac::tool
