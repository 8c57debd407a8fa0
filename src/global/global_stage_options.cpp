#include "kfac/global/global_stage_options.h"

#include "kfac/errors.h"

namespace kfac {

const OptionTable<GlobalStageOptions>& GlobalStageOptions::table() {
  using O = GlobalStageOptions;
  static const OptionTable<O> t(
      "global_stage", "The stage after the per-layer preconditioning (two-level correction or block-tridiagonal)",
      {field<O>(KFAC_FIELD(O, global_stage),
                "What follows the per-layer preconditioning: none, two-level (a coarse-space correction) or "
                "block-tridiagonal (K-FAC with factored damping only)"),
       field<O>(KFAC_FIELD(O, coarse_space), "Two-level: the coarse space"),
       field<O>(KFAC_FIELD(O, coarse_matrix),
                "Two-level: the coarse matrix, exact (per-example gradients) or kronecker (cross-layer factors); "
                "unset: kronecker for tselepidis, exact otherwise",
                unset_reads("auto")),
       field<O>(KFAC_FIELD(O, combine), "Two-level: how the coarse correction and the per-layer solve combine"),
       field<O>(KFAC_FIELD(O, krylov), "Two-level: add M⁻¹r to each layer's coarse vector (nicolaides, residual)"),
       field<O>(KFAC_FIELD(O, coarse_weight), "Two-level: weight ω of the coarse correction (0 = one-level)",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, coarse_damping), "Two-level: coarse damping λ_c (unset: the damping λ)",
                {positive(), "damping", {}}),
       field<O>(KFAC_FIELD(O, coarse_period), "Two-level: steps between coarse basis and matrix updates",
                bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, coarse_ema_decay), "Two-level: cap of the coarse matrix's EMA decay",
                bounded(between(0, 1, false, true)))});
  return t;
}

std::string GlobalStageOptions::describe() const {
  if (global_stage() != GlobalStageKind::TwoLevel) return to_string(global_stage());
  return "two-level " + to_string(coarse_space()) + (krylov() ? "+krylov" : "");
}

std::vector<std::string> global_stage_names() {
  std::vector<std::string> names{"none"};
  for (const auto& s : enum_choices<CoarseSpace>()) names.push_back(s);
  names.emplace_back("block-tridiagonal");
  return names;
}

void apply_global_stage_name(GlobalStageOptions& options, const std::string& name) {
  if (name == "none" || name == "block-tridiagonal") {
    options.global_stage(parse_enum<GlobalStageKind>(name));
    return;
  }
  const auto names = global_stage_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) throw_unknown_name("global stage", name, names);
  options.global_stage(GlobalStageKind::TwoLevel).coarse_space(parse_enum<CoarseSpace>(name));
}

}  // namespace kfac
