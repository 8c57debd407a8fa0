// Eigenbases refined from the previous refresh's (kfac/linalg/factor.h factor_eig_refined, the option
// eigenbasis_iterations): the refinement converges to the eigendecomposition and keeps each column in its place, and
// EKFAC and K-FAC with eigen damping built on it equal their eigh-based selves once it has converged.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "kfac/linalg/factor.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// A symmetric PSD matrix with the given (distinct) eigenvalues in a random basis.
at::Tensor with_spectrum(const at::Tensor& values, int64_t seed) {
  torch::manual_seed(seed);
  const auto q = std::get<0>(at::linalg_qr(torch::randn({values.size(0), values.size(0)}, torch::kDouble)));
  return at::matmul(q * values.unsqueeze(0), q.t());
}

// ‖off-diagonal of qᵀ m q‖_F: zero exactly when q's columns are eigenvectors of m.
double off_diagonal(const at::Tensor& m, const at::Tensor& q) {
  const auto d = at::matmul(at::matmul(q.t(), m), q);
  return (d - at::diag(d.diagonal())).norm().item<double>();
}

TEST(RefinedEigenbasis, WithoutIterationsOrPreviousBasisItIsTheEigendecomposition) {
  const auto m = with_spectrum(torch::tensor({0.5, 1.0, 2.0, 4.0, 9.0}, torch::kDouble), 1);
  const auto eig = linalg::factor_eig(m, "m", 0.0);
  for (const auto& refined : {linalg::factor_eig_refined(m, eig.vectors.flip({1}), 0, "m", 0.0),
                              linalg::factor_eig_refined(m, at::Tensor(), 3, "m", 0.0)}) {
    EXPECT_TRUE(refined.values.equal(eig.values));
    EXPECT_TRUE(refined.vectors.equal(eig.vectors));
  }
  const auto diagonal = torch::tensor({3.0, 1e-9, 2.0}, torch::kDouble);
  const auto d = linalg::factor_eig_refined(diagonal, at::Tensor(), 2, "d", 1e-6);
  EXPECT_FALSE(d.vectors.defined()) << "a diagonal factor's basis is the identity";
  EXPECT_TRUE(d.values.equal(torch::tensor({3.0, 1e-6, 2.0}, torch::kDouble)));
}

TEST(RefinedEigenbasis, ConvergesToTheEigenbasisKeepingEachColumnInItsPlace) {
  const auto values = torch::tensor({0.1, 0.7, 1.5, 3.0, 5.0, 12.0}, torch::kDouble);  // ascending, as eigh's
  const auto m = with_spectrum(values, 2);
  const auto exact = linalg::factor_eig(m, "m", 0.0);
  // A previous basis a rotation away from the eigenbasis, in eigh's (ascending) column order.
  const auto start = std::get<0>(at::linalg_qr(exact.vectors + 0.1 * torch::randn({6, 6}, torch::kDouble)));
  double last = off_diagonal(m, start);
  for (int64_t k : {1, 4, 16, 64}) {
    const auto r = linalg::factor_eig_refined(m, start, k, "m", 0.0);
    EXPECT_LT((at::matmul(r.vectors.t(), r.vectors) - at::eye(6, torch::kDouble)).abs().max().item<double>(), 1e-12);
    const double off = off_diagonal(m, r.vectors);
    EXPECT_LT(off, last) << k << " iterations";
    last = off;
    // The values are the diagonal of m in the refined basis.
    EXPECT_LT(max_abs_diff(r.values, at::matmul(at::matmul(r.vectors.t(), m), r.vectors).diagonal()), 1e-12);
  }
  const auto converged = linalg::factor_eig_refined(m, start, 100, "m", 0.0);
  EXPECT_LT(off_diagonal(m, converged.vectors), 1e-9);
  // Column j still tracks column j: the values come back in the previous basis's (ascending) order.
  EXPECT_LT(max_abs_diff(converged.values, values), 1e-9);
  EXPECT_LT(max_abs_diff(converged.vectors.t().mm(exact.vectors).abs(), at::eye(6, torch::kDouble)), 1e-6);
}

TEST(RefinedEigenbasis, FloorsTheValues) {
  const auto m = with_spectrum(torch::tensor({0.0, 1.0, 2.0}, torch::kDouble), 3);
  const auto q = linalg::factor_eig(m, "m", 0.0).vectors;
  EXPECT_GE(linalg::factor_eig_refined(m, q, 2, "m", 0.25).values.min().item<double>(), 0.25);
}

TEST(RefinedEigenbasis, ANonFiniteFactorIsRefusedByName) {
  auto m = with_spectrum(torch::tensor({1.0, 2.0}, torch::kDouble), 4);
  const auto q = linalg::factor_eig(m, "m", 0.0).vectors;
  m[0][1] = std::nan("");
  try {
    linalg::factor_eig_refined(m, q, 1, "layer 'fc' factor A", 0.0);
    FAIL() << "no error";
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'fc' factor A"), std::string::npos) << e.what();
  }
}

// EKFAC and K-FAC (eigen damping) from exact statistics of a new batch every step (ema_decay 0: the factors jump
// between refreshes), refreshed every step with k iterations from the previous basis. The preconditioned gradients
// of the last step, against the eigh-based method's.
// With `tokens`, token_model() under the method's default damping: for kfac only its LayerNorm block has an
// eigenbasis (the Linear and Embedding factors are inverted). With `only`, the gradients of the parameters whose names
// contain it.
std::vector<at::Tensor> preconditioned(const std::string& method, int64_t iterations, int steps, bool tokens = false,
                                       const std::string& only = "") {
  torch::manual_seed(61);
  auto model = tokens ? token_model() : mlp({4, 5, 3});
  Preconditioner p(*model, PreconditionerOptions()
                               .method(method)
                               .damping_mode(tokens ? DampingMode::Factored : DampingMode::Eigen)
                               .fisher(FisherType::Exact)
                               .ema_decay(0)
                               .refresh_period(1)
                               .damping(1e-3)
                               .eigenbasis_iterations(iterations));
  for (int k = 0; k < steps; ++k) {
    const auto x = tokens ? torch::randint(7, {12, 5}) : torch::randn({12, 4}, torch::kDouble);
    const auto y = tokens ? torch::randint(3, {12, 5}) : torch::randint(0, 3, {12});
    stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
  }
  std::vector<at::Tensor> out;
  for (auto& param : model->named_parameters())
    if (param.key().find(only) != std::string::npos) out.push_back(param.value().grad().clone());
  EXPECT_FALSE(out.empty()) << "no parameter named like '" << only << "'";
  return out;
}

double largest_difference(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, max_abs_diff(a[i], b[i]) / b[i].abs().max().item<double>());
  return worst;
}

TEST(RefinedEigenbasis, EkfacAndEigenDampedKfacConvergeToTheirEighSelves) {
  for (const char* method : {"ekfac", "kfac"}) {
    // The first refresh decomposes (there is no previous basis): after one step the two are the same method.
    EXPECT_LT(largest_difference(preconditioned(method, 1, 1), preconditioned(method, 0, 1)), 1e-12) << method;
    const auto eigh = preconditioned(method, 0, 3);
    // One iteration per refresh lags behind factors that jump: an approximation, visibly.
    EXPECT_GT(largest_difference(preconditioned(method, 1, 3), eigh), 1e-4) << method;
    // Many iterations per refresh: the eigh method's gradients.
    EXPECT_LT(largest_difference(preconditioned(method, 100, 3), eigh), 1e-6) << method;
  }
}

TEST(RefinedEigenbasis, NormalizationBlocksRefineTheirBasisToo) {
  EXPECT_LT(largest_difference(preconditioned("kfac", 1, 1, true), preconditioned("kfac", 0, 1, true)), 1e-12);
  const auto eigh = preconditioned("kfac", 0, 3, true);
  EXPECT_GT(largest_difference(preconditioned("kfac", 1, 3, true), eigh), 1e-4);
  EXPECT_LT(largest_difference(preconditioned("kfac", 100, 3, true), eigh), 1e-6);
}

TEST(RefinedEigenbasis, EmbeddingBlocksRefineTheirBasisToo) {
  // EKFAC's Embedding block: a diagonal A and G's eigenbasis, refined like every factor's.
  const auto embedding = [](int64_t iterations, int steps) {
    return preconditioned("ekfac", iterations, steps, /*tokens=*/true, "embed.");
  };
  EXPECT_LT(largest_difference(embedding(1, 1), embedding(0, 1)), 1e-12);
  const auto eigh = embedding(0, 3);
  EXPECT_GT(largest_difference(embedding(1, 3), eigh), 1e-4);
  EXPECT_LT(largest_difference(embedding(100, 3), eigh), 1e-6);
}

}  // namespace
}  // namespace kfac::test
