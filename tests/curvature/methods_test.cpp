// The four curvature methods behind one interface: a contract every method meets, and each method's defining
// identities against the brute-force Fisher.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/kfac.h"
#include "kfac/fisher/dense_fisher.h"
#include "kfac/linalg/psd.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// One Linear regression layer with exact statistics: G = I, A full rank, so every method's approximation is
// well conditioned. Two steps on the same data: factors and basis at step 0, the spectrum from exact statistics
// at step 1 (ema_decay 0 replaces instead of averaging).
struct WellConditioned {
  torch::nn::Sequential model = mlp({3, 4});
  at::Tensor x = torch::randn({20, 3}, torch::kDouble);
  at::Tensor y = torch::randn({20, 4}, torch::kDouble);
  std::unique_ptr<Preconditioner> p;
  explicit WellConditioned(const std::string& method, PreconditionerOptions o = {}) {
    p = std::make_unique<Preconditioner>(*model,
                                         o.method(method).fisher(FisherType::Exact).ema_decay(0).refresh_period(100));
    stats_and_step(*p, model, x, y, LossKind::SquaredError);
    stats_and_step(*p, model, x, y, LossKind::SquaredError);
  }
};

class Contract : public ::testing::TestWithParam<std::string> {};

TEST_P(Contract, PreconditionInvertsTheDenseApproximationAtSmallDamping) {
  torch::manual_seed(40);
  WellConditioned w(GetParam(), PreconditionerOptions().damping(1e-14));  // factored forms err by O(√λ)
  const auto& c = w.p->curvature(0);
  const auto v = torch::randn({4, 4}, torch::kDouble);
  const auto fv = unvec(torch::matmul(c.to_dense(), vec(v)), 4, 4);
  EXPECT_LT(max_abs_diff(c.precondition(fv, 1e-14), v), 1e-5);
}

TEST_P(Contract, HugeDampingGivesGradientOverDamping) {
  torch::manual_seed(41);
  const double lambda = 1e9;
  WellConditioned w(GetParam(), PreconditionerOptions().damping(lambda));
  const auto v = torch::randn({4, 4}, torch::kDouble);
  EXPECT_LT(max_abs_diff(w.p->curvature(0).precondition(v, lambda) * lambda, v), 1e-3);
}

TEST_P(Contract, SaveLoadRoundTrip) {
  torch::manual_seed(42);
  WellConditioned w(GetParam());
  std::stringstream bytes;
  torch::save(*w.p, bytes);
  Preconditioner q(*w.model, PreconditionerOptions().method(GetParam()));
  torch::load(q, bytes);
  const auto v = torch::randn({4, 4}, torch::kDouble);
  EXPECT_TRUE(torch::equal(q.curvature(0).to_dense(), w.p->curvature(0).to_dense()));
  EXPECT_TRUE(torch::equal(q.curvature(0).precondition(v, 0.1), w.p->curvature(0).precondition(v, 0.1)));
  EXPECT_GT(q.memory_bytes(), 0);
}

TEST_P(Contract, ClearErrorBeforeFirstUpdate) {
  auto model = mlp({3, 4});
  Preconditioner p(*model, PreconditionerOptions().method(GetParam()));
  try {
    p.curvature(0).precondition(torch::ones({4, 4}, torch::kDouble), 0.1);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer '0' has no curvature statistics yet"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(AllMethods, Contract, ::testing::ValuesIn(every_method()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(Ekfac, EqualsKfacRightAfterRefreshWithReset) {
  torch::manual_seed(43);
  auto model = mlp({3, 5, 3});
  auto x = torch::randn({9, 3}, torch::kDouble);
  auto y = torch::randint(0, 3, {9});
  auto run = [&](const std::string& method) {
    Preconditioner p(*model, PreconditionerOptions().method(method).damping_mode(DampingMode::Eigen).refresh_period(2));
    for (int k = 0; k < 3; ++k) stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);  // refresh at 2
    std::vector<at::Tensor> grads;
    for (auto& param : model->parameters()) grads.push_back(param.grad().clone());
    return grads;
  };
  auto kfac = run("kfac"), ekfac = run("ekfac");
  for (size_t i = 0; i < kfac.size(); ++i) EXPECT_LT(max_abs_diff(kfac[i], ekfac[i]), 1e-10) << i;
}

TEST(Ekfac, SpectrumUpdatesAtItsOwnPeriod) {
  torch::manual_seed(46);
  auto model = mlp({3, 4, 3});
  auto x = torch::randn({8, 3}, torch::kDouble);
  auto y = torch::randint(0, 3, {8});
  Preconditioner p(
      *model,
      PreconditionerOptions().method("ekfac").with(EigenCorrectedOptions().spectrum_period(3)).refresh_period(100));
  const auto& e = dynamic_cast<const EigenCorrected<KfacCurvature>&>(p.curvature(0));
  std::vector<bool> changed;
  at::Tensor last;
  for (int k = 0; k < 7; ++k) {
    stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
    changed.push_back(!last.defined() || !torch::equal(last, e.spectrum()));
    last = e.spectrum().clone();
  }
  // Update k+1 (1-based) touches the spectrum when divisible by 3; step 0 sets it at the first refresh.
  EXPECT_EQ(changed, (std::vector<bool>{true, false, true, false, false, true, false}));
}

// With reset_spectrum a refresh replaces the spectrum, so a statistics step that a refresh follows skips its spectrum
// update (Curvature::set_refresh_follows). Seen where the refresh fails: the spectrum keeps its last value.
TEST(Ekfac, SpectrumUpdateThatASameStepRefreshResetsIsSkipped) {
  torch::manual_seed(47);
  auto model = mlp({3, 4, 3});
  auto x = torch::randn({8, 3}, torch::kDouble);
  auto y = torch::randint(0, 3, {8});
  Preconditioner p(*model, PreconditionerOptions().method("ekfac").refresh_period(2));
  const auto& e = dynamic_cast<const EigenCorrected<KfacCurvature>&>(p.curvature(0));
  stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);  // step 0: the first refresh sets the spectrum
  stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);  // step 1: statistics only, the spectrum moves
  const auto before = e.spectrum().clone();
  linalg::testing::inject_decomposition_failures(2);  // step 2 refreshes: layer 0's first factor fails, and its retry
  const auto s = stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
  linalg::testing::inject_decomposition_failures(0);
  EXPECT_EQ(s.refresh_failures, 1);
  EXPECT_TRUE(torch::equal(before, e.spectrum()));
  stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);  // step 3: statistics only, the spectrum moves
  EXPECT_FALSE(torch::equal(before, e.spectrum()));
}

// The exact true-Fisher blocks of a model and the approximations of the given methods, from exact statistics.
struct Approximations {
  DenseFisher exact;
  std::map<std::string, std::unique_ptr<Preconditioner>> methods;
};

Approximations approximations(torch::nn::Sequential model, const at::Tensor& x, const at::Tensor& y) {
  Approximations out;
  for (const auto& m : every_method()) {
    auto p = std::make_unique<Preconditioner>(
        *model, PreconditionerOptions().method(m).fisher(FisherType::Exact).ema_decay(0).refresh_period(100));
    stats_and_step(*p, model, x, y, LossKind::SoftmaxCrossEntropy);
    stats_and_step(*p, model, x, y, LossKind::SoftmaxCrossEntropy);
    out.methods[m] = std::move(p);
  }
  out.exact = exact_fisher([&](const at::Tensor& in) { return model->forward(in); }, out.methods["kfac"]->layers(), x,
                           LossKind::SoftmaxCrossEntropy, true);
  return out;
}

TEST(Ekfac, SpectrumEqualsDiagonalOfExactBlockInEigenbasis) {
  torch::manual_seed(44);
  auto model = mlp({3, 4, 3});
  auto x = torch::randn({6, 3}, torch::kDouble);
  auto a = approximations(model, x, torch::randint(0, 3, {6}));
  for (size_t i = 0; i < 2; ++i) {
    const auto& e = dynamic_cast<const EigenCorrected<KfacCurvature>&>(a.methods["ekfac"]->curvature(i));
    const auto u = torch::kron(e.basis_input(), e.basis_output());
    const auto expected = torch::diagonal(torch::matmul(torch::matmul(u.t(), a.exact.block(i)), u));
    EXPECT_LT(max_abs_diff(vec(e.spectrum()), expected), 1e-12) << "layer " << i;
  }
}

void expect_corrections_closer(torch::nn::Sequential model, const at::Tensor& x, const at::Tensor& y) {
  auto a = approximations(model, x, y);
  for (size_t i = 0; i < a.exact.offsets.size() - 1; ++i) {
    const auto exact = a.exact.block(i);
    auto dist = [&](const std::string& m) {
      return (a.methods[m]->curvature(i).to_dense() - exact).norm().item<double>();
    };
    EXPECT_LE(dist("ekfac"), dist("kfac") * (1 + 1e-10)) << "layer " << i;
    EXPECT_LE(dist("tekfac"), dist("tkfac") * (1 + 1e-10)) << "layer " << i;
    // TKFAC and TEKFAC keep the trace of the exact block.
    const double trace = exact.trace().item<double>();
    for (const char* m : {"tkfac", "tekfac"})
      EXPECT_NEAR(a.methods[m]->curvature(i).to_dense().trace().item<double>(), trace, 1e-10 * trace)
          << m << " layer " << i;
  }
}

TEST(Corrections, CloserToExactFisherThanTheirBaseOnMlps) {
  for (int seed = 0; seed < 3; ++seed) {
    torch::manual_seed(50 + seed);
    expect_corrections_closer(mlp({3, 5, 4, 3}), torch::randn({7, 3}, torch::kDouble), torch::randint(0, 3, {7}));
  }
}

TEST(Corrections, CloserToExactFisherThanTheirBaseOnCnns) {
  for (int seed = 0; seed < 3; ++seed) {
    torch::manual_seed(60 + seed);
    expect_corrections_closer(cnn(3), torch::randn({5, 2, 5, 5}, torch::kDouble), torch::randint(0, 3, {5}));
  }
}

TEST(Tkfac, TraceRelativeDampingScalesWithTheTrace) {
  torch::manual_seed(45);
  const double lambda = 1e9;
  WellConditioned relative("tkfac", PreconditionerOptions().damping(lambda).with(
                                        TraceDampingOptions().trace_damping(TraceDamping::TraceRelative)));
  const auto& t = dynamic_cast<const TkfacCurvature&>(relative.p->curvature(0));
  const auto v = torch::randn({4, 4}, torch::kDouble);
  // Huge damping: TraceRelative → V/(λδ) (Normal → V/λ, in the contract).
  EXPECT_LT(max_abs_diff(relative.p->curvature(0).precondition(v, lambda) * lambda * t.trace(), v), 1e-3);
  const auto spectrum = torch::rand({4, 4}, torch::kDouble);
  EXPECT_LT(max_abs_diff(t.damped_spectrum(spectrum, 2.0), spectrum + 2.0 * t.trace()), 1e-15);
}

TEST(PerExample, ProjectedSecondMomentEqualsAnExplicitLoopInBothProductOrders) {
  torch::manual_seed(81);
  // Many locations and narrow factors take the per-example-gradient-first order; few locations and wide factors
  // rotate the locations first. Both must equal the definition.
  for (auto [t, da, dg] : {std::array<int64_t, 3>{40, 6, 3}, std::array<int64_t, 3>{2, 30, 20}}) {
    LayerStatistics s{torch::randn({5, t, da}, torch::kDouble), torch::randn({2, 5, t, dg}, torch::kDouble)};
    const auto q_a = std::get<0>(torch::linalg::qr(torch::randn({da, da}, torch::kDouble)));
    const auto q_g = std::get<0>(torch::linalg::qr(torch::randn({dg, dg}, torch::kDouble)));
    auto expected = torch::zeros({dg, da}, torch::kDouble);
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t b = 0; b < 5; ++b) {
        const auto grad = s.g[r][b].t().mm(s.a[b]);  // Σ_t g_t ā_tᵀ
        expected += q_g.t().mm(grad).mm(q_a).pow(2);
      }
    EXPECT_LT(max_abs_diff(projected_second_moment(s, q_a, q_g, /*chunk_bytes=*/4096), expected / 5.0), 1e-10)
        << "T = " << t;
  }
}

TEST(PerExample, PerPositionMomentTreatsPositionsAsExamples) {
  torch::manual_seed(82);
  LayerStatistics s{torch::randn({5, 7, 4}, torch::kDouble), torch::randn({2, 5, 7, 3}, torch::kDouble)};
  const auto q_a = std::get<0>(torch::linalg::qr(torch::randn({4, 4}, torch::kDouble)));
  const auto q_g = std::get<0>(torch::linalg::qr(torch::randn({3, 3}, torch::kDouble)));
  // diag(Uᵀ F_pos U), F_pos = (1/B) Σ_{s,b,t} vec(g āᵀ) vec(g āᵀ)ᵀ: each position's gradient squared in the basis.
  auto expected = torch::zeros({3, 4}, torch::kDouble);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t b = 0; b < 5; ++b)
      for (int64_t t = 0; t < 7; ++t) expected += q_g.t().mm(torch::outer(s.g[r][b][t], s.a[b][t])).mm(q_a).pow(2);
  EXPECT_LT(max_abs_diff(projected_second_moment_per_position(s, q_a, q_g), expected / 5.0), 1e-10);
  // One sample per example (the sampled Fisher's default), which skips the sum over samples.
  auto first_sample = torch::zeros({3, 4}, torch::kDouble);
  for (int64_t b = 0; b < 5; ++b)
    for (int64_t t = 0; t < 7; ++t) first_sample += q_g.t().mm(torch::outer(s.g[0][b][t], s.a[b][t])).mm(q_a).pow(2);
  const LayerStatistics single{s.a, s.g.narrow(0, 0, 1)};
  EXPECT_LT(max_abs_diff(projected_second_moment_per_position(single, q_a, q_g), first_sample / 5.0), 1e-10);
  // One position: the per-example moment; undefined bases are the identity.
  LayerStatistics one{s.a.narrow(1, 0, 1), s.g.narrow(2, 0, 1)};
  EXPECT_LT(max_abs_diff(projected_second_moment_per_position(one, q_a, q_g), projected_second_moment(one, q_a, q_g)),
            1e-12);
  EXPECT_LT(max_abs_diff(projected_second_moment_per_position(one, {}, {}), projected_second_moment(one, {}, {})),
            1e-12);
}

TEST(Ekfac, PerPositionSpectrumOptionSelectsThePerPositionMoment) {
  // Exact statistics replacing the spectrum (ema_decay 0), per example and per position, from the same weights and
  // data: equal on an MLP (one position), different on a conv map (the cross-position terms of each example).
  auto spectrum = [](bool conv, bool per_position) {
    torch::manual_seed(83);
    auto model = conv ? cnn(3) : mlp({3, 4, 3});
    const auto x = conv ? torch::randn({4, 2, 5, 5}, torch::kDouble) : torch::randn({6, 3}, torch::kDouble);
    const auto y = torch::randint(0, 3, {x.size(0)});
    Preconditioner p(*model, PreconditionerOptions()
                                 .method("ekfac")
                                 .fisher(FisherType::Exact)
                                 .ema_decay(0)
                                 .refresh_period(100)
                                 .with(EigenCorrectedOptions().per_position_spectrum(per_position)));
    for (int k = 0; k < 2; ++k) stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
    return dynamic_cast<const EigenCorrected<KfacCurvature>&>(p.curvature(0)).spectrum().clone();
  };
  EXPECT_LT(max_abs_diff(spectrum(false, false), spectrum(false, true)), 1e-12);
  EXPECT_GT(max_abs_diff(spectrum(true, false), spectrum(true, true)), 1e-6);
}

}  // namespace
}  // namespace kfac::test
