#include "kfac/distributed/placement.h"

#include <ATen/ATen.h>

#include "distributed/assignment.h"
#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"

namespace kfac {

Placement::Placement(std::shared_ptr<Communicator> comm, const std::vector<BlockShape>& shapes,
                     double grad_worker_fraction)
    : comm_(comm ? std::move(comm) : std::make_shared<SingleProcess>()) {
  std::vector<double> costs;
  costs.reserve(shapes.size());
  for (const auto& s : shapes) costs.push_back(refresh_cost(s.dim_a, s.dim_g));
  owners_ = assign_owners(costs, comm_->size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto workers = gradient_workers(owners_[i], comm_->size(), grad_worker_fraction);
    bool mine = false;
    for (int w : workers) mine = mine || w == comm_->rank();
    worker_.push_back(mine);
    shared_.push_back(workers.size() > 1);
    everyone_works_ = everyone_works_ && static_cast<int>(workers.size()) == comm_->size();
  }
}

bool Placement::all_agree(bool local_ok) const {
  if (!distributed()) return local_ok;
  return comm_->sum_over_ranks({local_ok ? 0.0 : 1.0})[0] == 0.0;
}

void Placement::average(const std::vector<std::pair<at::Tensor*, bool>>& statistics) const {
  if (!distributed()) return;
  std::vector<at::Tensor> symmetric, plain;
  for (const auto& [t, sym] : statistics)
    if (t->defined()) (sym ? symmetric : plain).push_back(*t);  // undefined alike on every rank (same history)
  all_reduce_symmetric_mean(*comm_, symmetric);
  all_reduce_mean(*comm_, plain);
}

std::vector<bool> Placement::refresh(const std::vector<size_t>& due, const std::function<bool(size_t)>& refresh_layer,
                                     const std::vector<Curvature*>& curvatures) const {
  std::vector<bool> ok(due.size(), false);
  if (!distributed()) {
    for (size_t k = 0; k < due.size(); ++k) ok[k] = refresh_layer(due[k]);
    return ok;
  }
  std::vector<double> status(due.size(), 0.0);
  for (size_t k = 0; k < due.size(); ++k) {
    if (owner(due[k]) != comm_->rank()) continue;
    status[k] = refresh_layer(due[k]) ? 1.0 : 0.0;
    // The other workers receive the decompositions contiguous; the owner keeps them so too, so that every rank's
    // products take the same BLAS path (LAPACK returns column-major results; ranks then differed in the last bits).
    for (auto* t : curvatures[due[k]]->refreshed_state())
      if (t->defined()) *t = t->contiguous();
  }
  status = comm_->sum_over_ranks(std::move(status));
  for (size_t k = 0; k < due.size(); ++k) ok[k] = status[k] > 0.5;
  // Workers other than the owner need the decompositions: one broadcast per owner rank, for the layers that have
  // such workers (none when the owner is the only worker, the memory-optimal end).
  for (int root = 0; root < comm_->size(); ++root) {
    std::vector<size_t> layers;
    for (size_t k = 0; k < due.size(); ++k)
      if (ok[k] && owner(due[k]) == root && shared_[due[k]]) layers.push_back(due[k]);
    if (layers.empty()) continue;
    std::vector<at::Tensor> tensors;
    const auto options = curvatures[layers.front()]->tensor_options();
    for (size_t i : layers) {
      KFAC_CHECK(curvatures[i]->dtype() == curvatures[layers.front()]->dtype(), "distributed refresh: layers '",
                 curvatures[i]->layer_name(), "' and '", curvatures[layers.front()]->layer_name(),
                 "' have different "
                 "factor dtypes; set PreconditionerOptions::factor_dtype");
      for (auto* t : curvatures[i]->refreshed_state()) tensors.push_back(*t);
    }
    broadcast_tensors(*comm_, tensors, root, options);
    if (comm_->rank() == root) continue;
    size_t j = 0;
    for (size_t i : layers) {
      for (auto* t : curvatures[i]->refreshed_state()) {
        if (is_worker(i)) *t = tensors[j];
        ++j;
      }
      if (is_worker(i)) curvatures[i]->adopt_refresh();
    }
  }
  return ok;
}

void Placement::share_directions(std::vector<at::Tensor>& directions) const {
  if (everyone_works_) return;
  for (int root = 0; root < comm_->size(); ++root) {
    std::vector<at::Tensor> parts;
    for (size_t i = 0; i < directions.size(); ++i)
      if (owner(i) == root) parts.push_back(directions[i].reshape({-1}));
    if (parts.empty()) continue;
    std::vector<at::Tensor> flat{at::cat(parts)};
    comm_->broadcast(flat, root);
    int64_t offset = 0;
    for (size_t i = 0; i < directions.size(); ++i) {
      if (owner(i) != root) continue;
      const int64_t n = directions[i].numel();
      if (!is_worker(i)) directions[i] = flat[0].narrow(0, offset, n).view(directions[i].sizes()).clone();
      offset += n;
    }
  }
}

}  // namespace kfac
