// The learning-rate schedule of `kfac train`, the same for every method so that comparisons are fair: a linear
// warm-up over the first `warmup` steps, then the rate held (constant) or decayed to zero along a half cosine
// (cosine, Loshchilov & Hutter 2017's SGDR without restarts) by the last step. The factor multiplies every
// parameter group's own rate (--lr, --fallback-lr).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace kfac::tool {

inline const std::vector<std::string>& lr_schedule_names() {
  static const std::vector<std::string> names{"constant", "cosine"};
  return names;
}

/// The factor of the base rate at `step` (0-based) of `steps`.
inline double lr_factor(const std::string& schedule, int64_t warmup, int64_t step, int64_t steps) {
  if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (schedule != "cosine") return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, steps - warmup));
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
  return 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace kfac::tool
