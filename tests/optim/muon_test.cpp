// Muon against its definitions: the Newton-Schulz iteration against the SVD's polar factor, one step against the
// published update written out, and the parameter split every Muon recipe makes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

// NS(G) = U f(S) Vᵀ: in G's singular bases Uᵀ NS(G) V is diagonal, its diagonal f(σ) in the quintic's band.
void expect_polar_within_band(const at::Tensor& g) {
  const auto o = newton_schulz_orthogonalize(g, 5).reshape({g.size(0), -1});
  auto [u, s, vh] = at::linalg_svd(g.reshape({g.size(0), -1}), /*full_matrices=*/false);
  const auto d = at::matmul(at::matmul(u.t(), o), vh.t());
  const auto diagonal = d.diagonal();
  EXPECT_LT((d - at::diag(diagonal)).abs().max().item<double>(), 1e-9) << "NS must keep the singular vectors";
  // The published coefficients map singular values of the normalized input into about [0.68, 1.13] once they are
  // not tiny (here the smallest is well above 1e-3 of the largest).
  EXPECT_GT(diagonal.min().item<double>(), 0.6);
  EXPECT_LT(diagonal.max().item<double>(), 1.2);
  // Near the polar factor in the operator norm, not at it: the band, not machine precision.
  const auto polar = at::matmul(u, vh);
  EXPECT_LT(at::linalg_matrix_norm(o - polar, 2).item<double>(), 0.4);
  EXPECT_GT((o - polar).abs().max().item<double>(), 1e-6) << "five steps do not converge; a test of U Vᵀ would";
}

TEST(Muon, NewtonSchulzIsThePolarFactorWithinThePublishedBand) {
  torch::manual_seed(1);
  expect_polar_within_band(torch::randn({24, 40}, torch::kDouble));      // wide
  expect_polar_within_band(torch::randn({40, 24}, torch::kDouble));      // tall: iterated on the transpose
  expect_polar_within_band(torch::randn({8, 3, 3, 3}, torch::kDouble));  // a conv weight, as [8, 27]
  // Scale invariance: the input is normalized first.
  const auto g = torch::randn({10, 12}, torch::kDouble);
  EXPECT_LT(max_abs_diff(newton_schulz_orthogonalize(g), newton_schulz_orthogonalize(1e4 * g)), 1e-10);
}

TEST(Muon, StepsAreThePublishedUpdate) {
  torch::manual_seed(2);
  for (const bool nesterov : {true, false}) {
    auto w = torch::randn({6, 4}, torch::kDouble).requires_grad_();
    const auto w0 = w.detach().clone();
    const auto opts = MuonOptions(0.05).momentum(0.9).nesterov(nesterov).weight_decay(0.1);
    Muon muon({w}, opts);
    auto buffer = torch::zeros_like(w0), expected = w0.clone();
    for (int t = 0; t < 3; ++t) {
      const auto g = torch::randn({6, 4}, torch::kDouble);
      w.mutable_grad() = g.clone();
      muon.step();
      buffer = 0.9 * buffer + 0.1 * g;
      const auto look = nesterov ? g + 0.9 * (buffer - g) : buffer;
      // Tall [6, 4]: √max(1, 6/4) times the orthogonalized look-ahead; decay first.
      expected = expected * (1 - 0.05 * 0.1) - 0.05 * std::sqrt(1.5) * newton_schulz_orthogonalize(look);
      EXPECT_LT(max_abs_diff(w.detach(), expected), 1e-12) << "nesterov " << nesterov << ", step " << t;
    }
  }
}

TEST(Muon, SplitGivesEmbeddingsHeadAndVectorsToAdamW) {
  torch::nn::Sequential net(torch::nn::Embedding(10, 8), torch::nn::Linear(8, 16), torch::nn::Functional(torch::relu),
                            torch::nn::LayerNorm(torch::nn::LayerNormOptions({16})), torch::nn::Linear(16, 10));
  const auto split = muon_split(*net);
  ASSERT_EQ(split.orthogonalized.size(), 1u);
  EXPECT_TRUE(split.orthogonalized[0].is_same(net[1]->as<torch::nn::Linear>()->weight));
  EXPECT_EQ(split.adamw.size(), 6u);  // embedding, head weight, 2 biases, 2 norm parameters
  EXPECT_NE(split.report.find("embeddings 0.weight"), std::string::npos) << split.report;
  EXPECT_NE(split.report.find("the output head 4.weight"), std::string::npos) << split.report;

  Muon muon(muon_groups(split, MuonOptions(0.02), 1e-3));
  ASSERT_EQ(muon.param_groups().size(), 2u);
  EXPECT_EQ(muon.param_groups()[1].options().get_lr(), 1e-3);
  const auto x = torch::randint(0, 10, {5});
  net->forward(x).sum().backward();
  muon.step();
  EXPECT_FALSE(muon.last_stats().skipped);
  EXPECT_EQ(muon.parameter_state(0, 0).count("momentum_buffer"), 1u);
  EXPECT_EQ(muon.parameter_state(1, 0).count("exp_avg"), 1u);  // AdamW's moments
}

TEST(Muon, RefusesAVectorToOrthogonalizeNamingIt) {
  auto w = torch::randn({4, 4}).requires_grad_(), b = torch::zeros({4}).requires_grad_();
  try {
    Muon muon({w, b});
    FAIL() << "a bias in an orthogonalized group must be refused";
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    EXPECT_NE(m.find("parameter 1 of group 0 [4]"), std::string::npos) << m;
    EXPECT_NE(m.find("orthogonalize = false"), std::string::npos) << m;
  }
  EXPECT_THROW(Muon({w}, MuonOptions().adjust_lr("rms")), c10::Error);
  EXPECT_THROW(Muon({w}, MuonOptions().ns_steps(0)), c10::Error);
}

}  // namespace
}  // namespace kfac::test
