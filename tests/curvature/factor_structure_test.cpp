// Diagonal Kronecker factors (kfac/linalg/factor.h, the option factor_full_max_dim): a side above the threshold
// keeps the full factor's exact diagonal, and every method built on it (K-FAC in both damping modes, EKFAC) must
// equal its dense definition with that diagonal in place of the full factor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "kfac/kfac.h"
#include "kfac/fisher/dense_fisher.h"
#include "kfac/linalg/factor.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

TEST(FactorStructure, DiagonalUpdateIsTheDiagonalOfTheGramUpdate) {
  torch::manual_seed(90);
  const auto x = torch::randn({3, 7, 5}, torch::kDouble);
  auto full = torch::rand({5, 5}, torch::kDouble);
  full = full.mm(full.t());
  auto diagonal = full.diagonal().clone();
  linalg::gram_update_(full, x, 0.3, 0.05);
  linalg::factor_update_(diagonal, x, 0.3, 0.05);
  EXPECT_LT(max_abs_diff(diagonal, full.diagonal()), 1e-12);
  EXPECT_NEAR(linalg::factor_mean_eigenvalue(diagonal).item<double>(), full.trace().item<double>() / 5, 1e-12);
}

TEST(FactorStructure, FactoredDampingPiIsTheRatioOfMeanEigenvaluesWithOneForDegenerateFactors) {
  torch::manual_seed(91);
  auto g = torch::rand({3, 3}, torch::kDouble);
  g = g.mm(g.t());
  const auto a = torch::rand({4}, torch::kDouble) + 0.1;  // a diagonal factor
  const double expected = std::sqrt((a.sum().item<double>() / 4) / (g.trace().item<double>() / 3));
  EXPECT_NEAR(linalg::factored_damping_pi(a, g), expected, 1e-12);
  EXPECT_NEAR(linalg::factored_damping_pi(torch::diag(a), g), expected, 1e-12);  // the same factor, full
  EXPECT_EQ(linalg::factored_damping_pi(a, torch::zeros({3, 3}, torch::kDouble)), 1.0);
  EXPECT_EQ(linalg::factored_damping_pi(torch::zeros({4}, torch::kDouble), g), 1.0);
}

// Layer 0 of mlp({5, 4, 3}): A is 6 x 6 (bias), G 4 x 4; with factor_full_max_dim 5 A is diagonal, G stays full.
// Exact statistics (true Fisher, ema_decay 0) twice, so EKFAC's spectrum comes from the data, not its reset.
struct Pair {
  torch::nn::Sequential model = mlp({5, 4, 3});
  at::Tensor x = torch::randn({9, 5}, torch::kDouble);
  at::Tensor y = torch::randint(0, 3, {9});
  std::unique_ptr<Preconditioner> full, capped;
  Pair(const std::string& method, DampingMode mode) {
    auto o = PreconditionerOptions()
                 .method(method)
                 .damping(0.03)
                 .damping_mode(mode)
                 .fisher(FisherType::Exact)
                 .ema_decay(0)
                 .refresh_period(100);
    full = std::make_unique<Preconditioner>(*model, PreconditionerOptions(o).factor_full_max_dim(0));
    capped = std::make_unique<Preconditioner>(*model, PreconditionerOptions(o).factor_full_max_dim(5));
    for (int k = 0; k < 2; ++k)
      for (auto* p : {full.get(), capped.get()}) stats_and_step(*p, model, x, y, LossKind::SoftmaxCrossEntropy);
  }
};

TEST(FactorStructure, KfacBlockIsTheDiagonalOfAKroneckerG) {
  torch::manual_seed(91);
  Pair p("kfac", DampingMode::Eigen);
  const auto& full = dynamic_cast<const KfacCurvature&>(p.full->curvature(0));
  const auto& capped = dynamic_cast<const KfacCurvature&>(p.capped->curvature(0));
  ASSERT_EQ(capped.factor_a().dim(), 1);
  ASSERT_EQ(capped.factor_g().dim(), 2);
  EXPECT_LT(max_abs_diff(capped.factor_a(), full.factor_a().diagonal()), 1e-12);
  EXPECT_LT(max_abs_diff(capped.factor_g(), full.factor_g()), 1e-12);
  const auto expected = torch::kron(torch::diag(full.factor_a().diagonal()), full.factor_g());
  EXPECT_LT(max_abs_diff(capped.to_dense(), expected), 1e-12);
  EXPECT_EQ(capped.structure(), "A 6 diagonal x G 4");
  EXPECT_EQ(p.capped->curvature(1).structure(), "A 5 x G 3");
}

// Every method and damping mode: the preconditioned direction equals the dense formula's.
class DiagonalSide : public ::testing::TestWithParam<std::tuple<std::string, DampingMode>> {};

TEST_P(DiagonalSide, PreconditionEqualsTheDenseFormula) {
  torch::manual_seed(92);
  const auto [method, mode] = GetParam();
  Pair p(method, mode);
  const auto& c = p.capped->curvature(0);
  const double lambda = 0.03;  // the damping the factored inverses were formed with
  const auto v = torch::randn({4, 6}, torch::kDouble);
  at::Tensor expected;
  if (method == "kfac" && mode == DampingMode::Factored) {
    // (diag(a) + πγ)⁻¹ ⊗ (G + γ/π)⁻¹ with γ = √λ, π = √((tr A/6)/(tr G/4)): the factored damping of the spec.
    const auto& k = dynamic_cast<const KfacCurvature&>(c);
    const auto a = torch::diag(k.factor_a()), g = k.factor_g();
    const double pi = std::sqrt((a.trace() / 6).item<double>() / (g.trace() / 4).item<double>());
    const double gamma = std::sqrt(lambda);
    const auto inverse = torch::kron(torch::inverse(a + pi * gamma * torch::eye(6, torch::kDouble)),
                                     torch::inverse(g + gamma / pi * torch::eye(4, torch::kDouble)));
    expected = unvec(torch::matmul(inverse, vec(v)), 4, 6);
    EXPECT_NEAR(k.pi(), pi, 1e-12);
  } else {
    // Exact Tikhonov damping of the dense approximation: (F̂ + λI)⁻¹ vec(V).
    expected = unvec(torch::linalg::solve(c.to_dense() + lambda * torch::eye(24, torch::kDouble), vec(v), true), 4, 6);
  }
  EXPECT_LT(max_abs_diff(c.precondition(v, lambda), expected), 1e-10);
}

INSTANTIATE_TEST_SUITE_P(Methods, DiagonalSide,
                         ::testing::Combine(::testing::Values("kfac", "ekfac"),
                                            ::testing::Values(DampingMode::Factored, DampingMode::Eigen)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == DampingMode::Eigen ? "Eigen" : "Factored");
                         });

TEST(FactorStructure, EkfacSpectrumIsTheExactBlocksDiagonalInTheIdentityTimesGBasis) {
  torch::manual_seed(93);
  Pair p("ekfac", DampingMode::Eigen);
  const auto exact = exact_fisher([&](const at::Tensor& in) { return p.model->forward(in); }, p.capped->layers(), p.x,
                                  LossKind::SoftmaxCrossEntropy, true);
  const auto& e = dynamic_cast<const EigenCorrected<KfacCurvature>&>(p.capped->curvature(0));
  EXPECT_FALSE(e.basis_input().defined());  // the identity
  const auto u = torch::kron(torch::eye(6, torch::kDouble), e.basis_output().contiguous());
  const auto expected = torch::diagonal(u.t().mm(exact.block(0)).mm(u));
  EXPECT_LT(max_abs_diff(vec(e.spectrum()), expected), 1e-12);
}

TEST(FactorStructure, LowestModeIsTheDenseApproximationsLowestEigenvector) {
  torch::manual_seed(94);
  Pair p("kfac", DampingMode::Eigen);
  const auto& c = p.capped->curvature(0);
  const auto dense = torch::linalg::eigh(c.to_dense(), "L");
  const auto q = std::get<1>(dense).select(1, 0);
  EXPECT_NEAR(std::abs(vec(c.lowest_mode()).dot(q).item<double>()), 1.0, 1e-8);
}

TEST(FactorStructure, RegistrationReportsDiagonalFactorsAndTheLargestBlock) {
  auto model = mlp({5, 4, 3});
  Preconditioner p(*model, PreconditionerOptions().factor_full_max_dim(5));
  const auto summary = p.registration().summary();
  EXPECT_NE(summary.find("; diagonal above factor_full_max_dim: '0' (A 6 diagonal x G 4);"), std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("largest block"), std::string::npos) << summary;  // below kLargeBlockBytes
  EXPECT_EQ(p.registration().blocks[0].memory_bytes, (6 + 16) * 8);
  EXPECT_EQ(p.registration().details(),
            "0: Linear (expand), A 6 diagonal x G 4, 176 B\n2: Linear (expand), A 5 x G 3, 272 B\n");
  // A full float64 side of 2897 rows holds 64.0 MiB, kLargeBlockBytes: named as the largest block.
  auto wide = mlp({2896, 2});
  const auto big = Preconditioner(*wide, PreconditionerOptions().factor_full_max_dim(0)).registration().summary();
  EXPECT_NE(big.find("; largest block: '0' (A 2897 x G 2, 64.0 MiB)"), std::string::npos) << big;
}

TEST(FactorStructure, CheckpointRoundTripAndAStructureMismatchIsNamed) {
  torch::manual_seed(95);
  Pair p("ekfac", DampingMode::Eigen);
  std::stringstream bytes;
  torch::save(*p.capped, bytes);
  Preconditioner same(*p.model, PreconditionerOptions().method("ekfac").factor_full_max_dim(5));
  torch::load(same, bytes);
  const auto v = torch::randn({4, 6}, torch::kDouble);
  EXPECT_TRUE(torch::equal(same.curvature(0).precondition(v, 0.1), p.capped->curvature(0).precondition(v, 0.1)));
  bytes.seekg(0);
  Preconditioner other(*p.model, PreconditionerOptions().method("ekfac").factor_full_max_dim(0));
  try {
    torch::load(other, bytes);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer '0': A has shape [6] but this model needs [6, 6]; the checkpoint's "
                                         "factor is diagonal where this one is full: it was written with another "
                                         "factor_full_max_dim"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kfac::test
