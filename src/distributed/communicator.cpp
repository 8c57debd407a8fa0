// Parts of the communicator that do not need c10d: options from the environment.
#include <ATen/ATen.h>

#include <cerrno>
#include <cstdlib>

#include "kfac/distributed/communicator.h"
#include "kfac/errors.h"

namespace kfac {

namespace {
// An integer environment variable in [low, high]; anything else (junk, a value that wraps) is an error naming it.
int env_int(const char* name, int fallback, long low, long high) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  KFAC_CHECK(end && *end == '\0' && errno == 0, "environment variable ", name, "='", v, "' is not an integer");
  KFAC_CHECK(x >= low && x <= high, "environment variable ", name, "=", v, " is out of range: it must be between ", low,
             " and ", high);
  return static_cast<int>(x);
}

}  // namespace

std::vector<double> Communicator::sum_over_ranks(std::vector<double> values) {
  if (size() == 1 || values.empty()) return values;
  std::vector<at::Tensor> t{at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(device())};
  all_reduce_sum(t);
  const auto reduced = t[0].cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = reduced[static_cast<int64_t>(i)].item<double>();
  return values;
}

void Communicator::count(const std::vector<at::Tensor>& tensors) {
  for (const auto& t : tensors) bytes_ += t.numel() * static_cast<int64_t>(t.element_size());
}

ProcessGroupOptions ProcessGroupOptions::from_environment() {
  ProcessGroupOptions o;
  o.rank = env_int("RANK", 0, 0, kMaxWorldSize - 1);
  o.world_size = env_int("WORLD_SIZE", 1, 1, kMaxWorldSize);
  o.master_port = env_int("MASTER_PORT", o.master_port, 1, 65535);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  if (const char* b = std::getenv("KFAC_DIST_BACKEND"); b && *b) o.backend = b;
  o.timeout = std::chrono::seconds(env_int("KFAC_DIST_TIMEOUT_S", 60, 1, kMaxTimeoutSeconds));
  KFAC_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "RANK=", o.rank,
             " and WORLD_SIZE=", o.world_size, " are inconsistent: need 0 <= RANK < WORLD_SIZE");
  return o;
}

}  // namespace kfac
