// Options of the global stage that runs after the per-layer (one-level) preconditioning: the two-level coarse-space
// corrections (Tselepidis, Kohler & Orvieto 2020; Koroko et al. 2023) and block-tridiagonal K-FAC (Martens &
// Grosse 2015 §4.3). The math is in kfac/global/two_level.h and kfac/global/block_tridiagonal.h; the decisions in
// docs/design.md ("Two-level").
#pragma once

#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>

namespace kfac {

/// Which coarse space (or global stage) follows the per-layer preconditioning.
enum class CoarseSpace {
  None,              ///< one-level: the per-layer directions are final
  Nicolaides,        ///< one constant vector per layer (weights and bias)
  Spectral,          ///< the eigenvector of each layer's smallest approximate-Fisher eigenvalue
  Residual,          ///< r_i = M_i⁻¹ ρ_i, ρ = g − (F + λI) M⁻¹g the residual of the one-level solution
  Tselepidis,        ///< constant vectors, coarse matrix from cross-layer Kronecker factors (Tselepidis et al.)
  BlockTridiagonal,  ///< not a correction: block-tridiagonal K-FAC replaces the block-diagonal inverse
};

/// How the coarse matrix R₀ F R₀ᵀ is formed.
enum class CoarseMatrix {
  Exact,      ///< from the per-example gradients of the statistics batch (no approximation)
  Kronecker,  ///< from cross-layer Kronecker factors F_ij ≈ |T| Ā_ij ⊗ G_ij (conv grids matched by downsampling)
};

/// How the coarse correction Q = R₀ᵀ (R₀(F + λI)R₀ᵀ)⁻¹ R₀ and the one-level M⁻¹ combine (A = F + λI, ω = weight).
enum class CoarseCombine {
  Additive,  ///< v = M⁻¹g + ωQg: both papers' code
  Residual,  ///< v = x₀ + ωQ(g − A x₀), x₀ = M⁻¹g: coarse correction of the one-level residual (deflated RHS)
  Deflated,  ///< v = x₀ + M⁻¹(g − A x₀), x₀ = ωQg: coarse first, then the one-level solve of what is left
  Balanced,  ///< v = ωQg + (I − ωQA) M⁻¹ (I − AωQ) g: both (balancing Neumann–Neumann)
};

struct TwoLevelOptions {
  /// The coarse matrix in effect: matrix(), or the space's default.
  CoarseMatrix matrix_or_default() const {
    return matrix().value_or(space() == CoarseSpace::Tselepidis ? CoarseMatrix::Kronecker : CoarseMatrix::Exact);
  }

  /// Coarse space / global stage. Default None (one-level).
  TORCH_ARG(CoarseSpace, space) = CoarseSpace::None;
  /// Coarse matrix; nullopt = Kronecker for Tselepidis, Exact for the other spaces.
  TORCH_ARG(c10::optional<CoarseMatrix>, matrix) = c10::nullopt;
  /// Combination of the levels. Default Additive.
  TORCH_ARG(CoarseCombine, combine) = CoarseCombine::Additive;
  /// Krylov enrichment: add M_i⁻¹ r_i to each layer's vector r_i (Nicolaides or Residual only). Default false.
  TORCH_ARG(bool, krylov) = false;
  /// ω, the weight of the coarse correction. >= 0 (0 gives the one-level direction). Default 1.
  TORCH_ARG(double, weight) = 1.0;
  /// λ_c, the coarse damping (added as λ_c R₀R₀ᵀ); nullopt = the preconditioner's damping λ.
  TORCH_ARG(c10::optional<double>, damping) = c10::nullopt;
  /// Steps between updates of the coarse basis and matrix. >= 1. Default 1. (Block-tridiagonal K-FAC follows the
  /// one-level refresh period instead.)
  TORCH_ARG(int64_t, period) = 1;
  /// Cap of the coarse matrix's EMA over statistics batches with an unchanged basis. In [0, 1). Default 0.95.
  TORCH_ARG(double, ema_decay) = 0.95;
};

std::string to_string(CoarseSpace space);
std::string to_string(CoarseMatrix matrix);
std::string to_string(CoarseCombine combine);
CoarseSpace parse_coarse_space(const std::string& name);
CoarseMatrix parse_coarse_matrix(const std::string& name);
CoarseCombine parse_coarse_combine(const std::string& name);

}  // namespace kfac
