#include "kfac/layers/layer_registry.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "kfac/nn/layers.h"
#include "kfac/nn/normalization.h"

namespace kfac {

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<std::pair<std::string, LayerFactory>> kinds;        // registration order
  std::vector<std::pair<std::string, std::string>> replacements;  // stock module type → its stand-in
};

Registry& registry() {
  static Registry* r = [] {
    auto* fresh = new Registry;  // never destroyed: layers may be found during static destruction
    // The built-in kinds, one line each.
    fresh->kinds.emplace_back("Linear", nn::linear_factory());
    fresh->kinds.emplace_back("Conv2d", nn::conv2d_factory());
    fresh->kinds.emplace_back("Embedding", nn::embedding_factory());
    fresh->kinds.emplace_back("LayerNorm", nn::layer_norm_factory());
    fresh->kinds.emplace_back("BatchNorm2d", nn::batch_norm2d_factory());
    // The stock modules whose parameters the report should point to a stand-in for.
    fresh->replacements = {{"torch::nn::LinearImpl", "kfac::nn::Linear"},
                           {"torch::nn::Conv2dImpl", "kfac::nn::Conv2d"},
                           {"torch::nn::MultiheadAttentionImpl", "kfac::nn::MultiheadAttention"},
                           {"torch::nn::EmbeddingImpl", "kfac::nn::Embedding"},
                           {"torch::nn::LayerNormImpl", "kfac::nn::LayerNorm"},
                           {"torch::nn::BatchNorm2dImpl", "kfac::nn::BatchNorm2d"}};
    return fresh;
  }();
  return *r;
}
}  // namespace

void register_layer_kind(const std::string& kind_name, LayerFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& [name, f] : r.kinds)
    if (name == kind_name) {
      f = std::move(factory);
      return;
    }
  r.kinds.emplace_back(kind_name, std::move(factory));
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
  // Module::name() is the class name, "...Impl" or not as the module's constructor chose.
  auto base = [](std::string n) {
    if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n.resize(n.size() - 4);
    return n;
  };
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& [stock, instead] : r.replacements)
    if (base(stock) == base(module_type)) return "use " + instead;
  return "";
}

std::vector<std::string> registered_layer_kinds() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  names.reserve(r.kinds.size());
  for (const auto& entry : r.kinds) names.push_back(entry.first);
  return names;
}

c10::optional<Layer> make_layer(const std::string& name, torch::nn::Module& module) {
  std::vector<LayerFactory> factories;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto it = r.kinds.rbegin(); it != r.kinds.rend(); ++it) factories.push_back(it->second);
  }
  for (const auto& f : factories)
    if (auto layer = f(name, module)) return layer;
  return c10::nullopt;
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
