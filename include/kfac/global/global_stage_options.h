// The global stage in effect: what follows the per-layer (one-level) preconditioning, by registered name
// (kfac/global/stage_registry.h): "none", "two-level" (its options: kfac/global/two_level_options.h) or
// "block-tridiagonal" (Martens & Grosse 2015 §4.3). A stage's own options are blocks of its own, set with
// PreconditionerOptions::with.
#pragma once

#include <torch/arg.h>

#include <string>

#include "kfac/util/option_table.h"

namespace kfac {

struct GlobalStageOptions {
  static const OptionTable<GlobalStageOptions>& table();
  /// The stage, by registered name; "none": the per-layer directions are final.
  TORCH_ARG(std::string, global_stage) = "none";
};

}  // namespace kfac
