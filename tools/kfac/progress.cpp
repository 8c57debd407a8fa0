#include "progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace kfac::tool {

namespace {
std::string clock(double seconds) {
  if (!(seconds < 3600.0 * 24 * 365 * 100)) return "--:--";  // a century or more, or NaN: no integer cast (UB)
  const auto s = std::llround(seconds);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld", s / 60, s % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)),
      total_(total),
      quiet_(quiet),
      terminal_(isatty(fileno(stderr)) != 0),
      every_(std::max<int64_t>(1, total / 10)),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t done, double loss, int64_t skipped) {
  if (quiet_ || (!terminal_ && done % every_ != 0 && done != total_)) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  char skips[48] = "";
  if (skipped > 0) std::snprintf(skips, sizeof(skips), "  skipped %lld", static_cast<long long>(skipped));
  std::fprintf(stderr, "%s%s  step %lld/%lld  loss %.4g%s  %.2f steps/s  ETA %s%s", terminal_ ? "\r\033[K" : "",
               label_.c_str(), static_cast<long long>(done), static_cast<long long>(total_), loss, skips, rate,
               clock(eta).c_str(), terminal_ ? "" : "\n");
  std::fflush(stderr);
}

void Progress::finish() {
  if (!quiet_ && terminal_) std::fprintf(stderr, "\n");
}

}  // namespace kfac::tool
