#include "transformers.h"

#include <torch/torch.h>

#include "kfac/nn/attention.h"
#include "kfac/nn/layers.h"
#include "kfac/nn/normalization.h"

namespace kfac::tool {

namespace {
constexpr int64_t kWidth = 64, kHeads = 4, kBlocks = 2;

// x + attention(LN(x)), then x + MLP(LN(x)); x is [B, T, width] (batch first).
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(bool causal) : causal(causal) {
    register_module("ln1", ln1), register_module("attn", attn), register_module("ln2", ln2);
    register_module("fc1", fc1), register_module("fc2", fc2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto h = ln1(x).transpose(0, 1);  // [T, B, width], as MultiheadAttention takes it
    torch::Tensor mask;
    if (causal) mask = torch::ones({x.size(1), x.size(1)}, torch::dtype(torch::kBool).device(x.device())).triu(1);
    auto y = x + std::get<0>(attn->forward(h, h, h, torch::Tensor(), /*need_weights=*/false, mask)).transpose(0, 1);
    return y + fc2(torch::gelu(fc1(ln2(y))));
  }
  bool causal;
  kfac::nn::LayerNorm ln1{std::vector<int64_t>{kWidth}}, ln2{std::vector<int64_t>{kWidth}};
  kfac::nn::MultiheadAttention attn{kWidth, kHeads};
  kfac::nn::Linear fc1{kWidth, 2 * kWidth}, fc2{2 * kWidth, kWidth};
};
TORCH_MODULE(Block);

struct VitImpl : torch::nn::Module {
  VitImpl() {
    register_module("patch", patch);
    position = register_parameter("position", torch::randn({16, kWidth}) * 0.02);
    for (int64_t i = 0; i < kBlocks; ++i) blocks.push_back(register_module("block" + std::to_string(i), Block(false)));
    register_module("ln", ln), register_module("head", head);
  }
  torch::Tensor forward(const torch::Tensor& images) {  // [B, 784] → 16 patches of 7x7 → [B, 10]
    const auto x = images.reshape({-1, 4, 7, 4, 7}).permute({0, 1, 3, 2, 4}).reshape({-1, 16, 49});
    auto h = patch(x) + position;
    for (auto& b : blocks) h = b(h);
    return head(ln(h).mean(1));
  }
  kfac::nn::Linear patch{49, kWidth};
  torch::Tensor position;
  std::vector<Block> blocks;
  kfac::nn::LayerNorm ln{std::vector<int64_t>{kWidth}};
  kfac::nn::Linear head{kWidth, 10};
};
TORCH_MODULE(Vit);

struct CharLmImpl : torch::nn::Module {
  CharLmImpl() {
    register_module("embed", embed);
    position = register_parameter("position", torch::randn({64, kWidth}) * 0.02);
    for (int64_t i = 0; i < kBlocks; ++i) blocks.push_back(register_module("block" + std::to_string(i), Block(true)));
    register_module("ln", ln), register_module("head", head);
  }
  torch::Tensor forward(const torch::Tensor& ids) {  // [B, T ≤ 64] → logits [B, T, V]
    auto h = embed(ids) + position.narrow(0, 0, ids.size(1));
    for (auto& b : blocks) h = b(h);
    return head(ln(h));
  }
  kfac::nn::Embedding embed{kCharVocabulary, kWidth};
  torch::Tensor position;
  std::vector<Block> blocks;
  kfac::nn::LayerNorm ln{std::vector<int64_t>{kWidth}};
  kfac::nn::Linear head{kWidth, kCharVocabulary};
};
TORCH_MODULE(CharLm);
}  // namespace

int64_t char_id(char c) {
  if (c == '\n') return 95;
  if (c >= 32 && c <= 126) return c - 32;
  return 0;
}

Model build_vit() {
  torch::nn::Sequential net;
  net->push_back("vit", Vit());
  return {"vit", net, LossKind::SoftmaxCrossEntropy, false};
}

Model build_char_lm() {
  torch::nn::Sequential net;
  net->push_back("lm", CharLm());
  Model m{"char-lm", net, LossKind::SoftmaxCrossEntropy, false};
  m.image_side = 0;  // token windows, not images
  return m;
}

}  // namespace kfac::tool
