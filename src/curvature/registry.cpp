#include "kfac/curvature/registry.h"

#include <map>
#include <mutex>

#include "kfac/curvature/kfac_curvature.h"
#include "kfac/errors.h"

namespace kfac {

namespace {
template <typename T>
CurvatureFactory factory_of() {
  return [](CurvatureContext c) -> std::unique_ptr<Curvature> { return std::make_unique<T>(std::move(c)); };
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, CurvatureFactory> factories{
      {"kfac", factory_of<KfacCurvature>()},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

void register_method(const std::string& name, CurvatureFactory factory) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().factories[name] = std::move(factory);
}

bool is_registered_method(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return registry().factories.count(name) > 0;
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
    auto it = registry().factories.find(name);
    KFAC_CHECK(it != registry().factories.end(), "unknown method '", name, "'; valid methods: ",
               [&] {
                 std::string s;
                 for (const auto& [n, f] : registry().factories) s += (s.empty() ? "" : ", ") + n;
                 return s;
               }());
    factory = it->second;
  }
  return factory(std::move(context));
}

}  // namespace kfac
