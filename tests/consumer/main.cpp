#include <kfac/kfac.h>
#include <torch/nn/modules/container/sequential.h>

#include <iostream>

int main() {
  torch::nn::Sequential net(kfac::nn::Linear(4, 3));
  auto precond = std::make_shared<kfac::Preconditioner>(*net);
  kfac::KfacOptimizer opt(net->parameters(), precond, kfac::KfacOptimizerOptions(0.1));
  auto x = torch::randn({8, 4});
  auto y = torch::randint(0, 3, {8});
  precond->update_statistics([&](const torch::Tensor& in) { return net->forward(in); }, x,
                             kfac::LossKind::SoftmaxCrossEntropy);
  kfac::loss(net->forward(x), y, kfac::LossKind::SoftmaxCrossEntropy).backward();
  opt.step();
  std::cout << "consumer ok, refreshed=" << opt.last_stats().refreshed << "\n";
  return opt.last_stats().refreshed ? 0 : 1;
}
