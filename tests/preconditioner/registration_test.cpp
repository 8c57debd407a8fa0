// The registration report, the fallback for uncovered parameters, and tied weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// A model with every kind of module: registered kinds, stock modules with stand-ins, a norm layer, a raw parameter.
struct EveryKindImpl : torch::nn::Module {
  EveryKindImpl() {
    register_module("conv", conv);
    register_module("fc", fc);
    register_module("attn", attn);
    register_module("stock_attn", stock_attn);
    register_module("stock_fc", stock_fc);
    register_module("norm", norm);
    pos = register_parameter("pos_embedding", torch::zeros({4, 8}));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // x: [N, 1, 4, 8]
    auto h = conv(x).squeeze(1) + pos;             // [N, 4, 8]
    h = fc(h);
    const auto t = h.transpose(0, 1);
    h = std::get<0>(attn(t, t, t)) + std::get<0>(stock_attn(t, t, t));
    return stock_fc(norm(h.transpose(0, 1))).flatten(1);
  }
  kfac::nn::Conv2d conv{torch::nn::Conv2dOptions(1, 1, 3).padding(1)};
  kfac::nn::Linear fc{8, 8};
  kfac::nn::MultiheadAttention attn{8, 2};
  torch::nn::MultiheadAttention stock_attn{8, 2};
  torch::nn::Linear stock_fc{8, 2};
  torch::nn::LayerNorm norm{torch::nn::LayerNormOptions({8})};
  torch::Tensor pos;
};
TORCH_MODULE(EveryKind);

TEST(Registration, ReportListsEveryBlockAndEveryFallbackParameter) {
  EveryKind model;
  Preconditioner p(*model, PreconditionerOptions().weight_sharing(WeightSharing::Reduce));
  EXPECT_EQ(p.registration().summary(),
            "registered 6 blocks: 1 Conv2d (reduce), 5 Linear (reduce); fallback (identity) for 9 parameters: "
            "pos_embedding, stock_attn.in_proj_weight (use "
            "kfac::nn::MultiheadAttention), stock_attn.in_proj_bias (use "
            "kfac::nn::MultiheadAttention), stock_attn.out_proj.weight (use "
            "kfac::nn::MultiheadAttention), stock_attn.out_proj.bias (use "
            "kfac::nn::MultiheadAttention), stock_fc.weight (use kfac::nn::Linear), "
            "stock_fc.bias (use kfac::nn::Linear), norm.weight (use kfac::nn::LayerNorm), norm.bias (use "
            "kfac::nn::LayerNorm)");
  // Every parameter of the model is in exactly one of the two lists.
  int64_t covered = static_cast<int64_t>(p.parameters().size() + p.registration().fallback.size());
  EXPECT_EQ(covered, static_cast<int64_t>(model->parameters().size()));
}

TEST(Registration, ExcludedLayersGetTheFallbackAndAreReported) {
  // KAISA's and every Muon recipe's split: the ends of a network go to Adam, by name pattern.
  torch::manual_seed(3);
  auto model = mlp({4, 5, 5, 3});  // layers '0', '2', '4'
  Preconditioner p(*model, PreconditionerOptions().exclude("^(0|4)$").fallback(FallbackKind::Adam));
  ASSERT_EQ(p.layers().size(), 1U);
  EXPECT_EQ(p.layers()[0].name, "2");
  EXPECT_EQ(p.registration().excluded, (std::vector<std::string>{"0", "4"}));
  EXPECT_EQ(p.registration().summary(),
            "registered 1 block: 1 Linear (expand); fallback (adam) for 4 parameters: 0.weight, 0.bias, 4.weight, "
            "4.bias; excluded by the option exclude (their parameters get the fallback): 0, 4");
  // It trains: the excluded layers' gradients are Adam-normalized, the middle one preconditioned.
  const auto x = torch::randn({8, 4}, torch::kDouble);
  const auto y = torch::randint(0, 3, {8});
  EXPECT_FALSE(stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy).skipped);
  // A pattern that matches every layer, and one that is not a regular expression, are refused by name.
  auto error_with = [&](const std::string& pattern) {
    try {
      Preconditioner p(*model, PreconditionerOptions().exclude(pattern));
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(error_with(".").find("the option exclude ('.') matches every layer ('0', '2', '4')"), std::string::npos)
      << error_with(".");
  EXPECT_NE(error_with("embed|(head").find("exclude 'embed|(head' is not a regular expression"), std::string::npos)
      << error_with("embed|(head");
}

TEST(Registration, FrozenLayersAndParametersAreLeftAloneAndReported) {
  // Fine-tuning: a frozen layer is not registered (its output need not require grad), a frozen raw parameter gets no
  // fallback; the report lists both, and the model trains.
  torch::manual_seed(0);
  torch::nn::Sequential model(kfac::nn::Linear(4, 5), torch::nn::Tanh(), kfac::nn::Linear(5, 3));
  for (auto& p : model[0]->parameters()) p.set_requires_grad(false);
  Preconditioner p(*model);
  EXPECT_EQ(p.registration().summary(),
            "registered 1 block: 1 Linear (expand); no fallback parameters; frozen: 0.weight, 0.bias");
  const auto x = torch::randn({6, 4});
  const auto y = torch::randint(0, 3, {6}, torch::kLong);
  p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SoftmaxCrossEntropy);
  kfac::loss(model->forward(x), y, LossKind::SoftmaxCrossEntropy).backward();
  const auto stats = p.step();
  EXPECT_TRUE(stats.statistics_updated);
  EXPECT_FALSE(stats.skipped);
  EXPECT_FALSE(model[0]->parameters()[0].grad().defined());
}

TEST(Registration, ALayerFrozenAfterConstructionIsSkippedUntilUnfrozen) {
  // Freezing after the preconditioner is built: the layer records nothing and keeps no gradient, the other layer is
  // preconditioned exactly as when the frozen one was left out at construction; unfreezing resumes it.
  auto train = [](bool freeze_first, int steps, bool unfreeze_at_end) {
    torch::manual_seed(0);
    torch::nn::Sequential model(kfac::nn::Linear(4, 5), torch::nn::Tanh(), kfac::nn::Linear(5, 3));
    auto freeze = [&](bool off) {
      for (auto& p : model[2]->parameters()) p.set_requires_grad(!off);
    };
    freeze(freeze_first);
    Preconditioner p(*model, PreconditionerOptions().refresh_period(1));
    freeze(true);
    std::vector<StepStats> all;
    for (int k = 0; k < steps; ++k) {
      if (unfreeze_at_end && k == steps - 1) freeze(false);
      const auto x = torch::randn({6, 4});
      const auto y = torch::randint(0, 3, {6}, torch::kLong);
      p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SoftmaxCrossEntropy);
      for (auto& q : model->parameters()) q.mutable_grad() = at::Tensor();
      kfac::loss(model->forward(x), y, LossKind::SoftmaxCrossEntropy).backward();
      all.push_back(p.step());
    }
    return std::make_pair(model[0]->parameters()[0].grad().clone(), all);
  };
  const auto [left_out, unused] = train(true, 3, false);
  const auto [frozen_later, stats] = train(false, 3, false);
  EXPECT_TRUE(torch::allclose(frozen_later, left_out, 1e-6, 1e-7)) << "the other layer's direction is unchanged";
  EXPECT_EQ(stats[0].frozen_layers, 1);
  EXPECT_EQ(stats[0].messages.size(), 1u);
  EXPECT_NE(stats[0].messages[0].find("layer '2' is frozen"), std::string::npos);
  EXPECT_TRUE(stats[1].messages.empty()) << "reported once";
  const auto [resumed, resumed_stats] = train(false, 3, true);
  EXPECT_EQ(resumed_stats[2].frozen_layers, 0);
  EXPECT_NE(resumed_stats[2].messages.at(0).find("layer '2' is unfrozen"), std::string::npos);
}

TEST(Registration, TiedWeightsAreRefusedNamingBothModules) {
  struct TiedImpl : torch::nn::Module {
    TiedImpl() {
      register_module("embed", embed);
      register_module("decoder", decoder);
      decoder->weight.set_data(embed->weight);  // [V, d]: the output projection shares the embedding's storage
    }
    torch::nn::Embedding embed{10, 4};
    kfac::nn::Linear decoder{4, 10};
  };
  auto model = std::make_shared<TiedImpl>();
  try {
    Preconditioner p(*model);
    FAIL() << "expected tied weights to be refused";
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'embed.weight' of module 'embed' is tied to layer 'decoder'"), std::string::npos) << what;
  }
  // Two K-FAC layers sharing a tensor are refused too.
  kfac::nn::Linear a(4, 4), b(4, 4);
  b->weight.set_data(a->weight);
  EXPECT_THROW(Preconditioner(std::vector<Layer>{linear_layer("a", *a), linear_layer("b", *b)}), c10::Error);
}

// Adam's normalization by hand: v = β₂v + (1−β₂)g², g / (√(v/(1−β₂ᵏ)) + ε) · scale.
TEST(Fallback, AdamNormalizesTheUncoveredGradientsAndResumesExactly) {
  torch::manual_seed(33);
  auto make = [] {
    torch::manual_seed(34);
    return EveryKind();
  };
  const auto options = PreconditionerOptions().fallback(FallbackKind::Adam).fallback_scale(0.5).fallback_beta2(0.9);
  const auto x = torch::randn({3, 1, 4, 8});
  auto step = [&](EveryKind& m, Preconditioner& p) {
    m->zero_grad();
    p.update_statistics([&](const at::Tensor& in) { return m->forward(in); }, x, LossKind::SoftmaxCrossEntropy);
    kfac::loss(m->forward(x), torch::tensor({0, 1, 1}), LossKind::SoftmaxCrossEntropy).backward();
    const auto raw = m->pos.grad().clone();
    p.step();
    return raw;
  };
  auto model = make();
  Preconditioner p(*model, options);
  const auto g1 = step(model, p);
  auto v = 0.1 * g1 * g1;
  EXPECT_LT(max_abs_diff(model->pos.grad(), 0.5 * g1 / ((v / 0.1).sqrt() + 1e-8)), 1e-6);
  std::stringstream bytes;
  torch::save(p, bytes);
  const auto g2 = step(model, p);
  v = 0.9 * v + 0.1 * g2 * g2;
  const auto expected = 0.5 * g2 / ((v / (1 - 0.81)).sqrt() + 1e-8);
  EXPECT_LT(max_abs_diff(model->pos.grad(), expected), 1e-6);
  // A fresh preconditioner loaded from after step 1 takes the same second step.
  auto resumed = make();
  Preconditioner q(*resumed, options);
  torch::load(q, bytes);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < resumed->parameters().size(); ++i) resumed->parameters()[i].copy_(model->parameters()[i]);
  }
  step(resumed, q);
  EXPECT_LT(max_abs_diff(resumed->pos.grad(), expected), 1e-6);
}

TEST(Fallback, IdentityLeavesTheGradientsAlone) {
  torch::manual_seed(35);
  EveryKind model;
  Preconditioner p(*model);
  const auto x = torch::randn({3, 1, 4, 8});
  model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SoftmaxCrossEntropy);
  kfac::loss(model->forward(x), torch::tensor({0, 1, 1}), LossKind::SoftmaxCrossEntropy).backward();
  const auto raw = model->norm->weight.grad().clone();
  p.step();
  EXPECT_TRUE(torch::equal(model->norm->weight.grad(), raw));
}

}  // namespace
}  // namespace kfac::test

namespace kfac::test {
namespace {
TEST(Fallback, TheQuadraticModelRefusesAModelWithFallbackParameters) {
  EveryKind model;
  try {
    QModelOptimizer q(std::make_shared<Preconditioner>(*model));
    FAIL() << "expected a refusal";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("first: 'pos_embedding'"), std::string::npos) << e.what();
  }
}
}  // namespace
}  // namespace kfac::test
