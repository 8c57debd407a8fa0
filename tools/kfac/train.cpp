#include "train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <memory>

#include "data.h"
#include "kfac/kfac.h"
#include "models.h"
#include "progress.h"

namespace kfac::tool {

double default_lr(const std::string& method, const std::string& model) {
  const bool ae = model == "autoencoder";
  if (method == "sgd") return ae ? 0.01 : 0.05;
  if (method == "adam") return 1e-3;
  return ae ? 0.1 : 0.05;
}

namespace {

// Deterministic minibatches: epoch e is a permutation drawn from a generator seeded with (seed, e).
class Batches {
 public:
  Batches(int64_t n, int64_t batch, uint64_t seed) : n_(n), batch_(std::min(batch, n)), seed_(seed) {}
  at::Tensor indices(int64_t step) {
    const int64_t per_epoch = n_ / batch_;
    const int64_t epoch = step / per_epoch, pos = step % per_epoch;
    if (epoch != epoch_) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL + static_cast<uint64_t>(epoch));
      perm_ = at::randperm(n_, gen, at::kLong);
      epoch_ = epoch;
    }
    return perm_.narrow(0, pos * batch_, batch_);
  }

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  at::Tensor perm_;
};

at::Tensor targets_of(const Model& m, const Dataset& d, const at::Tensor& idx) {
  return m.reconstructs_input ? d.images.index_select(0, idx) : d.labels.index_select(0, idx);
}

double evaluate(Model& m, const Dataset& d, int64_t examples, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min(examples, d.size());
  double total = 0;
  for (int64_t start = 0; start < n; start += 1000) {
    const int64_t len = std::min<int64_t>(1000, n - start);
    auto idx = at::arange(start, start + len, at::kLong);
    auto x = d.images.index_select(0, idx).to(device);
    total += kfac::loss(m.net->forward(x), targets_of(m, d, idx).to(device), m.loss).item<double>() * len;
  }
  return total / n;
}

}  // namespace

TrainResult train(const TrainConfig& cfg) {
  KFAC_CHECK(cfg.steps >= 1, "--steps must be >= 1, got ", cfg.steps);
  KFAC_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  KFAC_CHECK(cfg.lr >= 0, "--lr must be > 0 (or 0 for the method's default), got ", cfg.lr);
  const torch::Device device(cfg.device);
  KFAC_CHECK(!device.is_cuda() || torch::cuda::is_available(), "--device ", cfg.device,
             " requested but CUDA is not available in this LibTorch build or machine");

  TrainResult result;
  result.config = cfg;
  result.lr = cfg.lr > 0 ? cfg.lr : default_lr(cfg.method, cfg.model);

  const auto dir = cfg.data_dir.empty() ? default_fashion_mnist_dir() : cfg.data_dir;
  const auto train_set = load_fashion_mnist(dir, true);
  const auto test_set = load_fashion_mnist(dir, false);

  torch::manual_seed(cfg.seed);
  Model model = make_model(cfg.model);
  model.net->to(device);
  auto params = model.net->parameters();

  std::unique_ptr<torch::optim::Optimizer> opt;
  std::shared_ptr<Preconditioner> precond;
  if (cfg.method == "sgd") {
    opt = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(result.lr).momentum(cfg.momentum).weight_decay(cfg.weight_decay));
  } else if (cfg.method == "adam") {
    opt = std::make_unique<torch::optim::Adam>(params,
                                               torch::optim::AdamOptions(result.lr).weight_decay(cfg.weight_decay));
  } else {
    auto popts = cfg.preconditioner;
    popts.method(cfg.method).seed(cfg.seed);
    precond = std::make_shared<Preconditioner>(*model.net, popts);
    opt = std::make_unique<KfacOptimizer>(
        params, precond,
        KfacOptimizerOptions(result.lr).momentum(cfg.momentum).weight_decay(cfg.weight_decay).kl_clip(cfg.kl_clip));
  }

  Batches batches(train_set.size(), cfg.batch_size, cfg.seed);
  Progress progress(cfg.method + " " + cfg.model, cfg.steps, cfg.quiet);
  const auto forward = [&](const at::Tensor& in) { return model.net->forward(in); };
  const int64_t warmup = std::max<int64_t>(2, cfg.steps / 10);
  double timed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < cfg.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto idx = batches.indices(step);
    const auto x = train_set.images.index_select(0, idx).to(device);
    const auto y = targets_of(model, train_set, idx).to(device);
    opt->zero_grad();
    if (precond) precond->update_statistics(forward, x, model.loss, y);
    auto loss = kfac::loss(model.net->forward(x), y, model.loss);
    loss.backward();
    opt->step();
    const double value = loss.item<double>();  // also synchronizes an accelerator
    const auto t1 = std::chrono::steady_clock::now();
    if (precond && static_cast<KfacOptimizer&>(*opt).last_stats().skipped) ++result.skipped_steps;
    if (step >= warmup || cfg.steps <= warmup) timed += std::chrono::duration<double>(t1 - t0).count();
    result.history.push_back({step, value, std::chrono::duration<double>(t1 - start).count()});
    progress.update(step + 1, value);
  }
  progress.finish();
  result.seconds_per_step = timed / static_cast<double>(cfg.steps <= warmup ? cfg.steps : cfg.steps - warmup);
  model.net->eval();
  result.train_loss = evaluate(model, train_set, cfg.eval_examples, device);
  result.test_loss = evaluate(model, test_set, cfg.eval_examples, device);
  return result;
}

void write_metrics_json(const TrainResult& r, const std::string& path) {
  nlohmann::json j;
  j["method"] = r.config.method;
  j["model"] = r.config.model;
  j["steps"] = r.config.steps;
  j["batch_size"] = r.config.batch_size;
  j["lr"] = r.lr;
  j["seed"] = r.config.seed;
  j["train_loss"] = r.train_loss;
  j["test_loss"] = r.test_loss;
  j["seconds_per_step"] = r.seconds_per_step;
  j["skipped_steps"] = r.skipped_steps;
  j["history"] = nlohmann::json::array();
  for (const auto& h : r.history)
    j["history"].push_back({{"step", h.step}, {"train_loss", h.train_loss}, {"seconds", h.seconds}});
  std::ofstream out(path + ".tmp");
  KFAC_CHECK(out.good(), "cannot write metrics file '", path, "'");
  out << j.dump(1) << "\n";
  out.close();
  KFAC_CHECK(std::rename((path + ".tmp").c_str(), path.c_str()) == 0, "cannot write metrics file '", path, "'");
}

}  // namespace kfac::tool
