// Placement: where each layer's work happens, the one axis that changes between one process and many.
//
// Data-parallel K-FAC in the style of KAISA (Pauloski et al. 2021). Every rank runs the statistics pass on its own
// shard of the batch; then, for each step:
//   statistics   each rank folds its shard into its running statistics, which are averaged over ranks: those
//                read every step (EKFAC's spectrum, TKFAC's δ) at once, the Kronecker factors (read only by
//                refreshes) as upper triangles just before a refresh (Preconditioner::synchronize_statistics).
//                The statistics are linear in the data and every rank starts from the same state, so this equals
//                the statistics of the whole batch.
//   refresh      each layer's decompositions are computed by one owner rank (assign_owners: deterministic,
//                cost-balanced), and broadcast to the layer's gradient workers.
//   directions   gradient workers precondition the (already averaged) gradient; when not every rank is a worker,
//                each owner broadcasts its layers' directions.
// grad_worker_fraction = 1 (default) is communication-optimal: every rank holds every decomposition and no direction
// is sent. 1/ranks is memory-optimal: only the owner holds a layer's decomposition, nothing is broadcast at refresh,
// and every step broadcasts the directions. In between, decompositions are broadcast to every rank and kept by the
// workers only (Gloo has no cheap subgroups), so memory falls with the fraction while communication is that of the
// memory-optimal end.
// With one process every method here is a no-op or a plain loop, so the preconditioner has a single code path.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/distributed/communicator.h"

namespace kfac {

class Placement {
 public:
  Placement(std::shared_ptr<Communicator> comm, const std::vector<BlockShape>& shapes, double grad_worker_fraction);

  Communicator& communicator() const { return *comm_; }
  const std::shared_ptr<Communicator>& shared_communicator() const { return comm_; }
  bool distributed() const { return comm_->size() > 1; }
  int owner(size_t layer) const { return owners_.at(layer); }
  /// Whether this rank holds the layer's decompositions and computes its direction.
  bool is_worker(size_t layer) const { return worker_.at(layer); }
  /// Whether every rank is a worker of every layer (so no direction is ever sent).
  bool everyone_works() const { return everyone_works_; }

  /// True on every rank iff `local_ok` is true on every rank.
  bool all_agree(bool local_ok) const;
  /// Averages running statistics over ranks: symmetric matrices as upper triangles, the rest in full.
  void average(const std::vector<std::pair<at::Tensor*, bool>>& statistics) const;
  /// Runs `refresh_layer(i)` (true = success) on each due layer's owner, shares the outcome and the decompositions.
  /// Returns, per due layer (same order), whether its refresh succeeded; identical on every rank.
  std::vector<bool> refresh(const std::vector<size_t>& due, const std::function<bool(size_t)>& refresh_layer,
                            const std::vector<Curvature*>& curvatures) const;
  /// Completes `directions` on non-workers with the owners' broadcasts (no-op when everyone works).
  void share_directions(std::vector<at::Tensor>& directions) const;

 private:
  std::shared_ptr<Communicator> comm_;
  std::vector<int> owners_;
  std::vector<bool> worker_;
  std::vector<bool> shared_;  // the layer has workers besides its owner
  bool everyone_works_ = true;
};

}  // namespace kfac
