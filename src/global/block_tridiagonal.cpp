#include "global/block_tridiagonal.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <array>
#include <cmath>

#include "kfac/errors.h"
#include "kfac/global/stage_registry.h"
#include "kfac/linalg/factor.h"
#include "util/serialize.h"

namespace kfac {

namespace {
constexpr double kMinDenominator = 1e-6;

// Â = m + shift·I as (inverse, inverse square root), from one guarded eigendecomposition.
std::pair<at::Tensor, at::Tensor> damped_inverses(const at::Tensor& m, double shift, const std::string& what) {
  const auto e = linalg::eigh_psd(m, what);
  const auto d = e.values + shift;
  return {linalg::inverse_from_eig(e, shift), e.vectors.mm(at::diag(d.rsqrt())).mm(e.vectors.t())};
}

// K with Kᵀ Â K = I and Kᵀ B K = diag(s), from Â^{-1/2} and B.
std::pair<at::Tensor, at::Tensor> generalized_eig(const at::Tensor& inv_sqrt, const at::Tensor& b,
                                                  const std::string& what) {
  const auto e = linalg::eigh_psd(inv_sqrt.mm(b).mm(inv_sqrt), what);
  return {inv_sqrt.mm(e.vectors), e.values};
}
}  // namespace

void BlockTridiagonal::update(const CapturedFisher& fisher, double decay) {
  const size_t layers = fisher.layers();
  cross_a_.resize(layers > 0 ? layers - 1 : 0);
  cross_g_.resize(cross_a_.size());
  ++updates_;
  for (size_t i = 0; i + 1 < layers; ++i) {
    const auto& s = fisher.statistics(i);
    const auto& t = fisher.statistics(i + 1);
    if (s.locations() != 1 || t.locations() != 1) continue;  // only Linear–Linear pairs are coupled
    const double examples = static_cast<double>(s.examples());
    const auto a = s.a.squeeze(1).t().mm(t.a.squeeze(1)) / examples;
    const auto g = s.g.reshape({-1, s.g.size(-1)}).t().mm(t.g.reshape({-1, t.g.size(-1)})) / examples;
    cross_a_[i] = cross_a_[i].defined() ? decay * cross_a_[i] + (1 - decay) * a : a;
    cross_g_[i] = cross_g_[i].defined() ? decay * cross_g_[i] + (1 - decay) * g : g;
  }
}

void BlockTridiagonal::prepare(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine,
                               const StageView& pre, StageReport& report) {
  const bool built = links_.size() == cross_a_.size() && !cross_a_.empty();
  if (cross_a_.empty() || (built && !report.refreshed)) return;
  const double gamma = std::sqrt(pre.damping());
  std::vector<Link> links(cross_a_.size());
  int64_t clamped = 0;
  try {
    // Each layer's damped factors are decomposed once: (inverse, inverse square root) of Â and Ĝ.
    std::vector<std::array<std::pair<at::Tensor, at::Tensor>, 2>> damped(cross_a_.size() + 1);
    for (size_t i = 0; i <= cross_a_.size(); ++i) {
      if (!coupled(i) && !(i > 0 && coupled(i - 1))) continue;
      const auto& c = pre.curvature(i);
      const auto f = c.factored_damping();
      KFAC_CHECK(f, "block-tridiagonal K-FAC couples layers through K-FAC's factored damping, but layer '",
                 c.layer_name(), "' has a ", c.method(), " block; use global_stage none, or leave it out of K-FAC");
      const auto what = "block-tridiagonal: " + c.layer_name();
      damped[i][0] = damped_inverses(linalg::factor_dense(f->a), f->pi * gamma, what + " (A)");
      damped[i][1] = damped_inverses(linalg::factor_dense(f->g), gamma / f->pi, what + " (G)");
    }
    for (size_t i = 0; i < cross_a_.size(); ++i) {
      if (!coupled(i)) continue;
      const std::string what = "block-tridiagonal link '" + pre.curvature(i).layer_name() + "' → '" +
                               pre.curvature(i + 1).layer_name() + "'";
      auto& link = links[i];
      link.psi_a = cross_a_[i].mm(damped[i + 1][0].first);
      link.psi_g = cross_g_[i].mm(damped[i + 1][1].first);
      at::Tensor s_a, s_g;
      std::tie(link.k_a, s_a) = generalized_eig(damped[i][0].second, link.psi_a.mm(cross_a_[i].t()), what + " (A)");
      std::tie(link.k_g, s_g) = generalized_eig(damped[i][1].second, link.psi_g.mm(cross_g_[i].t()), what + " (G)");
      const auto denominator = 1 - at::outer(s_g, s_a);
      clamped += (denominator < kMinDenominator).sum().item<int64_t>();
      link.denominator = denominator.clamp_min(kMinDenominator);
    }
  } catch (const NumericalError& e) {
    report.messages.push_back(std::string(e.what()) +
                              (built ? " (keeping the previous block-tridiagonal links)" : " (block-diagonal step)"));
    return;
  }
  if (clamped > 0)
    report.messages.push_back("block-tridiagonal K-FAC: " + std::to_string(clamped) +
                              " conditional-covariance "
                              "eigenvalues were not positive and were clamped to " +
                              std::to_string(kMinDenominator));
  links_ = std::move(links);
}

std::vector<at::Tensor> BlockTridiagonal::apply(const std::vector<at::Tensor>& grads, std::vector<at::Tensor> fine,
                                                const StageView& pre) const {
  if (links_.size() != cross_a_.size() || links_.empty()) return fine;
  const size_t n = grads.size();
  auto linked = [&](size_t i) { return i < links_.size() && links_[i].psi_a.defined(); };
  std::vector<at::Tensor> z(n);
  for (size_t i = 0; i < n; ++i) {
    if (!linked(i)) {
      z[i] = fine[i];  // y_i = g_i and Σ_i = F̂_ii: the one-level direction
      continue;
    }
    const auto& l = links_[i];
    const auto dtype = l.psi_a.scalar_type();
    const auto y = grads[i].to(dtype) - l.psi_g.mm(grads[i + 1].to(dtype)).mm(l.psi_a.t());
    z[i] = l.k_g.mm(l.k_g.t().mm(y).mm(l.k_a) / l.denominator).mm(l.k_a.t()).to(grads[i].scalar_type());
  }
  for (size_t i = n; i-- > 1;) {
    if (!linked(i - 1)) continue;
    const auto& l = links_[i - 1];
    const auto back = l.psi_g.t().mm(z[i - 1].to(l.psi_a.scalar_type())).mm(l.psi_a);
    z[i] = z[i] - back.to(z[i].scalar_type());
  }
  return z;
}

std::vector<at::Tensor*> BlockTridiagonal::running_statistics() {
  std::vector<at::Tensor*> out;
  for (size_t i = 0; i < cross_a_.size(); ++i)
    if (coupled(i)) out.push_back(&cross_a_[i]), out.push_back(&cross_g_[i]);
  return out;
}

void BlockTridiagonal::save(torch::serialize::OutputArchive& archive) const {
  archive.write("updates", c10::IValue(updates_));
  archive.write("pairs", c10::IValue(static_cast<int64_t>(cross_a_.size())));
  archive.write("links", c10::IValue(static_cast<int64_t>(links_.size())));
  auto put = [&](const std::string& key, const at::Tensor& t) {
    if (t.defined()) archive.write(key, t);
  };
  for (size_t i = 0; i < cross_a_.size(); ++i) {
    const auto k = std::to_string(i);
    put("cross_a_" + k, cross_a_[i]);
    put("cross_g_" + k, cross_g_[i]);
  }
  for (size_t i = 0; i < links_.size(); ++i) {
    const auto k = std::to_string(i);
    const auto& l = links_[i];
    put("psi_a_" + k, l.psi_a), put("psi_g_" + k, l.psi_g), put("k_a_" + k, l.k_a), put("k_g_" + k, l.k_g);
    put("denominator_" + k, l.denominator);
  }
}

void BlockTridiagonal::load(torch::serialize::InputArchive& archive) {
  updates_ = read_value(archive, "updates").toInt();
  cross_a_.assign(static_cast<size_t>(read_value(archive, "pairs").toInt()), at::Tensor());
  cross_g_.assign(cross_a_.size(), at::Tensor());
  links_.assign(static_cast<size_t>(read_value(archive, "links").toInt()), Link{});
  for (size_t i = 0; i < cross_a_.size(); ++i) {
    const auto k = std::to_string(i);
    archive.try_read("cross_a_" + k, cross_a_[i]);
    archive.try_read("cross_g_" + k, cross_g_[i]);
  }
  for (size_t i = 0; i < links_.size(); ++i) {
    const auto k = std::to_string(i);
    auto& l = links_[i];
    archive.try_read("psi_a_" + k, l.psi_a), archive.try_read("psi_g_" + k, l.psi_g);
    archive.try_read("k_a_" + k, l.k_a), archive.try_read("k_g_" + k, l.k_g);
    archive.try_read("denominator_" + k, l.denominator);
  }
}

GlobalStageEntry block_tridiagonal_stage() {
  GlobalStageEntry entry;
  entry.make = [](const GlobalStageContext& c) -> std::unique_ptr<GlobalStage> {
    KFAC_CHECK(c.method == "kfac" && c.damping_mode == DampingMode::Factored,
               "block-tridiagonal K-FAC is built from K-FAC's factored damping: it needs method 'kfac' and "
               "damping_mode 'factored', got method '",
               c.method, "' and damping_mode '", to_string(c.damping_mode), "'");
    return std::make_unique<BlockTridiagonal>();
  };
  return entry;
}

}  // namespace kfac
