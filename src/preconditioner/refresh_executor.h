// How a refresh runs, behind one interface, and the failure policy beside it.
//
//   InlineRefresh        every due layer refreshed now, in this thread (one process), same-shaped factors batched
//   OwnerRankRefresh     each due layer refreshed by its owner rank and broadcast (kfac/distributed/placement.h)
//   BackgroundRefresher  layers decomposed before are refreshed on a worker thread and adopted at the next scheduled
//                        refresh; first decompositions are computed now (src/preconditioner/background_refresh.h)
//
// make_refresh_executor picks one from the options and the placement. Each returns one RefreshOutcome per layer
// refreshed or adopted; the FailurePolicy books them (max_consecutive_failures) and knows which layers have a
// decomposition. Both are identical on every rank.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/preconditioner/options.h"
#include "kfac/util/archive_fwd.h"

namespace kfac {

class Placement;

struct RefreshOutcome {
  size_t layer = 0;
  bool ok = false;
  std::string error;  ///< why it failed (empty when ok)
};

/// What one refresh works on.
struct RefreshRequest {
  std::vector<size_t> due;   ///< layers with statistics that are scheduled or not decomposed yet
  bool scheduled = false;    ///< a scheduled refresh step (background results are adopted only then)
  bool synchronous = false;  ///< everything now: pending background results are dropped (refresh_all)
  double damping = 0;
  std::vector<std::unique_ptr<Curvature>>* curvatures = nullptr;
  const std::vector<bool>* decomposed = nullptr;  ///< per layer: a refresh has succeeded
  std::function<void()> before_compute;           ///< called once before any layer is computed (averages factors)
};

class RefreshExecutor {
 public:
  virtual ~RefreshExecutor() = default;
  virtual std::string name() const = 0;
  virtual std::vector<RefreshOutcome> run(const RefreshRequest& request) = 0;
  /// Checkpoints: the executor's own state (background results, waited for) by layer name.
  virtual void save(torch::serialize::OutputArchive& archive, const std::vector<std::string>& layer_names) {}
  /// Restores it (the background results a checkpoint holds).
  virtual void load(torch::serialize::InputArchive& archive, const std::vector<std::string>& layer_names,
                    const std::function<std::unique_ptr<Curvature>(size_t)>& make_copy) {}
};

/// The executor for these options: background (one process), owner-rank (distributed) or inline.
std::unique_ptr<RefreshExecutor> make_refresh_executor(const PreconditionerOptions& options,
                                                       const Placement& placement);

/// Books refresh outcomes: a success clears the layer's failure count and marks it decomposed; a failure keeps the
/// previous decomposition (or gradient/λ before the first), reports it, and throws after max_consecutive_failures in
/// a row.
class FailurePolicy {
 public:
  FailurePolicy(size_t layers, int64_t max_consecutive_failures)
      : max_(max_consecutive_failures), failures_(layers, 0), decomposed_(layers, false) {}
  /// Returns the message of a failure ("" for a success); throws past the limit, naming the layer.
  std::string record(const RefreshOutcome& outcome, const std::string& layer_name);
  const std::vector<bool>& decomposed() const { return decomposed_; }
  void set_decomposed(size_t layer, bool value) { decomposed_.at(layer) = value; }
  int64_t consecutive_failures(size_t layer) const { return failures_.at(layer); }
  void set_consecutive_failures(size_t layer, int64_t n) { failures_.at(layer) = n; }

 private:
  int64_t max_;
  std::vector<int64_t> failures_;
  std::vector<bool> decomposed_;
};

/// Refreshes one curvature, turning a NumericalError into a failed outcome.
RefreshOutcome refresh_layer(Curvature& curvature, size_t layer, double damping);
/// Refreshes these layers together: their planned decompositions in one linalg::decompose, so that same-shaped
/// factors are batched (Curvature::plan_refresh); one outcome per layer, in order.
std::vector<RefreshOutcome> refresh_layers(const std::vector<size_t>& layers,
                                           std::vector<std::unique_ptr<Curvature>>& curvatures, double damping);

}  // namespace kfac
