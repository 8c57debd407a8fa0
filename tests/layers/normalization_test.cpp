// LayerNorm, BatchNorm2d, GroupNorm and RMSNorm: the capture-enabled modules equal LibTorch's (RMSNorm its
// definition), and their scale-and-shift blocks equal the brute-force Fisher of (γ, β).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <sstream>

#include "kfac/fisher/dense_fisher.h"
#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/method_lists.h"

namespace kfac::test {
namespace {

TEST(Normalization, ModulesEqualLibTorchs) {
  torch::manual_seed(36);
  torch::nn::LayerNorm stock_ln(torch::nn::LayerNormOptions({6}));
  kfac::nn::LayerNorm ln(std::vector<int64_t>{6});
  {
    torch::NoGradGuard no_grad;
    stock_ln->weight.copy_(torch::randn_like(stock_ln->weight)),
        stock_ln->bias.copy_(torch::randn_like(stock_ln->bias));
    ln->weight.copy_(stock_ln->weight), ln->bias.copy_(stock_ln->bias);
  }
  const auto x = torch::randn({3, 4, 6});
  EXPECT_LT(max_abs_diff(ln(x), stock_ln(x)), 1e-6);

  torch::nn::BatchNorm2d stock_bn(torch::nn::BatchNormOptions(3).momentum(0.3));
  kfac::nn::BatchNorm2d bn(torch::nn::BatchNormOptions(3).momentum(0.3));
  {
    torch::NoGradGuard no_grad;
    stock_bn->weight.copy_(torch::randn_like(stock_bn->weight)),
        stock_bn->bias.copy_(torch::randn_like(stock_bn->bias));
    bn->weight.copy_(stock_bn->weight), bn->bias.copy_(stock_bn->bias);
  }
  for (int step = 0; step < 2; ++step) {  // training: batch statistics, running averages updated alike
    const auto images = torch::randn({4, 3, 5, 5}) * 2 + 1;
    EXPECT_LT(max_abs_diff(bn(images), stock_bn(images)), 1e-5);
  }
  EXPECT_LT(max_abs_diff(bn->running_mean, stock_bn->running_mean), 1e-6);
  EXPECT_LT(max_abs_diff(bn->running_var, stock_bn->running_var), 1e-6);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
  bn->eval(), stock_bn->eval();
  const auto images = torch::randn({2, 3, 5, 5});
  EXPECT_LT(max_abs_diff(bn(images), stock_bn(images)), 1e-5);
}

TEST(Normalization, GroupNormAndRMSNormEqualTheirDefinitions) {
  torch::manual_seed(35);
  torch::nn::GroupNorm stock(torch::nn::GroupNormOptions(2, 6));
  kfac::nn::GroupNorm gn(2, 6);
  kfac::nn::RMSNorm rms(kfac::nn::RMSNormOptions({3, 4}).eps(1e-6));
  {
    torch::NoGradGuard no_grad;
    stock->weight.copy_(torch::randn_like(stock->weight)), stock->bias.copy_(torch::randn_like(stock->bias));
    gn->weight.copy_(stock->weight), gn->bias.copy_(stock->bias);
    rms->weight.copy_(torch::randn_like(rms->weight));
  }
  const auto x = torch::randn({3, 6, 5});
  EXPECT_LT(max_abs_diff(gn(x), stock(x)), 1e-6);
  // torch.nn.RMSNorm's definition, written out: y = γ ⊙ x / sqrt(mean over the normalized dims of x² + eps).
  const auto z = torch::randn({2, 3, 4}) * 3;
  const auto want = z / torch::sqrt(z.pow(2).mean({1, 2}, true) + 1e-6) * rms->weight;
  EXPECT_LT(max_abs_diff(rms(z), want), 1e-5);
  // Without eps: the dtype's machine epsilon, as torch.nn.functional.rms_norm.
  kfac::nn::RMSNorm plain(std::vector<int64_t>{4});
  const auto tiny = torch::full({1, 4}, 1e-5, torch::kDouble);
  plain->to(torch::kDouble);
  const double eps = std::numeric_limits<double>::epsilon();
  EXPECT_LT(max_abs_diff(plain(tiny), tiny / std::sqrt(1e-10 + eps)), 1e-12);
}

// Linear → LayerNorm or RMSNorm → tanh → Linear on sequences, or conv → BatchNorm2d (eval: per-example
// independence, which the oracle's one-example forwards need) or GroupNorm (training) → tanh → pool → Linear.
enum class Norm { Layer, Batch, Group, RMS };
const Norm kNorms[] = {Norm::Layer, Norm::Batch, Norm::Group, Norm::RMS};

struct NormNetImpl : torch::nn::Module {
  explicit NormNetImpl(Norm norm) : norm(norm) {
    if (images()) {
      register_module("conv", conv);
      if (norm == Norm::Batch) register_module("bn", bn);
      if (norm == Norm::Group) register_module("gn", gn);
      register_module("head", head);
    } else {
      register_module("fc1", fc1);
      if (norm == Norm::Layer) register_module("ln", ln);
      if (norm == Norm::RMS) register_module("rms", rms);
      register_module("fc2", fc2);
    }
  }
  bool images() const { return norm == Norm::Batch || norm == Norm::Group; }
  torch::Tensor forward(const torch::Tensor& x) {
    switch (norm) {
      case Norm::Batch:
        return head(torch::tanh(bn(conv(x))).mean({2, 3}));
      case Norm::Group:
        return head(torch::tanh(gn(conv(x))).mean({2, 3}));
      case Norm::Layer:
        return fc2(torch::tanh(ln(fc1(x))));
      case Norm::RMS:
        return fc2(torch::tanh(rms(fc1(x))));
    }
    return {};
  }
  Norm norm;
  kfac::nn::Linear fc1{3, 5}, fc2{5, 2}, head{4, 2};
  kfac::nn::LayerNorm ln{std::vector<int64_t>{5}};
  kfac::nn::RMSNorm rms{std::vector<int64_t>{5}};
  kfac::nn::Conv2d conv{torch::nn::Conv2dOptions(2, 4, 3).padding(1)};
  kfac::nn::BatchNorm2d bn{4};
  kfac::nn::GroupNorm gn{2, 4};
};
TORCH_MODULE(NormNet);

struct NormRun {
  std::unique_ptr<Preconditioner> precond;
  DenseFisher exact;
  size_t norm_layer = 0;
};

NormRun run(Norm norm, PreconditionerOptions options) {
  torch::manual_seed(37);
  NormNet net(norm);
  net->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters())  // scales and shifts away from 1 and 0
      if (p.key().rfind("bn.", 0) == 0 || p.key().rfind("gn.", 0) == 0 || p.key().rfind("rms.", 0) == 0)
        p.value().copy_(torch::randn_like(p.value()));
  }
  if (norm == Norm::Batch) {
    torch::NoGradGuard no_grad;
    net->bn->running_mean.copy_(torch::randn_like(net->bn->running_mean)),
        net->bn->running_var.copy_(torch::rand_like(net->bn->running_var) * 1.5 + 0.5);
    net->eval();
  }
  const auto x = net->images() ? torch::randn({5, 2, 4, 4}, torch::kDouble) : torch::randn({5, 4, 3}, torch::kDouble);
  NormRun r{std::make_unique<Preconditioner>(*net, options.fisher(FisherType::Exact)), {}};
  auto forward = [&](const at::Tensor& in) { return net->forward(in); };
  r.precond->update_statistics(forward, x, LossKind::SoftmaxCrossEntropy);
  net->zero_grad();
  const auto labels = net->images() ? torch::zeros({5}, torch::kLong) : torch::zeros({5, 4}, torch::kLong);
  kfac::loss(net->forward(x), labels, LossKind::SoftmaxCrossEntropy).backward();
  r.exact = exact_fisher(forward, r.precond->layers(), x, LossKind::SoftmaxCrossEntropy, true);
  return r;
}

TEST(Normalization, ScaleShiftBlocksEqualTheDenseFisher) {
  for (const auto norm : kNorms) {
    for (int64_t max_full : {256, 0}) {  // full, then diagonal
      auto r = run(norm, PreconditionerOptions().norm_full_max_features(max_full));
      // Sequence outputs [B, T, 2]: a softmax per position, on both sides.
      r.precond->step();
      const size_t i = 1;  // the normalization: the second registered layer
      const auto& layer = r.precond->layers()[i];
      ASSERT_EQ(layer.kind->kronecker(), false) << layer.kind->kind_name();
      EXPECT_EQ(layer.kind->dim_a(), norm == Norm::RMS ? 1 : 2);
      const auto exact = r.exact.block(i);
      const auto expected = max_full > 0 ? exact : torch::diag(torch::diag(exact));
      EXPECT_LT(max_abs_diff(r.precond->curvature(i).to_dense(), expected) / exact.abs().max().item<double>(), 1e-10)
          << layer.name << (max_full > 0 ? " full" : " diagonal");
      // Preconditioning solves (F + λI) x = v with that block.
      const auto v = torch::randn({layer.kind->dim_g(), layer.kind->dim_a()}, torch::kDouble);
      const auto solved = r.precond->curvature(i).precondition(v, 0.1);
      const auto dense = expected + 0.1 * torch::eye(expected.size(0), torch::kDouble);
      const auto want = unvec(torch::linalg_solve(dense, vec(v).unsqueeze(1)).squeeze(1), v.size(0), v.size(1));
      EXPECT_LT(max_abs_diff(solved, want), 1e-10) << layer.name;
    }
  }
}

TEST(Normalization, TheDiagonalBlockChangesOnlyAtRefreshes) {
  // Above norm_full_max_features the block is diagonal; like every other block it preconditions with the statistics
  // of its last refresh, not the running ones (docs/design.md §13).
  torch::manual_seed(41);
  auto model = torch::nn::Sequential(kfac::nn::LayerNorm(std::vector<int64_t>{4}));
  model->to(torch::kDouble);
  Preconditioner p(*model, PreconditionerOptions().norm_full_max_features(0).refresh_period(5));
  auto step = [&](const at::Tensor& x) {
    return stats_and_step(p, model, x, torch::randn({6, 3, 4}, torch::kDouble), LossKind::SquaredError);
  };
  ASSERT_TRUE(step(torch::randn({6, 3, 4}, torch::kDouble)).refreshed);
  const auto snapshot = p.curvature(0).to_dense().clone();
  const auto later = step(3 * torch::randn({6, 3, 4}, torch::kDouble));
  ASSERT_TRUE(later.statistics_updated && !later.refreshed);
  ASSERT_FALSE(torch::allclose(p.curvature(0).to_dense(), snapshot));  // the running diagonal moved
  const auto& kind = *p.layers()[0].kind;
  const auto v = torch::randn({kind.dim_g(), kind.dim_a()}, torch::kDouble);
  const int64_t n = kind.dim_g() * kind.dim_a();
  const auto want =
      unvec(torch::linalg_solve(snapshot + 0.1 * torch::eye(n, torch::kDouble), vec(v).unsqueeze(1)).squeeze(1),
            kind.dim_g(), kind.dim_a());
  EXPECT_LT(max_abs_diff(p.curvature(0).precondition(v, 0.1), want), 1e-10);
}

TEST(Normalization, ReportAndEveryMethod) {
  for (const auto& method : every_method()) {
    auto r = run(Norm::Layer, PreconditionerOptions().method(method).norm_full_max_features(4));
    EXPECT_EQ(r.precond->registration().summary(),
              "registered 3 blocks: 2 Linear (expand), 1 LayerNorm (diagonal); no fallback parameters");
    r.precond->step();
    std::stringstream bytes;
    torch::save(*r.precond, bytes);
    auto q = run(Norm::Layer, PreconditionerOptions().method(method).norm_full_max_features(4));
    torch::load(*q.precond, bytes);
    EXPECT_TRUE(torch::equal(q.precond->curvature(1).to_dense(), r.precond->curvature(1).to_dense())) << method;
  }
  EXPECT_EQ(run(Norm::Layer, {}).precond->registration().summary(),
            "registered 3 blocks: 2 Linear (expand), 1 LayerNorm (full); no fallback parameters");
}

TEST(Normalization, TheGlobalStageRefusesScaleShiftBlocks) {
  try {
    run(Norm::Layer, PreconditionerOptions().global_stage("two-level"));
    FAIL() << "expected a refusal";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'ln' is a LayerNorm block"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kfac::test
