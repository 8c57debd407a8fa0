// Coarse bases and coarse matrices of the two-level methods.
//
// A coarse basis is a list of vectors r_k, each supported on one layer and stored as a [d_G, d_A] matrix of that
// layer (same vec order as the gradients). R₀ has the r_k as rows: R₀x = (⟨r_k, x_layer(k)⟩)_k, R₀ᵀy = Σ_k y_k r_k.
// Rank-one vectors (Nicolaides: constant; spectral: q_G q_Aᵀ) also keep their factors u, v (r = u vᵀ), which makes
// the Kronecker coarse matrix a product of per-example scalar sums.
//
// Coarse matrices (undamped, float64, [K, K]):
//   exact      (R₀ F R₀ᵀ)_kl = (1/B) Σ_{s,b} ⟨r_k, ∇_{sb}⟩⟨r_l, ∇_{sb}⟩                       (kfac/fisher/fisher_products.h)
//   kronecker  (R₀ F̃ R₀ᵀ)_kl = vec(r_k)ᵀ (|T_m| Ā_ij ⊗ G_ij) vec(r_l), i = layer(k), j = layer(l), with the
//              cross-layer factors Ā_ij = 1/(B|T_m|) Σ_{b,t} ā_i ā_jᵀ and G_ij = 1/(B|T_m|) Σ_{s,b,t} g_i g_jᵀ on the
//              common grid T_m: each conv grid is downsampled (nearest) to the smaller height and width. For i = j
//              these are K-FAC's own factors, so the diagonal blocks are K-FAC's |T| A ⊗ G.
//              Rank-one pair: |T_m| (vᵢᵀĀ_ij v_j)(uᵢᵀG_ij u_j), from the scalars ā·v and g·u (Tselepidis' sums).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

#include "kfac/fisher/fisher_products.h"

namespace kfac {

struct CoarseVector {
  size_t layer = 0;
  at::Tensor matrix;       ///< r as a [d_G, d_A] matrix
  at::Tensor left, right;  ///< u [d_G], v [d_A] with r = u vᵀ, or undefined
  bool rank_one() const { return left.defined(); }
};
using CoarseBasis = std::vector<CoarseVector>;

/// R₀ x for per-layer matrices x, [K] in float64.
at::Tensor restrict_to_coarse(const CoarseBasis& basis, const std::vector<at::Tensor>& x);
/// R₀ᵀ y as per-layer matrices shaped like `like` (zeros where no vector lives).
std::vector<at::Tensor> prolong(const CoarseBasis& basis, const at::Tensor& y, const std::vector<at::Tensor>& like);

at::Tensor exact_coarse_matrix(const CapturedFisher& fisher, const CoarseBasis& basis);
/// The Kronecker coarse matrix of the ranks' batches together (its factors are averaged over `comm`).
at::Tensor kronecker_coarse_matrix(const CapturedFisher& fisher, const CoarseBasis& basis, Communicator& comm);

/// A layer's statistics on a coarser grid: conv locations picked by nearest-neighbour downsampling.
LayerStatistics downsample(const LayerStatistics& stats, std::array<int64_t, 2> grid);

/// Cross-layer Kronecker factors of two layers on their common grid: F_ij ≈ locations · Ā ⊗ G.
struct CrossFactors {
  at::Tensor a;  ///< Ā_ij [d_A,i, d_A,j]
  at::Tensor g;  ///< G_ij [d_G,i, d_G,j]
  int64_t locations = 1;
};
CrossFactors cross_factors(const LayerStatistics& i, const LayerStatistics& j);

}  // namespace kfac
