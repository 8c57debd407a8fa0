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

/// The precision of the statistics products: the Kronecker factors' Gram matrices A = aᵀa and G = gᵀg and
/// EKFAC's spectrum (the rotations of a and g into the eigenbasis and their squares' product). The factors, their
/// running averages and the decompositions stay in the factor dtype either way (docs/design.md §8).
enum class StatisticsPrecision {
  /// In the factor dtype (exact to it).
  Factor,
  /// bfloat16 inputs, float32 accumulation inside the product, the result rounded to bfloat16 and added to the
  /// factor in its dtype: half the memory traffic, and 2-3x faster products on GPUs and on CPUs with bf16 units.
  BFloat16,
  /// BFloat16 where the device multiplies bfloat16 natively (CUDA; CPUs with AVX512-BF16, which AMX-BF16 CPUs have
  /// too), Factor elsewhere (a CPU without them emulates bfloat16 products, slower than float32).
  Auto,
};
template <>
struct EnumNames<StatisticsPrecision> {
  static constexpr const char* what = "statistics precision";
  static constexpr std::array<std::pair<StatisticsPrecision, const char*>, 3> names{
      {{StatisticsPrecision::Factor, "factor"},
       {StatisticsPrecision::BFloat16, "bfloat16"},
       {StatisticsPrecision::Auto, "auto"}}};
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
  TORCH_ARG(StatisticsPrecision, statistics_precision) = StatisticsPrecision::Factor;
};

/// The dtype of the statistics products of a layer whose parameters are on CUDA or not (statistics_precision
/// resolved): bfloat16, or unset for the factor dtype.
c10::optional<c10::ScalarType> statistics_product_dtype(StatisticsPrecision precision, bool cuda);

/// Whether this process's CPU multiplies bfloat16 natively: AVX512-BF16 (which every AMX-BF16 CPU has too).
bool cpu_multiplies_bfloat16();

/// Whether refreshes invert the damped factors by Cholesky (InverseMethod::Auto resolved).
bool inverts_by_cholesky(DampingMode damping_mode, const NumericsOptions& numerics);

}  // namespace kfac
