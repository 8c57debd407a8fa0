// The layer-kind registry: which module types the preconditioner recognizes in a model, and how each becomes a
// Layer. find_layers walks a module tree and asks the registered factories, newest first, so a user's registration
// can also take over a built-in type.
//
// Built in (src/layers/layer_registry.cpp): kfac::nn::Linear, kfac::nn::Conv2d. A user's own module:
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

/// The Layer of `module` if the factory's kind covers it, nullopt otherwise.
using LayerFactory = std::function<c10::optional<Layer>(const std::string& name, torch::nn::Module& module)>;

/// Registers (or replaces) the factory of a layer kind under `kind_name`.
void register_layer_kind(const std::string& kind_name, LayerFactory factory);

/// Declares that `use_instead` is the capture-enabled stand-in of the stock module type `stock_type` (as
/// Module::name() spells it, e.g. "torch::nn::LinearImpl"): the registration report then names it for the stock
/// module's fallback parameters.
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
void register_module_kind(const std::string& kind_name,
                          std::function<Layer(const std::string& name, ModuleImpl& module)> make) {
  register_layer_kind(kind_name, module_factory<ModuleImpl>(std::move(make)));
}

/// "use kfac::nn::Linear" for a stock module type with a registered stand-in; "" otherwise.
std::string replacement_hint(const std::string& module_type);

/// The registered kinds' names, in registration order.
std::vector<std::string> registered_layer_kinds();

/// The Layer of one module, or nullopt if no registered kind covers its type.
c10::optional<Layer> make_layer(const std::string& name, torch::nn::Module& module);

/// Every module of a tree that a registered kind covers (depth-first, named as in named_modules()), except frozen
/// ones (no parameter requires grad).
std::vector<Layer> find_layers(torch::nn::Module& model);

}  // namespace kfac
