#include "baselines.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace kfac::tool {

namespace {
// Learning rates from short grids on the autoencoder (its loss sums 784 pixels) and on the classifiers.
double sgd_lr(const std::string& model) { return model == "autoencoder" ? 0.01 : 0.05; }
double adam_lr(const std::string&) { return 1e-3; }
}  // namespace

const std::vector<Baseline>& baselines() {
  static const std::vector<Baseline> table{
      {"sgd", "SGD with heavy-ball momentum", sgd_lr, 0.9,
       [](std::vector<at::Tensor> p, const BaselineSettings& s) -> std::unique_ptr<torch::optim::Optimizer> {
         return std::make_unique<torch::optim::SGD>(
             std::move(p), torch::optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay));
       }},
      {"adam", "Adam (weight decay as L2 in the gradient)", adam_lr, 0,
       [](std::vector<at::Tensor> p, const BaselineSettings& s) -> std::unique_ptr<torch::optim::Optimizer> {
         return std::make_unique<torch::optim::Adam>(std::move(p),
                                                     torch::optim::AdamOptions(s.lr).weight_decay(s.weight_decay));
       }},
      {"adamw", "AdamW (decoupled weight decay)", adam_lr, 0,
       [](std::vector<at::Tensor> p, const BaselineSettings& s) -> std::unique_ptr<torch::optim::Optimizer> {
         return std::make_unique<torch::optim::AdamW>(std::move(p),
                                                      torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay));
       }},
  };
  return table;
}

const Baseline* find_baseline(const std::string& method) {
  for (const auto& b : baselines())
    if (b.name == method) return &b;
  return nullptr;
}

bool is_baseline(const std::string& method) { return find_baseline(method) != nullptr; }

std::vector<std::string> baseline_names() {
  std::vector<std::string> names;
  for (const auto& b : baselines()) names.push_back(b.name);
  return names;
}

}  // namespace kfac::tool
