#include "kfac/curvature/curvature_options.h"

namespace kfac {

const OptionTable<DampingOptions>& DampingOptions::table() {
  using O = DampingOptions;
  static const OptionTable<O> t(
      "damping", "The Tikhonov damping λ and how it enters the inverse",
      {field<O>(KFAC_FIELD(O, damping),
                "Tikhonov damping λ added to each Fisher block (same meaning for Linear and Conv2d layers); typical "
                "values are 1e-4 to 1e-1",
                bounded(positive())),
       field<O>(KFAC_FIELD(O, damping_mode),
                "factored (D1: (A + π√λ I) ⊗ (G + √λ/π I)) or eigen (D2: exact Tikhonov in the eigenbasis)")});
  return t;
}

const OptionTable<NumericsOptions>& NumericsOptions::table() {
  using O = NumericsOptions;
  static const OptionTable<O> t(
      "numerics", "Dtype, inversion and failure policy",
      {field<O>(KFAC_FIELD(O, factor_dtype),
                "Dtype of factors and decompositions (unset: each layer's parameter dtype, float32 for bf16 and "
                "fp16 parameters)",
                unset_reads("model")),
       field<O>(KFAC_FIELD(O, inverse_method),
                "Inversion of damped factors (factored damping): auto (Cholesky unless an eigenvalue floor is set), "
                "eigen or cholesky"),
       field<O>(KFAC_FIELD(O, eigenvalue_floor), "Eigenvalues below this are clamped to it (after a float64 retry)",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, eigenbasis_iterations),
                "Eigenbases after the first (ekfac, tekfac, damping_mode eigen, full normalization blocks): 0 "
                "decomposes every refresh; k "
                "refines the previous basis by k subspace-iteration steps and a QR each, with Rayleigh quotients "
                "as eigenvalues (cheaper, approximate)",
                bounded(between(0, 100))),
       field<O>(KFAC_FIELD(O, max_consecutive_failures),
                "Consecutive failed refreshes of one layer tolerated before step() throws", bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, statistics_precision),
                "Precision of the statistics products (A = aᵀa, G = gᵀg, EKFAC's spectrum): factor (the factor "
                "dtype), bfloat16 (bf16 inputs, float32 accumulation, the factors kept in their dtype; 2-3x faster "
                "products on GPUs and bf16 CPUs, about 3 significant digits per entry) or auto (bfloat16 on CUDA "
                "and on CPUs with AVX512-BF16, factor elsewhere)")});
  return t;
}

bool cpu_multiplies_bfloat16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;  // other architectures: not detected, so auto keeps the factor dtype
#endif
}

c10::optional<c10::ScalarType> statistics_product_dtype(StatisticsPrecision precision, bool cuda) {
  const bool bf16 = precision == StatisticsPrecision::BFloat16 ||
                    (precision == StatisticsPrecision::Auto && (cuda || cpu_multiplies_bfloat16()));
  return bf16 ? c10::optional<c10::ScalarType>(c10::kBFloat16) : c10::nullopt;
}

bool inverts_by_cholesky(DampingMode damping_mode, const NumericsOptions& numerics) {
  return numerics.inverse_method() == InverseMethod::Cholesky ||
         (numerics.inverse_method() == InverseMethod::Auto && damping_mode == DampingMode::Factored &&
          numerics.eigenvalue_floor() == 0);
}

}  // namespace kfac
