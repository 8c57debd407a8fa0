// The global stage: what runs after the per-layer (one-level) preconditioning and may couple the layers. It is
// independent of the curvature method: it sees the gradients, the one-level directions and, through a StageView
// (the Preconditioner implements it), λ, the one-level solve M⁻¹, the layers' curvatures and the exact
// Fisher–vector products of the last statistics batch; it never sees the Preconditioner itself.
//
//   update(fisher, decay)        a statistics step arrived (all layers' per-example data)
//   prepare(grads, fine, ...)    scheduled work before this step's directions (bases, coarse matrices, inverses);
//                                `fine` are this step's one-level directions M⁻¹g
//   apply(grads, fine, pre)      the final directions; pure, so the stage is a fixed linear map between prepares
//
// Stages are registered by name (kfac/global/stage_registry.h): "two-level" (src/global/two_level.h) and
// "block-tridiagonal" (src/global/block_tridiagonal.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/distributed/communicator.h"
#include "kfac/fisher/fisher_products.h"
#include "kfac/util/archive_fwd.h"

namespace kfac {

/// What a global stage sees of the preconditioner.
class StageView {
 public:
  virtual ~StageView() = default;
  /// λ.
  virtual double damping() const = 0;
  /// Steps taken so far.
  virtual int64_t steps() const = 0;
  /// Exact Fisher–vector products on the last statistics batch.
  virtual const CapturedFisher& captured_fisher() const = 0;
  virtual const Curvature& curvature(size_t layer) const = 0;
  /// Each layer's M_i⁻¹ applied to [d_G, d_A] matrices (one per layer).
  virtual std::vector<at::Tensor> precondition_layers(const std::vector<at::Tensor>& matrices) const = 0;
  /// The ranks the work is shared with.
  virtual Communicator& communicator() const = 0;
};

/// What prepare() reports: whether the layers refreshed this step (in), and messages for StepStats (out).
struct StageReport {
  bool refreshed = false;
  std::vector<std::string> messages;
};

class GlobalStage {
 public:
  virtual ~GlobalStage() = default;
  virtual std::string name() const = 0;
  virtual void update(const CapturedFisher& fisher, double decay) = 0;
  virtual void prepare(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine, const StageView& pre,
                       StageReport& report) = 0;
  virtual std::vector<at::Tensor> apply(const std::vector<at::Tensor>& grads, std::vector<at::Tensor> fine,
                                        const StageView& pre) const = 0;
  /// Running statistics linear in the data, averaged over ranks after update() in distributed runs.
  virtual std::vector<at::Tensor*> running_statistics() { return {}; }
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load(torch::serialize::InputArchive& archive) = 0;
};

}  // namespace kfac
