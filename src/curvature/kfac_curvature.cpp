#include "kfac/curvature/kfac_curvature.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/linalg/psd.h"

namespace kfac {

KfacCurvature::KfacCurvature(CurvatureContext context) : KroneckerCurvature(std::move(context)) {
  const auto& s = shape();
  a_ = at::zeros({s.dim_a, s.dim_a}, context_.tensor_options);
  g_ = at::zeros({s.dim_g, s.dim_g}, context_.tensor_options);
}

void KfacCurvature::update(const LayerStatistics& stats, double decay) {
  note_update(stats);
  const double rows = static_cast<double>(stats.examples() * stats.locations());
  // new = decay·old + (1 − decay)·XᵀX/rows, in place (X: every example's every location as a row).
  linalg::gram_update_(a_, stats.a, decay, (1.0 - decay) / rows);
  linalg::gram_update_(g_, stats.g, decay, (1.0 - decay) / rows);
}

double KfacCurvature::pi() const {
  const double ta = a_.trace().item<double>() / shape().dim_a;
  const double tg = g_.trace().item<double>() / shape().dim_g;
  const double pi = std::sqrt(ta / tg);
  return std::isfinite(pi) && pi > 0 ? pi : 1.0;
}

void KfacCurvature::refresh(double damping) {
  const double floor = context_.numerics.eigenvalue_floor();
  if (context_.damping.damping_mode() == DampingMode::Eigen) {
    auto ea = linalg::eigh_psd(a_, what("factor A"), floor);
    auto eg = linalg::eigh_psd(g_, what("factor G"), floor);
    a_vals_ = ea.values, a_vecs_ = ea.vectors, g_vals_ = eg.values, g_vecs_ = eg.vectors;
  } else {
    const double p = pi(), gamma = std::sqrt(damping / static_cast<double>(locations_));
    at::Tensor ai, gi;
    if (inverts_by_cholesky(context_.damping, context_.numerics)) {
      ai = linalg::cholesky_inverse_psd(a_, p * gamma, what("factor A"));
      gi = linalg::cholesky_inverse_psd(g_, gamma / p, what("factor G"));
    } else {
      ai = linalg::inverse_from_eig(linalg::eigh_psd(a_, what("factor A"), floor), p * gamma);
      gi = linalg::inverse_from_eig(linalg::eigh_psd(g_, what("factor G"), floor), gamma / p);
    }
    a_inv_ = ai, g_inv_ = gi;
  }
  mark_ready();
}

at::Tensor KfacCurvature::precondition_impl(const at::Tensor& v, double damping) const {
  const double t = static_cast<double>(locations_);
  if (context_.damping.damping_mode() == DampingMode::Factored) {
    auto out = g_inv_.mm(v).mm(a_inv_);
    return t == 1.0 ? out : out.div_(t);
  }
  const auto v_kfe = g_vecs_.t().mm(v).mm(a_vecs_);
  const auto scale = at::outer(g_vals_, a_vals_) * t + damping;
  return g_vecs_.mm(v_kfe / scale).mm(a_vecs_.t());
}

at::Tensor KfacCurvature::to_dense() const { return at::kron(a_, g_) * static_cast<double>(locations_); }

std::vector<std::pair<std::string, at::Tensor*>> KfacCurvature::state_tensors() {
  return {{"A", &a_},           {"G", &g_},           {"A_inv", &a_inv_},   {"G_inv", &g_inv_},
          {"A_vals", &a_vals_}, {"A_vecs", &a_vecs_}, {"G_vals", &g_vals_}, {"G_vecs", &g_vecs_}};
}

}  // namespace kfac
