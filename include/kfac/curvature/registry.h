// Curvature methods by name. Adding a method = one new file with a Curvature subclass + one line in registry.cpp
// (or a call to register_method from user code).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"

namespace kfac {

using CurvatureFactory = std::function<std::unique_ptr<Curvature>(CurvatureContext)>;

/// Registers (or replaces) a method under `name`.
void register_method(const std::string& name, CurvatureFactory factory);
bool is_registered_method(const std::string& name);
/// "kfac, ..." for messages and --help.
std::string registered_method_names();
std::vector<std::string> registered_methods();
/// Builds the named method; throws naming the valid methods when unknown.
std::unique_ptr<Curvature> make_curvature(const std::string& name, CurvatureContext context);

}  // namespace kfac
