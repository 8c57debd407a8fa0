// Two-level preconditioning: a coarse-space correction after any one-level method (K-FAC, EKFAC, TKFAC, TEKFAC),
// after Tselepidis, Kohler & Orvieto (2020) and Koroko et al. (2023). docs/design.md (§4 decision 12, §10) records
// the decisions; this is the math.
//
// Coarse basis: one vector per layer (two with Krylov enrichment), orthonormalised within each layer so that
// R₀R₀ᵀ = I (the corrections below do not depend on the scaling of the vectors; the damping λ_c R₀R₀ᵀ does, and
// with this basis it is λ_c I):
//   nicolaides / tselepidis  r_i = 1 on every weight and bias entry of layer i
//   spectral                 r_i = the eigenvector of the layer's smallest approximate eigenvalue (Curvature::lowest_mode)
//   residual                 r_i = M_i⁻¹ ρ_i with ρ = g − (F + λI) M⁻¹g, exact F from the statistics batch
//   krylov (enrichment)      adds M_i⁻¹ r_i to each layer
// Coarse operator: Q = R₀ᵀ (F_c + λ_c I)⁻¹ R₀ with F_c ≈ R₀ F R₀ᵀ exact or Kronecker-approximated
// (src/global/coarse_matrix.h), an EMA over statistics batches while the basis is unchanged (reset when it changes),
// inverted by a guarded Cholesky in float64. Combination: CoarseCombine (kfac/global/two_level_options.h).
//
// Schedule: every `coarse_period` steps the basis is rebuilt and, if the basis changed or a statistics step arrived since,
// the coarse matrix is updated and inverted; between those steps the correction is a fixed linear map. A failed
// inversion keeps the previous inverse if the basis is unchanged, otherwise the step is one-level; both are reported.
#pragma once

#include "global/coarse_matrix.h"
#include "kfac/global/global_stage.h"
#include "kfac/global/two_level_options.h"

namespace kfac {

class TwoLevelCorrection final : public GlobalStage {
 public:
  /// Throws c10::Error for an invalid combination (Krylov enrichment of the spectral or tselepidis space).
  explicit TwoLevelCorrection(const TwoLevelOptions& options);
  std::string name() const override;
  void update(const CapturedFisher& fisher, double decay) override { fresh_ = true; }
  void prepare(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine, const StageView& pre,
               StageReport& report) override;
  std::vector<at::Tensor> apply(const std::vector<at::Tensor>& grads, std::vector<at::Tensor> fine,
                                const StageView& pre) const override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  const CoarseBasis& basis() const { return basis_; }
  /// The running coarse matrix ≈ R₀ F R₀ᵀ, undamped ([K, K], float64); undefined before the first update.
  const at::Tensor& coarse_matrix() const { return coarse_; }
  bool active() const { return inverse_.defined() && inverse_.size(0) == static_cast<int64_t>(basis_.size()); }

 private:
  CoarseBasis build_basis(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine,
                          const StageView& pre) const;

  TwoLevelOptions options_;
  CoarseBasis basis_;
  at::Tensor coarse_, inverse_;
  int64_t ema_updates_ = 0;
  bool fresh_ = false;
};

}  // namespace kfac
