// Progress reporting for long runs: one updating line on a terminal, plain periodic lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace kfac::tool {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool quiet);
  /// Call after each step with its (minibatch) loss and the run's skipped steps so far (shown when there are any).
  void update(int64_t done, double loss, int64_t skipped = 0);
  /// Ends the updating line.
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool quiet_, terminal_;
  int64_t every_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kfac::tool
