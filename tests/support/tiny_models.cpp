#include "support/tiny_models.h"

#include <torch/torch.h>

#include "kfac/nn/layers.h"

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

}  // namespace kfac::test
