// A run's per-step history and what is read from it: the step timing (defined once, here) and the smoothed loss
// that a "time to target" uses.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kfac::tool {

struct HistoryPoint {
  int64_t step;
  double train_loss;          ///< minibatch loss before the update
  double seconds;             ///< wall time since the start of training
  double step_seconds = NAN;  ///< wall time of this step (data, statistics, forward, backward, update)
  bool refreshed = false;     ///< the preconditioner recomputed decompositions in this step
};

/// Steps left out of the timing: the first steps allocate and make the first decompositions.
constexpr int64_t kTimingWarmup = 2;

/// Seconds per step over every step from kTimingWarmup on (all steps when the run is no longer), refresh steps
/// included, so runs of any length weigh refreshes by their real frequency. Defined once, here (docs/design.md).
struct StepTiming {
  double mean = 0;  ///< the figure reported as seconds_per_step
  double median = 0;
  double refresh_mean = NAN;  ///< mean over the timed steps that refreshed (NaN if none)
  int64_t steps = 0, refresh_steps = 0;
};
StepTiming step_timing(const std::vector<HistoryPoint>& history);

/// The minibatch loss smoothed over the `window` steps ending at history[i] (fewer at the start): the loss a
/// "time to target" is read from, so that one lucky minibatch does not reach a target.
double smoothed_loss(const std::vector<HistoryPoint>& history, size_t i, size_t window = 10);
/// The first wall time at which the smoothed loss is at or below `target`; NaN if never.
double seconds_to_loss(const std::vector<HistoryPoint>& history, double target);
/// The first step (1-based count of steps taken) at which the smoothed loss is at or below `target`; 0 if never.
int64_t steps_to_loss(const std::vector<HistoryPoint>& history, double target);

}  // namespace kfac::tool
