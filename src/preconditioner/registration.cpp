#include "kfac/preconditioner/registration.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>
#include <utility>

#include "kfac/errors.h"
#include "kfac/nn/module_registry.h"

namespace kfac {

const void* parameter_storage(const at::Tensor& p) { return p.storage().unsafeGetStorageImpl(); }

std::vector<ModuleParameters> module_parameters(torch::nn::Module& model) {
  std::vector<ModuleParameters> out;
  for (const auto& m : model.named_modules()) {
    ModuleParameters view{m.key(), m.value()->name(), replacement_hint(m.value()->name()), {}};
    for (const auto& p : m.value()->named_parameters(/*recurse=*/false))
      view.parameters.emplace_back(p.key(), p.value());
    out.push_back(std::move(view));
  }
  return out;
}

std::vector<Registration::FallbackParameter> fallback_parameters(const std::vector<ModuleParameters>& modules,
                                                                 const std::vector<Layer>& layers,
                                                                 std::vector<std::string>* frozen) {
  // Parameters are identified by their storage: tied weights share it (the same tensor, or set_data).
  std::map<const void*, std::string> in_layer;  // storage → its layer
  for (const auto& l : layers)
    for (const auto& p : l.kind->parameters()) in_layer[parameter_storage(p)] = l.name;
  std::map<const void*, std::string> holder;  // storage → the first module holding it (for ties)
  // The outermost module with a stand-in names the hint: a stock attention's out_proj points to the attention.
  std::vector<const ModuleParameters*> hinted;
  auto outer_hint = [&](const std::string& key) -> const ModuleParameters* {
    for (const auto* h : hinted)
      if (h->name.empty() || key == h->name || key.rfind(h->name + ".", 0) == 0) return h;
    return nullptr;
  };
  std::vector<Registration::FallbackParameter> out;
  for (const auto& m : modules) {
    if (outer_hint(m.name) == nullptr && !m.hint.empty()) hinted.push_back(&m);
    for (const auto& [name, parameter] : m.parameters) {
      const auto* impl = parameter_storage(parameter);
      const auto full = m.name.empty() ? name : m.name + "." + name;
      const auto layer = in_layer.find(impl);
      const auto [first, fresh] = holder.emplace(impl, m.name);
      if (layer != in_layer.end()) {
        KFAC_CHECK(m.name == layer->second, "parameter '", full, "' of module '", m.name, "' is tied to layer '",
                   layer->second,
                   "' (the same storage): a K-FAC block would see only one of its uses. Untie the weights (clone "
                   "the tensor) or register neither module as a K-FAC layer");
        continue;
      }
      if (!fresh) continue;  // tied between two fallback modules: listed once
      if (!parameter.requires_grad()) {
        if (frozen != nullptr) frozen->push_back(full);
        continue;
      }
      const auto* h = outer_hint(m.name);
      out.push_back({full, h != nullptr ? h->type : m.type, h != nullptr ? h->hint : "", parameter});
    }
  }
  return out;
}

namespace {
// 272 B, 3.4 KiB, 340.0 MiB, 1.2 GiB.
std::string bytes_text(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  for (; value >= 1024 && unit < 3; ++unit) value /= 1024;
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << value << " " << units[unit];
  return s.str();
}
}  // namespace

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
  bool any_capped = false;
  for (const auto& b : blocks) {
    if (!b.diagonal_by_size) continue;
    s << (any_capped ? ", '" : "; diagonal above factor_full_max_dim: '") << b.name << "' (" << b.structure << ")";
    any_capped = true;
  }
  const auto largest = std::max_element(blocks.begin(), blocks.end(),
                                        [](const auto& x, const auto& y) { return x.memory_bytes < y.memory_bytes; });
  if (largest != blocks.end() && largest->memory_bytes >= kLargeBlockBytes)
    s << "; largest block: '" << largest->name << "' (" << largest->structure << ", "
      << bytes_text(largest->memory_bytes) << ")";
  if (fallback.empty()) {
    s << "; no fallback parameters";
  } else {
    s << "; fallback (" << fallback_kind << ") for " << fallback.size()
      << (fallback.size() == 1 ? " parameter: " : " parameters: ");
    for (size_t i = 0; i < fallback.size(); ++i) {
      const auto& f = fallback[i];
      s << (i == 0 ? "" : ", ") << f.name;
      if (!f.hint.empty()) s << " (" << f.hint << ")";
    }
  }
  if (!excluded.empty()) {
    s << "; excluded by the option exclude (their parameters get the fallback): ";
    for (size_t i = 0; i < excluded.size(); ++i) s << (i == 0 ? "" : ", ") << excluded[i];
  }
  if (!frozen.empty()) {
    s << "; frozen: ";
    for (size_t i = 0; i < frozen.size(); ++i) s << (i == 0 ? "" : ", ") << frozen[i];
  }
  return s.str();
}

std::string Registration::details() const {
  std::ostringstream s;
  for (const auto& b : blocks)
    s << b.name << ": " << b.kind << (b.form.empty() ? "" : " (" + b.form + ")") << ", " << b.structure << ", "
      << bytes_text(b.memory_bytes) << "\n";
  return s.str();
}

}  // namespace kfac
