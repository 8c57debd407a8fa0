#include "baselines.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <sstream>

#include "kfac/optim/muon.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"

namespace kfac::tool {

namespace {
// Learning rates from short grids on the autoencoder (its loss sums 784 pixels) and on the classifiers; Muon's,
// Shampoo's and SOAP's from bench/sweep_baselines.py (bench/README.md).
double sgd_lr(const std::string& model) { return model == "autoencoder" ? 0.01 : 0.05; }
double adam_lr(const std::string&) { return 1e-3; }
// The best of each method's two rates on the four models of the comparison (bench/README.md, "Against Muon, Shampoo
// and SOAP"); elsewhere the published defaults: Muon 0.02 (Jordan et al.), SOAP 3e-3 (Vyas et al.), Shampoo with
// Adam grafting Adam's 1e-3.
bool swept(const std::string& model) {
  return model == "autoencoder" || model == "cnn" || model == "vit" || model == "char-lm";
}
double muon_lr(const std::string& model) { return model == "vit" ? 0.01 : swept(model) ? 0.03 : 0.02; }
double shampoo_lr(const std::string& model) { return model == "vit" || !swept(model) ? 1e-3 : 3e-3; }
double soap_lr(const std::string&) { return 3e-3; }

BuiltBaseline single(std::unique_ptr<torch::optim::Optimizer> opt, double lr) { return {std::move(opt), "", {lr}}; }

std::vector<at::Tensor> trainable(torch::nn::Module& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}
}  // namespace

const std::vector<Baseline>& baselines() {
  static const std::vector<Baseline> table{
      {"sgd", "SGD with heavy-ball momentum", sgd_lr, 0.9, nullptr, nullptr,
       [](torch::nn::Module& m, const BaselineSettings& s) {
         return single(std::make_unique<torch::optim::SGD>(
                           trainable(m),
                           torch::optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay)),
                       s.lr);
       }},
      {"adam", "Adam (weight decay as L2 in the gradient)", adam_lr, 0, nullptr, nullptr,
       [](torch::nn::Module& m, const BaselineSettings& s) {
         return single(std::make_unique<torch::optim::Adam>(
                           trainable(m), torch::optim::AdamOptions(s.lr).weight_decay(s.weight_decay)),
                       s.lr);
       }},
      {"adamw", "AdamW (decoupled weight decay)", adam_lr, 0, nullptr, nullptr,
       [](torch::nn::Module& m, const BaselineSettings& s) {
         return single(std::make_unique<torch::optim::AdamW>(
                           trainable(m), torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay)),
                       s.lr);
       }},
      {"muon", "Muon: orthogonalized momentum on hidden matrices, AdamW on the rest (kfac::Muon)", muon_lr, 0.95,
       &MuonOptions::table(), [](const TrainConfig& c) -> const void* { return &c.muon; },
       [](torch::nn::Module& m, const BaselineSettings& s) {
         const auto split = muon_split(m);
         const auto options = MuonOptions(s.config->muon).lr(s.lr).momentum(s.momentum).weight_decay(s.weight_decay);
         auto groups = muon_groups(split, options, s.fallback_lr);
         std::vector<double> rates;
         for (const auto& g : groups) rates.push_back(g.options().get_lr());
         return BuiltBaseline{std::make_unique<Muon>(std::move(groups), options), split.report, rates};
       },
       true},
      {"shampoo", "Shampoo with Adam grafting, as Distributed Shampoo (kfac::Shampoo)", shampoo_lr, 0,
       &ShampooOptions::table(), [](const TrainConfig& c) -> const void* { return &c.shampoo; },
       [](torch::nn::Module& m, const BaselineSettings& s) {
         return single(std::make_unique<Shampoo>(
                           trainable(m), ShampooOptions(s.config->shampoo).lr(s.lr).weight_decay(s.weight_decay)),
                       s.lr);
       }},
      {"soap", "SOAP: Adam in Shampoo's eigenbasis (kfac::Soap)", soap_lr, 0, &SoapOptions::table(),
       [](const TrainConfig& c) -> const void* { return &c.soap; },
       [](torch::nn::Module& m, const BaselineSettings& s) {
         return single(std::make_unique<Soap>(trainable(m),
                                              SoapOptions(s.config->soap).lr(s.lr).weight_decay(s.weight_decay)),
                       s.lr);
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

std::vector<std::pair<const OptionTableBase*, void*>> baseline_blocks(TrainConfig& config) {
  std::vector<std::pair<const OptionTableBase*, void*>> out;
  for (const auto& b : baselines())
    if (b.table) out.emplace_back(b.table, const_cast<void*>(b.block(config)));
  return out;
}

bool set_by_the_tool_flags(const OptionSpec& spec) {
  return spec.name == "lr" || spec.name == "momentum" || spec.name == "weight_decay" || spec.name == "orthogonalize";
}

std::string baseline_options_text(const TrainConfig& config, const std::string& method) {
  const auto* b = find_baseline(method);
  if (!b || !b->table) return "";
  std::ostringstream s;
  const auto& specs = b->table->specs();
  for (size_t i = 0; i < specs.size(); ++i)
    if (!set_by_the_tool_flags(specs[i]))
      s << specs[i].cli_name() << " " << format_value(specs[i], b->table->get(b->block(config), i)) << "\n";
  return s.str();
}

}  // namespace kfac::tool
