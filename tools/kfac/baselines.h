// The baseline optimizers the tool compares against, in one table: adding one is one entry in baselines.cpp.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

namespace kfac::tool {

struct BaselineSettings {
  double lr = 0, momentum = 0, weight_decay = 0;
};

struct Baseline {
  std::string name;
  std::string doc;
  double (*default_lr)(const std::string& model);
  double default_momentum;  ///< 0 where the optimizer has none
  std::unique_ptr<torch::optim::Optimizer> (*build)(std::vector<at::Tensor> params, const BaselineSettings& s);
};

/// The table, in the order of listings.
const std::vector<Baseline>& baselines();
/// The entry called `method`, or nullptr for a curvature method.
const Baseline* find_baseline(const std::string& method);
bool is_baseline(const std::string& method);
std::vector<std::string> baseline_names();

}  // namespace kfac::tool
