// One example model per registered layer kind (and a user-registered one), for the suites that run over every kind:
// the layer-kind contract (tests/layers/layer_kinds_test.cpp) and CUDA against the CPU (tests/device/).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

namespace kfac::test {

/// A model whose only registered layer is of one kind, a batch for it, and the softmax width of its output.
struct LayerExample {
  std::function<torch::nn::Sequential()> model;
  std::function<at::Tensor()> inputs;
  int64_t classes;  ///< softmax over the last output dimension
};

/// Keyed by the registry's kind name; "UserProjection" is a module type registered by the test support itself.
const std::map<std::string, LayerExample>& layer_examples();

/// Self-attention on batch-first sequences [N, L, E] through kfac::nn::MultiheadAttention (four Linear blocks).
torch::nn::Sequential self_attention_model(int64_t embed_dim, int64_t heads);

}  // namespace kfac::test
