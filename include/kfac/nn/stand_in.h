// What every capture-enabled LibTorch module (kfac::nn) has: the layer kind it stands for, its configuration in
// that kind's terms (kfac/layers/module_config.h), its capture slot and its own weight-sharing choice. The module
// registry (module_registry.h) makes their Layers through the kind registry, so a stand-in accepts and refuses
// exactly what the same torch.nn module gets from Python.
#pragma once

#include <c10/util/Optional.h>

#include <memory>
#include <string>

#include "kfac/layers/capture.h"
#include "kfac/layers/module_config.h"
#include "kfac/layers/weight_sharing.h"

namespace kfac::nn {

class StandIn {
 public:
  virtual ~StandIn() = default;
  /// The kind's name in the kind registry ("Conv2d").
  virtual std::string kind_name() const = 0;
  /// The module's tensors and settings, by torch.nn's names.
  virtual ModuleConfig config() const = 0;
  const std::shared_ptr<Slot>& slot() const { return slot_; }
  /// This layer's weight sharing (unset: the preconditioner's option); set before the preconditioner is built.
  void weight_sharing(c10::optional<WeightSharing> sharing) { weight_sharing_ = sharing; }
  c10::optional<WeightSharing> weight_sharing() const { return weight_sharing_; }

 protected:
  /// At construction: an error naming the module and the kind's reason if the kind has no block for it.
  void check_accepted() const;
  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
  c10::optional<WeightSharing> weight_sharing_;
};

}  // namespace kfac::nn
