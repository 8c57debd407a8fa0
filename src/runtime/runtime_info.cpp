// Probing: each fact from the source that knows it, looked up at run time where a link-time dependency would tie
// the library to one BLAS or one OpenMP.
#include "kfac/runtime/runtime_info.h"

#include "kfac/runtime/setup.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <dlfcn.h>
#include <sched.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "kfac/distributed/communicator.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace kfac::runtime {

bool Cpu::has(const std::string& flag) const { return std::find(flags.begin(), flags.end(), flag) != flags.end(); }

namespace {

// A symbol of a library already in the process: the global scope first, then the usual BLAS sonames (a library
// loaded with RTLD_LOCAL, as Python loads extension modules, is not in the global scope). Never loads anything.
void* find_symbol(const char* name) {
  if (void* p = dlsym(RTLD_DEFAULT, name)) return p;
  for (const char* lib : {"libopenblas.so.0", "libopenblasp.so.0", "libopenblaso.so.0", "libmkl_rt.so",
                          "libmkl_rt.so.2", "libblis.so.4", "libblis-mt.so.4", "libgomp.so.1", "libomp.so"}) {
    if (void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD)) {
      void* p = dlsym(handle, name);
      dlclose(handle);
      if (p) return p;
    }
  }
  return nullptr;
}

template <typename Fn>
Fn symbol(const char* name) {
  return reinterpret_cast<Fn>(find_symbol(name));
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

Blas probe_blas() {
  Blas b;
  if (const char* v = std::getenv("OPENBLAS_CORETYPE")) b.coretype_env = v;
  if (const char* v = std::getenv("KFAC_BLAS_RELAUNCHED_FROM")) b.relaunched_from = v;
  if (auto corename = symbol<char* (*)()>("openblas_get_corename")) {
    b.library = "OpenBLAS";
    b.kernel = trim(corename());
    // Test seam (tests/cli/blas_relaunch.sh): pretend OpenBLAS fell back to this kernel by itself. Ignored once
    // OPENBLAS_CORETYPE is set, so a relaunched process reports the real kernel.
    const char* pretend = std::getenv("KFAC_TEST_OPENBLAS_KERNEL");
    if (pretend != nullptr && b.coretype_env.empty()) b.kernel = pretend;
    if (auto config = symbol<char* (*)()>("openblas_get_config")) b.config = trim(config());
    if (auto threads = symbol<int (*)()>("openblas_get_num_threads")) b.threads = threads();
  } else if (auto version = symbol<void (*)(char*, int)>("mkl_get_version_string")) {
    char buf[256] = {0};
    version(buf, sizeof(buf) - 1);
    b.library = "MKL", b.config = trim(buf);
    if (auto threads = symbol<int (*)()>("mkl_get_max_threads")) b.threads = threads();
  } else if (auto version = symbol<const char* (*)()>("bli_info_get_version_str")) {
    b.library = "BLIS", b.config = version();
  }
  return b;
}

Cpu probe_cpu() {
  Cpu c;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::pair<std::string, std::string>> cores;
  std::string package;
  bool first = true;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "processor") {
      if (c.logical_cores++ > 0) first = false;
    } else if (key == "physical id") {
      package = value;
    } else if (key == "core id") {
      cores.insert({package, value});
    } else if (first && key == "vendor_id") {
      c.vendor = value;
    } else if (first && key == "model name") {
      c.model_name = value;
    } else if (first && key == "cpu family") {
      c.family = std::atoi(value.c_str());
    } else if (first && key == "model") {
      c.model = std::atoi(value.c_str());
    } else if (first && key == "flags") {
      static const std::set<std::string> wanted = {"sse3",        "ssse3",    "sse4_1",   "sse4_2",      "avx",
                                                   "avx2",        "fma",      "f16c",     "avx512f",     "avx512cd",
                                                   "avx512bw",    "avx512dq", "avx512vl", "avx512_bf16", "avx512_fp16",
                                                   "avx512_vnni", "amx_bf16", "amx_tile"};
      std::istringstream words(value);
      for (std::string w; words >> w;) {
        if (w == "pni") w = "sse3";  // Linux's name for SSE3 ("Prescott New Instructions")
        if (wanted.count(w)) c.flags.push_back(w);
      }
    }
  }
  c.physical_cores = static_cast<int>(cores.size());
  if (c.logical_cores == 0) c.logical_cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t mask;
  c.available_cores = sched_getaffinity(0, sizeof(mask), &mask) == 0 ? CPU_COUNT(&mask) : c.logical_cores;
  return c;
}

bool flush_denormal_on() {
#if defined(__x86_64__) || defined(__i386__)
  constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)
  return (_mm_getcsr() & kFtzDaz) == kFtzDaz;
#else
  return false;
#endif
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch.version = TORCH_VERSION;
  const auto config = at::show_config();
  info.torch.cuda_built = config.find("USE_CUDA=ON") != std::string::npos ||
                          config.find("USE_CUDA=1") != std::string::npos;
  info.torch.cuda_devices = static_cast<int>(torch::cuda::device_count());
  info.torch.distributed_backends = distributed_backends();
  info.blas = probe_blas();
  info.cpu = probe_cpu();
  info.threads.intra_op = at::get_num_threads();
  info.threads.inter_op = at::get_num_interop_threads();
  if (auto omp = symbol<int (*)()>("omp_get_max_threads")) info.threads.openmp = omp();
  const char* omp = std::getenv("OMP_NUM_THREADS");
  info.threads.omp_env = omp ? omp : "";
  info.threads.requested = omp != nullptr && valid_thread_count(omp);
  if (const char* local = std::getenv("LOCAL_WORLD_SIZE")) info.threads.local_ranks = std::max(1, std::atoi(local));
  info.flush_denormal = flush_denormal_on();
  info.freed_memory_kept = freed_memory_kept();
#if defined(__GLIBC__)
  info.glibc = true;
#endif
  info.warnings = diagnose(info);
  return info;
}

std::ostream& operator<<(std::ostream& out, const RuntimeInfo& r) {
  const auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s.empty() ? std::string("none") : s;
  };
  const auto count = [](int n) { return n < 0 ? std::string("unknown") : std::to_string(n); };
  out << "LibTorch:        " << r.torch.version << (r.torch.cuda_built ? " (CUDA)" : " (CPU only)")
      << ", c10d backends: " << list(r.torch.distributed_backends) << "\n"
      << "CUDA devices:    " << r.torch.cuda_devices << "\n"
      << "BLAS:            " << r.blas.library << (r.blas.config.empty() ? "" : " (" + r.blas.config + ")") << "\n"
      << "BLAS kernel:     " << (r.blas.kernel.empty() ? "unknown" : r.blas.kernel)
      << (r.blas.coretype_env.empty() ? " (chosen by the library)"
          : !r.blas.relaunched_from.empty()
              ? " (OPENBLAS_CORETYPE=" + r.blas.coretype_env + " set by kfac's relaunch; OpenBLAS had chosen " +
                    r.blas.relaunched_from + ")"
              : " (OPENBLAS_CORETYPE=" + r.blas.coretype_env + " is set)")
      << "\n"
      << "CPU:             " << r.cpu.model_name << " (" << r.cpu.vendor << ", family " << r.cpu.family << " model "
      << r.cpu.model << ")\n"
      << "CPU flags:       " << list(r.cpu.flags) << "\n"
      << "Cores:           " << r.cpu.available_cores << " available, " << r.cpu.logical_cores << " logical, "
      << (r.cpu.physical_cores > 0 ? std::to_string(r.cpu.physical_cores) : std::string("unknown")) << " physical\n"
      << "Threads:         intra-op " << r.threads.intra_op << ", inter-op " << r.threads.inter_op << ", OpenMP "
      << count(r.threads.openmp) << ", BLAS " << count(r.blas.threads)
      << (r.threads.local_ranks > 1 ? ", " + std::to_string(r.threads.local_ranks) + " local ranks" : "") << "\n"
      << "Subnormals:      " << (r.flush_denormal ? "flushed to zero" : "kept (not flushed)") << "\n"
      << "Freed memory:    "
      << (!r.glibc              ? "the allocator's policy (not glibc)"
          : r.freed_memory_kept ? "kept for reuse (glibc malloc: mmap threshold 32 MiB, no trimming)"
                                : "returned to the system (glibc malloc's default)")
      << "\n";
  if (r.warnings.empty()) out << "Warnings:        none\n";
  for (const auto& w : r.warnings) out << "warning [" << w.id << "]: " << w.what << "\n  fix: " << w.fix << "\n";
  return out;
}

}  // namespace kfac::runtime
