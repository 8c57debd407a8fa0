// The statistics products in bfloat16 (option statistics_precision): each product equals the exact product of the
// bf16-rounded statistics to within one bf16 rounding of its result (2⁻⁸ relative), the factors and EKFAC's spectrum
// stay in the factor dtype, and a whole run agrees with the float32 run to bf16's precision, not exactly (the
// products really are in bf16). "auto" picks bf16 on CUDA and on CPUs with AVX512-BF16.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/curvature/eigen_corrected.h"
#include "kfac/curvature/kfac_curvature.h"
#include "kfac/curvature/tkfac_curvature.h"
#include "kfac/kfac.h"
#include "kfac/linalg/factor.h"
#include "kfac/runtime/runtime_info.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

constexpr double kBf16Rounding = 1.0 / 256;  // 2⁻⁸: bf16 keeps 8 significant bits

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(torch::kDouble) - want.to(torch::kDouble)).norm() / want.to(torch::kDouble).norm()).item<double>();
}

TEST(StatisticsPrecision, GramOfBfloat16RowsIsTheirExactGramRoundedOnce) {
  torch::manual_seed(90);
  const auto x = (torch::randn({512, 40}) + 0.5).to(torch::kBFloat16);  // a mean, as activations have
  const auto exact = x.to(torch::kDouble).t().mm(x.to(torch::kDouble)) / 512.0;
  auto m = torch::full({40, 40}, 3.0);  // β = 0.5 of an old value, in float32
  linalg::gram_update_(m, x, 0.5, 1.0 / 512);
  EXPECT_EQ(m.scalar_type(), torch::kFloat);
  const auto err = (m.to(torch::kDouble) - 1.5 - exact).abs();
  EXPECT_TRUE((err <= exact.abs() * kBf16Rounding + 1e-6).all().item<bool>()) << err.max().item<double>();
  // The same rows in float32 (the factor-dtype product) differ: the product was rounded to bf16.
  auto m32 = torch::full({40, 40}, 3.0);
  linalg::gram_update_(m32, x.to(torch::kFloat), 0.5, 1.0 / 512);
  EXPECT_GT(max_abs_diff(m, m32), 1e-5);
  // A diagonal factor sums the squares in its own dtype.
  auto d = torch::zeros({40});
  linalg::factor_update_(d, x, 0.0, 1.0 / 512);
  EXPECT_LT(max_abs_diff(d.to(torch::kDouble), exact.diagonal()), 1e-5);
}

TEST(StatisticsPrecision, SpectrumOfBfloat16StatisticsIsAccumulatedInFloat32) {
  torch::manual_seed(91);
  const LayerStatistics s{torch::randn({6, 9, 5}), torch::randn({1, 6, 9, 4})};
  const auto q_a = std::get<0>(torch::linalg::qr(torch::randn({5, 5})));
  const auto q_g = std::get<0>(torch::linalg::qr(torch::randn({4, 4})));
  const LayerStatistics low{s.a.to(torch::kBFloat16), s.g.to(torch::kBFloat16)};
  for (const bool per_position : {false, true}) {
    auto moment = [&](const LayerStatistics& t) {
      return per_position ? projected_second_moment_per_position(t, q_a, q_g) : projected_second_moment(t, q_a, q_g);
    };
    const auto got = moment(low), want = moment(s);
    EXPECT_EQ(got.scalar_type(), torch::kFloat) << per_position;
    // Inputs, rotations and squares each rounded to bf16: a few roundings, far from the 1e-1 an error would make.
    EXPECT_LT(relative_error(got, want), 8 * kBf16Rounding) << per_position;
    EXPECT_GT(relative_error(got, want), 1e-5) << per_position;
  }
}

// K-FAC, EKFAC (per-example and per-position spectrum) and TEKFAC (its spectrum in bf16, its factors not) on a conv
// net, float32, with the products in bf16 against the same run in float32: factors, spectrum and the preconditioned
// gradients agree to bf16's precision.
class WholeRun : public ::testing::TestWithParam<std::string> {};

TEST_P(WholeRun, Bfloat16ProductsAgreeWithFloat32ToItsPrecision) {
  auto run = [&](StatisticsPrecision precision) {
    torch::manual_seed(92);
    auto model = cnn(3);
    model->to(torch::kFloat);
    const auto x = torch::randn({8, 2, 5, 5});
    const auto y = torch::randint(0, 3, {8});
    const std::string method = GetParam() == "ekfac-position" ? "ekfac" : GetParam();
    Preconditioner p(
        *model,
        PreconditionerOptions().method(method).damping(1e-2).refresh_period(2).statistics_precision(precision).with(
            EigenCorrectedOptions().per_position_spectrum(GetParam() == "ekfac-position")));
    for (int step = 0; step < 4; ++step)
      EXPECT_EQ(stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy).refresh_failures, 0);
    std::vector<at::Tensor> out;
    for (size_t i = 0; i < p.layers().size(); ++i) {
      const auto& c = dynamic_cast<const KroneckerCurvature&>(p.curvature(i));
      out.push_back(c.input_factor().clone());
      out.push_back(c.output_factor().clone());
      if (method == "ekfac")
        out.push_back(dynamic_cast<const EigenCorrected<KfacCurvature>&>(p.curvature(i)).spectrum().clone());
      if (method == "tekfac")
        out.push_back(dynamic_cast<const EigenCorrected<TkfacCurvature>&>(p.curvature(i)).spectrum().clone());
      EXPECT_EQ(c.dtype(), torch::kFloat);
    }
    for (const auto& w : model->parameters()) out.push_back(w.grad().clone());
    return out;
  };
  const auto low = run(StatisticsPrecision::BFloat16), exact = run(StatisticsPrecision::Factor);
  ASSERT_EQ(low.size(), exact.size());
  double largest = 0;
  for (size_t i = 0; i < low.size(); ++i) {
    EXPECT_EQ(low[i].scalar_type(), torch::kFloat) << i;
    const double e = relative_error(low[i], exact[i]);
    EXPECT_LT(e, 4e-2) << "tensor " << i;
    largest = std::max(largest, e);
  }
  EXPECT_GT(largest, 1e-5);  // not the float32 run itself
}

INSTANTIATE_TEST_SUITE_P(Methods, WholeRun, ::testing::Values("kfac", "ekfac", "ekfac-position", "tekfac"));

TEST(StatisticsPrecision, AutoIsBfloat16WhereTheDeviceMultipliesItNatively) {
  // The library's own check agrees with the CPU flags the runtime report reads from /proc/cpuinfo.
  const auto cpu = runtime::runtime_info().cpu;
  EXPECT_EQ(cpu_multiplies_bfloat16(), cpu.has("avx512_bf16")) << cpu.model_name;
  const c10::optional<at::ScalarType> bf16 = torch::kBFloat16, factor = c10::nullopt;
  EXPECT_EQ(statistics_product_dtype(StatisticsPrecision::Auto, /*cuda=*/true), bf16);
  EXPECT_EQ(statistics_product_dtype(StatisticsPrecision::Auto, false), cpu_multiplies_bfloat16() ? bf16 : factor);
  EXPECT_EQ(statistics_product_dtype(StatisticsPrecision::Factor, true), factor);
  EXPECT_EQ(statistics_product_dtype(StatisticsPrecision::BFloat16, false), bf16);
  // What the preconditioner gives its curvatures.
  auto model = mlp({3, 4});
  for (const auto precision : {StatisticsPrecision::Factor, StatisticsPrecision::BFloat16, StatisticsPrecision::Auto})
    EXPECT_EQ(Preconditioner(*model, PreconditionerOptions().statistics_precision(precision))
                  .curvature(0)
                  .context()
                  .product_dtype,
              statistics_product_dtype(precision, false));
}

}  // namespace
}  // namespace kfac::test
