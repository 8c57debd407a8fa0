// A layer kind as both front ends see it, declared once in C++: which modules it covers, what it reads from them,
// which configurations it has a block for (and why not, for the others), and how a module becomes its Layer.
//
//   The LibTorch stand-ins (kfac::nn) and the Python adapter (python/kronfac/layers.py) only gather a ModuleConfig
//   and ask the kind (kind_registry.h); neither restates what a kind accepts. A new kind is its file in
//   src/layers/ with a `KindDefinition ..._definition()` and one line in src/layers/kind_registry.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/layers/layer_kind.h"
#include "kfac/layers/module_config.h"

namespace kfac {

/// A kind's answer for one configuration: its block's LayerKind, or why it has none (the module's parameters then
/// get the fallback, and the registration report gives the reason).
struct KindChoice {
  std::shared_ptr<LayerKind> kind;
  std::string refusal;
  static KindChoice accept(std::shared_ptr<LayerKind> kind) { return {std::move(kind), ""}; }
  static KindChoice refuse(std::string why) { return {nullptr, std::move(why)}; }
};

struct KindDefinition {
  /// The kind's name: the registry's key and the report's word ("Conv2d").
  std::string name;
  /// The torch.nn classes it covers, by their Python path ("torch.nn.Conv2d"); the Python adapter hooks each that
  /// its torch has.
  std::vector<std::string> python_modules;
  /// What an adapter reads from such a module, by torch.nn's attribute names (tensors and settings).
  std::vector<std::string> attributes;
  /// The block for a configuration, or the refusal.
  std::function<KindChoice(const ModuleConfig&)> choose;
  /// LibTorch's stock module type (as Module::name() spells it) and the capture-enabled stand-in a user should
  /// take instead, for the registration report: "torch::nn::Conv2dImpl" → "kfac::nn::Conv2d". Empty: none.
  std::string libtorch_module, libtorch_stand_in;
};

}  // namespace kfac
