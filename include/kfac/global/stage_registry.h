// Global stages by name, like curvature methods (kfac/curvature/registry.h). Adding a stage = one file with a
// GlobalStage subclass (and, if it has options, its block and table) + one line in src/global/stage_registry.cpp,
// or a call to register_global_stage from user code. "none" (one-level) is always there and builds nothing.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kfac/curvature/curvature_options.h"
#include "kfac/global/global_stage.h"
#include "kfac/util/option_table.h"

namespace kfac {

/// What a stage knows when it is built: its option blocks and what it may need to check of the one-level part.
struct GlobalStageContext {
  OptionBlocks options;  ///< the blocks its entry declares (get<TwoLevelOptions>()), the rest at defaults
  std::string method;    ///< the curvature method
  DampingMode damping_mode = DampingMode::Factored;
};

struct GlobalStageEntry {
  /// Builds the stage; throws c10::Error naming the option when the stage cannot follow this one-level part.
  std::function<std::unique_ptr<GlobalStage>(const GlobalStageContext&)> make;
  /// The blocks of its options (their fields become options, flags and keywords like the shared ones).
  std::vector<const OptionTableBase*> option_tables = {};
  /// Short names that select the stage with one of its options set (two-level: its coarse spaces, so that
  /// "kfac+residual" reads two-level with coarse_space residual), and how each sets its blocks.
  std::vector<std::string> spellings = {};
  std::function<void(const std::string& spelling, OptionBlocks& blocks)> apply_spelling = {};
};

/// Registers (or replaces) the stage `name`.
void register_global_stage(const std::string& name, GlobalStageEntry entry);
/// The registered stages, in registration order ("none" not included).
std::vector<std::string> registered_global_stages();
/// Throws naming the valid stages (and the closest spelling) unless `name` is "none" or registered.
void check_registered_global_stage(const std::string& name);
/// The option blocks of a registered stage (none for "none" or an unknown name).
std::vector<const OptionTableBase*> global_stage_option_tables(const std::string& name);
/// Builds the stage `name`; nullptr for "none".
std::unique_ptr<GlobalStage> make_global_stage(const std::string& name, const GlobalStageContext& context);

/// What METHOD+STAGE (and the tool's --two-level) accept: "none", then each stage's spellings, or its name.
std::vector<std::string> global_stage_spellings();
/// Sets `stage` and its blocks for one of global_stage_spellings(); throws naming the valid ones.
void apply_global_stage_spelling(const std::string& spelling, std::string& stage, OptionBlocks& blocks);

}  // namespace kfac
