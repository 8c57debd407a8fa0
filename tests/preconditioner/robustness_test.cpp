// The numerical policy: non-finite values never enter the state, decomposition failures retry, fall back and
// finally stop with an error that names the layer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "kfac/kfac.h"
#include "kfac/linalg/psd.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

struct Fixture {
  torch::nn::Sequential model = mlp({3, 4, 2});
  at::Tensor x = torch::randn({5, 3}, torch::kDouble);
  at::Tensor y = torch::randn({5, 2}, torch::kDouble);
  StepStats step(Preconditioner& p) { return stats_and_step(p, model, x, y, LossKind::SquaredError); }
};

TEST(Robustness, NonFiniteGradientSkipsStepAndLeavesStateUnchanged) {
  torch::manual_seed(20);
  Fixture f;
  Preconditioner p(*f.model, PreconditionerOptions().refresh_period(1));
  f.step(p);
  const auto before = p.curvature(0).to_dense().clone();
  f.model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return f.model->forward(in); }, f.x, LossKind::SquaredError);
  kfac::loss(f.model->forward(f.x), f.y, LossKind::SquaredError).backward();
  f.model->parameters()[0].mutable_grad()[0][0] = std::numeric_limits<double>::quiet_NaN();
  auto s = p.step();
  EXPECT_TRUE(s.skipped);
  EXPECT_FALSE(s.statistics_updated);
  EXPECT_FALSE(s.messages.empty());
  EXPECT_EQ(p.steps(), 1);
  EXPECT_TRUE(torch::equal(before, p.curvature(0).to_dense()));
  EXPECT_FALSE(f.step(p).skipped);  // the next finite step proceeds
}

TEST(Robustness, ANonFiniteFirstBatchLeavesTheNextStepToInitialize) {
  // A NaN batch at step 0: its statistics are refused and its step skipped; the next clean step must initialize and
  // refresh the blocks, not inherit the refusal ("no curvature statistics yet").
  torch::manual_seed(22);
  Fixture f;
  Preconditioner p(*f.model);
  const auto clean = f.x;
  f.x = torch::full_like(clean, std::numeric_limits<double>::quiet_NaN());
  EXPECT_TRUE(f.step(p).skipped);
  f.x = clean;
  const auto s = f.step(p);
  EXPECT_FALSE(s.skipped);
  EXPECT_TRUE(s.statistics_updated);
  EXPECT_TRUE(s.refreshed);
}

TEST(Robustness, NonFiniteStatisticsAreDroppedAndReported) {
  torch::manual_seed(21);
  Fixture f;
  Preconditioner p(*f.model);
  f.step(p);
  const auto before = p.curvature(0).to_dense().clone();
  auto bad = f.x.clone();
  bad[0][0] = std::numeric_limits<double>::infinity();
  f.model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return f.model->forward(in); }, bad, LossKind::SquaredError);
  kfac::loss(f.model->forward(f.x), f.y, LossKind::SquaredError).backward();
  auto s = p.step();
  EXPECT_TRUE(s.statistics_skipped);
  EXPECT_FALSE(s.statistics_updated);
  EXPECT_TRUE(torch::equal(before, p.curvature(0).to_dense()));
}

TEST(Robustness, FailedEigendecompositionRetriesInFloat64) {
  torch::manual_seed(22);
  Fixture f;
  Preconditioner p(*f.model);
  linalg::testing::inject_decomposition_failures(1);  // first try fails, the float64 retry succeeds
  auto s = f.step(p);
  EXPECT_TRUE(s.refreshed);
  EXPECT_EQ(s.refresh_failures, 0);
  EXPECT_EQ(s.fallback_layers, 0);
}

TEST(Robustness, FailedRefreshKeepsPreviousDecompositionThenStops) {
  torch::manual_seed(23);
  Fixture f;
  Preconditioner p(*f.model, PreconditionerOptions().refresh_period(1).max_consecutive_failures(3));
  f.step(p);  // a good decomposition for every layer
  auto direction = [&] { return p.curvature(0).precondition(torch::ones({4, 4}, torch::kDouble), p.damping()); };
  const auto good = direction();
  for (int failure = 1; failure <= 2; ++failure) {
    linalg::testing::inject_decomposition_failures(2);  // both tries of layer 0 fail
    auto s = f.step(p);
    EXPECT_EQ(s.refresh_failures, 1) << failure;
    ASSERT_FALSE(s.messages.empty());
    EXPECT_NE(s.messages[0].find("keeping the previous decomposition"), std::string::npos) << s.messages[0];
    EXPECT_TRUE(p.curvature(0).ready());
  }
  linalg::testing::inject_decomposition_failures(2);
  try {
    f.step(p);
    FAIL() << "expected an error after 3 consecutive failures";
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("layer '0': 3 consecutive refresh failures"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Try a larger damping"), std::string::npos) << msg;
  }
  linalg::testing::inject_decomposition_failures(0);
  (void)good;
}

TEST(Robustness, FirstRefreshFailureFallsBackToScaledGradient) {
  torch::manual_seed(24);
  Fixture f;
  Preconditioner p(*f.model, PreconditionerOptions().damping(0.5));
  linalg::testing::inject_decomposition_failures(2);
  f.model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return f.model->forward(in); }, f.x, LossKind::SquaredError);
  kfac::loss(f.model->forward(f.x), f.y, LossKind::SquaredError).backward();
  const auto raw = f.model->parameters()[0].grad().clone();
  auto s = p.step();
  EXPECT_EQ(s.refresh_failures, 1);
  EXPECT_EQ(s.fallback_layers, 1);
  EXPECT_FALSE(p.curvature(0).ready());
  EXPECT_LT(max_abs_diff(f.model->parameters()[0].grad(), raw / 0.5), 1e-12);
}

TEST(Robustness, NonFiniteFactorIsRejectedBeforeDecomposition) {
  auto m = torch::eye(3, torch::kDouble);
  m[1][1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(linalg::eigh_psd(m, "test factor"), NumericalError);
  try {
    linalg::eigh_psd(m, "test factor");
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("test factor has non-finite entries"), std::string::npos);
  }
}

TEST(Robustness, NegativeEigenvaluesAreClampedToFloor) {
  auto m = torch::diag(torch::tensor({-1e-3, 2.0, 3.0}, torch::kDouble));
  auto eig = linalg::eigh_psd(m, "m", 1e-6);
  EXPECT_DOUBLE_EQ(eig.values.min().item<double>(), 1e-6);
}

}  // namespace
}  // namespace kfac::test
