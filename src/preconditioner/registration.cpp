#include "kfac/preconditioner/registration.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <utility>

#include "kfac/errors.h"
#include "kfac/layers/layer_registry.h"

namespace kfac {

const void* parameter_storage(const at::Tensor& p) { return p.storage().unsafeGetStorageImpl(); }

std::vector<Registration::FallbackParameter> fallback_parameters(torch::nn::Module& model,
                                                                 const std::vector<Layer>& layers) {
  // Parameters are identified by their storage: tied weights share it (the same tensor, or set_data).
  std::map<const void*, std::string> in_layer;  // storage → its layer
  for (const auto& l : layers)
    for (const auto& p : l.kind->parameters()) in_layer[parameter_storage(p)] = l.name;
  std::map<const void*, std::string> holder;  // storage → the first module holding it (for ties)
  // The outermost module with a stand-in names the hint: a stock attention's out_proj points to the attention.
  struct Hinted {
    std::string prefix, type, hint;
  };
  std::vector<Hinted> hinted;
  auto outer_hint = [&](const std::string& key) -> const Hinted* {
    for (const auto& h : hinted)
      if (h.prefix.empty() || key == h.prefix || key.rfind(h.prefix + ".", 0) == 0) return &h;
    return nullptr;
  };
  std::vector<Registration::FallbackParameter> out;
  for (const auto& m : model.named_modules()) {
    const auto type = m.value()->name();
    if (outer_hint(m.key()) == nullptr && !replacement_hint(type).empty())
      hinted.push_back({m.key(), type, replacement_hint(type)});
    for (const auto& p : m.value()->named_parameters(/*recurse=*/false)) {
      const auto* impl = parameter_storage(p.value());
      const auto full = m.key().empty() ? p.key() : m.key() + "." + p.key();
      const auto layer = in_layer.find(impl);
      const auto [first, fresh] = holder.emplace(impl, m.key());
      if (layer != in_layer.end()) {
        KFAC_CHECK(m.key() == layer->second, "parameter '", full, "' of module '", m.key(), "' is tied to layer '",
                   layer->second,
                   "' (the same storage): a K-FAC block would see only one of its uses. Untie the weights (clone "
                   "the tensor) or register neither module as a K-FAC layer");
        continue;
      }
      if (!fresh) continue;  // tied between two fallback modules: listed once
      const auto* h = outer_hint(m.key());
      out.push_back({full, h != nullptr ? h->type : type, h != nullptr ? h->hint : "", p.value()});
    }
  }
  return out;
}

std::string Registration::summary() const {
  std::ostringstream s;
  // Blocks grouped by kind and form, in order of first appearance.
  std::vector<std::pair<std::string, int>> groups;
  for (const auto& b : blocks) {
    const auto label = b.form.empty() ? b.kind : b.kind + " (" + b.form + ")";
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == label; });
    if (it == groups.end())
      groups.emplace_back(label, 1);
    else
      ++it->second;
  }
  s << "registered " << blocks.size() << (blocks.size() == 1 ? " block" : " blocks");
  for (size_t i = 0; i < groups.size(); ++i) s << (i == 0 ? ": " : ", ") << groups[i].second << " " << groups[i].first;
  if (fallback.empty()) {
    s << "; no fallback parameters";
    return s.str();
  }
  s << "; fallback (" << fallback_kind << ") for " << fallback.size()
    << (fallback.size() == 1 ? " parameter: " : " parameters: ");
  for (size_t i = 0; i < fallback.size(); ++i) {
    const auto& f = fallback[i];
    s << (i == 0 ? "" : ", ") << f.name;
    if (!f.hint.empty()) s << " (" << f.hint << ")";
  }
  return s.str();
}

}  // namespace kfac
