// Curvature methods by name. Adding a method = one new file with a Curvature subclass (and, if it has options, its
// options block and table) + one line in registry.cpp, or a call to register_method from user code.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"

namespace kfac {

using CurvatureFactory = std::function<std::unique_ptr<Curvature>(CurvatureContext)>;

/// Registers (or replaces) a method under `name`; `option_tables` are the tables of the option blocks it reads from
/// CurvatureContext::method_options (their fields become options, flags and keywords like the shared ones).
void register_method(const std::string& name, CurvatureFactory factory,
                     std::vector<const OptionTableBase*> option_tables = {});
/// The option blocks of a registered method (throws for an unknown one).
std::vector<const OptionTableBase*> method_option_tables(const std::string& name);
bool is_registered_method(const std::string& name);
/// "kfac, ..." for messages and --help.
std::string registered_method_names();
std::vector<std::string> registered_methods();
/// Throws naming the valid methods (and the closest spelling) unless `name` is registered.
void check_registered_method(const std::string& name);
/// Builds the named method; throws naming the valid methods when unknown.
std::unique_ptr<Curvature> make_curvature(const std::string& name, CurvatureContext context);
/// The block a layer kind brings itself (LayerKind::own_block: "embedding", "scale-shift"); nullptr for "" (the
/// method's Kronecker form).
std::unique_ptr<Curvature> make_kind_curvature(const std::string& own_block, CurvatureContext context);

}  // namespace kfac
