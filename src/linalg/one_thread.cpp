#include "linalg/one_thread.h"

// The calling thread's OpenMP thread count, in the runtime LibTorch and OpenBLAS use. Weak: resolved when the
// process has an OpenMP runtime loaded, null otherwise (then nothing changes).
extern "C" __attribute__((weak)) void omp_set_num_threads(int);
extern "C" __attribute__((weak)) int omp_get_max_threads();

namespace kfac::linalg {

OneThread::OneThread() {
  if (omp_set_num_threads && omp_get_max_threads && (restore_ = omp_get_max_threads()) > 1) omp_set_num_threads(1);
}

OneThread::~OneThread() {
  if (restore_ > 1) omp_set_num_threads(restore_);
}

}  // namespace kfac::linalg
