// The baseline optimizers the tool compares against, in one table: adding one is one entry in baselines.cpp.
// SGD, Adam and AdamW are LibTorch's; Muon, Shampoo and SOAP the library's (kfac/optim/), each with an option table
// whose fields (but lr, momentum and weight_decay, which the tool's own flags set) become flags, TOML keys, metrics
// JSON and checkpoint records.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train.h"

namespace kfac::tool {

struct BaselineSettings {
  double lr = 0, momentum = 0, weight_decay = 0;
  double fallback_lr = 0;     ///< Muon's AdamW group
  const TrainConfig* config;  ///< the method's option block (Muon, Shampoo, SOAP)
};

/// What a baseline built: the optimizer and, for Muon, which parameters it orthogonalizes (the run's report).
struct BuiltBaseline {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::string report;
  std::vector<double> base_lr;  ///< per parameter group, for the schedule
};

struct Baseline {
  std::string name;
  std::string doc;
  double (*default_lr)(const std::string& model);
  double default_momentum;  ///< 0 where the optimizer has none (or --momentum does not set it)
  /// The option block of the method's own (nullptr: none), read from a config.
  const OptionTableBase* table;
  const void* (*block)(const TrainConfig& config);
  BuiltBaseline (*build)(torch::nn::Module& model, const BaselineSettings& s);
  bool has_fallback_group = false;  ///< --fallback-lr sets a group of its own (Muon's AdamW parameters)
};

/// The table, in the order of listings.
const std::vector<Baseline>& baselines();
/// The entry called `method`, or nullptr for a curvature method.
const Baseline* find_baseline(const std::string& method);
bool is_baseline(const std::string& method);
std::vector<std::string> baseline_names();
/// The option blocks of the baselines that have one, inside `config` (for the generated flags).
std::vector<std::pair<const OptionTableBase*, void*>> baseline_blocks(TrainConfig& config);
/// Fields the tool's own flags set: --lr, --momentum, --weight-decay; orthogonalize is Muon's split's.
bool set_by_the_tool_flags(const OptionSpec& spec);
/// The option values of `method`'s block as "name value" lines (empty when it has none): checkpoints record them.
std::string baseline_options_text(const TrainConfig& config, const std::string& method);

}  // namespace kfac::tool
