#include "kfac/fisher/fisher_options.h"

namespace kfac {

const OptionTable<FisherOptions>& FisherOptions::table() {
  using O = FisherOptions;
  static const OptionTable<O> t(
      "fisher", "Which Fisher the statistics estimate, and from how much of the batch",
      {field<O>(KFAC_FIELD(O, fisher),
                "sampled (true Fisher, targets from the model: a second backward), empirical (the training labels' "
                "gradients; on the whole batch the training backward itself, capture_backward, with no extra pass) "
                "or exact (one backward per output unit; tiny models)"),
       field<O>(KFAC_FIELD(O, fisher_samples), "Targets sampled per example for the sampled Fisher",
                bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, stats_fraction),
                "Fraction of the minibatch used by the statistics pass (its first ceil(f·B) examples)",
                bounded(between(0, 1, true, false))),
       field<O>(KFAC_FIELD(O, stats_positions),
                "Shared positions (sequence positions, conv output locations) per example that form K-FAC's factors, "
                "for layers with more: a uniform sample of this many, the same for every example, drawn from (seed, "
                "step); 0 takes every position. The factors stay unbiased means over positions (method kfac, and ekfac "
                "with per_position_spectrum; weight sharing expand)",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, seed),
                "Seed of the sampled targets; step k samples from (seed, k), so runs resume exactly",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, retain_statistics),
                "Keep the last statistics step's per-example data for Fisher-vector products (implied by a "
                "two-level coarse space)")});
  return t;
}

}  // namespace kfac
