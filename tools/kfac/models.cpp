#include "models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/torch.h>

#include "kfac/errors.h"
#include "kfac/util/enum_names.h"
#include "kfac/nn/layers.h"
#include "transformers.h"

namespace kfac::tool {

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

namespace {
Model build_autoencoder() {
  return {"autoencoder", autoencoder({784, 1000, 500, 250, 30, 250, 500, 1000, 784}), LossKind::SigmoidCrossEntropy,
          true};
}

Model build_curves_autoencoder() {
  return {"curves-autoencoder", autoencoder({784, 400, 200, 100, 50, 25, 6, 25, 50, 100, 200, 400, 784}),
          LossKind::SigmoidCrossEntropy, true};
}

Model build_faces_autoencoder() {
  // 25x25 inputs, Gaussian output (squared error) as in the paper
  return {"faces-autoencoder", autoencoder({625, 2000, 1000, 500, 30, 500, 1000, 2000, 625}), LossKind::SquaredError,
          true, 25};
}

Model build_deep_linear() {
  torch::nn::Sequential net;
  // Koroko et al.'s deep linear network: many narrow linear layers, no nonlinearity.
  net->push_back("fc1", kfac::nn::Linear(784, 64));
  for (int i = 2; i <= 16; ++i) net->push_back("fc" + std::to_string(i), kfac::nn::Linear(64, 64));
  net->push_back("fc17", kfac::nn::Linear(64, 10));
  return {"deep-linear", net, LossKind::SoftmaxCrossEntropy, false};
}

Model build_cuda_convnet() {
  torch::nn::Sequential net;
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
  return {"cuda-convnet", net, LossKind::SoftmaxCrossEntropy, false};
}

Model build_resnet() {
  torch::nn::Sequential net;
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
  return {"resnet", net, LossKind::SoftmaxCrossEntropy, false};
}

Model build_mlp() {
  torch::nn::Sequential net;
  net->push_back("fc1", kfac::nn::Linear(784, 256));
  net->push_back(torch::nn::ReLU());
  net->push_back("fc2", kfac::nn::Linear(256, 128));
  net->push_back(torch::nn::ReLU());
  net->push_back("fc3", kfac::nn::Linear(128, 10));
  return {"mlp", net, LossKind::SoftmaxCrossEntropy, false};
}

Model build_cnn() {
  torch::nn::Sequential net;
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
  return {"cnn", net, LossKind::SoftmaxCrossEntropy, false};
}
}  // namespace

const std::vector<ModelEntry>& model_table() {
  static const std::vector<ModelEntry> table{
      {"autoencoder",
       "the K-FAC paper's MNIST autoencoder 784-1000-500-250-30-250-500-1000-784 (logistic units, sparse init, "
       "Bernoulli output)",
       build_autoencoder},
      {"curves-autoencoder", "the paper's CURVES autoencoder 784-400-200-100-50-25-6-...", build_curves_autoencoder},
      {"faces-autoencoder", "the paper's FACES autoencoder 625-2000-1000-500-30-... on 25x25 inputs, Gaussian output",
       build_faces_autoencoder},
      {"mlp", "classifier 784-256-128-10 with ReLU", build_mlp},
      {"deep-linear", "784-64x16-10 without nonlinearity (Koroko et al.'s deep linear network)", build_deep_linear},
      {"cnn", "conv3x3(32)-pool-conv3x3(64)-pool-fc(1600,128)-fc(128,10) with ReLU", build_cnn},
      {"cuda-convnet", "three 5x5 convolutions (32, 32, 64) with pooling and a linear classifier", build_cuda_convnet},
      {"resnet", "a small residual network: stem, two residual blocks (16 and 32 channels), global pooling",
       build_resnet},
      {"vit", "a vision transformer: 16 patches of 7x7, width 64, 4 heads, 2 pre-LN blocks, GELU MLP", build_vit},
      {"char-lm", "a causal character transformer on 64-character windows (--dataset kjv), width 64, 2 blocks",
       build_char_lm},
  };
  return table;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& m : model_table()) names.push_back(m.name);
  return names;
}

Model make_model(const std::string& name) {
  for (const auto& m : model_table())
    if (m.name == name) return m.build();
  throw_unknown_name("model", name, model_names());
}

}  // namespace kfac::tool
