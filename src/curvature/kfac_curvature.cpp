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

void KfacCurvature::update(const LayerStatistics& given, double decay) {
  const auto stats = in_product_dtype(given);
  note_update(stats);
  const double rows = static_cast<double>(stats.examples() * stats.locations());
  // new = decay·old + (1 − decay)·XᵀX/rows, in place (X: every example's every location as a row).
  linalg::factor_update_(a_, stats.a, decay, (1.0 - decay) / rows);
  linalg::factor_update_(g_, stats.g, decay, (1.0 - decay) / rows);
}

double KfacCurvature::pi() const { return linalg::factored_damping_pi(a_, g_); }

std::vector<linalg::FactorRequest> KfacCurvature::plan_refresh(double damping) {
  using linalg::FactorRequest;
  const double floor = context_.numerics.eigenvalue_floor();
  if (context_.damping_mode == DampingMode::Eigen) {
    const int64_t k = context_.numerics.eigenbasis_iterations();
    return {FactorRequest::eig_of(a_, what("factor A"), floor, a_vecs_, k),
            FactorRequest::eig_of(g_, what("factor G"), floor, g_vecs_, k)};
  }
  const double p = pi(), gamma = std::sqrt(damping / static_cast<double>(locations_));
  const bool cholesky = inverts_by_cholesky(context_.damping_mode, context_.numerics);
  return {FactorRequest::damped_inverse_of(a_, p * gamma, cholesky, floor, what("factor A")),
          FactorRequest::damped_inverse_of(g_, gamma / p, cholesky, floor, what("factor G"))};
}

void KfacCurvature::finish_refresh(std::vector<linalg::FactorRequest>& d, double /*damping*/) {
  linalg::throw_if_failed(d);
  if (context_.damping_mode == DampingMode::Eigen) {
    a_vals_ = d[0].eig.values, a_vecs_ = d[0].eig.vectors, g_vals_ = d[1].eig.values, g_vecs_ = d[1].eig.vectors;
  } else {
    a_inv_ = d[0].inverse, g_inv_ = d[1].inverse;
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
