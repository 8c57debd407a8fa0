// The numerical policy beyond gradients: a non-finite direction or update never reaches the weights, non-finite model
// outputs are never sampled from, the damping must fit the factor dtype, and the statistics pass does not leak.
#include <gtest/gtest.h>
#include <malloc.h>
#include <torch/torch.h>

#include <limits>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

struct Classifier {
  torch::nn::Sequential model = mlp({6, 5, 4});
  at::Tensor x = torch::randn({16, 6}, torch::kDouble);
  at::Tensor y = torch::randint(0, 4, {16}, torch::kLong);
  std::vector<at::Tensor> weights() const {
    std::vector<at::Tensor> out;
    for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
    return out;
  }
  bool weights_equal(const std::vector<at::Tensor>& w) const {
    const auto now = model->parameters();
    for (size_t i = 0; i < w.size(); ++i)
      if (!torch::equal(w[i], now[i].detach())) return false;
    return true;
  }
  // Statistics (if due) and a backward; `huge` puts one finite but huge entry (1e308) into the first gradient.
  void statistics_and_gradients(Preconditioner& p, bool huge = false) {
    model->zero_grad();
    p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SoftmaxCrossEntropy, y);
    kfac::loss(model->forward(x), y, LossKind::SoftmaxCrossEntropy).backward();
    if (huge) model->parameters()[0].mutable_grad()[0][0] = 1e308;
  }
};

class EveryMethod : public ::testing::TestWithParam<std::string> {};

PreconditionerOptions options_for(const std::string& spec) {
  return options_for_spec(spec, PreconditionerOptions().refresh_period(1).damping(1e-6));
}

TEST_P(EveryMethod, ANonFiniteDirectionIsSkippedAndTheWeightsStayUnchanged) {
  torch::manual_seed(40);
  Classifier c;
  auto p = std::make_shared<Preconditioner>(*c.model, options_for(GetParam()));
  KfacOptimizer opt(c.model->parameters(), p, KfacOptimizerOptions(0.1).kl_clip(0).momentum(0.9));
  c.statistics_and_gradients(*p);
  opt.step();
  ASSERT_FALSE(opt.last_stats().skipped);
  // A finite gradient (its sum fits a double) whose preconditioned direction overflows: the damped inverse of
  // factors with eigenvalues below 1 has diagonal entries above 1.
  c.statistics_and_gradients(*p, /*huge=*/true);
  const auto before = c.weights();
  opt.step();
  EXPECT_TRUE(opt.last_stats().skipped) << GetParam();
  EXPECT_TRUE(c.weights_equal(before)) << GetParam();
  // Caught at the direction, before any gradient was rewritten: the raw gradient is still there.
  EXPECT_EQ(c.model->parameters()[0].grad()[0][0].item<double>(), 1e308);
  bool named = false;
  for (const auto& m : opt.last_stats().messages)
    named |= m.find("non-finite preconditioned direction") != std::string::npos;
  EXPECT_TRUE(named);
  c.statistics_and_gradients(*p);  // and the run goes on
  opt.step();
  EXPECT_FALSE(opt.last_stats().skipped) << GetParam();
  EXPECT_FALSE(c.weights_equal(before));
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryMethod, ::testing::ValuesIn(every_method_and_stage()),
                         [](const auto& info) { return spec_test_name(info.param); });

TEST(NumericalPolicy, AnUpdateThatWouldOverflowTheWeightsIsSkippedWithTheMomentum) {
  torch::manual_seed(41);
  Classifier c;
  auto p = std::make_shared<Preconditioner>(*c.model, PreconditionerOptions().damping(1e-2));
  KfacOptimizer opt(c.model->parameters(), p, KfacOptimizerOptions(0.1).kl_clip(0).momentum(0.5));
  c.statistics_and_gradients(*p);
  opt.step();
  const auto before = c.weights();
  opt.param_groups()[0].options().set_lr(std::numeric_limits<double>::max());  // lr · direction overflows to infinity
  c.statistics_and_gradients(*p);
  opt.step();
  EXPECT_TRUE(opt.last_stats().skipped);
  EXPECT_TRUE(c.weights_equal(before));
  opt.param_groups()[0].options().set_lr(0.1);
  c.statistics_and_gradients(*p);
  opt.step();  // uses the momentum of the first step only: the same as a fresh second step
  EXPECT_FALSE(opt.last_stats().skipped);
  for (const auto& w : c.model->parameters()) EXPECT_TRUE(at::isfinite(w).all().item<bool>());
}

TEST(NumericalPolicy, NonFiniteOutputsAreNotSampledFromAndTheStatisticsAreSkipped) {
  torch::manual_seed(42);
  Classifier c;
  Preconditioner p(*c.model, PreconditionerOptions().refresh_period(1));
  c.statistics_and_gradients(p);
  p.step();
  const auto before = p.curvature(0).to_dense().clone();
  auto nan_inputs = c.x.clone();
  nan_inputs[3][2] = std::numeric_limits<double>::quiet_NaN();
  c.model->zero_grad();
  // Sampling categorical targets from NaN logits would abort ("invalid multinomial distribution").
  EXPECT_NO_THROW(p.update_statistics([&](const at::Tensor& in) { return c.model->forward(in); }, nan_inputs,
                                      LossKind::SoftmaxCrossEntropy));
  kfac::loss(c.model->forward(c.x), c.y, LossKind::SoftmaxCrossEntropy).backward();
  const auto s = p.step();
  EXPECT_TRUE(s.statistics_skipped);
  EXPECT_FALSE(s.skipped);
  EXPECT_TRUE(torch::equal(before, p.curvature(0).to_dense()));
  bool named = false;
  for (const auto& m : s.messages) named |= m.find("non-finite model outputs") != std::string::npos;
  EXPECT_TRUE(named);
  c.statistics_and_gradients(p);
  EXPECT_TRUE(p.step().statistics_updated);  // the next clean pass counts again
}

TEST(NumericalPolicy, DampingMustFitTheFactorDtype) {
  Classifier c;
  auto as_float = mlp({6, 5, 4});
  as_float->to(torch::kFloat);
  EXPECT_THROW(
      {
        try {
          Preconditioner p(*as_float, PreconditionerOptions().damping(1e80));
        } catch (const c10::Error& e) {
          EXPECT_NE(std::string(e.what()).find("damping 1e+80 does not fit Float factors"), std::string::npos);
          throw;
        }
      },
      c10::Error);
  EXPECT_NO_THROW(Preconditioner(*as_float, PreconditionerOptions().damping(1e80).factor_dtype(torch::kDouble)));
  EXPECT_THROW(Preconditioner(*c.model, PreconditionerOptions().damping(1e300)), c10::Error);
  Preconditioner p(*c.model);
  EXPECT_THROW(p.set_damping(1e300), c10::Error);
}

// LibTorch 1.13 leaks each at::Generator::clone() (about 2.6 KB); the statistics pass once cloned one per step.
TEST(NumericalPolicy, TheStatisticsPassKeepsMemoryFlat) {
  torch::manual_seed(43);
  Classifier c;
  Preconditioner p(*c.model, PreconditionerOptions().refresh_period(1000));
  auto run = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      c.statistics_and_gradients(p);
      p.step();
    }
  };
  run(50);  // allocator and caches warm
  const auto before = mallinfo2().uordblks;
  run(200);
  const auto grown = static_cast<double>(mallinfo2().uordblks) - static_cast<double>(before);
  EXPECT_LT(grown, 200 * 256.0) << "heap grew by " << grown << " bytes over 200 statistics steps";
}

}  // namespace
}  // namespace kfac::test
