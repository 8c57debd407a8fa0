#include "kfac/curvature/tkfac_curvature.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/curvature/per_example.h"
#include "kfac/linalg/psd.h"

namespace kfac {

const OptionTable<TraceDampingOptions>& TraceDampingOptions::table() {
  using O = TraceDampingOptions;
  static const OptionTable<O> t(
      "tkfac", "TKFAC and TEKFAC",
      {field<O>(
          KFAC_FIELD(O, trace_damping),
          "normal ((√δ Φ + √λ I) ⊗ (√δ Ψ + √λ I)) or trace-relative (δ (Φ + √λ I) ⊗ (Ψ + √λ I), for conv nets)")});
  return t;
}

namespace {
constexpr double kTiny = 1e-30;  // guards divisions by a zero trace (all-zero statistics)
double positive(double x) { return std::isfinite(x) && x > kTiny ? x : kTiny; }
}  // namespace

TkfacCurvature::TkfacCurvature(CurvatureContext context) : KroneckerCurvature(std::move(context)) {
  const auto& s = shape();
  phi_raw_ = at::zeros({s.dim_a, s.dim_a}, context_.tensor_options);
  psi_raw_ = at::zeros({s.dim_g, s.dim_g}, context_.tensor_options);
  delta_ = at::zeros({}, context_.tensor_options);
}

void TkfacCurvature::update(const LayerStatistics& stats, double decay) {
  note_update(stats);
  const double examples = static_cast<double>(stats.examples());
  const double t = static_cast<double>(stats.locations());
  const auto tr_lambda = stats.a.pow(2).sum(at::IntArrayRef{1, 2});                       // [B]  tr Λ_b
  const auto tr_gamma = stats.g.pow(2).sum(at::IntArrayRef{0, 2, 3}) / t;                 // [B]  tr Γ_b
  const auto a = stats.a;                                                                 // [B, T, dA]
  const auto g = stats.g.transpose(0, 1).reshape({stats.examples(), -1, shape().dim_g});  // [B, S·T, dG]
  // Σ_b w_b X_bᵀ X_b as one product: scale each example's rows by √w_b.
  const auto a_w = (a * tr_gamma.sqrt().view({-1, 1, 1})).reshape({-1, shape().dim_a});
  const auto g_w = (g * tr_lambda.sqrt().view({-1, 1, 1})).reshape({-1, shape().dim_g});
  linalg::gram_update_(phi_raw_, a_w, decay, (1.0 - decay) / examples);
  linalg::gram_update_(psi_raw_, g_w, decay, (1.0 - decay) / (examples * t));
  delta_.mul_(decay).add_(gradient_sq_norms(stats).mean(), 1.0 - decay);
}

TkfacCurvature::Scalars TkfacCurvature::read_scalars() const {
  const auto read =
      at::stack({delta_.to(at::kDouble), phi_raw_.trace().to(at::kDouble), psi_raw_.trace().to(at::kDouble)}).cpu();
  const double* v = read.data_ptr<double>();
  return {v[0], v[1], v[2]};
}

double TkfacCurvature::kronecker_scale() const {
  const auto s = read_scalars();
  return s.delta / (positive(s.trace_phi) * positive(s.trace_psi));
}

at::Tensor TkfacCurvature::damped_spectrum(const at::Tensor& spectrum, double damping) const {
  return context_.method_options.get<TraceDampingOptions>().trace_damping() == TraceDamping::Normal
             ? spectrum + damping
             : spectrum + delta_ * damping;  // λδ without reading δ on the host
}

std::vector<linalg::FactorRequest> TkfacCurvature::plan_refresh(double damping) {
  const auto s = read_scalars();
  const double delta = planned_delta_ = positive(s.delta);  // finish_refresh scales by the same δ
  const auto phi = phi_raw_ / positive(s.trace_phi);
  const auto psi = psi_raw_ / positive(s.trace_psi);
  // Both forms are (s·Φ + c I) ⊗ (s·Ψ + c I) up to a scalar, folded into the inverses by finish_refresh.
  const bool relative = context_.method_options.get<TraceDampingOptions>().trace_damping() ==
                        TraceDamping::TraceRelative;
  const double shift = std::sqrt(damping) / (relative ? 1.0 : std::sqrt(delta));
  const double floor = context_.numerics.eigenvalue_floor();
  const bool cholesky = inverts_by_cholesky(context_.damping_mode, context_.numerics);
  return {linalg::FactorRequest::damped_inverse_of(phi, shift, cholesky, floor, what("factor Phi")),
          linalg::FactorRequest::damped_inverse_of(psi, shift, cholesky, floor, what("factor Psi"))};
}

void TkfacCurvature::finish_refresh(std::vector<linalg::FactorRequest>& d, double /*damping*/) {
  linalg::throw_if_failed(d);
  const double scale = 1.0 / std::sqrt(planned_delta_);  // (√δ(X + c I))⁻¹ = (X + c I)⁻¹ / √δ
  phi_inv_ = d[0].inverse * scale, psi_inv_ = d[1].inverse * scale;
  mark_ready();
}

at::Tensor TkfacCurvature::precondition_impl(const at::Tensor& v, double damping) const {
  return psi_inv_.mm(v).mm(phi_inv_);
}

at::Tensor TkfacCurvature::to_dense() const { return at::kron(phi_raw_, psi_raw_) * kronecker_scale(); }

std::vector<std::pair<std::string, at::Tensor*>> TkfacCurvature::state_tensors() {
  return {{"Phi_raw", &phi_raw_},
          {"Psi_raw", &psi_raw_},
          {"delta", &delta_},
          {"Phi_inv", &phi_inv_},
          {"Psi_inv", &psi_inv_}};
}

}  // namespace kfac
