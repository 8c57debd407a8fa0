// Two-level K-FAC and block-tridiagonal K-FAC against dense oracles: the exact Fisher of tiny networks (brute force,
// float64), dense cross-layer Kronecker products, and the identities the corrections must satisfy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/fisher/dense_fisher.h"
#include "global/block_tridiagonal.h"
#include "global/two_level.h"
#include "kfac/kfac.h"
#include "kfac/linalg/psd.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// A tiny network, a batch, and a preconditioner that has taken one statistics step with the exact Fisher.
struct Trained {
  torch::nn::Sequential model;
  at::Tensor x, y;
  LossKind loss = LossKind::SoftmaxCrossEntropy;
  std::unique_ptr<Preconditioner> p;
  DenseFisher fisher;  // brute-force true Fisher of the same batch

  Trained(bool conv, PreconditionerOptions o, int64_t batch = 6) {
    model = conv ? cnn(3) : mlp({3, 4, 3, 2});
    x = conv ? torch::randn({batch, 2, 5, 5}, torch::kDouble) : torch::randn({batch, 3}, torch::kDouble);
    loss = conv ? LossKind::SoftmaxCrossEntropy : LossKind::SigmoidCrossEntropy;
    y = conv ? torch::randint(3, {batch}, torch::kLong) : torch::randint(2, {batch, 2}).to(torch::kDouble);
    p = std::make_unique<Preconditioner>(*model, o.fisher(FisherType::Exact));
    stats_and_step(*p, model, x, y, loss);
    fisher = exact_fisher([&](const at::Tensor& in) { return model->forward(in); }, p->layers(), x, loss, true);
  }
  const TwoLevelCorrection& stage() const { return dynamic_cast<const TwoLevelCorrection&>(*p->global_stage()); }
  std::vector<at::Tensor> random_matrices() const {
    std::vector<at::Tensor> v;
    for (const auto& l : p->layers()) v.push_back(torch::randn({l.kind->dim_g(), l.kind->dim_a()}, torch::kDouble));
    return v;
  }
  at::Tensor flat(const std::vector<at::Tensor>& m) const {
    std::vector<at::Tensor> parts;
    for (const auto& t : m) parts.push_back(vec(t));
    return torch::cat(parts);
  }
  std::vector<at::Tensor> unflat(const at::Tensor& v) const {
    std::vector<at::Tensor> out;
    for (size_t i = 0; i < p->layers().size(); ++i) {
      const auto& k = *p->layers()[i].kind;
      out.push_back(unvec(v.slice(0, fisher.offsets[i], fisher.offsets[i + 1]), k.dim_g(), k.dim_a()));
    }
    return out;
  }
  // R₀ as a dense [K, P] matrix.
  at::Tensor dense_restriction(const CoarseBasis& basis) const {
    auto r = torch::zeros({static_cast<int64_t>(basis.size()), fisher.matrix.size(0)}, torch::kDouble);
    for (size_t k = 0; k < basis.size(); ++k) {
      const auto i = basis[k].layer;
      r[k].slice(0, fisher.offsets[i], fisher.offsets[i + 1]).copy_(vec(basis[k].matrix));
    }
    return r;
  }
};

PreconditionerOptions with_space(CoarseSpace space, CoarseCombine combine = CoarseCombine::Additive,
                                 bool krylov = false) {
  return PreconditionerOptions()
      .damping(1e-2)
      .global_stage("two-level")
      .with(two_level(space).combine(combine).krylov(krylov));
}
/// A global stage by its CLI name (a coarse space or block-tridiagonal).
PreconditionerOptions with_stage(const std::string& name, CoarseCombine combine) {
  auto options = PreconditionerOptions().damping(1e-2).with(TwoLevelOptions().combine(combine));
  apply_global_stage_spelling(name, options.global_options().global_stage(), options.own_blocks());
  return options;
}

struct SpaceCase {
  CoarseSpace space;
  bool krylov;
};
void PrintTo(const SpaceCase& c, std::ostream* os) { *os << to_string(c.space) << (c.krylov ? "+krylov" : ""); }
std::string case_name(const ::testing::TestParamInfo<SpaceCase>& info) {
  auto n = to_string(info.param.space) + (info.param.krylov ? "Krylov" : "");
  n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
  return n;
}
const std::vector<SpaceCase> kSpaces{{CoarseSpace::Nicolaides, false}, {CoarseSpace::Nicolaides, true},
                                     {CoarseSpace::Spectral, false},   {CoarseSpace::Residual, false},
                                     {CoarseSpace::Residual, true},    {CoarseSpace::Tselepidis, false}};

TEST(FisherProducts, EqualDenseFisherTimesVector) {
  for (bool conv : {false, true}) {
    torch::manual_seed(conv ? 3 : 4);
    Trained s(conv, PreconditionerOptions().retain_statistics(true));
    const auto v = s.random_matrices();
    const auto fv = s.p->captured_fisher().multiply(v);
    EXPECT_LT(max_abs_diff(s.flat(fv), s.fisher.matrix.mv(s.flat(v))), 1e-10) << (conv ? "cnn" : "mlp");
  }
}

TEST(FisherProducts, NotRetainedByDefault) {
  torch::manual_seed(5);
  Trained s(false, PreconditionerOptions());
  EXPECT_TRUE(s.p->captured_fisher().empty());
}

class CoarseSpaces : public ::testing::TestWithParam<SpaceCase> {};

TEST_P(CoarseSpaces, BasisIsOrthonormalAndExactCoarseMatrixIsR0FR0t) {
  for (bool conv : {false, true}) {
    torch::manual_seed(conv ? 11 : 12);
    const auto c = GetParam();
    Trained s(conv, with_space(c.space, CoarseCombine::Additive, c.krylov)
                        .global_stage("two-level")
                        .with(two_level(c.space).krylov(c.krylov).coarse_matrix(CoarseMatrix::Exact)));
    const auto& basis = s.stage().basis();
    const size_t layers = s.p->layers().size();
    EXPECT_EQ(basis.size(), c.krylov ? 2 * layers : layers);
    const auto r0 = s.dense_restriction(basis);
    EXPECT_LT(max_abs_diff(r0.mm(r0.t()), torch::eye(r0.size(0), torch::kDouble)), 1e-10);
    const auto expected = r0.mm(s.fisher.matrix).mm(r0.t());
    EXPECT_LT(max_abs_diff(s.stage().coarse_matrix(), expected), 1e-10 * (1 + expected.abs().max().item<double>()))
        << (conv ? "cnn" : "mlp");
  }
}

// Dense cross-layer Kronecker approximation |T_m| Ā_ij ⊗ G_ij, built by explicit loops from the captured statistics
// with nearest-neighbour downsampling of the larger grid.
at::Tensor dense_cross_kronecker(const Trained& s) {
  const auto& f = s.p->captured_fisher();
  const auto n = s.fisher.matrix.size(0);
  auto out = torch::zeros({n, n}, torch::kDouble);
  auto pick = [](const LayerStatistics& st, int64_t h, int64_t w) {  // [.., h·w, d] by explicit indices
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) idx.push_back((i * st.grid[0] / h) * st.grid[1] + (j * st.grid[1] / w));
    const auto index = torch::tensor(idx, torch::kLong);
    return std::make_pair(st.a.index_select(1, index), st.g.index_select(2, index));
  };
  for (size_t i = 0; i < f.layers(); ++i)
    for (size_t j = 0; j < f.layers(); ++j) {
      const auto& si = f.statistics(i);
      const auto& sj = f.statistics(j);
      const int64_t h = std::min(si.grid[0], sj.grid[0]), w = std::min(si.grid[1], sj.grid[1]);
      const auto [ai, gi] = pick(si, h, w);
      const auto [aj, gj] = pick(sj, h, w);
      auto a = torch::zeros({ai.size(2), aj.size(2)}, torch::kDouble);
      auto g = torch::zeros({gi.size(3), gj.size(3)}, torch::kDouble);
      for (int64_t b = 0; b < ai.size(0); ++b)
        for (int64_t t = 0; t < h * w; ++t) {
          a += torch::outer(ai[b][t], aj[b][t]);
          for (int64_t r = 0; r < gi.size(0); ++r) g += torch::outer(gi[r][b][t], gj[r][b][t]);
        }
      const double rows = static_cast<double>(ai.size(0) * h * w);
      out.slice(0, s.fisher.offsets[i], s.fisher.offsets[i + 1])
          .slice(1, s.fisher.offsets[j], s.fisher.offsets[j + 1])
          .copy_(torch::kron(a / rows, g / rows) * static_cast<double>(h * w));
    }
  return out;
}

TEST_P(CoarseSpaces, KroneckerCoarseMatrixEqualsDenseCrossLayerKroneckerProducts) {
  for (bool conv : {false, true}) {
    torch::manual_seed(conv ? 13 : 14);
    const auto c = GetParam();
    Trained s(conv, with_space(c.space)
                        .global_stage("two-level")
                        .with(two_level(c.space).krylov(c.krylov).coarse_matrix(CoarseMatrix::Kronecker)));
    const auto dense = dense_cross_kronecker(s);
    for (size_t i = 0; i < s.p->layers().size(); ++i)  // the diagonal blocks are K-FAC's own
      EXPECT_LT(max_abs_diff(dense.slice(0, s.fisher.offsets[i], s.fisher.offsets[i + 1])
                                 .slice(1, s.fisher.offsets[i], s.fisher.offsets[i + 1]),
                             s.p->curvature(i).to_dense()),
                1e-12);
    const auto r0 = s.dense_restriction(s.stage().basis());
    const auto expected = r0.mm(dense).mm(r0.t());
    EXPECT_LT(max_abs_diff(s.stage().coarse_matrix(), expected), 1e-10 * (1 + expected.abs().max().item<double>()))
        << (conv ? "cnn" : "mlp");
  }
}

TEST_P(CoarseSpaces, ResidualCombineWithExactCoarseSolveIsGalerkin) {
  for (auto combine : {CoarseCombine::Residual, CoarseCombine::Additive}) {
    torch::manual_seed(15);
    const auto c = GetParam();
    Trained s(false,
              with_space(c.space)
                  .global_stage("two-level")
                  .with(two_level(c.space).krylov(c.krylov).combine(combine).coarse_matrix(CoarseMatrix::Exact)));
    const auto g = s.random_matrices();
    const auto d = s.flat(s.p->precondition(g));
    const auto a = s.fisher.matrix + s.p->damping() * torch::eye(d.size(0), torch::kDouble);
    const auto coarse_residual = s.dense_restriction(s.stage().basis()).mv(s.flat(g) - a.mv(d));
    if (combine == CoarseCombine::Residual)
      EXPECT_LT(coarse_residual.abs().max().item<double>(), 1e-10);
    else  // negative control: the additive form is not a Galerkin projection
      EXPECT_GT(coarse_residual.abs().max().item<double>(), 1e-6);
  }
}

TEST_P(CoarseSpaces, ZeroWeightGivesTheOneLevelDirectionForEveryCombination) {
  for (auto combine :
       {CoarseCombine::Additive, CoarseCombine::Residual, CoarseCombine::Deflated, CoarseCombine::Balanced}) {
    torch::manual_seed(16);
    const auto c = GetParam();
    Trained s(true, with_space(c.space)
                        .global_stage("two-level")
                        .with(two_level(c.space).krylov(c.krylov).combine(combine).coarse_weight(0)));
    const auto g = s.random_matrices();
    EXPECT_EQ(max_abs_diff(s.flat(s.p->precondition(g)), s.flat(s.p->precondition_layers(g))), 0.0);
    Trained on(
        true, with_space(c.space).global_stage("two-level").with(two_level(c.space).krylov(c.krylov).combine(combine)));
    EXPECT_GT(max_abs_diff(on.flat(on.p->precondition(g)), on.flat(on.p->precondition_layers(g))), 1e-8)
        << "the correction must change the direction when ω = 1";
  }
}

INSTANTIATE_TEST_SUITE_P(AllSpaces, CoarseSpaces, ::testing::ValuesIn(kSpaces), case_name);

TEST(TwoLevel, CombinationsMatchTheirDenseFormulas) {
  torch::manual_seed(17);
  for (auto combine :
       {CoarseCombine::Additive, CoarseCombine::Residual, CoarseCombine::Deflated, CoarseCombine::Balanced}) {
    Trained s(false, with_space(CoarseSpace::Nicolaides, combine));
    const auto g = s.random_matrices();
    const int64_t n = s.fisher.matrix.size(0);
    auto m = torch::zeros({n, n}, torch::kDouble);  // dense one-level M⁻¹, column by column
    for (int64_t k = 0; k < n; ++k)
      m.select(1, k).copy_(s.flat(s.p->precondition_layers(s.unflat(torch::eye(n, torch::kDouble)[k]))));
    const auto r0 = s.dense_restriction(s.stage().basis());
    const auto a = s.fisher.matrix + s.p->damping() * torch::eye(n, torch::kDouble);
    const auto q = r0.t().mm(torch::inverse(r0.mm(a).mm(r0.t()))).mm(r0);
    const auto i = torch::eye(n, torch::kDouble);
    at::Tensor op;
    switch (combine) {
      case CoarseCombine::Additive:
        op = m + q;
        break;
      case CoarseCombine::Residual:
        op = m + q.mm(i - a.mm(m));
        break;
      case CoarseCombine::Deflated:
        op = q + m.mm(i - a.mm(q));
        break;
      case CoarseCombine::Balanced:
        op = q + (i - q.mm(a)).mm(m).mm(i - a.mm(q));
        break;
    }
    EXPECT_LT(max_abs_diff(s.flat(s.p->precondition(g)), op.mv(s.flat(g))), 1e-9) << to_string(combine);
  }
}

TEST(TwoLevel, EmptyCoarseSpaceGivesTheOneLevelDirection) {
  // One Linear layer, one example, exact Fisher, exact Tikhonov damping: the one-level solve is exact, the residual
  // vanishes, and so does the residual coarse space.
  torch::manual_seed(18);
  torch::nn::Sequential model = mlp({3, 2});
  const auto x = torch::randn({1, 3}, torch::kDouble), y = torch::randn({1, 2}, torch::kDouble);
  Preconditioner p(*model, PreconditionerOptions()
                               .damping_mode(DampingMode::Eigen)
                               .fisher(FisherType::Exact)
                               .global_stage("two-level")
                               .with(two_level(CoarseSpace::Residual)));
  model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SquaredError, y);
  kfac::loss(model->forward(x), y, LossKind::SquaredError).backward();
  const auto g = p.gradient_matrices();
  EXPECT_TRUE(p.step().messages.empty());
  const auto& stage = dynamic_cast<const TwoLevelCorrection&>(*p.global_stage());
  EXPECT_TRUE(stage.basis().empty());
  EXPECT_EQ(max_abs_diff(p.precondition(g)[0], p.precondition_layers(g)[0]), 0.0);
}

TEST(TwoLevel, EveryOneLevelMethodWorksAndSpectralVectorIsTheLowestMode) {
  for (const auto& method : every_method()) {
    torch::manual_seed(19);
    Trained s(false, with_space(CoarseSpace::Spectral).method(method));
    for (size_t i = 0; i < s.p->layers().size(); ++i) {
      const auto dense = s.p->curvature(i).to_dense();
      const auto r = vec(s.p->curvature(i).lowest_mode());
      const double lowest = torch::linalg::eigvalsh(dense, "L").min().item<double>();
      EXPECT_LT(max_abs_diff(dense.mv(r), lowest * r), 1e-9) << method << " layer " << i;
    }
    for (int step = 0; step < 3; ++step) {
      const auto st = stats_and_step(*s.p, s.model, s.x, s.y, s.loss);
      EXPECT_TRUE(st.messages.empty()) << method;
      for (const auto& d : s.p->gradient_matrices()) EXPECT_TRUE(torch::isfinite(d).all().item<bool>());
    }
  }
}

TEST(TwoLevel, FailedCoarseInversionKeepsThePreviousOrFallsBackToOneLevelAndReports) {
  for (auto space : {CoarseSpace::Nicolaides, CoarseSpace::Residual}) {
    torch::manual_seed(23);
    // refresh_period 100: the second step does not refresh the one-level decompositions, so the injected failures
    // reach the coarse inversion (statistics arrived, so the coarse matrix is recomputed).
    Trained s(false, with_space(space).refresh_period(100));
    linalg::testing::inject_decomposition_failures(2);                      // the try and its float64 retry
    const auto st = stats_and_step(*s.p, s.model, s.x * 0.5, s.y, s.loss);  // another batch: a new residual
    linalg::testing::inject_decomposition_failures(0);
    ASSERT_EQ(st.messages.size(), 1u) << space;
    const auto g = s.random_matrices();
    if (space == CoarseSpace::Nicolaides) {  // same basis: the previous inverse is kept
      EXPECT_THAT(st.messages[0], ::testing::HasSubstr("keeping the previous coarse inverse"));
      EXPECT_TRUE(s.stage().active());
    } else {  // the residual basis changed: this step is one-level
      EXPECT_THAT(st.messages[0], ::testing::HasSubstr("(one-level step)"));
      EXPECT_FALSE(s.stage().active());
      EXPECT_EQ(max_abs_diff(s.flat(s.p->precondition(g)), s.flat(s.p->precondition_layers(g))), 0.0);
    }
  }
}

TEST(TwoLevel, CheckpointResumesBitwise) {
  for (const std::string space : {"residual", "tselepidis", "block-tridiagonal"}) {
    torch::manual_seed(20);
    auto o = with_stage(space, CoarseCombine::Balanced).stats_period(2);
    Trained s(false, o);
    stats_and_step(*s.p, s.model, s.x, s.y, s.loss);
    std::stringstream bytes;
    torch::save(*s.p, bytes);
    Preconditioner q(*s.model, o.fisher(FisherType::Exact));
    torch::load(q, bytes);
    const auto g = s.random_matrices();
    EXPECT_EQ(max_abs_diff(s.flat(s.p->precondition(g)), s.flat(q.precondition(g))), 0.0) << space;
  }
}

TEST(TwoLevel, OptionErrorsNameTheProblem) {
  torch::nn::Sequential model = mlp({3, 2});
  auto make = [&](PreconditionerOptions o) { Preconditioner p(*model, o); };
  EXPECT_THROW(
      {
        try {
          make(PreconditionerOptions().global_stage("two-level").with(two_level(CoarseSpace::Spectral).krylov(true)));
        } catch (const c10::Error& e) {
          EXPECT_THAT(e.what(),
                      ::testing::HasSubstr("krylov (Krylov enrichment) needs coarse_space nicolaides or residual"));
          throw;
        }
      },
      c10::Error);
  EXPECT_THROW(make(PreconditionerOptions().method("ekfac").global_stage("block-tridiagonal")), c10::Error);
  EXPECT_THROW(make(PreconditionerOptions().global_stage("two-level").with(TwoLevelOptions().coarse_weight(-1))),
               c10::Error);
  EXPECT_THROW(parse_enum<CoarseSpace>("multigrid"), c10::Error);
}

// Block-tridiagonal K-FAC: the dense F̂ it defines (the inverse of its preconditioning map) has K-FAC's damped blocks on
// the diagonal and the cross-layer Kronecker factors on the first off-diagonals, and its inverse is block-tridiagonal.
TEST(BlockTridiagonal, DefinesTheBlockTridiagonalApproximation) {
  torch::manual_seed(21);
  Trained s(false, PreconditionerOptions().damping(1e-2).global_stage("block-tridiagonal"));
  const int64_t n = s.fisher.matrix.size(0);
  auto m = torch::zeros({n, n}, torch::kDouble);
  for (int64_t k = 0; k < n; ++k)
    m.select(1, k).copy_(s.flat(s.p->precondition(s.unflat(torch::eye(n, torch::kDouble)[k]))));
  const auto f_hat = torch::inverse(m);
  const auto& stage = dynamic_cast<const BlockTridiagonal&>(*s.p->global_stage());
  const auto& cf = s.p->captured_fisher();
  const auto& o = s.fisher.offsets;
  auto block = [&](const at::Tensor& t, size_t i, size_t j) {
    return t.slice(0, o[i], o[i + 1]).slice(1, o[j], o[j + 1]);
  };
  const double gamma = std::sqrt(s.p->damping());
  const size_t layers = s.p->layers().size();
  for (size_t i = 0; i < layers; ++i) {
    const auto& c = dynamic_cast<const KfacCurvature&>(s.p->curvature(i));
    const auto damped = torch::kron(c.factor_a() + c.pi() * gamma * torch::eye(c.shape().dim_a, torch::kDouble),
                                    c.factor_g() + gamma / c.pi() * torch::eye(c.shape().dim_g, torch::kDouble));
    EXPECT_LT(max_abs_diff(block(f_hat, i, i), damped), 1e-8) << "diagonal block " << i;
    if (i + 1 == layers) continue;
    ASSERT_TRUE(stage.coupled(i));
    const auto& a = cf.statistics(i).a.squeeze(1);
    const auto& b = cf.statistics(i + 1).a.squeeze(1);
    const auto ga = cf.statistics(i).g.reshape({-1, c.shape().dim_g});
    const auto gb = cf.statistics(i + 1).g.reshape({-1, cf.statistics(i + 1).g.size(-1)});
    const double examples = static_cast<double>(a.size(0));
    EXPECT_LT(max_abs_diff(stage.cross_a(i), a.t().mm(b) / examples), 1e-12);
    EXPECT_LT(max_abs_diff(stage.cross_g(i), ga.t().mm(gb) / examples), 1e-12);
    const auto off = torch::kron(stage.cross_a(i), stage.cross_g(i));
    EXPECT_LT(max_abs_diff(block(f_hat, i, i + 1), off), 1e-8) << "off-diagonal block " << i;
    EXPECT_LT(max_abs_diff(block(f_hat, i + 1, i), off.t()), 1e-8);
  }
  for (size_t i = 0; i < layers; ++i)
    for (size_t j = i + 2; j < layers; ++j) {
      EXPECT_LT(block(m, i, j).abs().max().item<double>(), 1e-12) << "inverse block " << i << "," << j;
      EXPECT_GT(block(f_hat, i, j).abs().max().item<double>(), 1e-8) << "F̂ fills in beyond the tridiagonal";
    }
}

TEST(BlockTridiagonal, ConvLayersFallBackToTheirOwnBlocks) {
  torch::manual_seed(22);
  Trained s(true, PreconditionerOptions().damping(1e-2).global_stage("block-tridiagonal"));
  const auto& stage = dynamic_cast<const BlockTridiagonal&>(*s.p->global_stage());
  EXPECT_FALSE(stage.coupled(0));  // conv → conv
  EXPECT_FALSE(stage.coupled(1));  // conv → linear
  const auto g = s.random_matrices();
  EXPECT_EQ(max_abs_diff(s.flat(s.p->precondition(g)), s.flat(s.p->precondition_layers(g))), 0.0);
}

}  // namespace
}  // namespace kfac::test
