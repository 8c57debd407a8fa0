#include "kfac/global/two_level_options.h"

namespace kfac {

const OptionTable<TwoLevelOptions>& TwoLevelOptions::table() {
  using O = TwoLevelOptions;
  static const OptionTable<O> t(
      "two_level", "The two-level coarse-space correction (global_stage two-level)",
      {field<O>(KFAC_FIELD(O, coarse_space), "Two-level: the coarse space"),
       field<O>(KFAC_FIELD(O, coarse_matrix),
                "Two-level: the coarse matrix, exact (per-example gradients) or kronecker (cross-layer factors); "
                "unset: kronecker for tselepidis, exact otherwise",
                unset_reads("auto")),
       field<O>(KFAC_FIELD(O, combine), "Two-level: how the coarse correction and the per-layer solve combine"),
       field<O>(KFAC_FIELD(O, krylov), "Two-level: add M⁻¹r to each layer's coarse vector (nicolaides, residual)"),
       field<O>(KFAC_FIELD(O, coarse_weight), "Two-level: weight ω of the coarse correction (0 = one-level)",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, coarse_damping), "Two-level: coarse damping λ_c (unset: the damping λ)",
                {positive(), "damping", {}}),
       field<O>(KFAC_FIELD(O, coarse_period), "Two-level: steps between coarse basis and matrix updates",
                bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, coarse_ema_decay), "Two-level: cap of the coarse matrix's EMA decay",
                bounded(between(0, 1, false, true)))});
  return t;
}

}  // namespace kfac
