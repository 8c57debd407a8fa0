// Decompositions of many factors at once (kfac/linalg/batched.h), batched by shape or spread over the threads: every
// result equals the one-factor function's, and a failure stays with its own factor and layer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "kfac/linalg/batched.h"
#include "kfac/linalg/factor.h"
#include "linalg/one_thread.h"
#include "preconditioner/refresh_executor.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

using linalg::FactorRequest;

at::Tensor random_psd(int64_t n, double ridge = 0.1) {
  const auto x = torch::randn({2 * n, n}, torch::kDouble);
  return x.t().mm(x) / static_cast<double>(2 * n) + ridge * torch::eye(n, torch::kDouble);
}

// The one-factor result of a request.
FactorRequest alone(FactorRequest r) {
  if (r.kind == FactorRequest::Kind::Eig)
    r.eig = linalg::factor_eig_refined(r.factor, r.basis, r.iterations, r.what, r.floor);
  else
    r.inverse = linalg::factor_damped_inverse(r.factor, r.shift, r.cholesky, r.floor, r.what);
  return r;
}

void expect_same(const FactorRequest& batched, const FactorRequest& single) {
  ASSERT_TRUE(batched.error.empty()) << batched.error;
  if (batched.kind == FactorRequest::Kind::DampedInverse) {
    EXPECT_LT(max_abs_diff(batched.inverse, single.inverse), 1e-12) << batched.what;
    return;
  }
  EXPECT_LT(max_abs_diff(batched.eig.values, single.eig.values), 1e-12) << batched.what;
  ASSERT_EQ(batched.eig.vectors.defined(), single.eig.vectors.defined()) << batched.what;
  // Eigenvectors up to sign (distinct eigenvalues).
  if (single.eig.vectors.defined()) {
    EXPECT_LT(max_abs_diff(batched.eig.vectors.abs(), single.eig.vectors.abs()), 1e-10) << batched.what;
  }
}

class BatchedDecompositions : public ::testing::TestWithParam<linalg::DecomposeStrategy> {};

TEST_P(BatchedDecompositions, EveryRequestEqualsItsOneFactorFunction) {
  torch::manual_seed(90);
  std::vector<FactorRequest> requests;
  for (int k = 0; k < 3; ++k) {  // same-shaped groups of each kind, with their own shifts
    const auto name = std::to_string(k);
    requests.push_back(FactorRequest::eig_of(random_psd(6), "eig " + name, 1e-3));
    requests.push_back(FactorRequest::damped_inverse_of(random_psd(6), 0.1 * (k + 1), true, 0, "chol " + name));
    requests.push_back(FactorRequest::damped_inverse_of(random_psd(6), 0.2 * (k + 1), false, 1e-3, "eiginv " + name));
  }
  const auto m = random_psd(5);
  requests.push_back(FactorRequest::eig_of(random_psd(7), "alone", 0));  // a size of its own
  requests.push_back(FactorRequest::eig_of(torch::rand({6}, torch::kDouble), "diagonal", 1e-3));
  requests.push_back(FactorRequest::eig_of(m, "refined", 0, linalg::factor_eig(m + 0.01, "m", 0).vectors, 2));
  for (int k = 0; k < 3; ++k) {  // refined bases of one size: a batch of products and QRs (and one with its own count)
    const auto f = random_psd(6);
    const auto previous = linalg::factor_eig(f + 0.05 * random_psd(6), "previous", 0).vectors;
    requests.push_back(FactorRequest::eig_of(f, "refined " + std::to_string(k), 1e-3, previous, k == 2 ? 3 : 2));
  }
  requests.push_back(FactorRequest::eig_of(random_psd(6), "other floor", 0.5));
  requests.push_back(FactorRequest::eig_of(random_psd(513), "above the one-thread rows", 0));
  std::vector<FactorRequest> singles;
  for (const auto& r : requests) singles.push_back(alone(r));
  const int threads = at::get_num_threads();
  linalg::decompose(requests, GetParam());
  EXPECT_EQ(at::get_num_threads(), threads) << "the small factors' one thread was not given back";
  for (size_t k = 0; k < requests.size(); ++k) expect_same(requests[k], singles[k]);
  // Each result is its own storage, not a view of a batch that a checkpoint would save whole.
  EXPECT_EQ(requests[0].eig.vectors.storage().nbytes(), 36 * sizeof(double));
}

TEST_P(BatchedDecompositions, AFailureStaysWithItsFactor) {
  torch::manual_seed(91);
  std::vector<FactorRequest> requests;
  for (int k = 0; k < 3; ++k) requests.push_back(FactorRequest::eig_of(random_psd(4), "eig " + std::to_string(k), 0));
  auto nan = random_psd(4);
  nan[1][2] = std::numeric_limits<double>::quiet_NaN();
  requests[1].factor = nan;
  // An indefinite matrix: its Cholesky fails in float64 too, the others of its batch do not.
  const auto indefinite = -torch::eye(4, torch::kDouble);
  for (int k = 0; k < 3; ++k)
    requests.push_back(FactorRequest::damped_inverse_of(k == 2 ? indefinite : random_psd(4), 1e-3, true, 0,
                                                        "chol " + std::to_string(k)));
  std::vector<FactorRequest> singles;
  for (size_t k = 0; k < requests.size(); ++k) singles.push_back(k == 1 || k == 5 ? requests[k] : alone(requests[k]));
  linalg::decompose(requests, GetParam());
  for (size_t k : {0, 2, 3, 4}) expect_same(requests[k], singles[k]);
  EXPECT_NE(requests[1].error.find("eig 1 has non-finite entries"), std::string::npos) << requests[1].error;
  EXPECT_NE(requests[5].error.find("Cholesky factorization of chol 2 failed"), std::string::npos) << requests[5].error;
  EXPECT_THROW(linalg::throw_if_failed(requests), NumericalError);
}

INSTANTIATE_TEST_SUITE_P(Strategies, BatchedDecompositions,
                         ::testing::Values(linalg::DecomposeStrategy::Batched, linalg::DecomposeStrategy::Sequential));

// Layers refreshed together (refresh_layers: one linalg::decompose over every due layer) precondition exactly as
// each refreshed alone, for every method that plans its refresh and both damping forms.
TEST(RefreshLayers, LayersRefreshedTogetherEqualEachAlone) {
  struct Setup {
    std::string method;
    PreconditionerOptions options;
  };
  const std::vector<Setup> setups{
      {"kfac", PreconditionerOptions()},
      {"kfac", PreconditionerOptions().inverse_method(InverseMethod::Eigen)},
      {"kfac", PreconditionerOptions().damping_mode(DampingMode::Eigen)},
      {"ekfac", PreconditionerOptions()},
      {"tkfac", PreconditionerOptions()},
      {"tekfac", PreconditionerOptions()},
  };
  for (const auto& setup : setups) {
    torch::manual_seed(92);
    auto net = mlp({6, 6, 6, 6, 3});  // three layers of A 7 x G 6, one of A 7 x G 3
    net->to(torch::kDouble);
    auto options = setup.options;
    Preconditioner p(*net, options.method(setup.method).damping(1e-2));
    const auto x = torch::randn({16, 6}, torch::kDouble);
    stats_and_step(p, net, x, torch::randint(0, 3, {16}, torch::kLong), LossKind::SoftmaxCrossEntropy);
    std::vector<std::unique_ptr<Curvature>> together, alone_;
    for (size_t i = 0; i < p.layers().size(); ++i)
      for (auto* set : {&together, &alone_}) {
        set->push_back(p.curvature(i).make_twin());
        set->back()->copy_state_from(p.curvature(i));
      }
    const std::vector<size_t> all{0, 1, 2, 3};
    for (const auto& o : refresh_layers(all, together, 0.05)) EXPECT_TRUE(o.ok) << setup.method << ": " << o.error;
    for (auto& c : alone_) c->refresh(0.05);
    for (size_t i = 0; i < all.size(); ++i) {
      const auto v = torch::randn({i == 3 ? 3 : 6, 7}, torch::kDouble);
      EXPECT_LT(max_abs_diff(together[i]->precondition(v, 0.05), alone_[i]->precondition(v, 0.05)), 1e-10)
          << setup.method << " layer " << i;
    }
  }
}

// The one-thread scope (linalg/one_thread.h) holds one thread inside and gives the count back; a step that
// preconditions small blocks on one thread and a large one with every thread leaves the count as it was.
TEST(OneThread, SmallBlocksRunOnOneThreadAndTheCountComesBack) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  {
    const linalg::OneThread one;
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  torch::manual_seed(93);
  auto net = mlp({300, 300, 4, 3});  // A 301 x G 300 is above kOneThreadMaxPreconditionWork, the others below
  net->to(torch::kDouble);
  Preconditioner p(*net, PreconditionerOptions());
  ASSERT_GT(int64_t{300} * 301 * 601, linalg::kOneThreadMaxPreconditionWork);
  ASSERT_LE(int64_t{4} * 301 * 305, linalg::kOneThreadMaxPreconditionWork);
  const auto stats = stats_and_step(p, net, torch::randn({8, 300}, torch::kDouble), torch::randint(0, 3, {8}),
                                    LossKind::SoftmaxCrossEntropy);
  EXPECT_FALSE(stats.skipped);
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(saved);
}

}  // namespace
}  // namespace kfac::test
