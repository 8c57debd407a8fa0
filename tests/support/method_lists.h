// The lists the contract suites run over, from the registries: a method or a global stage registered later is
// tested without an edit here.
#pragma once

#include <cctype>
#include <string>
#include <vector>

#include "kfac/curvature/registry.h"
#include "kfac/global/stage_registry.h"

namespace kfac::test {

/// Every registered curvature method.
inline std::vector<std::string> every_method() { return registered_methods(); }

/// `method` followed by each global stage, as the tool spells it: "kfac+nicolaides", ..., "kfac+block-tridiagonal".
inline std::vector<std::string> every_global_stage(const std::string& method = "kfac") {
  std::vector<std::string> out;
  for (const auto& stage : global_stage_spellings())
    if (stage != "none") out.push_back(method + "+" + stage);
  return out;
}

/// Every method alone, then K-FAC with every global stage.
inline std::vector<std::string> every_method_and_stage() {
  auto out = every_method();
  for (auto& s : every_global_stage()) out.push_back(std::move(s));
  return out;
}

/// A spec as a test name: "kfac+block-tridiagonal" → "kfac_block_tridiagonal".
inline std::string spec_test_name(std::string spec) {
  for (auto& c : spec)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return spec;
}

/// Options for a spec of every_method_and_stage().
inline PreconditionerOptions options_for_spec(const std::string& spec, PreconditionerOptions base = {}) {
  const auto plus = spec.find('+');
  base.method(spec.substr(0, plus));
  if (plus != std::string::npos) {
    auto stage = base.global_stage();
    apply_global_stage_spelling(spec.substr(plus + 1), stage, base.own_blocks());
    base.global_stage(stage);
  }
  return base;
}

}  // namespace kfac::test
