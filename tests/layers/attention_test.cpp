// kfac::nn::MultiheadAttention against LibTorch's own module on the same weights, and its projections as K-FAC blocks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "kfac/kfac.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

struct AttentionCase {
  const char* name;
  bool bias, bool_mask, float_mask, padding, average;
  int64_t kdim;
};

TEST(MultiheadAttention, EqualsLibTorchsOnTheSameWeights) {
  const std::vector<AttentionCase> cases = {
      {"plain", true, false, false, false, true, 8},           {"no_bias", false, false, false, false, true, 8},
      {"causal_bool_mask", true, true, false, false, true, 8}, {"float_mask", true, false, true, false, false, 8},
      {"key_padding", true, false, false, true, true, 8},      {"kdim_vdim", true, false, false, true, false, 5}};
  for (const auto& c : cases) {
    torch::manual_seed(31);
    const auto options = torch::nn::MultiheadAttentionOptions(8, 2).bias(c.bias).kdim(c.kdim).vdim(c.kdim);
    torch::nn::MultiheadAttention stock(options);
    kfac::nn::MultiheadAttention ours(options);
    stock->to(torch::kDouble);
    ours->to(torch::kDouble);
    // Non-zero biases, so that their placement is checked too.
    if (c.bias) {
      torch::NoGradGuard no_grad;
      stock->in_proj_bias.copy_(torch::randn_like(stock->in_proj_bias));
      stock->out_proj->bias.copy_(torch::randn_like(stock->out_proj->bias));
    }
    ours->load_from(*stock);
    const int64_t l = 4, s = 5, n = 3;
    const auto q = torch::randn({l, n, 8}, torch::kDouble);
    const auto kv = torch::randn({s, n, c.kdim}, torch::kDouble);
    // LibTorch 1.13's C++ module adds a boolean attn_mask as 0/1 and cannot take a 3-D one; ours follows PyTorch's
    // documented meaning (true = may not attend). So the stock module gets the equivalent additive mask [L, S].
    torch::Tensor mask, stock_mask, padding;
    if (c.bool_mask) {
      mask = torch::ones({l, s}, torch::kBool).triu(2);
      stock_mask = torch::zeros({l, s}, torch::kDouble).masked_fill(mask, -std::numeric_limits<double>::infinity());
    }
    if (c.float_mask) mask = stock_mask = torch::randn({l, s}, torch::kDouble);
    if (c.padding) padding = torch::tensor({false, false, false, true, true}).view({1, s}).expand({n, s}).clone();
    const auto [y_stock, w_stock] = stock->forward(q, kv, kv, padding, true, stock_mask, c.average);
    const auto [y_ours, w_ours] = ours->forward(q, kv, kv, padding, true, mask, c.average);
    EXPECT_LT(max_abs_diff(y_ours, y_stock), 1e-12) << c.name;
    EXPECT_LT(max_abs_diff(w_ours, w_stock), 1e-12) << c.name;
    if (mask.defined()) {  // a 3-D mask [N·H, L, S] with the same rows is the same mask
      const auto [y3, w3] = ours->forward(q, kv, kv, padding, true, mask.unsqueeze(0).expand({n * 2, l, s}), c.average);
      EXPECT_LT(max_abs_diff(y3, y_ours), 1e-12) << c.name;
    }
  }
}

TEST(MultiheadAttention, ProjectionsAreSequenceLinearBlocks) {
  // Self-attention [L, N, E]: four Linear blocks, each with the L positions as its shared dimension.
  torch::manual_seed(32);
  struct NetImpl : torch::nn::Module {
    NetImpl() { register_module("attn", attn); }
    torch::Tensor forward(const torch::Tensor& x) {  // x: [N, L, E], batch first like the rest of the library
      const auto xt = x.transpose(0, 1);
      return std::get<0>(attn(xt, xt, xt)).transpose(0, 1);
    }
    kfac::nn::MultiheadAttention attn{8, 2};
  };
  auto net = std::make_shared<NetImpl>();
  net->to(torch::kDouble);
  Preconditioner p(*net, PreconditionerOptions().fisher(FisherType::Exact));
  EXPECT_EQ(p.registration().summary(), "registered 4 blocks: 4 Linear (expand); no fallback parameters");
  const auto x = torch::randn({3, 4, 8}, torch::kDouble);
  auto forward = [&](const at::Tensor& in) { return net->forward(in); };
  p.update_statistics(forward, x, LossKind::SquaredError);
  net->zero_grad();
  kfac::loss(net->forward(x), torch::zeros({3, 4, 8}, torch::kDouble), LossKind::SquaredError).backward();
  p.step();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(p.curvature(i).locations(), 4) << p.layers()[i].name;
  // Each block sees the batch as examples: its gradient matrix is the parameters' gradient.
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(p.layers()[i].name,
              std::vector<std::string>({"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj"})[i]);
}

TEST(MultiheadAttention, RefusesWhatItDoesNotImplement) {
  EXPECT_THROW(kfac::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(8, 2).add_bias_kv(true)), c10::Error);
  EXPECT_THROW(kfac::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(8, 3)), c10::Error);
}

}  // namespace
}  // namespace kfac::test
