#include "kfac/layers/layer_options.h"

namespace kfac {

const OptionTable<LayerOptions>& LayerOptions::table() {
  using O = LayerOptions;
  static const OptionTable<O> t(
      "layers", "How the layer kinds form their blocks",
      {field<O>(KFAC_FIELD(O, weight_sharing),
                "How a layer's shared positions (sequence positions, conv locations, repeated uses) enter its "
                "factors: expand (as extra examples; KFC) or reduce (mean input, summed gradient; cheaper); a "
                "layer's own choice overrides it"),
       field<O>(KFAC_FIELD(O, norm_full_max_features),
                "Normalization blocks (LayerNorm, BatchNorm2d, GroupNorm, RMSNorm) are the full Fisher of (scale, "
                "shift) up to this many features d (2d x 2d; d x d for RMSNorm's scale), and its diagonal above",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, factor_full_max_dim),
                "A Kronecker factor side (K-FAC, EKFAC) with more rows than this is diagonal: the exact diagonal of "
                "the full factor, O(n) to store and refresh instead of O(n^2) and O(n^3); 0: always full",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, exclude),
                "Layers whose names match this regular expression (ECMAScript, found anywhere in the name) get the "
                "fallback instead of a K-FAC block, e.g. 'embed|head' (the registration report lists them); empty: "
                "none")});
  return t;
}

}  // namespace kfac
