// Where a step's time goes: the phases of each step, summed over the timed steps (those step_timing counts), and the
// bytes this rank passed to collectives per timed step.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kfac::tool {

class StepProfile {
 public:
  enum Phase {
    StatisticsPass,
    ForwardBackward,
    OptimizerStep,
    FactorUpdate,
    Refresh,
    Precondition,
    GlobalStage,
    kCount
  };

  void begin_step() { step_.fill(0.0); }
  void add(Phase phase, double seconds) { step_[phase] += seconds; }
  /// Seconds since `start`, added to `phase`; returns now, the next phase's start.
  std::chrono::steady_clock::time_point lap(Phase phase, std::chrono::steady_clock::time_point start) {
    const auto now = std::chrono::steady_clock::now();
    step_[phase] += std::chrono::duration<double>(now - start).count();
    return now;
  }
  /// Ends a step; `timed` steps (after the warm-up) count towards the means.
  void end_step(bool timed, int64_t bytes) {
    if (!timed) return;
    ++timed_steps_;
    bytes_ += bytes;
    for (size_t k = 0; k < step_.size(); ++k) total_[k] += step_[k];
  }
  /// Mean seconds per timed step of each phase, named (the optimizer's parts indented under it).
  std::vector<std::pair<std::string, double>> means() const {
    static const char* names[kCount] = {"statistics pass", "forward + backward", "optimizer step", "  factor update",
                                        "  refresh",       "  preconditioning",  "  global stage"};
    std::vector<std::pair<std::string, double>> out;
    for (size_t k = 0; k < total_.size(); ++k)
      out.emplace_back(names[k], timed_steps_ > 0 ? total_[k] / static_cast<double>(timed_steps_) : 0.0);
    return out;
  }
  double bytes_per_step() const {
    return timed_steps_ > 0 ? static_cast<double>(bytes_) / static_cast<double>(timed_steps_) : 0.0;
  }

 private:
  std::array<double, kCount> step_{}, total_{};
  int64_t timed_steps_ = 0, bytes_ = 0;
};

}  // namespace kfac::tool
