// Sampled positions (option stats_positions, docs/design.md §5): K-FAC's factors (and EKFAC's per-position spectrum)
// from a uniform sample of a layer's shared positions pair each input with its own gradient, are unbiased, keep the
// layer's T in the Kronecker form, and change nothing when the sample would cover every position.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "preconditioner/statistics_pass.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// A Conv2d layer (bias, padding, stride and dilation) and one tap of it: input [4, 2, 9, 8], output grid 4 x 3.
struct ConvTap {
  Conv2dKind kind{torch::randn({3, 2, 3, 2}, torch::kDouble), torch::randn({3}, torch::kDouble),
                  Conv2dGeometry{{2, 3}, {1, 1}, {2, 1}}};
  Tap tap{torch::randn({4, 2, 9, 8}, torch::kDouble), {}, torch::randn({2, 4, 3, 4, 3}, torch::kDouble)};
  int64_t positions() const { return 12; }
};

at::Tensor mean_outer(const at::Tensor& x) {  // every row of [..., d]: XᵀX / rows
  const auto rows = x.reshape({-1, x.size(-1)});
  return rows.t().mm(rows) / static_cast<double>(rows.size(0));
}

// The tap's statistics at step `step`'s uniform sample of 3 of its 12 positions.
LayerStatistics sample_of(const ConvTap& c, int64_t step) {
  std::vector<Layer> none;
  const StatisticsPass pass(none, FisherOptions().stats_positions(3));
  return c.kind.statistics_at(c.tap, pass.positions_to_sample(c.positions(), step, 0), torch::kDouble);
}

double relative_error(const at::Tensor& estimate, const at::Tensor& exact) {
  return max_abs_diff(estimate, exact) / exact.abs().max().item<double>();
}

TEST(SampledPositions, TheSampleIsUniformWithoutReplacementAndReproducible) {
  std::vector<Layer> none;
  StatisticsPass pass(none, FisherOptions().stats_positions(3).seed(5));
  const auto picked = pass.positions_to_sample(10, /*step=*/7, /*layer=*/0);
  ASSERT_EQ(picked.size(0), 3);
  EXPECT_TRUE(torch::equal(std::get<0>(picked.sort()), picked));                        // in increasing order
  EXPECT_EQ(std::get<0>(at::_unique(picked)).size(0), 3);                               // distinct
  EXPECT_TRUE(picked.min().item<int64_t>() >= 0 && picked.max().item<int64_t>() < 10);  // in range
  // Reproducible from (seed, step, layer), so a resumed run draws the same; another step or layer draws another.
  EXPECT_TRUE(torch::equal(pass.positions_to_sample(10, 7, 0), picked));
  EXPECT_FALSE(torch::equal(pass.positions_to_sample(10, 8, 0), picked));
  EXPECT_FALSE(torch::equal(pass.positions_to_sample(10, 7, 1), picked));
  // Every position is drawn about equally often (each with probability 3/10).
  auto counts = torch::zeros({10}, torch::kDouble);
  for (int step = 0; step < 3000; ++step)
    counts.index_add_(0, pass.positions_to_sample(10, step, 0), torch::ones({3}, torch::kDouble));
  EXPECT_LT((counts / 3000 - 0.3).abs().max().item<double>(), 0.03);
  // No sample when the option is off or would take every position.
  for (int64_t k : {0, 10, 100})
    EXPECT_FALSE(StatisticsPass(none, FisherOptions().stats_positions(k)).positions_to_sample(10, 3, 1).defined()) << k;
}

TEST(SampledPositions, StatisticsAtASampleAreTheFullStatisticsAtThosePositions) {
  torch::manual_seed(0);
  ConvTap c;
  const auto full = c.kind.statistics({c.tap}, WeightSharing::Expand, torch::kDouble);
  ASSERT_EQ(full.locations(), c.positions());
  const auto positions = torch::tensor({0, 4, 5, 11}, torch::kLong);
  const auto sampled = c.kind.statistics_at(c.tap, positions, torch::kDouble);
  EXPECT_TRUE(torch::equal(sampled.a, full.a.index_select(1, positions)));  // Conv2d gathers only these windows
  EXPECT_TRUE(torch::equal(sampled.g, full.g.index_select(2, positions)));
  EXPECT_EQ(sampled.locations(), 4);
  EXPECT_EQ(sampled.shared_positions(), c.positions());  // the Kronecker form's T stays the layer's
}

TEST(SampledPositions, TheSampledFactorsAreUnbiased) {
  torch::manual_seed(1);
  ConvTap c;
  const auto full = c.kind.statistics({c.tap}, WeightSharing::Expand, torch::kDouble);
  const auto full_a = mean_outer(full.a), full_g = mean_outer(full.g);
  auto a = torch::zeros_like(full_a), g = torch::zeros_like(full_g);
  const int draws = 4000;
  for (int step = 0; step < draws; ++step) {
    const auto x = sample_of(c, step);
    a += mean_outer(x.a) / draws;
    g += mean_outer(x.g) / draws;
  }
  EXPECT_LT(relative_error(a, full_a), 0.02);
  EXPECT_LT(relative_error(g, full_g), 0.02);
  // One sample alone is far from the full factor, so the average's agreement is the estimator's, not the data's.
  EXPECT_GT(relative_error(mean_outer(sample_of(c, 0).a), full_a), 0.05);
}

// EKFAC's per-position spectrum is a sum over positions: on a sample of k of T, scaled by T/k, it is unbiased.
TEST(SampledPositions, ThePerPositionSpectrumOfASampleIsUnbiased) {
  torch::manual_seed(3);
  ConvTap c;
  const auto full = c.kind.statistics({c.tap}, WeightSharing::Expand, torch::kDouble);
  const auto q_a = std::get<0>(at::linalg_qr(torch::randn({full.a.size(2), full.a.size(2)}, torch::kDouble)));
  const auto q_g = std::get<0>(at::linalg_qr(torch::randn({full.g.size(3), full.g.size(3)}, torch::kDouble)));
  const auto exact = projected_second_moment_per_position(full, q_a, q_g);
  auto mean = torch::zeros_like(exact);
  const int draws = 4000;
  for (int step = 0; step < draws; ++step)
    mean += projected_second_moment_per_position(sample_of(c, step), q_a, q_g) / draws;
  EXPECT_LT(relative_error(mean, exact), 0.03);
  // Without the T/k scale the average would be k/T = 1/4 of the sum; one draw alone is far from it.
  EXPECT_GT(relative_error(projected_second_moment_per_position(sample_of(c, 0), q_a, q_g), exact), 0.05);
}

// A 1x1 convolution on inputs that are constant over space, read through a spatial mean: every position has the same
// input and the same output gradient, so a sample's factors are the full ones and only the Kronecker scaling T could
// tell a sample from the whole. The directions must agree (T is the layer's 16, not the sample's 2).
TEST(SampledPositions, TheKroneckerFormKeepsTheLayersPositions) {
  auto direction = [](int64_t positions) {
    torch::manual_seed(2);
    torch::nn::Sequential model(kfac::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 1)),
                                torch::nn::Functional([](const at::Tensor& t) {
                                  return t.mean({2, 3});
                                }),
                                kfac::nn::Linear(3, 2));
    model->to(torch::kDouble);
    const auto x = torch::randn({6, 2, 1, 1}, torch::kDouble).expand({6, 2, 4, 4}).contiguous();
    const auto y = torch::randn({6, 2}, torch::kDouble);
    Preconditioner p(*model,
                     PreconditionerOptions().fisher(FisherType::Exact).stats_positions(positions).damping(1e-3));
    stats_and_step(p, model, x, y, LossKind::SquaredError);
    return model->parameters()[0].grad().clone();
  };
  const auto all = direction(0), sampled = direction(2);
  EXPECT_LT(max_abs_diff(sampled, all), 1e-10 * all.abs().max().item<double>());
}

// Only curvatures whose statistics are sums or means over positions take a sample: K-FAC, and EKFAC with the
// per-position spectrum. The per-example spectra of EKFAC and TEKFAC square per-example sums over positions, and
// TKFAC's traces weigh them per example; a sample would bias them.
TEST(SampledPositions, OnlyCurvaturesOfMeansOverPositionsTakeASample) {
  // The built-in methods (every_method() also holds those other tests register while the binary runs).
  for (const bool per_position : {false, true})
    for (const auto& [method, takes] : std::vector<std::pair<std::string, bool>>{{"kfac", true},
                                                                                 {"ekfac", per_position},
                                                                                 {"tekfac", false},
                                                                                 {"tkfac", false}}) {
      auto model = cnn(3);
      Preconditioner p(*model, PreconditionerOptions().method(method).with(
                                   EigenCorrectedOptions().per_position_spectrum(per_position)));
      EXPECT_EQ(p.curvature(0).takes_sampled_positions(), takes) << method << " " << per_position;
    }
}

}  // namespace
}  // namespace kfac::test
