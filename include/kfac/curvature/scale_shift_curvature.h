// The block of a scale-and-shift layer (kfac/layers/scale_shift_kind.h): the Fisher of (γ, β) from per-example
// gradients u_sb = [Σ_t g ⊙ x̂; Σ_t g] (the first part alone without a shift: RMSNorm), F = (1/B) Σ_{s,b} u uᵀ,
// kept as an EMA like every factor. Full (kd × kd, k = 2 or 1, eigendecomposed at each refresh, or its previous
// basis refined with eigenbasis_iterations, so the current λ applies exactly: Q (Λ + λI)⁻¹ Qᵀ) when d ≤
// norm_full_max_features; otherwise its diagonal, (diag F + λ)⁻¹ elementwise. Damping is always exact Tikhonov;
// damping_mode (a Kronecker notion) does not apply.
#pragma once

#include "kfac/curvature/curvature.h"

namespace kfac {

class ScaleShiftCurvature final : public Curvature {
 public:
  explicit ScaleShiftCurvature(CurvatureContext context);
  std::string method() const override { return "scale-shift"; }
  std::string form() const override { return full_ ? "full" : "diagonal"; }
  std::string structure() const override {
    return (shape().dim_a == 2 ? "(scale, shift) " : "(scale) ") + std::to_string(shape().dim_a * shape().dim_g) +
           (full_ ? "" : " diagonal");
  }
  void update(const LayerStatistics& stats, double decay) override;
  void refresh(double damping) override;
  std::vector<linalg::FactorRequest> plan_refresh(double damping) override;
  void finish_refresh(std::vector<linalg::FactorRequest>& decomposed, double damping) override;
  at::Tensor to_dense() const override;
  std::vector<std::pair<at::Tensor*, bool>> running_statistics() override;
  bool full() const { return full_; }
  std::unique_ptr<Curvature> make_twin() const override { return std::make_unique<ScaleShiftCurvature>(context_); }

 protected:
  at::Tensor precondition_impl(const at::Tensor& grad_matrix, double damping) const override;
  std::vector<std::pair<std::string, at::Tensor*>> state_tensors() override;
  int64_t input_width() const override { return shape().dim_g; }  // ā = x̂, d features

 private:
  bool full_;
  at::Tensor block_;        ///< full: [2d, 2d]; diagonal: [2d]
  at::Tensor vals_, vecs_;  ///< full: its eigendecomposition as of the last refresh
};

}  // namespace kfac
