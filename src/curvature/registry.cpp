#include "kfac/curvature/registry.h"

#include <algorithm>
#include <mutex>

#include "kfac/curvature/eigen_corrected.h"
#include "kfac/curvature/kfac_curvature.h"
#include "kfac/curvature/tkfac_curvature.h"
#include "kfac/errors.h"

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

struct Registry {
  std::mutex mutex;
  // In registration order, which is the order of listings and comparisons.
  std::vector<std::pair<std::string, CurvatureFactory>> factories{
      {"kfac", factory_of<KfacCurvature>()},
      {"ekfac", eigen_corrected<KfacCurvature>("ekfac")},
      {"tkfac", factory_of<TkfacCurvature>()},
      {"tekfac", eigen_corrected<TkfacCurvature>("tekfac")},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

// Requires the registry's mutex to be held.
std::vector<std::pair<std::string, CurvatureFactory>>::iterator find_method(const std::string& name) {
  auto& f = registry().factories;
  return std::find_if(f.begin(), f.end(), [&](const auto& entry) { return entry.first == name; });
}
}  // namespace

void register_method(const std::string& name, CurvatureFactory factory) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  auto it = find_method(name);
  if (it != registry().factories.end())
    it->second = std::move(factory);
  else
    registry().factories.emplace_back(name, std::move(factory));
}

bool is_registered_method(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return find_method(name) != registry().factories.end();
}

std::vector<std::string> registered_methods() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& [name, f] : registry().factories) names.push_back(name);
  return names;
}

std::string registered_method_names() {
  std::string out;
  for (const auto& n : registered_methods()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::unique_ptr<Curvature> make_curvature(const std::string& name, CurvatureContext context) {
  CurvatureFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto it = find_method(name);
    if (it != registry().factories.end()) factory = it->second;
  }
  KFAC_CHECK(factory, "unknown method '", name, "'; valid methods: ", registered_method_names());
  return factory(std::move(context));
}

}  // namespace kfac
