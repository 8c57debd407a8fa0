// The global stage: what runs after the per-layer (one-level) preconditioning and may couple the layers. It is
// independent of the curvature method: it sees the gradients, the one-level directions, the one-level solve
// M⁻¹ (Preconditioner::precondition_layers) and the exact Fisher–vector products of the last statistics batch.
//
//   update(fisher, decay)        a statistics step arrived (all layers' per-example data)
//   prepare(grads, fine, ...)    scheduled work before this step's directions (bases, coarse matrices, inverses);
//                                `fine` are this step's one-level directions M⁻¹g
//   apply(grads, fine, pre)      the final directions; pure, so the stage is a fixed linear map between prepares
//
// Implementations: TwoLevelCorrection (kfac/global/two_level.h), BlockTridiagonal (kfac/global/block_tridiagonal.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "kfac/util/archive_fwd.h"
#include "kfac/fisher/fisher_products.h"
#include "kfac/preconditioner/options.h"

namespace kfac {

class Preconditioner;
struct StepStats;

class GlobalStage {
 public:
  virtual ~GlobalStage() = default;
  virtual std::string name() const = 0;
  virtual void update(const CapturedFisher& fisher, double decay) = 0;
  virtual void prepare(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine,
                       const Preconditioner& pre, StepStats& stats) = 0;
  virtual std::vector<at::Tensor> apply(const std::vector<at::Tensor>& grads, std::vector<at::Tensor> fine,
                                        const Preconditioner& pre) const = 0;
  /// Running statistics linear in the data, averaged over ranks after update() in distributed runs.
  virtual std::vector<at::Tensor*> running_statistics() { return {}; }
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load(torch::serialize::InputArchive& archive) = 0;
};

/// The stage for options.global_stage() (two-level or block-tridiagonal); nullptr for GlobalStageKind::None.
std::unique_ptr<GlobalStage> make_global_stage(const PreconditionerOptions& options);

}  // namespace kfac
