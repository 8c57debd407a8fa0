#include "kfac/curvature/curvature.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include "kfac/curvature/kronecker.h"
#include "kfac/curvature/registry.h"
#include "kfac/errors.h"
#include "kfac/linalg/factor.h"
#include "util/serialize.h"

namespace kfac {

Curvature::Curvature(CurvatureContext context) : context_(std::move(context)) {}

std::unique_ptr<Curvature> Curvature::make_twin() const { return make_curvature(context_.method, context_); }

std::string Curvature::structure() const {
  return "A " + std::to_string(shape().dim_a) + " x G " + std::to_string(shape().dim_g);
}

int64_t Curvature::memory_bytes() const {
  int64_t bytes = 0;
  for (auto& [name, t] : const_cast<Curvature*>(this)->state_tensors())
    if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  return bytes;
}

at::Tensor Curvature::lowest_mode() const {
  const auto q = linalg::eigh_psd(to_dense(), what("dense block")).vectors.select(1, 0);
  return q.reshape({shape().dim_a, shape().dim_g}).t().contiguous();  // un-vec (column-major)
}

at::Tensor KroneckerCurvature::lowest_mode() const {
  if (lowest_mode_key_ == refreshes_ && lowest_mode_.defined()) return lowest_mode_;
  const auto q_l = linalg::factor_lowest_eigenvector(input_factor(), what("input factor"));
  const auto q_r = linalg::factor_lowest_eigenvector(output_factor(), what("output factor"));
  lowest_mode_ = at::outer(q_r, q_l), lowest_mode_key_ = refreshes_;
  return lowest_mode_;
}

at::Tensor Curvature::precondition(const at::Tensor& grad_matrix, double damping) const {
  KFAC_CHECK(has_statistics(), "layer '", layer_name(),
             "' has no curvature statistics yet; run a statistics step (update_statistics or capture_backward) "
             "before preconditioning");
  const auto& s = shape();
  KFAC_CHECK(grad_matrix.dim() == 2 && grad_matrix.size(0) == s.dim_g && grad_matrix.size(1) == s.dim_a, "layer '",
             layer_name(), "': gradient matrix must be [", s.dim_g, ", ", s.dim_a, "], got ", grad_matrix.sizes());
  if (!ready_) return grad_matrix / damping;
  return precondition_impl(grad_matrix, damping);
}

void Curvature::refresh_by_plan(double damping) {
  auto plan = plan_refresh(damping);
  linalg::decompose(plan);
  finish_refresh(plan, damping);
}

LayerStatistics Curvature::in_product_dtype(const LayerStatistics& stats) const {
  const auto dtype = context_.product_dtype.value_or(stats.a.scalar_type());
  if (stats.a.scalar_type() == dtype && stats.g.scalar_type() == dtype) return stats;
  auto out = stats;
  out.a = stats.a.to(dtype), out.g = stats.g.to(dtype);
  return out;
}

void Curvature::note_update(const LayerStatistics& stats) {
  KFAC_CHECK(stats.a.dim() == 3 && stats.a.size(2) == input_width(), "layer '", layer_name(),
             "': expanded inputs must be [B, T, ", input_width(), "], got ", stats.a.sizes());
  KFAC_CHECK(stats.g.dim() == 4 && stats.g.size(1) == stats.a.size(0) && stats.g.size(2) == stats.a.size(1) &&
                 stats.g.size(3) == shape().dim_g,
             "layer '", layer_name(), "': output gradients must be [S, ", stats.a.size(0), ", ", stats.a.size(1), ", ",
             shape().dim_g, "], got ", stats.g.sizes());
  locations_ = stats.shared_positions();
  ++updates_;
}

std::vector<at::Tensor*> Curvature::refreshed_state() {
  std::vector<at::Tensor*> out;
  const auto running = running_statistics();
  for (auto& [name, t] : state_tensors()) {
    bool statistic = false;
    for (const auto& r : running) statistic = statistic || r.first == t;
    if (!statistic) out.push_back(t);
  }
  return out;
}

void Curvature::copy_state_from(const Curvature& other) {
  KFAC_CHECK(other.method() == method() && other.shape().dim_a == shape().dim_a && other.shape().dim_g == shape().dim_g,
             "copy_state_from: layer '", layer_name(), "' (", method(), ") cannot copy layer '", other.layer_name(),
             "' (", other.method(), ")");
  auto mine = state_tensors();
  const auto theirs = const_cast<Curvature&>(other).state_tensors();
  for (size_t k = 0; k < mine.size(); ++k)
    *mine[k].second = theirs[k].second->defined() ? theirs[k].second->clone() : at::Tensor();
  locations_ = other.locations_, updates_ = other.updates_, ready_ = other.ready_;
}

void Curvature::adopt_refresh_from(Curvature& copy) {
  KFAC_CHECK(copy.method() == method(), "adopt_refresh_from: layer '", layer_name(), "' (", method(),
             ") cannot adopt a refresh of method ", copy.method());
  auto mine = refreshed_state();
  auto theirs = copy.refreshed_state();
  for (size_t k = 0; k < mine.size(); ++k) *mine[k] = std::move(*theirs[k]);
  mark_ready();
}

std::string Curvature::what(const std::string& part) const { return part + " of layer '" + layer_name() + "'"; }

void Curvature::save(torch::serialize::OutputArchive& archive) const {
  archive.write("method", c10::IValue(method()));
  archive.write("locations", c10::IValue(locations_));
  archive.write("updates", c10::IValue(updates_));
  archive.write("ready", c10::IValue(ready_));
  for (auto& [name, t] : const_cast<Curvature*>(this)->state_tensors())
    if (t->defined()) archive.write(name, *t);
}

void Curvature::load(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  archive.read("method", v);
  KFAC_CHECK(v.toStringRef() == method(), "checkpoint of layer '", layer_name(), "' holds method '", v.toStringRef(),
             "' but this preconditioner uses '", method(), "'");
  locations_ = read_value(archive, "locations").toInt();
  updates_ = read_value(archive, "updates").toInt();
  ready_ = read_value(archive, "ready").toBool();
  for (auto& [name, t] : state_tensors()) {
    at::Tensor loaded;
    if (!archive.try_read(name, loaded)) {
      *t = at::Tensor();
      continue;
    }
    // A factor saved full where this one is diagonal (or the reverse): another factor_full_max_dim, same model.
    const bool structure = t->defined() && t->dim() != loaded.dim() && t->dim() <= 2 && loaded.dim() <= 2 &&
                           t->size(0) == loaded.size(0);
    KFAC_CHECK(!t->defined() || t->sizes() == loaded.sizes(), "checkpoint of layer '", layer_name(), "': ", name,
               " has shape ", loaded.sizes(), " but this model needs ", t->sizes(),
               structure ? std::string("; the checkpoint's factor is ") + (loaded.dim() == 1 ? "diagonal" : "full") +
                               " where this one is " + (t->dim() == 1 ? "diagonal" : "full") +
                               ": it was written with another factor_full_max_dim (set the value it was written "
                               "with; 0: always full)"
                         : std::string("; the checkpoint was written for a different model"));
    *t = loaded.to(context_.tensor_options);
  }
}

}  // namespace kfac
