#include "support/layer_examples.h"

#include "kfac/kfac.h"

namespace kfac::test {
namespace {

// A user's own module type, registered as a Linear-like kind in one call: the suites over every kind cover it too.
struct ProjectionImpl : torch::nn::Module {
  ProjectionImpl() {
    weight = register_parameter("weight", torch::randn({4, 3}) * 0.5);
    bias = register_parameter("bias", torch::zeros({4}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::nn::functional::linear(x, weight, bias);
    slot->tap(x, y);
    return y;
  }
  torch::Tensor weight, bias;
  std::shared_ptr<Slot> slot = std::make_shared<Slot>();
};
TORCH_MODULE(Projection);

const bool kProjectionRegistered = [] {
  register_module_kind<ProjectionImpl>("UserProjection", [](const std::string& name, ProjectionImpl& m) {
    return Layer{name, std::make_shared<LinearKind>(m.weight, m.bias), m.slot};
  });
  return true;
}();

}  // namespace

const std::map<std::string, LayerExample>& layer_examples() {
  (void)kProjectionRegistered;
  static const std::map<std::string, LayerExample> table{
      {"Linear",
       {[] { return torch::nn::Sequential(kfac::nn::Linear(3, 4)); },
        [] {
          return torch::randn({5, 2, 3});
        },
        4}},
      {"Conv2d",
       {[] {
          return torch::nn::Sequential(kfac::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1)),
                                       torch::nn::Flatten());
        },
        [] {
          return torch::randn({5, 2, 3, 3});
        },
        27}},
      {"Embedding",
       {[] { return torch::nn::Sequential(kfac::nn::Embedding(6, 3)); },
        [] {
          return torch::randint(0, 6, {5, 4});
        },
        3}},
      {"LayerNorm",
       {[] { return torch::nn::Sequential(kfac::nn::LayerNorm(std::vector<int64_t>{4})); },
        [] {
          return torch::randn({5, 3, 4});
        },
        4}},
      {"Conv1d",
       {[] {
          return torch::nn::Sequential(kfac::nn::Conv1d(torch::nn::Conv1dOptions(2, 3, 3).padding(1)),
                                       torch::nn::Flatten());
        },
        [] {
          return torch::randn({5, 2, 4});
        },
        12}},
      {"GroupNorm",
       {[] { return torch::nn::Sequential(kfac::nn::GroupNorm(2, 4), torch::nn::Flatten()); },
        [] {
          return torch::randn({5, 4, 3});
        },
        12}},
      {"RMSNorm",
       {[] { return torch::nn::Sequential(kfac::nn::RMSNorm(std::vector<int64_t>{4})); },
        [] {
          return torch::randn({5, 3, 4});
        },
        4}},
      {"UserProjection",
       {[] { return torch::nn::Sequential(Projection()); },
        [] {
          return torch::randn({5, 3});
        },
        4}},
      {"BatchNorm2d",
       {[] { return torch::nn::Sequential(kfac::nn::BatchNorm2d(3), torch::nn::Flatten()); },
        [] {
          return torch::randn({5, 3, 2, 2});
        },
        12}},
  };
  return table;
}

namespace {
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t embed_dim, int64_t heads) : attn(embed_dim, heads) { register_module("attn", attn); }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto xt = x.transpose(0, 1);
    return std::get<0>(attn(xt, xt, xt)).transpose(0, 1);
  }
  kfac::nn::MultiheadAttention attn;
};
TORCH_MODULE(SelfAttention);
}  // namespace

torch::nn::Sequential self_attention_model(int64_t embed_dim, int64_t heads) {
  return torch::nn::Sequential(SelfAttention(embed_dim, heads));
}

}  // namespace kfac::test
