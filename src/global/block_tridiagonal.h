// Block-tridiagonal K-FAC (Martens & Grosse 2015, §4.3): the inverse Fisher modelled as a directed chain over the
// layers, so that consecutive layers' interactions are kept.
//
// With damped blocks F̂_ii = (A_i + πγI) ⊗ (G_i + γ/π I) (K-FAC's factored damping, the same π and γ = √λ as the
// one-level K-FAC, kfac/curvature/kfac_curvature.h) and cross-layer blocks F̂_{i,i+1} = Ā_{i,i+1} ⊗ G_{i,i+1}
// (EMAs of 1/B Σ ā_i ā_{i+1}ᵀ and 1/B Σ_s g_i g_{i+1}ᵀ over statistics batches):
//   Ψ_i = F̂_{i,i+1} F̂_{i+1,i+1}⁻¹ = Ψ^A_i ⊗ Ψ^G_i,  Ψ^A_i = Ā_{i,i+1} Â_{i+1}⁻¹,  Ψ^G_i = G_{i,i+1} Ĝ_{i+1}⁻¹
//   Σ_i = F̂_ii − Ψ_i F̂_{i+1,i+1} Ψ_iᵀ = Â_i ⊗ Ĝ_i − B_i ⊗ C_i          (Σ_L = F̂_LL)
//   F̂⁻¹ = Ξᵀ Λ Ξ, Ξ = I − (Ψ_i on the block super-diagonal), Λ = diag(Σ_i⁻¹):
//     y_i = g_i − Ψ_i g_{i+1};  z_i = Σ_i⁻¹ y_i;  u_i = z_i − Ψ_{i−1}ᵀ z_{i−1}
// Σ_i⁻¹ by a generalized eigenproblem (M&G appendix B): K_A = Â^{-1/2} E_A with Â^{-1/2} B Â^{-1/2} = E_A S_A E_Aᵀ (and
// likewise for G), then Σ⁻¹ vec(Y) = vec(K_G [(K_Gᵀ Y K_A) ⊘ (1 − s_G s_Aᵀ)] K_Aᵀ). Denominators below 1e-6 are
// clamped (reported): the Kronecker approximation does not guarantee Σ_i ≻ 0.
// Only consecutive Linear layers are coupled; at any other pair the chain breaks (Ψ = 0) and the layer uses its
// one-level K-FAC block. The F̂ it defines agrees with K-FAC's damped blocks on the block diagonal and with the
// cross factors on the first off-diagonals, and F̂⁻¹ is block-tridiagonal (tested). Needs method "kfac" with
// factored damping. The links are recomputed whenever K-FAC refreshes its decompositions.
#pragma once

#include "kfac/global/global_stage.h"

namespace kfac {

class BlockTridiagonal final : public GlobalStage {
 public:
  std::string name() const override { return "block-tridiagonal K-FAC"; }
  void update(const CapturedFisher& fisher, double decay) override;
  void prepare(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& fine, const StageView& pre,
               StageReport& report) override;
  std::vector<at::Tensor> apply(const std::vector<at::Tensor>& grads, std::vector<at::Tensor> fine,
                                const StageView& pre) const override;
  std::vector<at::Tensor*> running_statistics() override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// Whether layers i and i+1 are coupled.
  bool coupled(size_t i) const { return i < cross_a_.size() && cross_a_[i].defined(); }
  const at::Tensor& cross_a(size_t i) const { return cross_a_.at(i); }
  const at::Tensor& cross_g(size_t i) const { return cross_g_.at(i); }

 private:
  struct Link {               // coupling of layer i to layer i+1, formed at refresh
    at::Tensor psi_a, psi_g;  // Ψ^A_i, Ψ^G_i
    at::Tensor k_a, k_g;      // generalized eigenvectors
    at::Tensor denominator;   // 1 − s_G s_Aᵀ, [d_G, d_A]
  };

  std::vector<at::Tensor> cross_a_, cross_g_;  // Ā_{i,i+1}, G_{i,i+1} (undefined: not coupled)
  std::vector<Link> links_;
  int64_t updates_ = 0;
};

}  // namespace kfac
