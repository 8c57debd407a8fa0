// The preconditioner's checkpoint records its options; a resumed run with other options says which changed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

std::stringstream saved_after_one_step(const PreconditionerOptions& o, torch::nn::Sequential& model) {
  Preconditioner p(*model, o);
  stats_and_step(p, model, torch::randn({8, 3}, torch::kDouble), torch::randint(2, {8}), LossKind::SoftmaxCrossEntropy);
  std::stringstream bytes;
  torch::save(p, bytes);
  return bytes;
}

TEST(OptionsCheckpoint, AResumeWithChangedOptionsNamesEachChange) {
  torch::manual_seed(3);
  auto model = mlp({3, 4, 2});
  const auto saved = PreconditionerOptions().method("ekfac").damping(1e-2).refresh_period(10);
  auto bytes = saved_after_one_step(saved, model);

  auto changed = PreconditionerOptions(saved).damping(0.05).refresh_period(20);
  changed.with(EigenCorrectedOptions().reset_spectrum(false));
  Preconditioner q(*model, changed);
  torch::load(q, bytes);
  EXPECT_THAT(
      q.option_changes(),
      ::testing::UnorderedElementsAre(
          "damping: 0.01 (saved) -> 0.05 (now); the saved damping is restored (call set_damping() to use the new "
          "one; the kfac tool does)",
          "refresh_period: 10 (saved) -> 20 (now)", "reset_spectrum: true (saved) -> false (now)"));
  // The state is the checkpoint's all the same: the damping in effect is the saved one until set_damping.
  EXPECT_EQ(q.damping(), 1e-2);
  EXPECT_EQ(q.steps(), 1);
}

TEST(OptionsCheckpoint, TheSameOptionsResumeSilently) {
  torch::manual_seed(4);
  auto model = mlp({3, 4, 2});
  const auto o =
      PreconditionerOptions().method("tekfac").with(TraceDampingOptions().trace_damping(TraceDamping::TraceRelative));
  auto bytes = saved_after_one_step(o, model);
  Preconditioner q(*model, o);
  torch::load(q, bytes);
  EXPECT_TRUE(q.option_changes().empty());
}

TEST(OptionsCheckpoint, AnotherMethodIsOneChangeNotOnePerField) {
  torch::manual_seed(5);
  auto model = mlp({3, 4, 2});
  auto bytes = saved_after_one_step(PreconditionerOptions().method("kfac"), model);
  Preconditioner q(*model, PreconditionerOptions().method("kfac").stats_period(2));
  torch::load(q, bytes);
  EXPECT_THAT(q.option_changes(), ::testing::ElementsAre("stats_period: 1 (saved) -> 2 (now)"));
}

}  // namespace
}  // namespace kfac::test
