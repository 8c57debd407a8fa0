#include "kfac/nn/module_registry.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "kfac/errors.h"
#include "kfac/layers/kind_registry.h"
#include "kfac/nn/stand_in.h"

namespace kfac {

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<std::pair<std::string, LayerFactory>> factories;    // registration order
  std::vector<std::pair<std::string, std::string>> replacements;  // stock module type → its stand-in
};

Registry& registry() {
  static Registry* r = [] {
    auto* fresh = new Registry;  // never destroyed: layers may be found during static destruction
    // The one stand-in that is not a layer kind: its projections are Linear layers.
    fresh->replacements = {{"torch::nn::MultiheadAttentionImpl", "kfac::nn::MultiheadAttention"}};
    return fresh;
  }();
  return *r;
}

std::string without_impl(std::string n) {  // Module::name() is the class name, "...Impl" or not
  if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n.resize(n.size() - 4);
  return n;
}
}  // namespace

void register_module_factory(const std::string& name, LayerFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& [n, f] : r.factories)
    if (n == name) {
      f = std::move(factory);
      return;
    }
  r.factories.emplace_back(name, std::move(factory));
}

void register_replacement(const std::string& stock_type, const std::string& use_instead) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& [stock, instead] : r.replacements)
    if (stock == stock_type) {
      instead = use_instead;
      return;
    }
  r.replacements.emplace_back(stock_type, use_instead);
}

std::string replacement_hint(const std::string& module_type) {
  const auto type = without_impl(module_type);
  for (const auto& kind : registered_layer_kinds()) {
    const auto d = kind_definition(kind);
    if (!d.libtorch_module.empty() && without_impl(d.libtorch_module) == type) return "use " + d.libtorch_stand_in;
  }
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& [stock, instead] : r.replacements)
    if (without_impl(stock) == type) return "use " + instead;
  return "";
}

std::vector<std::string> registered_module_kinds() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& entry : r.factories) names.push_back(entry.first);
  return names;
}

c10::optional<Layer> make_layer(const std::string& name, torch::nn::Module& module) {
  std::vector<LayerFactory> factories;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto it = r.factories.rbegin(); it != r.factories.rend(); ++it) factories.push_back(it->second);
  }
  for (const auto& f : factories)
    if (auto layer = f(name, module)) return layer;
  const auto* stand_in = dynamic_cast<const nn::StandIn*>(&module);
  if (!stand_in) return c10::nullopt;
  std::string refusal;
  auto layer = layer_of_kind(stand_in->kind_name(), name, stand_in->config(), stand_in->slot(), &refusal);
  KFAC_CHECK(layer.has_value(), "layer '", name, "' (kfac::nn::", stand_in->kind_name(), "): ", refusal);
  layer->weight_sharing = stand_in->weight_sharing();
  return layer;
}

std::vector<Layer> find_layers(torch::nn::Module& model) {
  std::vector<Layer> layers;
  for (const auto& item : model.named_modules()) {
    auto layer = make_layer(item.key(), *item.value());
    if (!layer) continue;
    const auto params = layer->kind->parameters();
    // A frozen layer (fine-tuning) has no gradient to precondition; the registration report lists it as frozen.
    if (std::none_of(params.begin(), params.end(), [](const at::Tensor& p) { return p.requires_grad(); })) continue;
    layers.push_back(std::move(*layer));
  }
  return layers;
}

}  // namespace kfac
