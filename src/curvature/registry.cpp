#include "kfac/curvature/registry.h"

#include <algorithm>
#include <mutex>

#include "kfac/curvature/eigen_corrected.h"
#include "kfac/curvature/embedding_curvature.h"
#include "kfac/curvature/kfac_curvature.h"
#include "kfac/curvature/scale_shift_curvature.h"
#include "kfac/curvature/tkfac_curvature.h"
#include "kfac/errors.h"
#include "kfac/util/enum_names.h"

namespace kfac {

namespace {
template <typename T>
CurvatureFactory factory_of() {
  return [](CurvatureContext c) -> std::unique_ptr<Curvature> { return std::make_unique<T>(std::move(c)); };
}
template <typename Base>
CurvatureFactory eigen_corrected(const char* name) {
  return [name](CurvatureContext c) -> std::unique_ptr<Curvature> {
    return std::make_unique<EigenCorrected<Base>>(std::move(c), name);
  };
}

struct Entry {
  std::string name;
  CurvatureFactory factory;
  std::vector<const OptionTableBase*> option_tables;
};

struct Registry {
  std::mutex mutex;
  // In registration order, which is the order of listings and comparisons.
  std::vector<Entry> entries{
      {"kfac", factory_of<KfacCurvature>(), {}},
      {"ekfac", eigen_corrected<KfacCurvature>("ekfac"), {&EigenCorrectedOptions::table()}},
      {"tkfac", factory_of<TkfacCurvature>(), {&TraceDampingOptions::table()}},
      {"tekfac",
       eigen_corrected<TkfacCurvature>("tekfac"),
       {&EigenCorrectedOptions::table(), &TraceDampingOptions::table()}},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

// Requires the registry's mutex to be held.
std::vector<Entry>::iterator find_method(const std::string& name) {
  auto& f = registry().entries;
  return std::find_if(f.begin(), f.end(), [&](const auto& entry) { return entry.name == name; });
}
}  // namespace

void register_method(const std::string& name, CurvatureFactory factory,
                     std::vector<const OptionTableBase*> option_tables) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  auto it = find_method(name);
  if (it != registry().entries.end())
    *it = Entry{name, std::move(factory), std::move(option_tables)};
  else
    registry().entries.push_back(Entry{name, std::move(factory), std::move(option_tables)});
}

std::vector<const OptionTableBase*> method_option_tables(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  auto it = find_method(name);
  KFAC_CHECK(it != registry().entries.end(), "unknown method '", name, "'");
  return it->option_tables;
}

bool is_registered_method(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return find_method(name) != registry().entries.end();
}

std::vector<std::string> registered_methods() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& e : registry().entries) names.push_back(e.name);
  return names;
}

std::string registered_method_names() {
  std::string out;
  for (const auto& n : registered_methods()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_registered_method(const std::string& name) {
  if (is_registered_method(name)) return;
  const auto close = closest_spelling(name, registered_methods());
  KFAC_CHECK(false, "unknown method '", name, "'; valid methods: ", registered_method_names(),
             close.empty() ? "" : "; did you mean '" + close + "'?");
}

std::unique_ptr<Curvature> make_curvature(const std::string& name, CurvatureContext context) {
  CurvatureFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto it = find_method(name);
    if (it != registry().entries.end()) factory = it->factory;
  }
  if (!factory) check_registered_method(name);
  return factory(std::move(context));
}

std::unique_ptr<Curvature> make_kind_curvature(const std::string& own_block, CurvatureContext context) {
  if (own_block.empty()) return nullptr;
  if (own_block == "embedding") return std::make_unique<EmbeddingCurvature>(std::move(context));
  KFAC_CHECK(own_block == "scale-shift", "layer '", context.layer_name, "': no block '", own_block,
             "' (the kinds' own blocks are embedding and scale-shift)");
  return std::make_unique<ScaleShiftCurvature>(std::move(context));
}

}  // namespace kfac
