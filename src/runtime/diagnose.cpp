// The decisions of the runtime report: what in a RuntimeInfo costs speed, and the fix for each.
#include <cerrno>
#include <cstdlib>
#include <string>

#include "kfac/runtime/openblas_kernel.h"
#include "kfac/runtime/runtime_info.h"

namespace kfac::runtime {

bool valid_thread_count(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(text.c_str(), &end, 10);
  return !text.empty() && end == text.c_str() + text.size() && errno == 0 && n >= 1 && n <= (1 << 20);
}

std::vector<Warning> diagnose(const RuntimeInfo& r) {
  std::vector<Warning> w;
  if (!r.threads.omp_env.empty() && !valid_thread_count(r.threads.omp_env))
    w.push_back({"omp-num-threads",
                 "OMP_NUM_THREADS='" + r.threads.omp_env +
                     "' is not a whole number >= 1: OpenMP and LibTorch ignore it (LibTorch prints a backtrace) and "
                     "choose their own thread counts",
                 "unset OMP_NUM_THREADS or set it to the number of cores to use, e.g. OMP_NUM_THREADS=2"});
  if (r.blas.library == "OpenBLAS") {
    const int chosen = openblas_kernel_level(r.blas.kernel);
    const auto best = best_openblas_kernel(r.cpu);
    const int possible = best.empty() ? 0 : openblas_kernel_level(best);
    if (chosen >= 0 && chosen < possible) {
      const std::string what = "OpenBLAS runs its " + r.blas.kernel + " kernels (" + instruction_set_name(chosen) +
                               ") on a CPU with " + instruction_set_name(possible) +
                               ": float32 matrix products run several times slower (5x measured for Prescott)";
      w.push_back({"blas-kernel", what,
                   r.blas.coretype_env.empty() ? "export OPENBLAS_CORETYPE=" + best +
                                                     " before the program starts (the kfac tool does it "
                                                     "itself unless KFAC_BLAS_AUTOSELECT=0 or --keep-blas-kernel)"
                                               : "OPENBLAS_CORETYPE=" + r.blas.coretype_env +
                                                     " is set in the environment; unset it or "
                                                     "export OPENBLAS_CORETYPE=" +
                                                     best});
    }
    if (!r.blas.coretype_env.empty() && !r.blas.kernel.empty() &&
        openblas_kernel_level(r.blas.coretype_env) != openblas_kernel_level(r.blas.kernel)) {
      w.push_back({"blas-coretype-ignored",
                   "OPENBLAS_CORETYPE=" + r.blas.coretype_env + " is set but OpenBLAS chose " + r.blas.kernel +
                       " (a name it does not know, or kernels this CPU cannot run)",
                   "set OPENBLAS_CORETYPE to a core name this OpenBLAS knows and the CPU supports" +
                       (best.empty() ? std::string() : " (" + best + " here)") + ", or unset it"});
    }
  }
  const int cores = r.cpu.available_cores / std::max(1, r.threads.local_ranks);
  if (!r.threads.requested && r.threads.intra_op > 0 && cores > r.threads.intra_op) {
    const auto n = std::to_string(cores);
    w.push_back({"threads",
                 "LibTorch uses " + std::to_string(r.threads.intra_op) + " intra-op thread(s) of the " + n +
                     " cores available" + (r.threads.local_ranks > 1 ? " to each local rank" : "") +
                     " (LibTorch 1.13 counts physical cores; two vCPUs of one core get one thread)",
                 "call at::set_num_threads(" + n +
                     ") or kfac::runtime::configure_runtime(), or export "
                     "OMP_NUM_THREADS=" +
                     n + " (kfac tool: --threads " + n + ")"});
  }
  if (r.blas.threads > 0 && r.threads.intra_op > r.blas.threads) {
    w.push_back({"blas-threads",
                 r.blas.library + " uses " + std::to_string(r.blas.threads) + " thread(s), LibTorch " +
                     std::to_string(r.threads.intra_op) + ": matrix products use fewer cores than the rest",
                 "export OPENBLAS_NUM_THREADS=" + std::to_string(r.threads.intra_op) + " (or leave it unset)"});
  }
  if (!r.flush_denormal) {
    w.push_back({"subnormals",
                 "subnormal floats are kept: each costs x86 about 100 cycles, and a sigmoid network's activations "
                 "underflow within tens of steps (the autoencoder's SGD step: 0.10 -> 0.16 s)",
                 "call kfac::runtime::configure_runtime() or at::globalContext().setFlushDenormal(true) before the "
                 "first parallel region (the kfac tool flushes them unless --keep-subnormals)"});
  }
  if (r.glibc && !r.freed_memory_kept) {
    w.push_back({"freed-memory",
                 "glibc's malloc returns large freed blocks to the system, so every step's tensors page-fault in "
                 "fresh pages (char-lm's K-FAC statistics pass: 32 ms instead of 11)",
                 "call kfac::runtime::configure_runtime() or kfac::runtime::keep_freed_memory() (Python: "
                 "kronfac.configure_runtime()); the kfac tool keeps it unless --return-freed-memory"});
  }
  return w;
}

}  // namespace kfac::runtime
