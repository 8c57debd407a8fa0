// Which modules of a LibTorch model are K-FAC layers. find_layers walks a module tree and makes a Layer of every
// capture-enabled stand-in (kfac::nn, stand_in.h: its kind decides, kfac/layers/kind_registry.h) and of every
// module a user's factory covers. Factories are asked newest first, before the stand-ins, so a registration can
// also take over a type. A user's own module:
//
//   kfac::register_module_kind<MyProjectionImpl>("MyProjection", [](const std::string& name, MyProjectionImpl& m) {
//     return kfac::Layer{name, std::make_shared<kfac::LinearKind>(m.weight, m.bias), m.slot};
//   });
#pragma once

#include <c10/util/Optional.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/layers/layer.h"

namespace torch::nn {
class Module;
}

namespace kfac {

/// The Layer of `module` if the factory covers it, nullopt otherwise.
using LayerFactory = std::function<c10::optional<Layer>(const std::string& name, torch::nn::Module& module)>;

/// Registers (or replaces) a factory of module layers under `name`.
void register_module_factory(const std::string& name, LayerFactory factory);

/// Declares that `use_instead` is the capture-enabled stand-in of the stock module type `stock_type` (as
/// Module::name() spells it, e.g. "torch::nn::MultiheadAttentionImpl"): the registration report then names it for
/// the stock module's fallback parameters. The layer kinds declare their own (KindDefinition::libtorch_stand_in).
void register_replacement(const std::string& stock_type, const std::string& use_instead);

/// A factory for modules of type ModuleImpl (and its subclasses).
template <typename ModuleImpl>
LayerFactory module_factory(std::function<Layer(const std::string& name, ModuleImpl& module)> make) {
  return [make = std::move(make)](const std::string& name, torch::nn::Module& module) -> c10::optional<Layer> {
    if (auto* m = dynamic_cast<ModuleImpl*>(&module)) return make(name, *m);
    return c10::nullopt;
  };
}

/// Registers a factory for modules of type ModuleImpl (and its subclasses).
template <typename ModuleImpl>
void register_module_kind(const std::string& name,
                          std::function<Layer(const std::string& name, ModuleImpl& module)> make) {
  register_module_factory(name, module_factory<ModuleImpl>(std::move(make)));
}

/// The names of the user-registered module factories, in registration order.
std::vector<std::string> registered_module_kinds();

/// "use kfac::nn::Linear" for a stock module type with a stand-in; "" otherwise.
std::string replacement_hint(const std::string& module_type);

/// The Layer of one module, or nullopt if neither a factory nor a stand-in covers it.
c10::optional<Layer> make_layer(const std::string& name, torch::nn::Module& module);

/// Every module of a tree that a factory or a stand-in covers (depth-first, named as in named_modules()), except
/// frozen ones (no parameter requires grad).
std::vector<Layer> find_layers(torch::nn::Module& model);

}  // namespace kfac
