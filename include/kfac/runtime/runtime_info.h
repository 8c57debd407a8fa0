// What this process runs on, and what slows it down: the LibTorch build, the BLAS and the kernel it chose, the CPU
// and its instruction sets, the thread counts, the subnormal mode and the CUDA devices. `runtime_info()` probes the
// machine; `diagnose()` turns a report into warnings, each with its fix. `diagnose` is a pure function of the
// report, so its decisions are tested with injected values (tests/runtime/runtime_test.cpp).
//
// The BLAS is looked up at run time (dlsym of `openblas_get_corename`, `mkl_get_version_string`, ...), so the
// library links against any BLAS LibTorch was built with.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace kfac::runtime {

struct TorchBuild {
  std::string version;                            ///< e.g. "1.13.1"
  bool cuda_built = false;                        ///< LibTorch was built with CUDA
  int cuda_devices = 0;                           ///< CUDA devices visible now
  std::vector<std::string> distributed_backends;  ///< c10d backends this kfac build can use ("gloo", "nccl")
};

struct Blas {
  std::string library = "unknown";  ///< "OpenBLAS", "MKL", "BLIS" or "unknown"
  std::string config;               ///< the library's own build string (openblas_get_config), if any
  std::string kernel;               ///< the kernel family it chose (OpenBLAS core name, e.g. "Haswell"); "" if unknown
  int threads = -1;                 ///< its thread count; -1 if unknown
  /// OPENBLAS_CORETYPE as set in the environment ("" when unset). Set by a user or a machine on purpose: never
  /// overridden.
  std::string coretype_env;
  /// The kernel OpenBLAS had chosen before relaunch_with_blas_kernel() set OPENBLAS_CORETYPE ("" if no relaunch).
  std::string relaunched_from;
};

struct Cpu {
  std::string vendor, model_name;
  int family = -1, model = -1;
  std::vector<std::string> flags;  ///< instruction-set flags as /proc/cpuinfo names them ("avx2", "avx512f", ...)
  int logical_cores = 0;           ///< online logical CPUs
  int available_cores = 0;         ///< logical CPUs this process may run on (its affinity mask)
  int physical_cores = 0;          ///< distinct (package, core) pairs; 0 if unknown
  bool has(const std::string& flag) const;
};

struct Threads {
  int intra_op = 0;     ///< at::get_num_threads()
  int inter_op = 0;     ///< at::get_num_interop_threads()
  int openmp = -1;      ///< omp_get_max_threads(); -1 without OpenMP
  int local_ranks = 1;  ///< processes sharing this machine's cores (LOCAL_WORLD_SIZE)
  /// The count was asked for (OMP_NUM_THREADS, or configure_runtime with threads > 0): no warning about it.
  bool requested = false;
  std::string omp_env;  ///< OMP_NUM_THREADS as set ("" when unset)
};

struct Warning {
  std::string
      id;  ///< stable name: "blas-kernel", "blas-coretype-ignored", "omp-num-threads", "threads", "blas-threads", "subnormals"
  std::string what;  ///< what is wrong and what it costs
  std::string fix;   ///< what to do
};

struct RuntimeInfo {
  TorchBuild torch;
  Blas blas;
  Cpu cpu;
  Threads threads;
  /// Subnormal floats flushed to zero on this thread (x86: MXCSR's FTZ and DAZ bits). False where unsupported.
  bool flush_denormal = false;
  /// glibc's malloc keeps freed memory for reuse (kfac::runtime::keep_freed_memory). False without glibc.
  bool freed_memory_kept = false;
  bool glibc = false;             ///< the process allocates with glibc's malloc
  std::vector<Warning> warnings;  ///< diagnose() of the above
};

/// Probes this process and machine now (cheap: reads /proc/cpuinfo once) and fills `warnings`.
RuntimeInfo runtime_info();

/// The warnings for a report, each with its fix. Pure: depends on nothing but `info`.
std::vector<Warning> diagnose(const RuntimeInfo& info);

/// Whether an OMP_NUM_THREADS value is a whole number >= 1 (what OpenMP and LibTorch accept).
bool valid_thread_count(const std::string& text);

/// Human-readable report: one "key: value" line per fact, then the warnings.
std::ostream& operator<<(std::ostream& out, const RuntimeInfo& info);

}  // namespace kfac::runtime
