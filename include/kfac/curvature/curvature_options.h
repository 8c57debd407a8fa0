// The option blocks every curvature method reads (CurvatureContext): the damping λ and how it enters the inverse,
// and the numerics of the decompositions (kfac/preconditioner/options.h gathers every block).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>

#include "kfac/util/option_table.h"

namespace kfac {

/// How the damping λ enters the Kronecker-factored inverse (docs/design.md §4, decision 2).
enum class DampingMode {
  /// (D1) Factored Tikhonov with π (Martens & Grosse §6.3): (A + π√λ I) ⊗ (G + √λ/π I). Cheapest to apply.
  Factored,
  /// (D2) Exact Tikhonov on the Kronecker product in its eigenbasis: (A ⊗ G + λ I)⁻¹. Needs eigendecompositions.
  Eigen,
};

/// How the damped factors are inverted at each refresh (only for DampingMode::Factored).
enum class InverseMethod {
  /// Cholesky when it gives the same inverse: factored damping and no eigenvalue floor; Eigen otherwise.
  Auto,
  /// From the eigendecomposition (applies eigenvalue_floor).
  Eigen,
  /// Cholesky factorization of the damped factor: 3–5 times cheaper than the eigendecomposition (bench/README.md).
  Cholesky,
};

template <>
struct EnumNames<DampingMode> {
  static constexpr const char* what = "damping mode";
  static constexpr std::array<std::pair<DampingMode, const char*>, 2> names{
      {{DampingMode::Factored, "factored"}, {DampingMode::Eigen, "eigen"}}};
};
template <>
struct EnumNames<InverseMethod> {
  static constexpr const char* what = "inverse method";
  static constexpr std::array<std::pair<InverseMethod, const char*>, 3> names{
      {{InverseMethod::Auto, "auto"}, {InverseMethod::Eigen, "eigen"}, {InverseMethod::Cholesky, "cholesky"}}};
};

struct DampingOptions {
  static const OptionTable<DampingOptions>& table();
  TORCH_ARG(double, damping) = 1e-3;
  TORCH_ARG(DampingMode, damping_mode) = DampingMode::Factored;
};

struct NumericsOptions {
  static const OptionTable<NumericsOptions>& table();
  TORCH_ARG(c10::optional<c10::ScalarType>, factor_dtype) = c10::nullopt;
  TORCH_ARG(InverseMethod, inverse_method) = InverseMethod::Auto;
  TORCH_ARG(double, eigenvalue_floor) = 0.0;
  TORCH_ARG(int64_t, eigenbasis_iterations) = 0;  ///< see linalg::factor_eig_refined
  TORCH_ARG(int64_t, max_consecutive_failures) = 3;
};

/// Whether refreshes invert the damped factors by Cholesky (InverseMethod::Auto resolved).
bool inverts_by_cholesky(DampingMode damping_mode, const NumericsOptions& numerics);

}  // namespace kfac
