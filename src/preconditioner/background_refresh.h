// Refresh off the critical path (PreconditionerOptions::background_refresh).
//
// At a scheduled refresh the preconditioner hands deep copies of the due layers' curvatures to a worker thread,
// which recomputes their decompositions while training goes on with the current ones. The next scheduled refresh
// waits for the worker (if it is still running), adopts what it computed (Curvature::adopt_refresh_from: the
// decompositions, never the running statistics, which have moved on) and hands over the next copies.
//
// Staleness: with refresh period P, the decompositions used at step k ∈ [mP, (m+1)P), m ≥ 1, were computed from the
// statistics of step (m−1)P, at most 2P − 1 steps old (P − 1 when synchronous). A layer's first decomposition is
// computed synchronously. The damping is the one at launch. Failures (NumericalError) are reported at adoption under
// the same policy as synchronous ones: the previous decomposition stays.
//
// The worker runs at the lowest scheduling priority (its OpenMP threads inherit it), so it takes the cycles that
// training leaves idle and does not slow the training thread's parallel regions (at normal priority its
// eigendecompositions made every phase of the step about 1.5 times slower on 2 cores). It can pay off only where training
// leaves cores idle: on 2 cores that training saturates it costs more than a synchronous refresh (bench/README.md).
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "kfac/util/archive_fwd.h"
#include "kfac/curvature/curvature.h"

namespace kfac {

class BackgroundRefresh {
 public:
  /// One layer's refresh: `copy` holds the new decompositions, or is null and `error` says why it failed.
  struct Result {
    size_t layer = 0;
    std::unique_ptr<Curvature> copy;
    std::string error;
  };

  BackgroundRefresh() = default;
  ~BackgroundRefresh();  // waits for the worker
  BackgroundRefresh(const BackgroundRefresh&) = delete;
  BackgroundRefresh& operator=(const BackgroundRefresh&) = delete;

  /// Whether results are running or waiting to be taken.
  bool pending() const { return job_.valid() || !finished_.empty(); }
  /// Refreshes `copies` (Result::copy set, deep copies of live curvatures) with `damping` on a worker thread.
  /// Throws if results are still pending.
  void launch(std::vector<Result> copies, double damping);
  /// Waits for the worker and returns its results (empty if nothing was launched). Rethrows anything the worker
  /// threw other than NumericalError.
  std::vector<Result> take();

  /// Checkpoints: waits for the worker and writes its results (the copies' state) by layer name.
  void save(torch::serialize::OutputArchive& archive, const std::vector<std::string>& layer_names);
  /// Restores finished results; `make_copy(i)` builds an empty curvature for layer i.
  void load(torch::serialize::InputArchive& archive, const std::vector<std::string>& layer_names,
            const std::function<std::unique_ptr<Curvature>(size_t)>& make_copy);

 private:
  void wait();

  std::future<std::vector<Result>> job_;
  std::vector<Result> finished_;
};

}  // namespace kfac
