// K-FAC (Martens & Grosse 2015) and KFC for convolutions (Grosse & Martens 2016).
//
// Factors, per location (convention 1 of the spec, docs/design.md §4, decision 1):
//   A = 1/(B|T|) Σ_{b,t} ā āᵀ,   G = 1/(B|T|) Σ_{s,b,t} g gᵀ,   F ≈ |T| · A ⊗ G   (|T| = 1 for Linear).
// Damping λ is added to the whole block, F + λI, for Linear and Conv2d alike:
//   Factored (D1): |T|(A + πγ I) ⊗ (G + γ/π I), γ = √(λ/|T|), π = √((tr A/d_A)/(tr G/d_G)) (1 if degenerate);
//                  inverses formed at refresh with the damping of that moment.
//   Eigen (D2):    (|T| A ⊗ G + λI)⁻¹ applied exactly in the Kronecker eigenbasis with the current λ.
// A side with more rows than the option factor_full_max_dim is diagonal (kfac/linalg/factor.h): its factor is the
// full factor's diagonal, and the same formulas hold with its identity eigenbasis.
#pragma once

#include "kfac/curvature/kronecker.h"

namespace kfac {

class KfacCurvature : public KroneckerCurvature {
 public:
  explicit KfacCurvature(CurvatureContext context);
  std::string method() const override { return "kfac"; }
  void update(const LayerStatistics& stats, double decay) override;
  bool takes_sampled_positions() const override { return true; }  // A and G are means over positions
  void refresh(double damping) override { refresh_by_plan(damping); }
  std::vector<linalg::FactorRequest> plan_refresh(double damping) override;
  void finish_refresh(std::vector<linalg::FactorRequest>& decomposed, double damping) override;
  at::Tensor to_dense() const override;

  const at::Tensor& factor_a() const { return a_; }
  const at::Tensor& factor_g() const { return g_; }
  const at::Tensor& input_factor() const override { return a_; }
  const at::Tensor& output_factor() const override { return g_; }
  double kronecker_scale() const override { return static_cast<double>(locations_); }
  std::vector<std::pair<at::Tensor*, bool>> running_statistics() override {
    return {{&a_, a_.dim() == 2}, {&g_, g_.dim() == 2}};
  }
  std::string structure() const override;
  bool diagonal_by_size() const override { return a_.dim() == 1 || g_.dim() == 1; }
  /// π of the factored damping, 1 when a trace is zero or not finite.
  double pi() const;
  /// {A, G, π} with damping_mode factored; nullopt with eigen damping (its inverse is not of that form).
  c10::optional<FactoredDamping> factored_damping() const override {
    if (context_.damping_mode != DampingMode::Factored) return c10::nullopt;
    return FactoredDamping{a_, g_, pi()};
  }

 protected:
  at::Tensor precondition_impl(const at::Tensor& grad_matrix, double damping) const override;
  std::vector<std::pair<std::string, at::Tensor*>> state_tensors() override;

  at::Tensor a_, g_;                              // running factors
  at::Tensor a_inv_, g_inv_;                      // damped inverses (Factored)
  at::Tensor a_vals_, a_vecs_, g_vals_, g_vecs_;  // eigendecompositions (Eigen)
};

}  // namespace kfac
