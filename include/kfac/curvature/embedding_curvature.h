// The block of an Embedding (kfac/layers/embedding_kind.h): K-FAC with a diagonal input factor, or its eigenvalue
// correction, following the method option ("kfac" or "ekfac"; the trace-restricted methods are refused).
//
// With ids v_{n,t} and output gradients g_{n,t} (rows s of the statistics pass folded in as for every layer):
//   expand:  a_v = (1/(NT)) #{(n,t): v_{n,t} = v},    G = (1/(NT)) Σ_{n,t} g gᵀ,    F ≈ T · diag(a) ⊗ G
//   reduce:  a_v = (1/N) Σ_n (c_{n,v}/T)²  (c: per-example counts; the diagonal of the reduce factor, whose
//            off-diagonal entries, pairs of tokens in one sequence, are dropped),  G = (1/N) Σ_n ĝ ĝᵀ, ĝ = Σ_t g,  F ≈ diag(a) ⊗ G
// Damping as for every Kronecker block: factored (diag(a) + π√(λ/T)) ⊗ (G + √(λ/T)/π) (times T), or exact in the
// eigenbasis I ⊗ Q_G. EKFAC keeps the spectrum S = E[(Q_Gᵀ ∇)^∘2] ([d, V]) of the per-example gradients
// ∇_n = Σ_t g_{n,t} e_{v_{n,t}}ᵀ (expand) or ĝ_n (c_n/T)ᵀ (reduce), formed from the (example, token) pairs that
// occur, never from one-hot rows.
#pragma once

#include "kfac/curvature/curvature.h"
#include "kfac/curvature/eigen_corrected.h"

namespace kfac {

class EmbeddingCurvature final : public Curvature {
 public:
  explicit EmbeddingCurvature(CurvatureContext context);
  std::string method() const override { return corrected_ ? "ekfac" : "kfac"; }
  std::string structure() const override {
    return "A " + std::to_string(shape().dim_a) + " diagonal x G " + std::to_string(shape().dim_g);
  }
  void update(const LayerStatistics& stats, double decay) override;
  void refresh(double damping) override { refresh_by_plan(damping); }
  /// G's eigenbasis (ekfac, damping_mode eigen; refined like every factor's: eigenbasis_iterations), or the damped
  /// inverses of diag(a) and G: batched with the other layers' factors.
  std::vector<linalg::FactorRequest> plan_refresh(double damping) override;
  void finish_refresh(std::vector<linalg::FactorRequest>& decomposed, double damping) override;
  /// [V·d]²: only for small vocabularies (tests).
  at::Tensor to_dense() const override;
  std::vector<std::pair<at::Tensor*, bool>> running_statistics() override;
  std::vector<at::Tensor*> refreshed_state() override;
  std::unique_ptr<Curvature> make_twin() const override { return std::make_unique<EmbeddingCurvature>(context_); }
  const at::Tensor& factor_a() const { return a_; }  ///< the diagonal of A, [V]
  const at::Tensor& factor_g() const { return g_; }

 protected:
  at::Tensor precondition_impl(const at::Tensor& grad_matrix, double damping) const override;
  std::vector<std::pair<std::string, at::Tensor*>> state_tensors() override;
  int64_t input_width() const override { return 1; }  // ā holds the token id

 private:
  /// Sums `values` [S, B, T, k] over the positions of each (example, token) pair: returns the pairs' tokens [P],
  /// their examples [P] and the sums [S, P, k].
  struct Pairs {
    at::Tensor tokens, examples, sums, counts;
  };
  Pairs by_pair(const at::Tensor& ids, const at::Tensor& values) const;
  bool has_eigenbasis() const { return corrected_ || context_.damping_mode == DampingMode::Eigen; }

  bool corrected_;
  EigenCorrectedOptions options_;
  at::Tensor a_, g_;            ///< running statistics: diag(A) [V], G [d, d]
  at::Tensor a_inv_, g_inv_;    ///< factored damping
  at::Tensor g_vals_, g_vecs_;  ///< eigen damping and EKFAC's basis
  at::Tensor spectrum_;         ///< EKFAC: [d, V]
};

}  // namespace kfac
