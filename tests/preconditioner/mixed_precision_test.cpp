// Models in bfloat16 on the CPU: factors accumulate and decompose in float32 (unless factor_dtype says otherwise),
// directions come back in bfloat16, and they agree with the float64 run within bf16's precision (5e-2 relative to
// the largest entry: the gradient the preconditioner sees is already rounded to about 4e-3). The same on CUDA is in
// tests/device/cuda_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

class MixedPrecision : public ::testing::TestWithParam<std::string> {};

TEST_P(MixedPrecision, BFloat16ModelUsesFloat32FactorsAndMatchesFloat64) {
  torch::manual_seed(23);
  auto reference = cnn(3);
  torch::manual_seed(23);
  auto model = cnn(3);
  reference->to(torch::kDouble);
  model->to(torch::kBFloat16);
  const auto x = torch::randn({6, 2, 5, 5}, torch::kDouble);
  const auto y = torch::randint(0, 3, {6});
  const auto options = options_for_spec(GetParam()).fisher(FisherType::Empirical).damping(1e-2).refresh_period(1);
  Preconditioner want(*reference, options), got(*model, options);
  for (const auto& c : got.layers()) EXPECT_EQ(c.kind->weight().scalar_type(), torch::kBFloat16);
  for (size_t i = 0; i < got.layers().size(); ++i) EXPECT_EQ(got.curvature(i).dtype(), torch::kFloat) << i;
  for (int step = 0; step < 3; ++step) {
    stats_and_step(want, reference, x, y, LossKind::SoftmaxCrossEntropy);
    const auto stats = stats_and_step(got, model, x.to(torch::kBFloat16), y, LossKind::SoftmaxCrossEntropy);
    EXPECT_FALSE(stats.skipped);
    EXPECT_EQ(stats.refresh_failures, 0);
    for (size_t i = 0; i < model->parameters().size(); ++i) {
      const auto& g = model->parameters()[i].grad();
      ASSERT_EQ(g.scalar_type(), torch::kBFloat16);
      const auto w = reference->parameters()[i].grad();
      EXPECT_LE(max_abs_diff(g.to(torch::kDouble), w) / w.abs().max().item<double>(), 5e-2)
          << "step " << step << ", parameter " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, MixedPrecision, ::testing::ValuesIn(every_method()),
                         [](const auto& info) { return spec_test_name(info.param); });

TEST(MixedPrecisionOptions, FactorDtypeOverridesTheFloat32Default) {
  auto model = mlp({3, 4, 2});
  model->to(torch::kBFloat16);
  Preconditioner p(*model, PreconditionerOptions().factor_dtype(torch::kDouble));
  EXPECT_EQ(p.curvature(0).dtype(), torch::kDouble);
}

}  // namespace
}  // namespace kfac::test
