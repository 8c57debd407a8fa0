#include "models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/torch.h>

#include "kfac/errors.h"
#include "kfac/nn/layers.h"

namespace kfac::tool {

std::vector<std::string> model_names() { return {"autoencoder", "mlp", "cnn"}; }

void sparse_init(torch::nn::Module& layer, int64_t nonzero) {
  torch::NoGradGuard no_grad;
  auto* linear = layer.as<kfac::nn::LinearImpl>();
  KFAC_CHECK(linear != nullptr, "sparse_init expects a kfac::nn::Linear");
  auto& w = linear->weight;
  const int64_t out = w.size(0), in = w.size(1), k = std::min(nonzero, in);
  w.zero_();
  for (int64_t i = 0; i < out; ++i) {
    auto cols = torch::randperm(in, torch::kLong).narrow(0, 0, k);
    w[i].index_put_({cols}, torch::randn({k}));
  }
  if (linear->bias.defined()) linear->bias.zero_();
}

Model make_model(const std::string& name) {
  torch::nn::Sequential net;
  if (name == "autoencoder") {
    const std::vector<int64_t> sizes{784, 1000, 500, 250, 30, 250, 500, 1000, 784};
    const size_t code = 4;  // index of the 30-unit code layer's output
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      kfac::nn::Linear layer(sizes[i], sizes[i + 1]);
      sparse_init(*layer, 15);
      net->push_back("fc" + std::to_string(i + 1), layer);
      if (i + 2 < sizes.size() && i + 1 != code) net->push_back(torch::nn::Sigmoid());
    }
    return {name, net, LossKind::SigmoidCrossEntropy, true};
  }
  if (name == "mlp") {
    net->push_back("fc1", kfac::nn::Linear(784, 256));
    net->push_back(torch::nn::ReLU());
    net->push_back("fc2", kfac::nn::Linear(256, 128));
    net->push_back(torch::nn::ReLU());
    net->push_back("fc3", kfac::nn::Linear(128, 10));
    return {name, net, LossKind::SoftmaxCrossEntropy, false};
  }
  if (name == "cnn") {
    // Issue 7's benchmark CNN: 3x3 convs of 32 and 64 channels with 2x2 max-pooling, fc 1600-128-10.
    net->push_back(torch::nn::Functional([](const torch::Tensor& x) { return x.reshape({-1, 1, 28, 28}); }));
    net->push_back("conv1", kfac::nn::Conv2d(1, 32, 3));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::MaxPool2d(2));
    net->push_back("conv2", kfac::nn::Conv2d(32, 64, 3));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::MaxPool2d(2));
    net->push_back(torch::nn::Flatten());
    net->push_back("fc1", kfac::nn::Linear(1600, 128));
    net->push_back(torch::nn::ReLU());
    net->push_back("fc2", kfac::nn::Linear(128, 10));
    return {name, net, LossKind::SoftmaxCrossEntropy, false};
  }
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  KFAC_CHECK(false, "unknown model '", name, "'; valid models: ", valid);
  return {};
}

}  // namespace kfac::tool
