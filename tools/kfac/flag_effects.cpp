#include "flag_effects.h"

#include <algorithm>

#include "baselines.h"
#include "kfac/curvature/eigen_corrected.h"
#include "kfac/curvature/registry.h"
#include "kfac/global/stage_registry.h"
#include "option_flags.h"

namespace kfac::tool {

namespace {
bool given(const CLI::App& cmd, const std::string& flag) {
  const auto* option = cmd.get_option_no_throw(flag);
  return option != nullptr && option->count() > 0;
}

// The flags of a table field: --NAME, and --no-NAME for a flag field.
std::vector<std::string> flags_of(const OptionTableBase& table, const OptionSpec& spec) {
  const auto flag = block_flag(table, spec);
  std::vector<std::string> out{flag};
  if (spec.type == OptionType::Flag) out.push_back("--no-" + flag.substr(2));
  return out;
}
}  // namespace

std::vector<std::string> ineffective_flags(const CLI::App& cmd, const TrainConfig& cfg, const std::string& method) {
  std::vector<std::string> out;
  const auto note = [&](const std::string& flag, const std::string& why) {
    if (given(cmd, flag)) out.push_back(flag + " has no effect on " + method + ": " + why);
  };
  const auto note_table = [&](const OptionTableBase& table, const std::string& why) {
    for (const auto& spec : table.specs())
      if (!set_by_the_tool(spec))
        for (const auto& flag : flags_of(table, spec)) note(flag, why);
  };
  // The flags of the baselines' own tables that `method` has no field for.
  const auto* own = is_baseline(method) ? find_baseline(method)->table : nullptr;
  std::vector<std::string> noted;
  for (const auto& b : baselines())
    if (b.table && b.table != own)
      for (const auto& spec : b.table->specs())
        if (!set_by_the_tool_flags(spec) && (!own || own->find(spec.name) == own->specs().size()) &&
            std::find(noted.begin(), noted.end(), spec.name) == noted.end()) {
          noted.push_back(spec.name);
          for (const auto& flag : flags_of(*b.table, spec)) note(flag, "it is an option of " + b.name);
        }
  if (is_baseline(method)) {
    for (const auto& block : option_blocks(cfg.preconditioner, /*every_method=*/true))
      note_table(*block.table, "it is a preconditioner option of the K-FAC methods");
    for (const char* flag : {"--kl-clip", "--step-rule"}) note(flag, "it applies to the K-FAC methods");
    note_table(QModelOptions::table(), "it applies to the K-FAC methods");
    if (method != "sgd" && method != "muon")
      note("--momentum", "its first moment has its own decay (--beta1); --momentum is SGD's and Muon's");
    if (!find_baseline(method)->has_fallback_group)
      note("--fallback-lr", "it has one rate (--lr); --fallback-lr is the K-FAC methods' and Muon's");
    return out;
  }
  const auto options = with_method(cfg.preconditioner, method);
  // The blocks of the other registered methods and global stages (EKFAC's spectrum_period on kfac).
  const auto mine = option_blocks(options);
  for (const auto& block : option_blocks(options, /*every_method=*/true)) {
    const bool used = std::any_of(mine.begin(), mine.end(), [&](const auto& b) { return b.table == block.table; });
    if (used) continue;
    const auto stages = registered_global_stages();
    const bool of_stage = std::any_of(stages.begin(), stages.end(), [&](const std::string& s) {
      const auto tables = global_stage_option_tables(s);
      return std::find(tables.begin(), tables.end(), block.table) != tables.end();
    });
    note_table(*block.table, of_stage && options.global_stage() == "none"
                                 ? "there is no global stage (--global-stage, METHOD+SPACE)"
                                 : "it is an option of the " + block.table->name() + " block of other " +
                                       (of_stage ? "global stages" : "methods"));
  }
  if (cfg.step_rule == "qmodel") {
    for (const char* flag : {"--lr", "--momentum", "--kl-clip", "--weight-decay"})
      note(flag, "the quadratic model (--step-rule qmodel) chooses its own step (use --l2 for weight decay)");
  } else {
    note_table(QModelOptions::table(), "it sets the quadratic model (--step-rule qmodel)");
  }
  if (options.fallback() == FallbackKind::Identity)
    for (const char* flag : {"--fallback-beta2", "--fallback-epsilon"}) note(flag, "it sets --fallback adam");
  if (options.method() == "kfac" && inverts_by_cholesky(options.damping_mode(), options.numerics_options()))
    note("--eigenvalue-floor", "the Cholesky inverse has no eigenvalues to floor (use --inverse eigen)");
  const bool sums_over_positions = options.method() == "kfac" ||
                                   (options.method() == "ekfac" &&
                                    options.get<EigenCorrectedOptions>().per_position_spectrum());
  if (!sums_over_positions || options.weight_sharing() == WeightSharing::Reduce || options.global_stage() != "none" ||
      options.retain_statistics())
    note("--stats-positions",
         "it samples the positions of method kfac's factors (and ekfac's with --per-position-spectrum) under "
         "--weight-sharing expand, without a global stage");
  return out;
}

}  // namespace kfac::tool
