// Options of the two-level coarse-space correction (Tselepidis, Kohler & Orvieto 2020; Koroko et al. 2023), the
// global stage "two-level" (src/global/two_level.h has the math; docs/design.md §4 decision 12 and §10 the decisions):
//
//   kfac::PreconditionerOptions().global_stage("two-level").with(kfac::two_level(kfac::CoarseSpace::Residual))
#pragma once

#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>

#include "kfac/util/option_table.h"

namespace kfac {

/// The coarse space of a two-level correction.
enum class CoarseSpace {
  Nicolaides,  ///< one constant vector per layer (weights and bias)
  Spectral,    ///< the eigenvector of each layer's smallest approximate-Fisher eigenvalue
  Residual,    ///< r_i = M_i⁻¹ ρ_i, ρ = g − (F + λI) M⁻¹g the residual of the one-level solution
  Tselepidis,  ///< constant vectors, coarse matrix from cross-layer Kronecker factors (Tselepidis et al.)
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

template <>
struct EnumNames<CoarseSpace> {
  static constexpr const char* what = "coarse space";
  static constexpr std::array<std::pair<CoarseSpace, const char*>, 4> names{{{CoarseSpace::Nicolaides, "nicolaides"},
                                                                             {CoarseSpace::Spectral, "spectral"},
                                                                             {CoarseSpace::Residual, "residual"},
                                                                             {CoarseSpace::Tselepidis, "tselepidis"}}};
};
template <>
struct EnumNames<CoarseMatrix> {
  static constexpr const char* what = "coarse matrix";
  static constexpr std::array<std::pair<CoarseMatrix, const char*>, 2> names{
      {{CoarseMatrix::Exact, "exact"}, {CoarseMatrix::Kronecker, "kronecker"}}};
};
template <>
struct EnumNames<CoarseCombine> {
  static constexpr const char* what = "combine mode";
  static constexpr std::array<std::pair<CoarseCombine, const char*>, 4> names{{{CoarseCombine::Additive, "additive"},
                                                                               {CoarseCombine::Residual, "residual"},
                                                                               {CoarseCombine::Deflated, "deflated"},
                                                                               {CoarseCombine::Balanced, "balanced"}}};
};

struct TwoLevelOptions {
  static const OptionTable<TwoLevelOptions>& table();

  /// The coarse matrix in effect: coarse_matrix(), or the space's default.
  CoarseMatrix matrix_or_default() const {
    return coarse_matrix().value_or(coarse_space() == CoarseSpace::Tselepidis ? CoarseMatrix::Kronecker
                                                                              : CoarseMatrix::Exact);
  }

  TORCH_ARG(CoarseSpace, coarse_space) = CoarseSpace::Nicolaides;
  TORCH_ARG(c10::optional<CoarseMatrix>, coarse_matrix) = c10::nullopt;
  TORCH_ARG(CoarseCombine, combine) = CoarseCombine::Additive;
  TORCH_ARG(bool, krylov) = false;
  TORCH_ARG(double, coarse_weight) = 1.0;
  TORCH_ARG(c10::optional<double>, coarse_damping) = c10::nullopt;
  TORCH_ARG(int64_t, coarse_period) = 1;
  TORCH_ARG(double, coarse_ema_decay) = 0.95;
};

/// A two-level correction's options with this coarse space (the other fields at their defaults).
inline TwoLevelOptions two_level(CoarseSpace space) { return TwoLevelOptions().coarse_space(space); }

}  // namespace kfac
