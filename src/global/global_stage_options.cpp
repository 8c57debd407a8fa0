#include "kfac/global/global_stage_options.h"

namespace kfac {

const OptionTable<GlobalStageOptions>& GlobalStageOptions::table() {
  using O = GlobalStageOptions;
  static const OptionTable<O> t(
      "global_stage", "The stage after the per-layer preconditioning",
      {field<O>(KFAC_FIELD(O, global_stage),
                "What follows the per-layer preconditioning, by registered name: none, two-level (a coarse-space "
                "correction) or block-tridiagonal (K-FAC with factored damping only)")});
  return t;
}

}  // namespace kfac
