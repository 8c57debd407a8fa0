#include "kfac/layers/kind_registry.h"

#include <mutex>

#include "kfac/errors.h"

namespace kfac {

// The built-in kinds, each defined in its own file.
KindDefinition linear_definition();
KindDefinition conv2d_definition();
KindDefinition conv1d_definition();
KindDefinition embedding_definition();
KindDefinition layer_norm_definition();
KindDefinition batch_norm2d_definition();
KindDefinition group_norm_definition();
KindDefinition rms_norm_definition();

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<KindDefinition> kinds;  // registration order
};

Registry& registry() {
  static Registry* r = [] {
    auto* fresh = new Registry;  // never destroyed: layers may be made during static destruction
    fresh->kinds = {linear_definition(),     conv2d_definition(),       conv1d_definition(),     embedding_definition(),
                    layer_norm_definition(), batch_norm2d_definition(), group_norm_definition(), rms_norm_definition()};
    return fresh;
  }();
  return *r;
}
}  // namespace

void register_kind(KindDefinition definition) {
  KFAC_CHECK(!definition.name.empty() && definition.choose, "register_kind: a kind needs a name and a choose function");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& k : r.kinds)
    if (k.name == definition.name) {
      k = std::move(definition);
      return;
    }
  r.kinds.push_back(std::move(definition));
}

std::vector<std::string> registered_layer_kinds() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& k : r.kinds) names.push_back(k.name);
  return names;
}

KindDefinition kind_definition(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string known;
  for (const auto& k : r.kinds) {
    if (k.name == name) return k;
    known += (known.empty() ? "" : ", ") + k.name;
  }
  KFAC_CHECK(false, "no layer kind '", name, "'; the registered kinds are ", known);
  return {};
}

KindChoice choose_kind(const std::string& kind_name, const ModuleConfig& config) {
  return kind_definition(kind_name).choose(config);
}

c10::optional<Layer> layer_of_kind(const std::string& kind_name, const std::string& name, const ModuleConfig& config,
                                   std::shared_ptr<Slot> slot, std::string* refusal) {
  auto choice = choose_kind(kind_name, config);
  if (!choice.kind) {
    if (refusal) *refusal = choice.refusal;
    return c10::nullopt;
  }
  return Layer{name, std::move(choice.kind), std::move(slot)};
}

}  // namespace kfac
