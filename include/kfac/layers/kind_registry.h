// The registry of layer kinds (kind_definition.h): the built-in ones (src/layers/kind_registry.cpp, one line each)
// and any a user adds. Both front ends make their Layers here, so a module gets the same block, or the same
// refusal, from C++ and from Python.
#pragma once

#include <c10/util/Optional.h>

#include <memory>
#include <string>
#include <vector>

#include "kfac/layers/kind_definition.h"
#include "kfac/layers/layer.h"

namespace kfac {

/// Registers (or replaces) a kind under its name.
void register_kind(KindDefinition definition);

/// The registered kinds' names, in registration order.
std::vector<std::string> registered_layer_kinds();

/// The definition registered under `name`; an error naming the registered kinds if there is none.
KindDefinition kind_definition(const std::string& name);

/// The answer of kind `kind_name` for a module configured as `config`.
KindChoice choose_kind(const std::string& kind_name, const ModuleConfig& config);

/// The Layer `name` of an accepted configuration, capturing through `slot`; nullopt with `refusal` set otherwise.
c10::optional<Layer> layer_of_kind(const std::string& kind_name, const std::string& name, const ModuleConfig& config,
                                   std::shared_ptr<Slot> slot, std::string* refusal = nullptr);

}  // namespace kfac
