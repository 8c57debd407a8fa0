#include "kfac/curvature/scale_shift_curvature.h"

#include <ATen/ATen.h>

#include "kfac/linalg/psd.h"

namespace kfac {

ScaleShiftCurvature::ScaleShiftCurvature(CurvatureContext context)
    : Curvature(std::move(context)), full_(shape().dim_g <= context_.layers.norm_full_max_features()) {
  const int64_t n = shape().dim_a * shape().dim_g;
  block_ = full_ ? at::zeros({n, n}, context_.tensor_options) : at::zeros({n}, context_.tensor_options);
}

void ScaleShiftCurvature::update(const LayerStatistics& stats, double decay) {
  note_update(stats);
  // Per-example gradients of (γ, β) for every target row: [S·B, 2d] in vec order (γ then β); of γ alone without β.
  const auto scale_grad = (stats.g * stats.a.unsqueeze(0)).sum(2);
  const auto u = (shape().dim_a == 2 ? at::cat({scale_grad, stats.g.sum(2)}, -1) : scale_grad).flatten(0, 1);
  const double scale = (1.0 - decay) / static_cast<double>(stats.examples());
  if (full_)
    linalg::gram_update_(block_, u, decay, scale);
  else
    block_.mul_(decay).add_(u.pow(2).sum(0), scale);
}

void ScaleShiftCurvature::refresh(double damping) { refresh_by_plan(damping); }

std::vector<linalg::FactorRequest> ScaleShiftCurvature::plan_refresh(double /*damping*/) {
  if (!full_) return {};
  // Refined from the previous basis like the Kronecker factors' eigenbases (eigenbasis_iterations), and batched
  // with the other blocks of its size.
  return {linalg::FactorRequest::eig_of(block_, what("scale-shift block"), context_.numerics.eigenvalue_floor(), vecs_,
                                        context_.numerics.eigenbasis_iterations())};
}

void ScaleShiftCurvature::finish_refresh(std::vector<linalg::FactorRequest>& d, double /*damping*/) {
  if (full_) {
    linalg::throw_if_failed(d);
    vals_ = d[0].eig.values, vecs_ = d[0].eig.vectors;
  } else {  // the diagonal is its own spectrum: a snapshot, so that the block changes only at refreshes, as all do
    linalg::check_finite(block_, what("scale-shift diagonal"));
    vals_ = block_.clamp_min(context_.numerics.eigenvalue_floor());
  }
  mark_ready();
}

at::Tensor ScaleShiftCurvature::precondition_impl(const at::Tensor& v, double damping) const {
  const int64_t d = shape().dim_g;
  const auto flat = v.t().reshape({-1});  // vec: (γ, β)
  // A diagonal block restored from a checkpoint of before the snapshot has no vals_: its running diagonal serves.
  const auto out = full_             ? vecs_.mv(vecs_.t().mv(flat) / (vals_ + damping))
                   : vals_.defined() ? flat / (vals_ + damping)
                                     : flat / (block_ + damping);
  return out.reshape({shape().dim_a, d}).t();
}

at::Tensor ScaleShiftCurvature::to_dense() const { return full_ ? block_.clone() : at::diag(block_); }

std::vector<std::pair<at::Tensor*, bool>> ScaleShiftCurvature::running_statistics() { return {{&block_, full_}}; }

std::vector<std::pair<std::string, at::Tensor*>> ScaleShiftCurvature::state_tensors() {
  return {{"block", &block_}, {"vals", &vals_}, {"vecs", &vecs_}};
}

}  // namespace kfac
