#include "kfac/curvature/kfac_curvature.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/linalg/factor.h"

namespace kfac {

KfacCurvature::KfacCurvature(CurvatureContext context) : KroneckerCurvature(std::move(context)) {
  const auto& s = shape();
  const int64_t full_max = context_.layers.factor_full_max_dim();
  a_ = linalg::zero_factor(s.dim_a, linalg::factor_is_full(s.dim_a, full_max), context_.tensor_options);
  g_ = linalg::zero_factor(s.dim_g, linalg::factor_is_full(s.dim_g, full_max), context_.tensor_options);
}

void KfacCurvature::update(const LayerStatistics& stats, double decay) {
  note_update(stats);
  const double rows = static_cast<double>(stats.examples() * stats.locations());
  // new = decay·old + (1 − decay)·XᵀX/rows, in place (X: every example's every location as a row).
  linalg::factor_update_(a_, stats.a, decay, (1.0 - decay) / rows);
  linalg::factor_update_(g_, stats.g, decay, (1.0 - decay) / rows);
}

double KfacCurvature::pi() const {
  const double pi = std::sqrt(linalg::factor_mean_eigenvalue(a_) / linalg::factor_mean_eigenvalue(g_));
  return std::isfinite(pi) && pi > 0 ? pi : 1.0;
}

void KfacCurvature::refresh(double damping) {
  const double floor = context_.numerics.eigenvalue_floor();
  if (context_.damping_mode == DampingMode::Eigen) {
    const int64_t k = context_.numerics.eigenbasis_iterations();
    auto ea = linalg::factor_eig_refined(a_, a_vecs_, k, what("factor A"), floor);
    auto eg = linalg::factor_eig_refined(g_, g_vecs_, k, what("factor G"), floor);
    a_vals_ = ea.values, a_vecs_ = ea.vectors, g_vals_ = eg.values, g_vecs_ = eg.vectors;
  } else {
    const double p = pi(), gamma = std::sqrt(damping / static_cast<double>(locations_));
    const bool cholesky = inverts_by_cholesky(context_.damping_mode, context_.numerics);
    auto ai = linalg::factor_damped_inverse(a_, p * gamma, cholesky, floor, what("factor A"));
    auto gi = linalg::factor_damped_inverse(g_, gamma / p, cholesky, floor, what("factor G"));
    a_inv_ = ai, g_inv_ = gi;
  }
  mark_ready();
}

at::Tensor KfacCurvature::precondition_impl(const at::Tensor& v, double damping) const {
  const double t = static_cast<double>(locations_);
  if (context_.damping_mode == DampingMode::Factored) {
    auto out = linalg::right_multiply(linalg::left_multiply(g_inv_, v), a_inv_);
    return t == 1.0 ? out : out.div_(t);
  }
  const auto v_kfe = linalg::right_multiply(linalg::left_multiply_t(g_vecs_, v), a_vecs_);
  const auto scale = at::outer(g_vals_, a_vals_) * t + damping;
  return linalg::left_multiply(g_vecs_, linalg::right_multiply_t(v_kfe / scale, a_vecs_));
}

at::Tensor KfacCurvature::to_dense() const {
  return at::kron(linalg::factor_dense(a_), linalg::factor_dense(g_)) * static_cast<double>(locations_);
}

std::string KfacCurvature::structure() const {
  return "A " + std::to_string(shape().dim_a) + (linalg::is_diagonal_factor(a_) ? " diagonal" : "") + " x G " +
         std::to_string(shape().dim_g) + (linalg::is_diagonal_factor(g_) ? " diagonal" : "");
}

std::vector<std::pair<std::string, at::Tensor*>> KfacCurvature::state_tensors() {
  return {{"A", &a_},           {"G", &g_},           {"A_inv", &a_inv_},   {"G_inv", &g_inv_},
          {"A_vals", &a_vals_}, {"A_vecs", &a_vecs_}, {"G_vals", &g_vals_}, {"G_vecs", &g_vecs_}};
}

}  // namespace kfac
