#include "history.h"

#include <algorithm>

namespace kfac::tool {

StepTiming step_timing(const std::vector<HistoryPoint>& history) {
  StepTiming t;
  const int64_t last = history.empty() ? 0 : history.back().step + 1;
  std::vector<double> all;
  double refresh_total = 0;
  for (const auto& h : history) {
    if ((h.step < kTimingWarmup && last > kTimingWarmup) || std::isnan(h.step_seconds)) continue;
    all.push_back(h.step_seconds);
    t.mean += h.step_seconds;
    if (h.refreshed) refresh_total += h.step_seconds, ++t.refresh_steps;
  }
  t.steps = static_cast<int64_t>(all.size());
  if (all.empty()) return t;
  t.mean /= static_cast<double>(t.steps);
  std::sort(all.begin(), all.end());
  const size_t mid = all.size() / 2;
  t.median = all.size() % 2 ? all[mid] : 0.5 * (all[mid - 1] + all[mid]);
  if (t.refresh_steps > 0) t.refresh_mean = refresh_total / static_cast<double>(t.refresh_steps);
  return t;
}

double smoothed_loss(const std::vector<HistoryPoint>& history, size_t i, size_t window) {
  const size_t first = i + 1 >= window ? i + 1 - window : 0;
  double sum = 0;
  for (size_t k = first; k <= i; ++k) sum += history[k].train_loss;
  return sum / static_cast<double>(i + 1 - first);
}

double seconds_to_loss(const std::vector<HistoryPoint>& history, double target) {
  for (size_t i = 0; i < history.size(); ++i)
    if (smoothed_loss(history, i) <= target) return history[i].seconds;
  return NAN;
}

int64_t steps_to_loss(const std::vector<HistoryPoint>& history, double target) {
  for (size_t i = 0; i < history.size(); ++i)
    if (smoothed_loss(history, i) <= target) return history[i].step + 1;
  return 0;
}

}  // namespace kfac::tool
