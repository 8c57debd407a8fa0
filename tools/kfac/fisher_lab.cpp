#include "fisher_lab.h"

#include <torch/torch.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "data.h"
#include "kfac/curvature/registry.h"
#include "kfac/fisher/dense_fisher.h"
#include "kfac/kfac.h"
#include "train.h"

namespace kfac::tool {

namespace {
torch::nn::Sequential tiny_model(const std::string& name) {
  torch::nn::Sequential net;
  if (name == "mlp") {
    net->push_back("fc1", kfac::nn::Linear(49, 16));
    net->push_back(torch::nn::Functional(torch::tanh));
    net->push_back("fc2", kfac::nn::Linear(16, 10));
  } else if (name == "cnn") {
    net->push_back(torch::nn::Functional([](const torch::Tensor& x) { return x.reshape({-1, 1, 7, 7}); }));
    net->push_back("conv1", kfac::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)));
    net->push_back(torch::nn::Functional(torch::tanh));
    net->push_back("conv2", kfac::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3).stride(2)));
    net->push_back(torch::nn::Functional(torch::tanh));
    net->push_back(torch::nn::Flatten());
    net->push_back("fc", kfac::nn::Linear(36, 10));
  } else {
    KFAC_CHECK(false, "unknown fisher-lab model '", name, "'; valid: mlp, cnn");
  }
  net->to(torch::kDouble);
  return net;
}

at::Tensor flat_grads(const Preconditioner& p) {
  std::vector<at::Tensor> parts;
  for (const auto& l : p.layers()) parts.push_back(vec(l.kind->grad_matrix()));
  return torch::cat(parts);
}

double angle(const at::Tensor& a, const at::Tensor& b) {
  const double c = (a.dot(b) / (a.norm() * b.norm())).item<double>();
  return std::acos(std::max(-1.0, std::min(1.0, c))) * 180.0 / M_PI;
}
}  // namespace

FisherLabResult run_fisher_lab(const FisherLabConfig& cfg) {
  KFAC_CHECK(cfg.examples >= 1, "--examples must be >= 1, got ", cfg.examples);
  const auto data = load_fashion_mnist(cfg.data_dir.empty() ? default_fashion_mnist_dir() : cfg.data_dir, true);
  const int64_t n = std::min(cfg.examples, data.size());
  auto x = torch::avg_pool2d(data.images.narrow(0, 0, n).reshape({n, 1, 28, 28}), 4).reshape({n, 49});
  x = x.to(torch::kDouble);
  const auto y = data.labels.narrow(0, 0, n);
  torch::manual_seed(cfg.seed);
  auto model = tiny_model(cfg.model);
  const auto loss = LossKind::SoftmaxCrossEntropy;
  const auto forward = [&](const at::Tensor& in) { return model->forward(in); };

  FisherLabResult result;
  const auto layers = find_layers(*model);
  for (const auto& l : layers) result.layers.push_back(l.name);
  const auto exact = exact_fisher(forward, layers, x, loss, /*true_fisher=*/true);
  model->zero_grad();
  kfac::loss(model->forward(x), y, loss).backward();
  std::vector<at::Tensor> gparts;
  gparts.reserve(layers.size());
  for (const auto& l : layers) gparts.push_back(vec(l.kind->grad_matrix()));
  const auto g = torch::cat(gparts);
  const auto eye = torch::eye(g.size(0), torch::kDouble);
  const auto natural = torch::linalg_solve(exact.matrix + cfg.damping * eye, g.unsqueeze(1)).squeeze(1);

  auto methods = cfg.methods;
  if (methods.empty()) {
    methods = registered_methods();
    for (const auto& stage : global_stage_spellings())
      if (stage != "none") methods.push_back("kfac+" + stage);
  }
  for (const auto& method : methods) {
    // Exact statistics; the second step fills the eigenvalue-corrected spectra from them.
    auto options = with_method(PreconditionerOptions(), method);
    options.with(TwoLevelOptions(options.get<TwoLevelOptions>()).combine(parse_enum<CoarseCombine>(cfg.combine)));
    Preconditioner p(*model, options.damping(cfg.damping).fisher(FisherType::Exact).ema_decay(0).refresh_period(100));
    for (int k = 0; k < 2; ++k) {
      model->zero_grad();
      p.update_statistics(forward, x, loss);
      kfac::loss(model->forward(x), y, loss).backward();
      p.step();
    }
    FisherLabRow row{method, {}, angle(flat_grads(p), natural)};
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto block = exact.block(i);
      row.block_distance.push_back(((p.curvature(i).to_dense() - block).norm() / block.norm()).item<double>());
    }
    result.rows.push_back(std::move(row));
  }
  result.rows.push_back({"sgd (raw gradient)", std::vector<double>(layers.size(), NAN), angle(g, natural)});
  return result;
}

std::string fisher_lab_table(const FisherLabResult& r) {
  std::ostringstream out;
  out << "| method |";
  for (const auto& l : r.layers) out << " ‖C−F‖/‖F‖ " << l << " |";
  out << " angle to (F+λI)⁻¹g |\n|---|";
  for (size_t i = 0; i <= r.layers.size(); ++i) out << "---|";
  out << "\n";
  out.setf(std::ios::fixed);
  for (const auto& row : r.rows) {
    out << "| " << row.method << " |";
    for (double d : row.block_distance) {
      if (std::isnan(d))
        out << " – |";
      else
        out << " " << std::setprecision(4) << d << " |";
    }
    out << " " << std::setprecision(2) << row.angle_degrees << "° |\n";
  }
  return out.str();
}

}  // namespace kfac::tool
