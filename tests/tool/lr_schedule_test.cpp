// The tool's learning-rate schedule (tools/kfac/lr_schedule.h) against its definition.
#include <gtest/gtest.h>

#include <cmath>

#include "tools/kfac/lr_schedule.h"

namespace kfac::tool {
namespace {

TEST(LrSchedule, WarmUpIsLinearThenConstantHolds) {
  EXPECT_DOUBLE_EQ(lr_factor("constant", 4, 0, 10), 0.25);
  EXPECT_DOUBLE_EQ(lr_factor("constant", 4, 3, 10), 1.0);
  for (int64_t s = 4; s < 10; ++s) EXPECT_DOUBLE_EQ(lr_factor("constant", 4, s, 10), 1.0) << s;
  EXPECT_DOUBLE_EQ(lr_factor("constant", 0, 0, 10), 1.0);
}

TEST(LrSchedule, CosineFallsFromOneToZeroAfterTheWarmUp) {
  EXPECT_DOUBLE_EQ(lr_factor("cosine", 10, 4, 110), 0.5);  // warm-up first
  EXPECT_DOUBLE_EQ(lr_factor("cosine", 10, 10, 110), 1.0);
  EXPECT_NEAR(lr_factor("cosine", 10, 60, 110), 0.5, 1e-15);  // half way: cos(π/2)
  EXPECT_NEAR(lr_factor("cosine", 10, 35, 110), 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_NEAR(lr_factor("cosine", 0, 99, 100), 0.5 * (1 + std::cos(M_PI * 0.99)), 1e-15);
  for (int64_t s = 11; s < 110; ++s) EXPECT_LT(lr_factor("cosine", 10, s, 110), lr_factor("cosine", 10, s - 1, 110));
}

}  // namespace
}  // namespace kfac::tool
