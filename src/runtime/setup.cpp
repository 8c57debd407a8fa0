#include "kfac/runtime/setup.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "kfac/runtime/openblas_kernel.h"

namespace kfac::runtime {

bool set_flush_denormal(bool on) {
  const bool ok = at::globalContext().setFlushDenormal(on);
  // The mode is per thread: set it on every thread of this thread's OpenMP team too, which LibTorch's intra-op
  // work and an OpenMP OpenBLAS share (GOMP keeps the team's threads between regions). Threads created later by
  // this thread inherit the mode. (This file is compiled with OpenMP: ATen's parallel_for is serial in code built
  // without it.)
#ifdef _OPENMP
#pragma omp parallel num_threads(at::get_num_threads())
  at::globalContext().setFlushDenormal(on);
#endif
  return ok;
}

namespace {
bool kept = false;  // set once; glibc offers no query of its thresholds
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  constexpr int kLargestMmapThreshold = 32 << 20;  // glibc: HEAP_MAX_SIZE / 2 on 64-bit; mallopt refuses more
  kept = kept || (::mallopt(M_MMAP_THRESHOLD, kLargestMmapThreshold) == 1 &&
                  ::mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1);
#endif
  return kept;
}

bool freed_memory_kept() { return kept; }

void relaunch_with_blas_kernel(const RuntimeInfo& info, char** argv) {
  const char* optout = std::getenv("KFAC_BLAS_AUTOSELECT");
  if (argv == nullptr || (optout != nullptr && std::strcmp(optout, "0") == 0)) return;
  const auto kernel = openblas_kernel_to_select(info);
  if (!kernel) return;
  std::fprintf(stderr,
               "kfac: OpenBLAS chose its %s kernels on this %s CPU; starting again with "
               "OPENBLAS_CORETYPE=%s (KFAC_BLAS_AUTOSELECT=0 keeps the BLAS's choice)\n",
               info.blas.kernel.c_str(), instruction_set_name(openblas_kernel_level(*kernel)).c_str(), kernel->c_str());
  std::fflush(stderr);
  ::setenv("OPENBLAS_CORETYPE", kernel->c_str(), 1);  // set: the next start never relaunches again
  ::setenv("KFAC_BLAS_RELAUNCHED_FROM", info.blas.kernel.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  std::fprintf(stderr, "kfac: could not start again (%s); continuing with the %s kernels\n", std::strerror(errno),
               info.blas.kernel.c_str());
  ::unsetenv("OPENBLAS_CORETYPE");
  ::unsetenv("KFAC_BLAS_RELAUNCHED_FROM");
}

RuntimeInfo configure_runtime(const RuntimeSetup& setup, char** argv) {
  const auto before = runtime_info();
  if (setup.select_blas_kernel) relaunch_with_blas_kernel(before, argv);
  if (setup.threads > 0)
    at::set_num_threads(setup.threads);
  else if (setup.threads == 0 && std::getenv("OMP_NUM_THREADS") == nullptr)
    at::set_num_threads(std::max(1, before.cpu.available_cores / std::max(1, before.threads.local_ranks)));
  if (setup.flush_denormal) set_flush_denormal(true);
  if (setup.keep_freed_memory) keep_freed_memory();
  auto info = runtime_info();
  if (setup.threads > 0 && !info.threads.requested) {
    info.threads.requested = true;
    info.warnings = diagnose(info);
  }
  return info;
}

}  // namespace kfac::runtime
