#include "kfac/curvature/eigen_corrected.h"

namespace kfac {

const OptionTable<EigenCorrectedOptions>& EigenCorrectedOptions::table() {
  using O = EigenCorrectedOptions;
  static const OptionTable<O> t(
      "ekfac", "EKFAC and TEKFAC (eigenvalue-corrected methods)",
      {field<O>(KFAC_FIELD(O, spectrum_period), "Statistics updates between updates of the corrected spectrum",
                bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, reset_spectrum),
                "Reset the spectrum to the base method's eigenvalues at each refresh (off: keep its EMA)"),
       field<O>(KFAC_FIELD(O, per_position_spectrum),
                "Estimate the spectrum with the positions of a sequence or conv map as examples (one product, no "
                "per-example gradients; drops the cross-position terms); off: per example")});
  return t;
}

}  // namespace kfac
