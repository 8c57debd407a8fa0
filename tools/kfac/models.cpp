#include "models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/torch.h>

#include "kfac/errors.h"
#include "kfac/nn/layers.h"

namespace kfac::tool {

std::vector<std::string> model_names() {
  return {"autoencoder", "curves-autoencoder", "faces-autoencoder", "mlp", "deep-linear", "cnn", "cuda-convnet",
          "resnet"};
}

namespace {
// The K-FAC paper's autoencoders: logistic hidden units, a linear code layer in the middle, sparse initialization.
torch::nn::Sequential autoencoder(const std::vector<int64_t>& sizes) {
  torch::nn::Sequential net;
  const size_t code = sizes.size() / 2 - 1;  // the layer producing the code
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    kfac::nn::Linear layer(sizes[i], sizes[i + 1]);
    sparse_init(*layer, 15);
    net->push_back("fc" + std::to_string(i + 1), layer);
    if (i + 2 < sizes.size() && i != code) net->push_back(torch::nn::Sigmoid());
  }
  return net;
}

torch::nn::Functional as_images(int64_t side) {
  return torch::nn::Functional([side](const torch::Tensor& x) { return x.reshape({-1, 1, side, side}); });
}

// A residual block of two 3x3 K-FAC convolutions (no batch norm: K-FAC does not cover it).
struct ResidualBlockImpl : torch::nn::Module {
  explicit ResidualBlockImpl(int64_t channels)
      : conv1(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)),
        conv2(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(x + conv2(torch::relu(conv1(x)))); }
  kfac::nn::Conv2d conv1, conv2;
};
TORCH_MODULE(ResidualBlock);
}  // namespace

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
  if (name == "autoencoder")
    return {name, autoencoder({784, 1000, 500, 250, 30, 250, 500, 1000, 784}), LossKind::SigmoidCrossEntropy, true};
  if (name == "curves-autoencoder")
    return {name, autoencoder({784, 400, 200, 100, 50, 25, 6, 25, 50, 100, 200, 400, 784}),
            LossKind::SigmoidCrossEntropy, true};
  if (name == "faces-autoencoder")  // 25x25 inputs, Gaussian output (squared error) as in the paper
    return {name, autoencoder({625, 2000, 1000, 500, 30, 500, 1000, 2000, 625}), LossKind::SquaredError, true, 25};
  if (name == "deep-linear") {
    // Koroko et al.'s deep linear network: many narrow linear layers, no nonlinearity.
    net->push_back("fc1", kfac::nn::Linear(784, 64));
    for (int i = 2; i <= 16; ++i) net->push_back("fc" + std::to_string(i), kfac::nn::Linear(64, 64));
    net->push_back("fc17", kfac::nn::Linear(64, 10));
    return {name, net, LossKind::SoftmaxCrossEntropy, false};
  }
  if (name == "cuda-convnet") {
    // cuda-convnet's layers-18pct shape on 28x28: three 5x5 convolutions (32, 32, 64) with pooling, then fc.
    net->push_back(as_images(28));
    net->push_back("conv1", kfac::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 5).padding(2)));
    net->push_back(torch::nn::MaxPool2d(2));
    net->push_back(torch::nn::ReLU());
    net->push_back("conv2", kfac::nn::Conv2d(torch::nn::Conv2dOptions(32, 32, 5).padding(2)));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::AvgPool2d(2));
    net->push_back("conv3", kfac::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 5).padding(2)));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::AvgPool2d(2));
    net->push_back(torch::nn::Flatten());
    net->push_back("fc", kfac::nn::Linear(64 * 3 * 3, 10));
    return {name, net, LossKind::SoftmaxCrossEntropy, false};
  }
  if (name == "resnet") {
    net->push_back(as_images(28));
    net->push_back("stem", kfac::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    net->push_back(torch::nn::ReLU());
    net->push_back("block1", ResidualBlock(16));
    net->push_back("down", kfac::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).stride(2).padding(1)));
    net->push_back(torch::nn::ReLU());
    net->push_back("block2", ResidualBlock(32));
    net->push_back(torch::nn::AdaptiveAvgPool2d(1));
    net->push_back(torch::nn::Flatten());
    net->push_back("fc", kfac::nn::Linear(32, 10));
    return {name, net, LossKind::SoftmaxCrossEntropy, false};
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
    net->push_back(as_images(28));
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
