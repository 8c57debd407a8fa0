// K-FAC against the brute-force Fisher: where theory says the Kronecker factorization is exact, it must be.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "kfac/linalg/psd.h"
#include "kfac/fisher/dense_fisher.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

struct Setup {
  torch::nn::Sequential model;
  std::unique_ptr<Preconditioner> precond;
  DenseFisher exact;
};

Setup run(torch::nn::Sequential model, const at::Tensor& x, const at::Tensor& y, LossKind loss, FisherType fisher) {
  Setup s{model, std::make_unique<Preconditioner>(*model, PreconditionerOptions().fisher(fisher)), {}};
  stats_and_step(*s.precond, s.model, x, y, loss);
  s.exact = exact_fisher([&](const at::Tensor& in) { return model->forward(in); }, s.precond->layers(), x, loss,
                         fisher != FisherType::Empirical, y);
  return s;
}

double block_error(const Setup& s, size_t i) {
  return max_abs_diff(s.precond->curvature(i).to_dense(), s.exact.block(i)) /
         s.exact.block(i).abs().max().item<double>();
}

TEST(KfacExactness, SingleExampleEqualsExactTrueFisherBlocks) {
  torch::manual_seed(1);
  for (auto loss : {LossKind::SoftmaxCrossEntropy, LossKind::SigmoidCrossEntropy, LossKind::SquaredError}) {
    auto x = torch::randn({1, 3}, torch::kDouble);
    at::Tensor y = loss == LossKind::SoftmaxCrossEntropy ? torch::tensor({1}) : torch::rand({1, 3}, torch::kDouble);
    auto s = run(mlp({3, 4, 3}), x, y, loss, FisherType::Exact);
    for (size_t i = 0; i < 2; ++i) EXPECT_LT(block_error(s, i), 1e-10) << to_string(loss) << " layer " << i;
  }
}

TEST(KfacExactness, SingleExampleEqualsExactEmpiricalFisherBlocks) {
  torch::manual_seed(2);
  auto x = torch::randn({1, 3}, torch::kDouble);
  auto s = run(mlp({3, 5, 4, 2}), x, torch::tensor({1}), LossKind::SoftmaxCrossEntropy, FisherType::Empirical);
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(block_error(s, i), 1e-10) << "layer " << i;
}

TEST(KfacExactness, IdenticalInputsEqualExactBlocks) {
  torch::manual_seed(3);
  auto x = torch::randn({1, 3}, torch::kDouble).expand({6, 3}).contiguous();
  auto y = torch::tensor({0, 1, 2, 1, 0, 2});
  for (auto fisher : {FisherType::Empirical, FisherType::Exact}) {
    auto s = run(mlp({3, 4, 3}), x, y, LossKind::SoftmaxCrossEntropy, fisher);
    for (size_t i = 0; i < 2; ++i) EXPECT_LT(block_error(s, i), 1e-10) << to_string(fisher) << " layer " << i;
  }
}

TEST(KfacExactness, DeepLinearNetworkUnderGgnEqualsExactBlocks) {
  // Linear network + squared error: g = Jᵀ(z − ỹ) with J independent of the input, so E[ā āᵀ ⊗ g gᵀ] factorizes.
  torch::manual_seed(4);
  auto x = torch::randn({7, 3}, torch::kDouble);
  auto y = torch::randn({7, 2}, torch::kDouble);
  auto s = run(mlp({3, 4, 3, 2}, /*bias=*/true, /*linear=*/true), x, y, LossKind::SquaredError, FisherType::Exact);
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(block_error(s, i), 1e-10) << "layer " << i;
}

TEST(KfacExactness, DistinctInputsOnNonlinearNetworkAreOnlyApproximate) {
  // The control for the tests above: with distinct inputs and a nonlinearity K-FAC is not exact.
  torch::manual_seed(5);
  auto x = torch::randn({8, 3}, torch::kDouble);
  auto y = torch::randint(0, 3, {8});
  auto s = run(mlp({3, 4, 3}), x, y, LossKind::SoftmaxCrossEntropy, FisherType::Exact);
  EXPECT_GT(block_error(s, 0), 1e-3);
}

TEST(KfacExactness, SampledFisherConvergesToExactFisher) {
  // G from S sampled targets per example against the exact G; the error must shrink like 1/√S.
  torch::manual_seed(6);
  auto model = mlp({3, 4, 5});
  auto x = torch::randn({4, 3}, torch::kDouble);
  auto y = torch::randint(0, 5, {4});
  auto factor_g = [&](FisherType fisher, int64_t samples) {
    Preconditioner p(*model, PreconditionerOptions().fisher(fisher).fisher_samples(samples).seed(11));
    stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
    return dynamic_cast<const KfacCurvature&>(p.curvature(0)).factor_g().clone();
  };
  const auto exact = factor_g(FisherType::Exact, 1);
  const double norm = exact.norm().item<double>();
  double previous = 1e9;
  for (int64_t samples : {16, 1024, 65536}) {
    const double err = (factor_g(FisherType::Sampled, samples) - exact).norm().item<double>() / norm;
    EXPECT_LT(err, 3.0 / std::sqrt(static_cast<double>(samples))) << samples << " samples";
    EXPECT_LT(err, previous) << samples << " samples";
    previous = err;
  }
}

TEST(Factors, GramUpdateEqualsTheFullProduct) {
  torch::manual_seed(71);
  std::vector<at::Tensor> inputs;
  for (int64_t n : {7, 600, 1001, 1100})  // below and above the blocked size, odd split, two levels of splits
    inputs.push_back(torch::randn({50, n}, torch::kDouble));
  inputs.push_back(torch::randn({9000, 10}, torch::kDouble));  // tall and narrow: row blocks, with a remainder
  inputs.push_back(torch::randn({2, 3, 11, 40}, torch::kDouble).transpose(-1, -2));  // channels-major [S, B, T, C]
  inputs.push_back(torch::randn({3, 4, 5}, torch::kDouble));                         // leading dimensions flattened
  for (const auto& x : inputs) {
    const int64_t n = x.size(-1);
    const auto rows = x.reshape({-1, n});
    auto m = torch::randn({n, n}, torch::kDouble);
    m = m + m.t();
    auto expected = m.clone().addmm_(rows.t(), rows, 0.9, 0.02);
    linalg::gram_update_(m, x, 0.9, 0.02);
    const double tolerance = 1e-12 * std::max(1.0, expected.abs().max().item<double>());
    EXPECT_LT((m - expected).abs().max().item<double>(), tolerance) << x.sizes();
    EXPECT_LT((m - m.t()).abs().max().item<double>(), tolerance) << x.sizes();
  }
}

}  // namespace
}  // namespace kfac::test
