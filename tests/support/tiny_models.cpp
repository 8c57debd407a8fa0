#include "support/tiny_models.h"

#include <torch/torch.h>

#include "kfac/nn/layers.h"
#include "kfac/nn/normalization.h"

namespace kfac::test {

torch::nn::Sequential mlp(const std::vector<int64_t>& widths, bool bias, bool linear) {
  torch::nn::Sequential net;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    net->push_back(kfac::nn::Linear(torch::nn::LinearOptions(widths[i], widths[i + 1]).bias(bias)));
    if (!linear && i + 2 < widths.size()) net->push_back(torch::nn::Functional(torch::tanh));
  }
  net->to(torch::kDouble);
  return net;
}

torch::nn::Sequential cnn(int64_t outputs, bool bias) {
  torch::nn::Sequential net(kfac::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1).bias(bias)),
                            torch::nn::Functional(torch::tanh),
                            kfac::nn::Conv2d(torch::nn::Conv2dOptions(3, 2, 2).stride(2).bias(bias)),
                            torch::nn::Functional(torch::tanh), torch::nn::Flatten(),
                            kfac::nn::Linear(torch::nn::LinearOptions(8, outputs).bias(bias)));
  net->to(torch::kDouble);
  return net;
}

namespace {
struct TokenModelImpl : torch::nn::Module {
  TokenModelImpl() {
    register_module("embed", embed), register_module("norm", norm), register_module("head", head);
    position = register_parameter("position", torch::randn({5, 4}) * 0.1);
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    return head(torch::tanh(norm(embed(ids) + position.narrow(0, 0, ids.size(1)))));
  }
  kfac::nn::Embedding embed{7, 4};
  kfac::nn::LayerNorm norm{std::vector<int64_t>{4}};
  kfac::nn::Linear head{4, 3};
  torch::Tensor position;
};
TORCH_MODULE(TokenModel);
}  // namespace

torch::nn::Sequential token_model() {
  torch::nn::Sequential net(TokenModel{});
  net->to(torch::kDouble);
  return net;
}

}  // namespace kfac::test
