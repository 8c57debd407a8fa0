// A registered layer: its name, its layer kind (how its parameters look as matrices), the capture slot its forward
// taps and, optionally, its own weight-sharing flavour. The preconditioner holds one per preconditioned module.
#pragma once

#include <c10/util/Optional.h>

#include <memory>
#include <string>

#include "kfac/layers/capture.h"
#include "kfac/layers/layer_kind.h"

namespace kfac {

struct Layer {
  std::string name;
  std::shared_ptr<LayerKind> kind;
  std::shared_ptr<Slot> slot;
  /// This layer's weight sharing; unset: the preconditioner's option weight_sharing.
  c10::optional<WeightSharing> weight_sharing = c10::nullopt;
};

}  // namespace kfac
