// The preconditioner's schedule: which steps update statistics and which refresh decompositions, and the decay of
// each statistics update's EMA.
//
// Step k (from 0) updates statistics when k % stats_period == 0 and refreshes when k % refresh_period == 0 (a layer
// with statistics but no decomposition yet is refreshed at once, whatever the step). The k-th statistics update (from
// 1) folds in with decay min(1 − 1/k, ema_decay): the first one replaces the zero initial state, and the average is
// uniform until the cap is reached.
#pragma once

#include <cstdint>

#include "kfac/preconditioner/options.h"
#include "kfac/util/archive_fwd.h"

namespace kfac {

class Schedule {
 public:
  explicit Schedule(const ScheduleOptions& options) : options_(options) {}

  int64_t step() const { return step_; }
  bool is_statistics_step() const { return step_ % options_.stats_period() == 0; }
  bool is_refresh_step() const { return step_ % options_.refresh_period() == 0; }
  /// Counts one statistics update and returns its EMA decay.
  double next_decay();
  int64_t statistics_updates() const { return statistics_updates_; }
  /// Moves to the next step.
  void advance() { ++step_; }
  const ScheduleOptions& options() const { return options_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  ScheduleOptions options_;
  int64_t step_ = 0;
  int64_t statistics_updates_ = 0;
};

}  // namespace kfac
