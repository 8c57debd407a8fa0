// The preconditioner and the ready optimizer as a user meets them: options, capture paths, checkpoints,
// schedulers, and whether K-FAC actually optimizes faster than SGD.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

using ::testing::HasSubstr;

TEST(Options, InvalidValuesFailNamingOptionAndValue) {
  auto model = mlp({3, 2});
  auto build = [&](PreconditionerOptions o) { return [&model, o] { Preconditioner p(*model, o); }; };
  EXPECT_THAT(error_of(build(PreconditionerOptions().damping(-1))),
              HasSubstr("damping must be finite and > 0, got -1"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().stats_period(0))), HasSubstr("stats_period must be >= 1, got 0"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().refresh_period(-3))),
              HasSubstr("refresh_period must be >= 1, got -3"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().ema_decay(1.0))), HasSubstr("ema_decay must be in [0, 1), got 1"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().fisher_samples(0))),
              HasSubstr("fisher_samples must be >= 1, got 0"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().stats_fraction(1.5))),
              HasSubstr("stats_fraction must be in (0, 1], got 1.5"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().method("nope"))),
              HasSubstr("unknown method 'nope'; valid methods: kfac, ekfac, tkfac, tekfac"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().factor_dtype(torch::kHalf))),
              HasSubstr("factor_dtype must be float32 or float64, got Half"));
  EXPECT_THAT(
      error_of(build(PreconditionerOptions().damping_mode(DampingMode::Eigen).inverse_method(InverseMethod::Cholesky))),
      HasSubstr("inverse_method 'cholesky' cannot be combined with damping_mode 'eigen'"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().max_consecutive_failures(0))),
              HasSubstr("max_consecutive_failures must be >= 1, got 0"));
  EXPECT_THAT(error_of(build(PreconditionerOptions().with(EigenCorrectedOptions().spectrum_period(0)))),
              HasSubstr("spectrum_period must be >= 1, got 0"));
  EXPECT_THAT(error_of([&] {
                KfacOptimizer(model->parameters(), std::make_shared<Preconditioner>(*model),
                              KfacOptimizerOptions(0.1).momentum(1.5));
              }),
              HasSubstr("momentum must be in [0, 1), got 1.5"));
  EXPECT_THAT(error_of([&] {
                KfacOptimizer(model->parameters(), std::make_shared<Preconditioner>(*model),
                              KfacOptimizerOptions(-0.1));
              }),
              HasSubstr("lr must be finite and > 0, got -0.1"));
  EXPECT_THAT(error_of([] {
                torch::nn::Sequential empty;
                Preconditioner p(*empty);
              }),
              HasSubstr("no K-FAC layers"));
}

TEST(Capture, LayerThatDidNotRunIsNamed) {
  auto model = mlp({3, 4, 2});
  Preconditioner p(*model);
  auto x = torch::randn({5, 3}, torch::kDouble);
  auto first = model->ptr<kfac::nn::LinearImpl>(0);
  // A forward that skips the second layer.
  EXPECT_THAT(error_of([&] {
                p.update_statistics([&](const at::Tensor& in) { return first->forward(in); }, x,
                                    LossKind::SquaredError);
              }),
              HasSubstr("layer(s) '2' did not run in the statistics forward"));
  // No statistics pass at all on a statistics step.
  model->zero_grad();
  kfac::loss(model->forward(x), torch::zeros({5, 2}, torch::kDouble), LossKind::SquaredError).backward();
  EXPECT_THAT(error_of([&] { p.step(); }), HasSubstr("captured nothing; call update_statistics"));
}

TEST(Capture, NothingIsRetainedOffStatisticsSteps) {
  auto model = mlp({3, 4, 2});
  Preconditioner p(*model, PreconditionerOptions().stats_period(2));
  auto x = torch::randn({5, 3}, torch::kDouble);
  auto y = torch::randn({5, 2}, torch::kDouble);
  auto s0 = stats_and_step(p, model, x, y, LossKind::SquaredError);
  EXPECT_TRUE(s0.statistics_updated);
  EXPECT_FALSE(p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x,
                                   LossKind::SquaredError));
  model->forward(x);
  for (const auto& l : p.layers()) {
    EXPECT_EQ(l.slot->taps(), 0);
    EXPECT_TRUE(l.slot->recorded().empty());
  }
  EXPECT_FALSE(stats_and_step(p, model, x, y, LossKind::SquaredError).statistics_updated);
}

TEST(Capture, HookedTrainingBackwardEqualsEmpiricalStatisticsPass) {
  // Empirical Fisher from the user's own (mean-reduced) backward, rescaled by B, equals the explicit pass.
  torch::manual_seed(12);
  auto model = mlp({3, 4, 3});
  auto x = torch::randn({6, 3}, torch::kDouble);
  auto y = torch::randint(0, 3, {6});
  Preconditioner explicit_pass(*model, PreconditionerOptions().fisher(FisherType::Empirical));
  stats_and_step(explicit_pass, model, x, y, LossKind::SoftmaxCrossEntropy);
  auto expected = explicit_pass.curvature(1).to_dense();

  auto model2 = mlp({3, 4, 3});
  torch::NoGradGuard ng;
  for (size_t i = 0; i < model->parameters().size(); ++i) model2->parameters()[i].copy_(model->parameters()[i]);
  Preconditioner hooked(*model2, PreconditionerOptions().fisher(FisherType::Empirical));
  {
    torch::AutoGradMode on(true);
    ASSERT_TRUE(hooked.capture_backward(/*grad_scale=*/6));
    kfac::loss(model2->forward(x), y, LossKind::SoftmaxCrossEntropy).backward();
    hooked.step();
  }
  EXPECT_LT(max_abs_diff(hooked.curvature(1).to_dense(), expected), 1e-12);
}

TEST(Capture, ExplicitTapInHandWrittenForward) {
  torch::manual_seed(13);
  torch::nn::Linear fc1(3, 4), fc2(4, 2);
  fc1->to(torch::kDouble), fc2->to(torch::kDouble);
  std::vector<Layer> layers{linear_layer("fc1", *fc1), linear_layer("fc2", *fc2)};
  auto forward = [&](const at::Tensor& x) {
    auto h = fc1(x);
    layers[0].slot->tap(x, h);
    auto h2 = torch::tanh(h);
    auto out = fc2(h2);
    layers[1].slot->tap(h2, out);
    return out;
  };
  Preconditioner p(layers, PreconditionerOptions().fisher(FisherType::Exact));
  auto x = torch::randn({1, 3}, torch::kDouble);
  ASSERT_TRUE(p.update_statistics(forward, x, LossKind::SquaredError));
  fc1->zero_grad(), fc2->zero_grad();
  forward(x).sum().backward();
  auto s = p.step();
  EXPECT_TRUE(s.statistics_updated && s.refreshed);
  // Single example: A of fc2 is exactly h2 h2ᵀ (with the homogeneous coordinate).
  auto h2 = torch::cat({torch::tanh(fc1(x)).squeeze(0), torch::ones({1}, torch::kDouble)}).detach();
  EXPECT_LT(max_abs_diff(dynamic_cast<const KfacCurvature&>(p.curvature(1)).factor_a(), torch::outer(h2, h2)), 1e-12);
}

// Trains `model` for `steps` with the K-FAC optimizer on a fixed regression problem; returns the losses.
std::vector<double> train_kfac(torch::nn::Sequential model, KfacOptimizer& opt, const at::Tensor& x,
                               const at::Tensor& y, int steps) {
  std::vector<double> losses;
  auto& p = opt.preconditioner();
  for (int k = 0; k < steps; ++k) {
    opt.zero_grad();
    p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, LossKind::SquaredError);
    auto l = kfac::loss(model->forward(x), y, LossKind::SquaredError);
    l.backward();
    opt.step();
    losses.push_back(l.item<double>());
  }
  return losses;
}

TEST(Checkpoint, SaveLoadContinueIsBitwiseIdentical) {
  for (const bool background : {false, true}) {  // background: saved while the worker refreshes (steps 3 → 6)
    SCOPED_TRACE(background ? "background refresh" : "synchronous refresh");
    torch::manual_seed(14);
    auto x = torch::randn({16, 4}, torch::kDouble), y = torch::randn({16, 2}, torch::kDouble);
    auto opts =
        PreconditionerOptions().refresh_period(3).fisher(FisherType::Sampled).seed(5).background_refresh(background);
    auto make = [&](torch::nn::Sequential m) {
      return KfacOptimizer(m->parameters(), std::make_shared<Preconditioner>(*m, opts), KfacOptimizerOptions(0.05));
    };
    auto model_a = mlp({4, 6, 2});
    auto model_b = mlp({4, 6, 2});
    {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < model_a->parameters().size(); ++i)
        model_b->parameters()[i].copy_(model_a->parameters()[i]);
    }
    auto opt_a = make(model_a);
    train_kfac(model_a, opt_a, x, y, 10);

    auto opt_b = make(model_b);
    train_kfac(model_b, opt_b, x, y, 4);
    std::stringstream model_bytes, opt_bytes;
    torch::save(model_b, model_bytes);
    torch::save(opt_b, opt_bytes);
    auto model_c = mlp({4, 6, 2});
    torch::load(model_c, model_bytes);
    auto opt_c = make(model_c);
    torch::load(opt_c, opt_bytes);
    EXPECT_EQ(opt_c.preconditioner().steps(), 4);
    train_kfac(model_c, opt_c, x, y, 6);
    for (size_t i = 0; i < model_a->parameters().size(); ++i)
      EXPECT_TRUE(torch::equal(model_a->parameters()[i], model_c->parameters()[i])) << "parameter " << i;
  }
}

TEST(Checkpoint, LoadingIntoDifferentModelNamesLayerAndShapes) {
  auto small = mlp({4, 6, 2}), other = mlp({4, 5, 2});
  Preconditioner p(*small), q(*other);
  auto x = torch::randn({3, 4}, torch::kDouble);
  stats_and_step(p, small, x, torch::randn({3, 2}, torch::kDouble), LossKind::SquaredError);
  std::stringstream bytes;
  torch::save(p, bytes);
  EXPECT_THAT(error_of([&] { torch::load(q, bytes); }),
              HasSubstr("checkpoint of layer '0': G has shape [6, 6] but this model needs [5, 5]"));
}

TEST(KfacOptimizer, LearningRateSchedulerDrivesIt) {
  auto model = mlp({3, 2});
  KfacOptimizer opt(model->parameters(), std::make_shared<Preconditioner>(*model), KfacOptimizerOptions(0.1));
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  torch::optim::StepLR scheduler(opt, /*step_size=*/1, /*gamma=*/0.5), reference(sgd, 1, 0.5);
  for (int i = 0; i < 3; ++i) scheduler.step(), reference.step();
  const double lr = static_cast<KfacOptimizerOptions&>(opt.param_groups()[0].options()).lr();
  EXPECT_LT(lr, 0.1);
  EXPECT_DOUBLE_EQ(lr, static_cast<torch::optim::SGDOptions&>(sgd.param_groups()[0].options()).lr());
}

TEST(KfacOptimizer, ReachesLowerLossThanTunedSgdInSameSteps) {
  torch::manual_seed(15);
  auto x = torch::randn({64, 6}, torch::kDouble);
  auto teacher = mlp({6, 8, 3});
  auto y = teacher->forward(x).detach();
  const int steps = 30;
  auto init = mlp({6, 12, 3});
  auto clone = [&] {
    auto m = mlp({6, 12, 3});
    torch::NoGradGuard ng;
    for (size_t i = 0; i < m->parameters().size(); ++i) m->parameters()[i].copy_(init->parameters()[i]);
    return m;
  };
  double best_sgd = 1e9;
  for (double lr : {0.03, 0.1, 0.3, 1.0}) {
    auto m = clone();
    torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
    double last = 0;
    for (int k = 0; k < steps; ++k) {
      sgd.zero_grad();
      auto l = kfac::loss(m->forward(x), y, LossKind::SquaredError);
      l.backward();
      sgd.step();
      last = l.item<double>();
    }
    if (std::isfinite(last)) best_sgd = std::min(best_sgd, last);
  }
  auto m = clone();
  KfacOptimizer opt(m->parameters(), std::make_shared<Preconditioner>(*m, PreconditionerOptions().damping(1e-2)),
                    KfacOptimizerOptions(0.3).kl_clip(1e-2));
  auto losses = train_kfac(m, opt, x, y, steps);
  EXPECT_LT(losses.back(), best_sgd) << "K-FAC " << losses.back() << " vs best SGD " << best_sgd;
}

}  // namespace
}  // namespace kfac::test

namespace kfac::test {
namespace {

TEST(Device, CudaFollowsParametersAndMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(30);
  auto cpu = cnn(3);
  auto gpu = cnn(3);
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < cpu->parameters().size(); ++i) gpu->parameters()[i].copy_(cpu->parameters()[i]);
  }
  gpu->to(torch::kCUDA);
  auto x = torch::randn({4, 2, 5, 5}, torch::kDouble);
  auto y = torch::randint(0, 3, {4});
  auto opts = PreconditionerOptions().fisher(FisherType::Empirical).damping_mode(DampingMode::Eigen);
  Preconditioner pc(*cpu, opts), pg(*gpu, opts);
  stats_and_step(pc, cpu, x, y, LossKind::SoftmaxCrossEntropy);
  stats_and_step(pg, gpu, x.cuda(), y.cuda(), LossKind::SoftmaxCrossEntropy);
  for (size_t i = 0; i < cpu->parameters().size(); ++i) {
    ASSERT_TRUE(gpu->parameters()[i].grad().is_cuda());
    EXPECT_LT(max_abs_diff(cpu->parameters()[i].grad(), gpu->parameters()[i].grad().cpu()), 1e-9) << i;
  }
  // Sampled targets on the device as well.
  Preconditioner ps(*gpu, PreconditionerOptions());
  EXPECT_TRUE(stats_and_step(ps, gpu, x.cuda(), y.cuda(), LossKind::SoftmaxCrossEntropy).statistics_updated);
}

TEST(Statistics, SharedTrainingForwardGivesTheSameStatisticsAsASeparatePass) {
  torch::manual_seed(61);
  auto a = cnn(3), b = cnn(3);
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  const auto x = torch::randn({6, 2, 5, 5}, torch::kDouble);
  const auto y = torch::randint(0, 3, {6});
  const auto loss = LossKind::SoftmaxCrossEntropy;
  auto opts = PreconditionerOptions().fisher_samples(2).refresh_period(1);
  Preconditioner separate(*a, opts), shared(*b, opts);
  for (int step = 0; step < 2; ++step) {
    stats_and_step(separate, a, x, y, loss);
    b->zero_grad();
    ASSERT_TRUE(shared.capture_forward());
    auto output = b->forward(x);
    kfac::loss(output, y, loss).backward({}, /*retain_graph=*/true);
    shared.statistics_from_forward(output, loss);
    shared.step();
    for (size_t i = 0; i < a->parameters().size(); ++i)
      EXPECT_LT(max_abs_diff(a->parameters()[i].grad(), b->parameters()[i].grad()), 1e-12) << step << " " << i;
  }
  EXPECT_THROW(Preconditioner(*b, PreconditionerOptions().stats_fraction(0.5)).capture_forward(), c10::Error);
}

}  // namespace
}  // namespace kfac::test
