// The quadratic-model step rule: its 2x2 solve, the exact curvature products it relies on, its convergence on
// least squares, and the two damping adaptations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "util/serialize.h"

#include <sstream>
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

TEST(QuadraticModel, TwoByTwoSolutionIsTheBruteForceMinimum) {
  torch::manual_seed(70);
  for (int trial = 0; trial < 20; ++trial) {
    auto r = torch::randn({2, 2}, torch::kDouble);
    auto mt = r.mm(r.t()) + 0.1 * torch::eye(2, torch::kDouble);
    std::array<std::array<double, 2>, 2> m{
        {{mt[0][0].item<double>(), mt[0][1].item<double>()}, {mt[1][0].item<double>(), mt[1][1].item<double>()}}};
    std::array<double, 2> c{torch::randn({1}).item<double>(), torch::randn({1}).item<double>()};
    auto f = [&](double a, double b) {
      return 0.5 * (a * a * m[0][0] + 2 * a * b * m[0][1] + b * b * m[1][1]) + c[0] * a + c[1] * b;
    };
    const auto s = solve_quadratic_model(m, c, 2);
    EXPECT_NEAR(s.change, f(s.alpha, s.mu), 1e-12);
    // Brute force: a grid around the solution finds nothing lower.
    double best = 1e300;
    for (int i = -50; i <= 50; ++i)
      for (int j = -50; j <= 50; ++j) best = std::min(best, f(s.alpha + 0.02 * i, s.mu + 0.02 * j));
    EXPECT_LE(f(s.alpha, s.mu), best + 1e-12);
    const auto one = solve_quadratic_model(m, c, 1);
    EXPECT_EQ(one.mu, 0.0);
    EXPECT_NEAR(one.alpha, -c[0] / m[0][0], 1e-12);
  }
}

TEST(CurvatureProducts, GaussNewtonProductsEqualDenseFisherTimesVector) {
  torch::manual_seed(71);
  for (auto loss : {LossKind::SoftmaxCrossEntropy, LossKind::SigmoidCrossEntropy, LossKind::SquaredError}) {
    auto model = mlp({3, 4, 3});
    auto layers = find_layers(*model.ptr());
    auto x = torch::randn({5, 3}, torch::kDouble);
    auto fwd = [&](const at::Tensor& in) { return model->forward(in); };
    auto dense = exact_fisher(fwd, layers, x, loss, /*true_fisher=*/true).matrix;
    ParamVector params, u, w;
    std::vector<at::Tensor> u_vec, w_vec;
    for (const auto& l : layers) {
      auto um = torch::randn({l.kind->dim_g(), l.kind->dim_a()}, torch::kDouble);
      auto wm = torch::randn({l.kind->dim_g(), l.kind->dim_a()}, torch::kDouble);
      u_vec.push_back(vec(um)), w_vec.push_back(vec(wm));
      for (auto& p : l.kind->from_matrix(um)) u.push_back(p);
      for (auto& p : l.kind->from_matrix(wm)) w.push_back(p);
      for (auto& p : l.kind->parameters()) params.push_back(p);
    }
    auto uf = torch::cat(u_vec), wf = torch::cat(w_vec);
    auto out = model->forward(x);
    const auto ju = jacobian_vector_product(out, params, u), jw = jacobian_vector_product(out, params, w);
    EXPECT_NEAR(gauss_newton_form(out, ju, jw, loss), uf.dot(dense.mv(wf)).item<double>(), 1e-10) << to_string(loss);
    auto gu = gauss_newton_vector_product(out, params, u, loss);
    std::vector<at::Tensor> gu_vec;
    size_t k = 0;
    for (const auto& l : layers) {
      auto m = gu[k++].reshape({l.kind->dim_g(), -1});
      if (l.kind->has_bias()) m = torch::cat({m, gu[k++].unsqueeze(1)}, 1);
      gu_vec.push_back(vec(m));
    }
    EXPECT_LT(max_abs_diff(torch::cat(gu_vec), dense.mv(uf)), 1e-10) << to_string(loss);
  }
}

struct Problem {
  torch::nn::Sequential model;
  at::Tensor x, y;
  LossKind loss = LossKind::SquaredError;
  double train_step(QModelOptimizer& q, QModelStats* stats = nullptr,
                    const std::function<double()>& evaluate = nullptr) {
    auto& p = q.preconditioner();
    model->zero_grad();
    p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, loss, y);
    auto out = model->forward(x);
    auto l = kfac::loss(out, y, loss);
    l.backward({}, /*retain_graph=*/true);
    auto eval = evaluate ? evaluate : [&] { return kfac::loss(model->forward(x), y, loss).item<double>(); };
    auto s = q.step(out, loss, l.item<double>(), eval);
    if (stats) *stats = s;
    return l.item<double>();
  }
};

TEST(QModel, ConvergesOnLinearLeastSquaresInAHandfulOfSteps) {
  torch::manual_seed(72);
  Problem pb{mlp({5, 3}), torch::randn({40, 5}, torch::kDouble), torch::randn({40, 3}, torch::kDouble)};
  auto p = std::make_shared<Preconditioner>(*pb.model,
                                            PreconditionerOptions().fisher(FisherType::Exact).refresh_period(1));
  QModelOptimizer q(p, QModelOptions().initial_lambda(1e-6).l2(0).averaging_decay(0));
  // The least-squares optimum of the affine model.
  auto xa = torch::cat({pb.x, torch::ones({40, 1}, torch::kDouble)}, 1);
  auto sol = std::get<0>(torch::linalg_lstsq(xa, pb.y));
  const double best = 0.5 * (xa.mm(sol) - pb.y).pow(2).sum().item<double>() / 40;
  const double first = pb.train_step(q);
  double last = first;
  for (int k = 0; k < 4; ++k) last = pb.train_step(q);
  EXPECT_LT((last - best) / (first - best), 1e-6) << "first " << first << " last " << last << " optimum " << best;
}

TEST(QModel, LambdaRule) {
  EXPECT_DOUBLE_EQ(update_lambda(10, 0.1, 0.5), 20);
  EXPECT_DOUBLE_EQ(update_lambda(10, NAN, 0.5), 20);
  EXPECT_DOUBLE_EQ(update_lambda(10, 0.5, 0.5), 10);
  EXPECT_DOUBLE_EQ(update_lambda(10, 0.9, 0.5), 5);
}

TEST(QModel, LambdaRisesWhenTheModelOverpromisesAndFallsWhenItDelivers) {
  for (bool bad : {true, false}) {
    torch::manual_seed(73);
    Problem pb{mlp({4, 6, 3}), torch::randn({16, 4}, torch::kDouble), torch::randn({16, 3}, torch::kDouble)};
    auto p = std::make_shared<Preconditioner>(*pb.model);
    QModelOptimizer q(p, QModelOptions().initial_lambda(1.0).lambda_period(1).adapt_gamma(false).l2(0));
    QModelStats s;
    // Crafted objectives after the step: far higher (ρ < 0, λ rises) or far lower than predicted (ρ ≫ 3/4, λ falls).
    const double h0 = kfac::loss(pb.model->forward(pb.x), pb.y, pb.loss).item<double>();
    pb.train_step(q, &s, [&] { return bad ? h0 + 1e6 : h0 - 1e6; });
    EXPECT_LT(s.model_change, 0);
    if (bad) {
      EXPECT_LT(s.rho, 0.25);
      EXPECT_DOUBLE_EQ(q.lambda(), 1.0 / 0.95);
    } else {
      EXPECT_GT(s.rho, 0.75);
      EXPECT_DOUBLE_EQ(q.lambda(), 0.95);
    }
  }
}

TEST(QModel, GammaPicksTheBestCandidate) {
  torch::manual_seed(74);
  for (size_t target = 0; target < 3; ++target) {
    Problem pb{mlp({4, 6, 3}), torch::randn({16, 4}, torch::kDouble), torch::randn({16, 3}, torch::kDouble)};
    auto p = std::make_shared<Preconditioner>(*pb.model);
    QModelOptimizer q(p, QModelOptions().initial_lambda(1.0).gamma_period(1).lambda_period(1000).l2(0));
    const auto candidates = gamma_candidates(q.gamma(), std::pow(0.974679434480896, 1.0), 0, 0);
    ASSERT_EQ(candidates.size(), 3u);
    size_t call = 0;
    QModelStats s;
    pb.train_step(q, &s, [&] { return call++ == target ? 1.0 : 2.0; });  // candidate `target` is best
    EXPECT_TRUE(s.gamma_adapted);
    EXPECT_DOUBLE_EQ(q.gamma(), candidates[target]);
  }
}

TEST(QModel, TrainsEveryCurvatureMethod) {
  for (const auto& method : registered_methods()) {
    torch::manual_seed(75);
    Problem pb{mlp({4, 8, 3}), torch::randn({32, 4}, torch::kDouble), torch::randint(0, 3, {32}),
               LossKind::SoftmaxCrossEntropy};
    auto p = std::make_shared<Preconditioner>(*pb.model, PreconditionerOptions().method(method));
    QModelOptimizer q(p, QModelOptions().initial_lambda(1.0).gamma_period(5));
    const double first = pb.train_step(q);
    double last = first;
    for (int k = 0; k < 15; ++k) last = pb.train_step(q);
    EXPECT_LT(last, 0.8 * first) << method;
  }
}

}  // namespace
}  // namespace kfac::test

namespace kfac::test {
namespace {

TEST(QModel, CheckpointContinuesBitwise) {
  torch::manual_seed(76);
  auto x = torch::randn({16, 4}, torch::kDouble), y = torch::randn({16, 3}, torch::kDouble);
  auto opts = QModelOptions().initial_lambda(1.0).gamma_period(2).lambda_period(2);
  auto make_model = [] {
    torch::manual_seed(77);
    return mlp({4, 6, 3});
  };
  Problem a{make_model(), x, y}, b{make_model(), x, y};
  QModelOptimizer qa(std::make_shared<Preconditioner>(*a.model), opts);
  QModelOptimizer qb(std::make_shared<Preconditioner>(*b.model), opts);
  for (int k = 0; k < 6; ++k) a.train_step(qa);
  for (int k = 0; k < 3; ++k) b.train_step(qb);
  torch::serialize::OutputArchive out;
  qb.save(out);
  std::stringstream bytes;
  out.save_to(bytes);
  std::stringstream model_bytes;
  torch::save(b.model, model_bytes);
  Problem c{make_model(), x, y};
  torch::load(c.model, model_bytes);
  QModelOptimizer qc(std::make_shared<Preconditioner>(*c.model), opts);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  qc.load(in);
  for (int k = 0; k < 3; ++k) c.train_step(qc);
  for (size_t i = 0; i < a.model->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(a.model->parameters()[i], c.model->parameters()[i])) << i;
  EXPECT_EQ(qa.lambda(), qc.lambda());
  EXPECT_EQ(qa.gamma(), qc.gamma());
}

}  // namespace
}  // namespace kfac::test
