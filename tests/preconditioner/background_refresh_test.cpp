// Background refresh: the decompositions are those a synchronous run computed one refresh period earlier, failures
// are reported when the worker's results are adopted, and checkpoints taken while the worker runs resume exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/kfac.h"
#include "kfac/linalg/psd.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// Two identical models, one preconditioner each, fed the same batches (a new one per step; weights stay fixed).
struct Twins {
  torch::nn::Sequential sync_model = mlp({4, 6, 3});
  torch::nn::Sequential background_model = mlp({4, 6, 3});
  Twins() {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < sync_model->parameters().size(); ++i)
      background_model->parameters()[i].copy_(sync_model->parameters()[i]);
  }
};

std::vector<at::Tensor> probe_matrices(const Preconditioner& p) {
  std::vector<at::Tensor> out;
  for (const auto& l : p.layers()) out.push_back(torch::randn({l.kind->dim_g(), l.kind->dim_a()}, torch::kDouble));
  return out;
}

TEST(BackgroundRefresh, UsesTheDecompositionsOfOneRefreshPeriodEarlier) {
  constexpr int64_t period = 2, steps = 8;
  for (const auto& method : every_method()) {
    SCOPED_TRACE(method);
    torch::manual_seed(41);
    Twins t;
    const auto opts = PreconditionerOptions().method(method).refresh_period(period).seed(3);
    Preconditioner sync(*t.sync_model, opts),
        background(*t.background_model, PreconditionerOptions(opts).background_refresh(true));
    const auto probe = probe_matrices(sync);
    std::vector<std::vector<at::Tensor>> sync_out, background_out;
    for (int64_t k = 0; k < steps; ++k) {
      auto x = torch::randn({7, 4}, torch::kDouble), y = torch::randn({7, 3}, torch::kDouble);
      stats_and_step(sync, t.sync_model, x, y, LossKind::SquaredError);
      const auto s = stats_and_step(background, t.background_model, x, y, LossKind::SquaredError);
      EXPECT_EQ(s.refreshed, k == 0 || (k % period == 0 && k >= 2 * period)) << "step " << k;
      sync_out.push_back(sync.precondition(probe));
      background_out.push_back(background.precondition(probe));
    }
    // An eigenvalue-corrected spectrum (EKFAC, TEKFAC) moves with every statistics update, so only the steps that
    // adopt are comparable.
    const bool every_step = method.find("ekfac") == std::string::npos;
    for (int64_t k = 0; k < steps; ++k) {
      if (!every_step && !(k == 0 || (k % period == 0 && k >= 2 * period))) continue;
      const int64_t source = std::max<int64_t>(0, (k / period - 1) * period);
      for (size_t i = 0; i < probe.size(); ++i) {
        EXPECT_LT(max_abs_diff(background_out[k][i], sync_out[source][i]), 1e-10) << "step " << k << " layer " << i;
        if (k >= period) {  // and not the synchronous run's own current decomposition (the test can fail)
          EXPECT_GT(max_abs_diff(background_out[k][i], sync_out[k][i]), 1e-6) << "step " << k << " layer " << i;
        }
      }
    }
  }
}

TEST(BackgroundRefresh, FailureIsReportedAtAdoptionAndKeepsThePreviousDecomposition) {
  torch::manual_seed(42);
  Twins t;
  Preconditioner p(*t.background_model, PreconditionerOptions().refresh_period(1).background_refresh(true));
  auto step = [&] {
    return stats_and_step(p, t.background_model, torch::randn({7, 4}, torch::kDouble),
                          torch::randn({7, 3}, torch::kDouble), LossKind::SquaredError);
  };
  const auto probe = probe_matrices(p);
  step();  // step 0: synchronous first decomposition
  const auto first = p.precondition_layers(probe);
  linalg::testing::inject_decomposition_failures(2);  // the worker's first decomposition (layer 0) fails twice
  auto s1 = step();                                   // step 1: launches; nothing to adopt yet
  EXPECT_EQ(s1.refresh_failures, 0);
  auto s2 = step();  // step 2: adopts (layer 0 failed), launches again
  linalg::testing::inject_decomposition_failures(0);
  EXPECT_EQ(s2.refresh_failures, 1);
  ASSERT_FALSE(s2.messages.empty());
  EXPECT_NE(s2.messages[0].find("layer '0'"), std::string::npos) << s2.messages[0];
  EXPECT_NE(s2.messages[0].find("keeping the previous decomposition"), std::string::npos) << s2.messages[0];
  const auto second = p.precondition_layers(probe);
  EXPECT_LT(max_abs_diff(second[0], first[0]), 1e-12);  // layer 0 kept step 0's decomposition
  EXPECT_GT(max_abs_diff(second[1], first[1]), 1e-6);   // layer 1 adopted step 1's
  auto s3 = step();
  EXPECT_EQ(s3.refresh_failures, 0);
  EXPECT_GT(max_abs_diff(p.precondition_layers(probe)[0], first[0]), 1e-6);
}

}  // namespace
}  // namespace kfac::test
