// Shampoo and SOAP against dense float64 computations of their definitions (the roots by SVD, SOAP's rotation as an
// explicit Kronecker product), and the shared refresh by power iteration + QR against eigh.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "kfac/linalg/psd.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

// (m + εI)^(−1/4) by an SVD (for a symmetric PSD matrix U = V), not the eigh the optimizer uses.
at::Tensor dense_inverse_fourth_root(const at::Tensor& m, double eps) {
  auto [u, s, vh] = at::linalg_svd(m, false);
  return at::matmul(u * (s + eps).pow(-0.25).unsqueeze(0), u.t());
}

TEST(Shampoo, PreconditionedGradientIsTheDenseInverseFourthRoots) {
  torch::manual_seed(3);
  for (const int64_t tile : {100, 3}) {  // one block; tiles of ≤ 3 rows and columns
    auto w = torch::randn({6, 5}, torch::kDouble).requires_grad_();
    const auto opts = ShampooOptions(1.0)
                          .beta1(0)
                          .shampoo_beta(0.8)
                          .root_epsilon(1e-3)
                          .precondition_frequency(1)
                          .max_preconditioner_dim(tile)
                          .grafting("none");
    Shampoo shampoo({w}, opts);
    std::map<std::string, at::Tensor> left, right;
    for (int64_t t = 1; t <= 3; ++t) {
      const auto g = torch::randn({6, 5}, torch::kDouble);
      const auto before = w.detach().clone();
      w.mutable_grad() = g.clone();
      shampoo.step();
      auto expected = torch::empty_like(g);
      const double correction = 1 - std::pow(0.8, static_cast<double>(t));
      for (const auto& [r0, r1] : block_ranges(6, tile))
        for (const auto& [c0, c1] : block_ranges(5, tile)) {
          const auto key = std::to_string(r0) + "." + std::to_string(c0);
          const auto gt = g.slice(0, r0, r1).slice(1, c0, c1);
          left[key] = left.count(key) ? 0.8 * left[key] + 0.2 * gt.mm(gt.t()) : 0.2 * gt.mm(gt.t());
          right[key] = right.count(key) ? 0.8 * right[key] + 0.2 * gt.t().mm(gt) : 0.2 * gt.t().mm(gt);
          expected.slice(0, r0, r1).slice(1, c0, c1).copy_(dense_inverse_fourth_root(left[key] / correction, 1e-3)
                                                               .mm(gt)
                                                               .mm(dense_inverse_fourth_root(right[key] / correction,
                                                                                             1e-3)));
        }
      EXPECT_LT(max_abs_diff(before - w.detach(), expected), 1e-9) << "tile " << tile << ", step " << t;
      EXPECT_TRUE(shampoo.last_stats().refreshed);
    }
  }
}

TEST(Shampoo, GraftingGivesEachTileAdamsNormAndVectorsAdamsStep) {
  torch::manual_seed(4);
  auto w = torch::randn({6, 5}, torch::kDouble).requires_grad_(),
       b = torch::randn({6}, torch::kDouble).requires_grad_();
  auto w_adam = w.detach().clone().requires_grad_(), b_adam = b.detach().clone().requires_grad_();
  Shampoo shampoo({w, b}, ShampooOptions(0.01).precondition_frequency(1).max_preconditioner_dim(3));
  Shampoo adam_only({w_adam, b_adam}, ShampooOptions(0.01).precondition_frequency(1000));  // no roots: Adam
  for (int t = 0; t < 2; ++t) {
    const auto gw = torch::randn({6, 5}, torch::kDouble), gb = torch::randn({6}, torch::kDouble);
    const auto before = w.detach().clone(), before_adam = w_adam.detach().clone();
    w.mutable_grad() = gw.clone(), b.mutable_grad() = gb.clone();
    w_adam.mutable_grad() = gw.clone(), b_adam.mutable_grad() = gb.clone();
    shampoo.step();
    adam_only.step();
    const auto d = before - w.detach(), a = before_adam - w_adam.detach();
    for (const auto& [r0, r1] : block_ranges(6, 3))
      for (const auto& [c0, c1] : block_ranges(5, 3)) {
        const auto tile = [&](const at::Tensor& x) { return x.slice(0, r0, r1).slice(1, c0, c1); };
        EXPECT_NEAR(tile(d).norm().item<double>(), tile(a).norm().item<double>(), 1e-12);
        EXPECT_GT(max_abs_diff(tile(d), tile(a)), 1e-6) << "the direction is Shampoo's, only the norm Adam's";
      }
    EXPECT_LT(max_abs_diff(b.detach(), b_adam.detach()), 1e-15) << "a vector takes Adam's step";
  }
}

TEST(Shampoo, AFailedRefreshKeepsThePreviousRootsAndIsCounted) {
  torch::manual_seed(5);
  auto w = torch::randn({4, 3}, torch::kDouble).requires_grad_();
  Shampoo shampoo({w}, ShampooOptions(0.01).precondition_frequency(1));
  w.mutable_grad() = torch::randn({4, 3}, torch::kDouble);
  shampoo.step();
  const auto root = shampoo.parameter_state(0, 0).at("left_root.0.0").clone();
  linalg::testing::inject_decomposition_failures(2);  // the factor's try and its float64 retry
  w.mutable_grad() = torch::randn({4, 3}, torch::kDouble);
  shampoo.step();
  EXPECT_FALSE(shampoo.last_stats().skipped);
  EXPECT_EQ(shampoo.last_stats().refresh_failures, 1);
  ASSERT_FALSE(shampoo.last_stats().messages.empty());
  EXPECT_NE(shampoo.last_stats().messages[0].find("previous roots are kept"), std::string::npos);
  EXPECT_TRUE(shampoo.parameter_state(0, 0).at("left_root.0.0").equal(root));
}

TEST(Soap, RefreshedEveryStepItIsAdamInTheRotatedBasis) {
  torch::manual_seed(6);
  const double lr = 0.1, b1 = 0.9, b2 = 0.8, bs = 0.7, eps = 1e-8, wd = 0.05;
  auto w = torch::randn({5, 4}, torch::kDouble).requires_grad_();
  Soap soap({w}, SoapOptions(lr)
                     .beta1(b1)
                     .beta2(b2)
                     .shampoo_beta(bs)
                     .eps(eps)
                     .weight_decay(wd)
                     .precondition_frequency(1)
                     .basis_refresh("eigh"));
  // The oracle: vec(Q_Lᵀ G Q_R) = (Q_Lᵀ ⊗ Q_Rᵀ) vec(G) (row-major vec); Adam on the 20 rotated coordinates.
  auto left = torch::zeros({5, 5}, torch::kDouble), right = torch::zeros({4, 4}, torch::kDouble);
  auto m = torch::zeros({20}, torch::kDouble), v = torch::zeros({20}, torch::kDouble);
  at::Tensor rotation;
  const auto basis = [](const at::Tensor& f) { return std::get<1>(at::linalg_eigh(f)).flip({1}); };
  for (int64_t step = 0; step <= 4; ++step) {
    const auto g = torch::randn({5, 4}, torch::kDouble);
    auto expected = w.detach().clone();
    if (step > 0) {  // the first step only builds the factors and the basis
      m = b1 * m + (1 - b1) * g.reshape(-1);
      v = b2 * v + (1 - b2) * at::matmul(rotation, g.reshape(-1)).square();
      const double size = lr * std::sqrt(1 - std::pow(b2, step)) / (1 - std::pow(b1, step));
      const auto direction = at::matmul(rotation.t(), at::matmul(rotation, m) / (v.sqrt() + eps));
      expected = (expected - size * direction.reshape({5, 4})) * (1 - lr * wd);
    }
    left = bs * left + (1 - bs) * g.mm(g.t());
    right = bs * right + (1 - bs) * g.t().mm(g);
    rotation = at::kron(basis(left).t(), basis(right).t());
    w.mutable_grad() = g.clone();
    soap.step();
    EXPECT_LT(max_abs_diff(w.detach(), expected), 1e-10) << "step " << step;
  }
}

TEST(Soap, PowerIterationRefreshConvergesToTheEigenbasis) {
  torch::manual_seed(7);
  const auto r = torch::randn({6, 6}, torch::kDouble);
  const auto values = torch::tensor({10.0, 5.0, 3.0, 2.0, 1.0, 0.5}, torch::kDouble);
  auto [q0, unused] = at::linalg_qr(r);
  const auto m = at::matmul(q0 * values.unsqueeze(0), q0.t());
  auto q = std::get<0>(at::linalg_qr(torch::randn({6, 6}, torch::kDouble)));
  for (int k = 0; k < 200; ++k) q = linalg::refine_eigenbasis(m, q, "test").vectors;
  // Columns are the eigenvectors, largest first (up to sign): qᵀ m q = diag(values).
  EXPECT_LT(max_abs_diff(at::matmul(at::matmul(q.t(), m), q), at::diag(values)), 1e-8);
  // The order follows the Rayleigh quotients: a basis given in reverse comes back sorted.
  const auto reversed = q.flip({1});
  const auto refined = linalg::refine_eigenbasis(m, reversed, "test");
  EXPECT_TRUE(refined.order.equal(torch::arange(5, -1, -1, torch::kLong)));
}

TEST(Soap, VectorsAndOversizedSidesStayUnrotated) {
  torch::manual_seed(8);
  auto w = torch::randn({3, 7}, torch::kDouble).requires_grad_(),
       b = torch::randn({3}, torch::kDouble).requires_grad_();
  Soap soap({w, b}, SoapOptions().max_preconditioner_dim(5));
  w.mutable_grad() = torch::randn({3, 7}, torch::kDouble);
  b.mutable_grad() = torch::randn({3}, torch::kDouble);
  soap.step();
  const auto& s = soap.parameter_state(0, 0);
  EXPECT_EQ(s.count("left_basis"), 1u);
  EXPECT_EQ(s.count("right_basis"), 0u) << "7 columns > max_preconditioner_dim 5";
  EXPECT_EQ(soap.parameter_state(0, 1).count("left_basis"), 0u);
}

}  // namespace
}  // namespace kfac::test
