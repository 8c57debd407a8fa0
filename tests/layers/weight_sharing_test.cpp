// Weight sharing (docs/design.md §13): Linear layers on sequences [B, T, d], layers used several times per forward,
// and the two flavours of Eschenhagen et al. 2023, each against the brute-force Fisher in the setting where it is
// exact, with the other flavour as the negative control.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/fisher/dense_fisher.h"
#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/method_lists.h"

namespace kfac::test {
namespace {

// A deep linear network applied at every position of [B, T, d_in]; `pool` averages the outputs over the positions
// before the loss (the reduce setting), otherwise every position has its own loss term (the expand setting).
struct SequenceNetImpl : torch::nn::Module {
  SequenceNetImpl(bool pool, bool twice) : pool(pool), twice(twice) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h;
    if (twice) {  // the same layer called once per position: each call is one tap
      std::vector<torch::Tensor> parts;
      for (int64_t t = 0; t < x.size(1); ++t) parts.push_back(fc1(x.select(1, t)));
      h = torch::stack(parts, 1);
    } else {
      h = fc1(x);
    }
    auto z = fc2(h);
    return pool ? z.mean(1) : z;
  }
  kfac::nn::Linear fc1{3, 4}, fc2{4, 2};
  bool pool, twice;
};
TORCH_MODULE(SequenceNet);

struct Run {
  std::unique_ptr<Preconditioner> precond;
  DenseFisher exact;
};

Run run(SequenceNet net, const at::Tensor& x, PreconditionerOptions options) {
  net->to(torch::kDouble);
  Run r{std::make_unique<Preconditioner>(*net, options.fisher(FisherType::Exact)), {}};
  auto forward = [&](const at::Tensor& in) { return net->forward(in); };
  r.precond->update_statistics(forward, x, LossKind::SquaredError);
  net->zero_grad();
  const auto z = net->forward(x);
  kfac::loss(z, torch::zeros_like(z), LossKind::SquaredError).backward();
  r.precond->step();
  r.exact = exact_fisher(forward, r.precond->layers(), x, LossKind::SquaredError, /*true_fisher=*/true);
  return r;
}

double block_error(const Run& r, size_t i) {
  return max_abs_diff(r.precond->curvature(i).to_dense(), r.exact.block(i)) /
         r.exact.block(i).abs().max().item<double>();
}

const auto kExpand = PreconditionerOptions().weight_sharing(WeightSharing::Expand);
const auto kReduce = PreconditionerOptions().weight_sharing(WeightSharing::Reduce);

TEST(WeightSharing, ExpandIsExactWithALossTermPerPosition) {
  torch::manual_seed(21);
  const auto x = torch::randn({5, 4, 3}, torch::kDouble);
  const auto expand = run(SequenceNet(false, false), x, kExpand);
  const auto reduce = run(SequenceNet(false, false), x, kReduce);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(expand.precond->curvature(i).locations(), 4);
    EXPECT_LT(block_error(expand, i), 1e-10) << "layer " << i;
    EXPECT_GT(block_error(reduce, i), 1e-2) << "layer " << i << ": reduce must not be exact here";
  }
}

TEST(WeightSharing, ReduceIsExactWhenThePositionsArePooledBeforeTheLoss) {
  torch::manual_seed(22);
  const auto x = torch::randn({5, 4, 3}, torch::kDouble);
  const auto reduce = run(SequenceNet(true, false), x, kReduce);
  const auto expand = run(SequenceNet(true, false), x, kExpand);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(reduce.precond->curvature(i).locations(), 1);
    EXPECT_LT(block_error(reduce, i), 1e-10) << "layer " << i;
    EXPECT_GT(block_error(expand, i), 1e-2) << "layer " << i << ": expand must not be exact here";
  }
}

TEST(WeightSharing, EveryMethodInBothFlavours) {
  // In each flavour's exact setting the Kronecker methods reproduce the exact block and the trace-restricted ones
  // its trace (their defining identity), from the flavour's per-example gradients.
  for (const auto& method : every_method())
    for (const auto sharing : {WeightSharing::Expand, WeightSharing::Reduce}) {
      torch::manual_seed(28);
      const auto x = torch::randn({6, 4, 3}, torch::kDouble);
      const auto r = run(SequenceNet(sharing == WeightSharing::Reduce, false), x,
                         PreconditionerOptions().method(method).weight_sharing(sharing));
      for (size_t i = 0; i < 2; ++i) {
        const auto dense = r.precond->curvature(i).to_dense();
        const auto exact = r.exact.block(i);
        const double trace = exact.trace().item<double>();
        EXPECT_NEAR(dense.trace().item<double>(), trace, 1e-9 * trace) << method << " " << to_string(sharing);
        if (method == "kfac" || method == "ekfac") {
          EXPECT_LT(block_error(r, i), 1e-9) << method << " " << to_string(sharing) << " layer " << i;
        }
      }
    }
}

TEST(WeightSharing, ALayerCalledOncePerPositionEqualsTheSequenceLayer) {
  torch::manual_seed(23);
  const auto x = torch::randn({5, 3, 3}, torch::kDouble);
  for (const auto& options : {kExpand, kReduce})
    for (bool pool : {false, true}) {
      torch::manual_seed(24);
      const auto sequence = run(SequenceNet(pool, false), x, options);
      torch::manual_seed(24);
      const auto calls = run(SequenceNet(pool, true), x, options);
      const auto& c = calls.precond->curvature(0);
      EXPECT_EQ(c.locations(), sequence.precond->curvature(0).locations());
      EXPECT_LT(max_abs_diff(c.to_dense(), sequence.precond->curvature(0).to_dense()), 1e-12)
          << to_string(options.weight_sharing()) << (pool ? " pooled" : "");
      const bool exact_setting = pool == (options.weight_sharing() == WeightSharing::Reduce);
      if (exact_setting) {  // the oracle sees the calls as one shared weight too
        EXPECT_LT(max_abs_diff(c.to_dense(), calls.exact.block(0)) / calls.exact.block(0).abs().max().item<double>(),
                  1e-10);
      }
    }
}

TEST(WeightSharing, ALayersOwnChoiceOverridesTheOption) {
  torch::manual_seed(25);
  SequenceNet net(true, false);
  net->fc1->weight_sharing(WeightSharing::Reduce);
  const auto r = run(net, torch::randn({5, 4, 3}, torch::kDouble), kExpand);
  EXPECT_EQ(r.precond->curvature(0).locations(), 1);  // fc1: reduce
  EXPECT_EQ(r.precond->curvature(1).locations(), 4);  // fc2: the option's expand
  EXPECT_LT(block_error(r, 0), 1e-10);
}

// The G factor of fc1 from the empirical Fisher: a separate statistics pass, or the training backward of
// kfac::loss captured with `grad_scale` (<= 0: loss_terms of the targets).
at::Tensor empirical_factors(bool hooks, const at::Tensor& x, const at::Tensor& y, LossKind loss, double grad_scale = 0,
                             double scale_after_forward = 0) {
  torch::manual_seed(27);
  SequenceNet net(false, true);
  net->to(torch::kDouble);
  Preconditioner p(*net, PreconditionerOptions().fisher(FisherType::Empirical));
  net->zero_grad();
  if (hooks) {
    p.capture_backward(grad_scale > 0 ? grad_scale : static_cast<double>(loss_terms(y, loss)));
    const auto output = net->forward(x);
    if (scale_after_forward > 0) p.set_capture_scale(scale_after_forward);
    kfac::loss(output, y, loss).backward();
  } else {
    p.update_statistics([&](const at::Tensor& in) { return net->forward(in); }, x, loss, y);
    kfac::loss(net->forward(x), y, loss).backward();
  }
  p.step();
  return p.curvature(0).to_dense();
}

TEST(WeightSharing, TrainingBackwardCaptureSeesEveryTap) {
  // capture_backward delivers each tap's gradient through its own hook; under loss_terms' scale the factors equal
  // the statistics pass's empirical Fisher, for a loss over examples (squared error: B terms) and for a loss per
  // position (softmax cross-entropy on [B, T, C]: B·T terms).
  torch::manual_seed(26);
  const auto x = torch::randn({6, 3, 3}, torch::kDouble);
  const auto y = torch::randn({6, 3, 2}, torch::kDouble);
  EXPECT_EQ(loss_terms(y, LossKind::SquaredError), 6);
  EXPECT_LT(max_abs_diff(empirical_factors(false, x, y, LossKind::SquaredError),
                         empirical_factors(true, x, y, LossKind::SquaredError)),
            1e-12);

  const auto labels = torch::randint(0, 2, {6, 3}, torch::kLong);
  const auto loss = LossKind::SoftmaxCrossEntropy;
  EXPECT_EQ(loss_terms(labels, loss), 18);
  const auto pass = empirical_factors(false, x, labels, loss);
  EXPECT_LT(max_abs_diff(pass, empirical_factors(true, x, labels, loss)), 1e-12);
  // Negative control: the batch size alone (the scale of a loss over examples) is off by the positions, squared.
  const auto batch_scaled = empirical_factors(true, x, labels, loss, /*grad_scale=*/6);
  EXPECT_LT(max_abs_diff(pass, batch_scaled * 9), 1e-12);
  EXPECT_GT(max_abs_diff(pass, batch_scaled), 1e-3 * pass.abs().max().item<double>());
  // The scale set after the forward (known only from the output) is the one the backward applies.
  EXPECT_LT(max_abs_diff(pass, empirical_factors(true, x, labels, loss, /*grad_scale=*/6, /*after=*/18)), 1e-12);
}

TEST(WeightSharing, CaptureScaleNeedsAnArmedBackwardCapture) {
  SequenceNet net(false, true);
  Preconditioner p(*net, PreconditionerOptions().fisher(FisherType::Empirical));
  EXPECT_THAT(error_of([&] { p.set_capture_scale(4); }),
              ::testing::HasSubstr("call capture_backward(grad_scale) before"));
  ASSERT_TRUE(p.capture_backward(2));
  EXPECT_THAT(error_of([&] { p.set_capture_scale(0); }),
              ::testing::HasSubstr("grad_scale must be finite and > 0, got 0"));
  p.set_capture_scale(4);
}

TEST(WeightSharing, LinearLayersTakeAnyNumberOfPositionDimensions) {
  LinearKind kind(torch::randn({2, 3}, torch::kDouble), torch::randn({2}, torch::kDouble));
  const auto a = kind.expand_input(torch::randn({5, 4, 6, 3}, torch::kDouble));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{5, 24, 4}));
  EXPECT_EQ(kind.expand_output_grad(torch::randn({2, 5, 4, 6, 2}, torch::kDouble)).sizes(),
            (std::vector<int64_t>{2, 5, 24, 2}));
  EXPECT_THROW(kind.expand_input(torch::randn({5, 4}, torch::kDouble)), c10::Error);
}

}  // namespace
}  // namespace kfac::test

namespace kfac::test {
namespace {
TEST(WeightSharing, SoftmaxOverTheLastDimensionForSequenceOutputs) {
  // Logits [B, T, C]: one categorical per position. The loss is the per-token mean; the last layer's G (exact
  // Fisher) is the mean of diag(p) − p pᵀ over examples and positions.
  torch::manual_seed(29);
  auto net = torch::nn::Sequential(kfac::nn::Linear(3, 4), kfac::nn::Linear(4, 5));
  net->to(torch::kDouble);
  const auto x = torch::randn({6, 7, 3}, torch::kDouble);
  const auto y = torch::randint(0, 5, {6, 7});
  const auto z = net->forward(x);
  EXPECT_NEAR(kfac::loss(z, y, LossKind::SoftmaxCrossEntropy).item<double>(),
              torch::nll_loss(torch::log_softmax(z.reshape({-1, 5}), 1), y.reshape({-1})).item<double>(), 1e-12);
  Preconditioner p(*net, PreconditionerOptions().fisher(FisherType::Exact));
  stats_and_step(p, net, x, y, LossKind::SoftmaxCrossEntropy);
  const auto probs = torch::softmax(z.detach(), -1).reshape({-1, 5});
  const auto expected = (torch::diag_embed(probs) - probs.unsqueeze(2) * probs.unsqueeze(1)).mean(0);
  EXPECT_LT(max_abs_diff(dynamic_cast<const KfacCurvature&>(p.curvature(1)).factor_g(), expected), 1e-12);
  // The sampled Fisher estimates the same G.
  Preconditioner q(*net, PreconditionerOptions().fisher_samples(4096).seed(3));
  stats_and_step(q, net, x, y, LossKind::SoftmaxCrossEntropy);
  EXPECT_LT(max_abs_diff(dynamic_cast<const KfacCurvature&>(q.curvature(1)).factor_g(), expected), 5e-3);
}
}  // namespace
}  // namespace kfac::test

namespace kfac::test {
namespace {
TEST(WeightSharing, EveryGlobalStageRunsOnSequenceLayers) {
  // The coarse spaces and matrices read the shared positions through the statistics' grid ({1, T}); the
  // block-tridiagonal stage couples only position-free pairs. Each must give a finite direction that descends.
  for (const auto& spec : every_global_stage())
    for (const auto sharing : {WeightSharing::Expand, WeightSharing::Reduce}) {
      torch::manual_seed(30);
      SequenceNet net(false, false);
      net->to(torch::kDouble);
      Preconditioner p(*net, options_for_spec(spec, PreconditionerOptions().weight_sharing(sharing)));
      const auto x = torch::randn({6, 4, 3}, torch::kDouble);
      const auto y = torch::randn({6, 4, 2}, torch::kDouble);
      for (int step = 0; step < 2; ++step) {
        net->zero_grad();
        p.update_statistics([&](const at::Tensor& in) { return net->forward(in); }, x, LossKind::SquaredError, y);
        kfac::loss(net->forward(x), y, LossKind::SquaredError).backward();
        const auto stats = p.step();
        EXPECT_FALSE(stats.skipped) << spec;
        EXPECT_GT(stats.grad_dot_direction, 0) << spec << " " << to_string(sharing);
      }
    }
}
}  // namespace
}  // namespace kfac::test
