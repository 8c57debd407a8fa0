// Small linear algebra on one thread (CPU). OpenBLAS and ATen run their OpenMP teams for products and
// decompositions well below the sizes where a second thread pays: at the optimizer's block sizes the team's wake-up and
// hand-over cost more than the work they share, all the more between the model's own operations, when the team has
// gone to sleep. Measured on a 2-vCPU AMD EPYC (OpenBLAS 0.3.21, docs/design.md §5) between the products of a model:
// eight EKFAC preconditionings of 64 x 65 blocks took 0.12 ms on one thread against 0.25 on two, four of 128 x 129
// 0.50 against 0.68 ms, but two of 256 x 257 1.6 against 1.3 ms (decompositions: batched.cpp).
#pragma once

#include <cstdint>

namespace kfac::linalg {

/// Factors of up to this many rows are decomposed on one thread.
constexpr int64_t kOneThreadMaxRows = 512;
/// A [d_G, d_A] block is preconditioned on one thread when its products' work d_G·d_A·(d_G + d_A) is at most this.
constexpr int64_t kOneThreadMaxPreconditionWork = int64_t{1} << 23;

/// This thread's OpenMP thread count set to one for the object's life (OpenMP's count is per thread): one change
/// for a whole group of small operations, since changing it around each costs more than the operations (libgomp and
/// OpenBLAS resize their teams and buffers), as does at::set_num_threads (it rebuilds LibTorch's thread pools).
/// Nothing changes in a process without an OpenMP runtime.
class OneThread {
 public:
  OneThread();
  ~OneThread();
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int restore_ = 0;
};

}  // namespace kfac::linalg
