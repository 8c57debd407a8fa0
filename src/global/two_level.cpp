#include "global/two_level.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cmath>

#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"
#include "kfac/global/stage_registry.h"
#include "kfac/linalg/psd.h"
#include "util/serialize.h"

namespace kfac {

namespace {
using Matrices = std::vector<at::Tensor>;

Matrices axpy(const Matrices& x, const Matrices& y, double alpha = 1.0) {  // x + α y
  Matrices out;
  for (size_t i = 0; i < x.size(); ++i) out.push_back(x[i] + alpha * y[i].to(x[i].scalar_type()));
  return out;
}

// A vector of the basis from a layer matrix, with its rank-one factors when it has them.
CoarseVector make_vector(size_t layer, const at::Tensor& m) {
  CoarseVector r{layer, m, {}, {}};
  const auto col = m.norm(2, {0}).argmax().item<int64_t>();
  const auto u = m.select(1, col) / m.select(1, col).norm();
  const auto v = m.t().mv(u);
  if ((at::outer(u, v) - m).norm().item<double>() <= 1e-5 * m.norm().item<double>()) r.left = u, r.right = v;
  return r;
}

// Appends `m` to the layer's vectors after orthogonalising it against them; drops it if nothing is left.
void append_orthonormal(CoarseBasis& basis, size_t layer, at::Tensor m) {
  const double original = m.norm().item<double>();
  if (!std::isfinite(original) || original == 0) return;
  for (const auto& r : basis)
    if (r.layer == layer) m = m - (m * r.matrix).sum() * r.matrix;
  const double norm = m.norm().item<double>();
  if (norm <= 1e-6 * original) return;
  basis.push_back(make_vector(layer, m / norm));
}

bool same_basis(const CoarseBasis& a, const CoarseBasis& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].layer != b[k].layer || !at::equal(a[k].matrix, b[k].matrix)) return false;
  return true;
}
}  // namespace

TwoLevelCorrection::TwoLevelCorrection(const TwoLevelOptions& options) : options_(options) {
  KFAC_CHECK(!options.krylov() || options.coarse_space() == CoarseSpace::Nicolaides ||
                 options.coarse_space() == CoarseSpace::Residual,
             "krylov (Krylov enrichment) needs coarse_space nicolaides or residual, got '",
             to_string(options.coarse_space()), "' (the spectral vector is an eigenvector, so M⁻¹r is parallel to r)");
}

GlobalStageEntry two_level_stage() {
  GlobalStageEntry entry;
  entry.make = [](const GlobalStageContext& c) -> std::unique_ptr<GlobalStage> {
    return std::make_unique<TwoLevelCorrection>(c.options.get<TwoLevelOptions>());
  };
  entry.option_tables = {&TwoLevelOptions::table()};
  entry.spellings = enum_choices<CoarseSpace>();
  entry.apply_spelling = [](const std::string& spelling, OptionBlocks& blocks) {
    auto options = blocks.get<TwoLevelOptions>();
    blocks.set(options.coarse_space(parse_enum<CoarseSpace>(spelling)));
  };
  return entry;
}

std::string TwoLevelCorrection::name() const {
  return "two-level " + to_string(options_.coarse_space()) + (options_.krylov() ? "+krylov" : "") + " (" +
         to_string(options_.matrix_or_default()) + ", " + to_string(options_.combine()) + ")";
}

CoarseBasis TwoLevelCorrection::build_basis(const Matrices& grads, const Matrices& fine, const StageView& pre) const {
  const auto& fisher = pre.captured_fisher();
  Matrices first;
  switch (options_.coarse_space()) {
    case CoarseSpace::Spectral:
      for (size_t i = 0; i < grads.size(); ++i) first.push_back(pre.curvature(i).lowest_mode());
      break;
    case CoarseSpace::Residual: {
      const auto ax = fisher.multiply_damped(fine, pre.damping());  // A x₀, x₀ = M⁻¹g
      auto rho = axpy(grads, ax, -1.0);
      for (size_t i = 0; i < rho.size(); ++i) {  // a residual at rounding level is no direction: drop the layer
        const double noise = std::sqrt(c10::elementSize(rho[i].scalar_type()) == 8 ? 2.2e-16 : 1.2e-7);
        if (rho[i].norm().item<double>() <=
            noise * std::max(grads[i].norm().item<double>(), ax[i].norm().item<double>()))
          rho[i].zero_();
      }
      first = pre.precondition_layers(rho);
      break;
    }
    default:  // Nicolaides, Tselepidis: constant per layer
      for (const auto& g : grads) first.push_back(at::ones_like(g));
  }
  CoarseBasis basis;
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto dtype = fisher.statistics(i).a.scalar_type();
    append_orthonormal(basis, i, first[i].to(dtype));
  }
  if (options_.krylov()) {
    Matrices layer_vectors;  // each layer's first vector (zero if it was dropped)
    for (size_t i = 0; i < grads.size(); ++i) {
      at::Tensor v = at::zeros_like(grads[i]);
      for (const auto& r : basis)
        if (r.layer == i) v = r.matrix.to(grads[i].scalar_type());
      layer_vectors.push_back(v);
    }
    const auto second = pre.precondition_layers(layer_vectors);
    for (size_t i = 0; i < grads.size(); ++i)
      append_orthonormal(basis, i, second[i].to(fisher.statistics(i).a.scalar_type()));
    std::stable_sort(basis.begin(), basis.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
  }
  return basis;
}

void TwoLevelCorrection::prepare(const Matrices& grads, const Matrices& fine, const StageView& pre,
                                 StageReport& report) {
  const auto& fisher = pre.captured_fisher();
  if (fisher.empty() || (pre.steps() % options_.coarse_period() != 0 && active())) return;
  auto basis = build_basis(grads, fine, pre);
  const bool same = same_basis(basis, basis_);
  if (same && !fresh_ && active()) return;
  if (!same) basis_ = std::move(basis), ema_updates_ = 0;
  if (basis_.empty()) {  // nothing to correct: the step is one-level
    coarse_ = inverse_ = at::Tensor();
    return;
  }
  auto fc = at::Tensor();
  if (options_.matrix_or_default() == CoarseMatrix::Exact) {
    fc = exact_coarse_matrix(fisher, basis_);
    all_reduce_mean(pre.communicator(), {fc});  // the ranks' shards together
  } else {
    fc = kronecker_coarse_matrix(fisher, basis_, pre.communicator());  // averages its factors itself
  }
  const double decay = std::min(1.0 - 1.0 / static_cast<double>(++ema_updates_), options_.coarse_ema_decay());
  coarse_ = ema_updates_ == 1 ? fc : decay * coarse_ + (1.0 - decay) * fc;
  fresh_ = false;
  try {
    inverse_ = linalg::cholesky_inverse_psd(coarse_, options_.coarse_damping().value_or(pre.damping()),
                                            "coarse matrix of the " + name());
  } catch (const NumericalError& e) {
    if (!same) inverse_ = at::Tensor();
    report.messages.push_back(std::string(e.what()) +
                              (active() ? " (keeping the previous coarse inverse)" : " (one-level step)"));
  }
}

Matrices TwoLevelCorrection::apply(const Matrices& grads, Matrices fine, const StageView& pre) const {
  const double w = options_.coarse_weight();
  if (!active() || w == 0) return fine;
  auto coarse = [&](const Matrices& x) { return prolong(basis_, inverse_.mv(restrict_to_coarse(basis_, x)) * w, x); };
  auto fisher = [&](const Matrices& x) { return pre.captured_fisher().multiply_damped(x, pre.damping()); };
  switch (options_.combine()) {
    case CoarseCombine::Additive:
      return axpy(fine, coarse(grads));
    case CoarseCombine::Residual:
      return axpy(fine, coarse(axpy(grads, fisher(fine), -1.0)));
    case CoarseCombine::Deflated: {
      const auto x0 = coarse(grads);
      return axpy(x0, pre.precondition_layers(axpy(grads, fisher(x0), -1.0)));
    }
    case CoarseCombine::Balanced: {
      const auto x0 = coarse(grads);
      const auto y = pre.precondition_layers(axpy(grads, fisher(x0), -1.0));
      return axpy(axpy(x0, y), coarse(fisher(y)), -1.0);
    }
  }
  return fine;
}

void TwoLevelCorrection::save(torch::serialize::OutputArchive& archive) const {
  archive.write("vectors", c10::IValue(static_cast<int64_t>(basis_.size())));
  for (size_t k = 0; k < basis_.size(); ++k) {
    const auto key = "vector_" + std::to_string(k);
    archive.write(key + "_layer", c10::IValue(static_cast<int64_t>(basis_[k].layer)));
    archive.write(key, basis_[k].matrix);
    if (basis_[k].rank_one())
      archive.write(key + "_left", basis_[k].left), archive.write(key + "_right", basis_[k].right);
  }
  if (coarse_.defined()) archive.write("coarse", coarse_);
  if (inverse_.defined()) archive.write("inverse", inverse_);
  archive.write("ema_updates", c10::IValue(ema_updates_));
  archive.write("fresh", c10::IValue(fresh_));
}

void TwoLevelCorrection::load(torch::serialize::InputArchive& archive) {
  basis_.clear();
  const int64_t count = read_value(archive, "vectors").toInt();
  for (int64_t k = 0; k < count; ++k) {
    const auto key = "vector_" + std::to_string(k);
    CoarseVector r;
    r.layer = static_cast<size_t>(read_value(archive, key + "_layer").toInt());
    archive.read(key, r.matrix);
    if (archive.try_read(key + "_left", r.left)) archive.read(key + "_right", r.right);
    basis_.push_back(std::move(r));
  }
  coarse_ = at::Tensor(), inverse_ = at::Tensor();
  archive.try_read("coarse", coarse_);
  archive.try_read("inverse", inverse_);
  ema_updates_ = read_value(archive, "ema_updates").toInt();
  fresh_ = read_value(archive, "fresh").toBool();
}

}  // namespace kfac
