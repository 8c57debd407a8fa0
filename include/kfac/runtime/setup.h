// One call at the start of main() that gives a LibTorch program the machine's full speed: the right OpenBLAS
// kernel, every available core, subnormal floats flushed to zero, and freed tensor memory kept for the next step.
// The `kfac` tool calls it with the defaults.
#pragma once

#include "kfac/runtime/runtime_info.h"

namespace kfac::runtime {

struct RuntimeSetup {
  /// When OpenBLAS fell back to kernels below the CPU's instruction set and OPENBLAS_CORETYPE is unset, start the
  /// program again (execv of /proc/self/exe with the same arguments) with OPENBLAS_CORETYPE set to the best kernel,
  /// once; says so in one line on stderr. Needs `argv`. Off also when KFAC_BLAS_AUTOSELECT=0.
  bool select_blas_kernel = true;
  /// Intra-op threads: 0 = the available cores divided among the local ranks (LOCAL_WORLD_SIZE), unless
  /// OMP_NUM_THREADS is set; > 0 = exactly that many; < 0 = leave LibTorch's choice. LibTorch 1.13 counts physical
  /// cores, which on a 2-vCPU machine with one core runs every product on one thread.
  int threads = 0;
  /// Flush subnormal floats to zero (FTZ/DAZ) on this thread and on the OpenMP threads that LibTorch and OpenBLAS
  /// use. A sigmoid autoencoder's activations and gradients underflow within 50 steps, and each subnormal costs
  /// x86 ~100 cycles: SGD's step slowed from 0.10 to 0.16 s; flushed, the losses agree at the printed precision.
  bool flush_denormal = true;
  /// glibc's malloc hands large freed blocks back to the kernel (mmap'd blocks above a threshold that adapts up to
  /// 32 MiB, and the heap's top beyond 128 KiB), so the next step's tensors page-fault in fresh zeroed pages. Keep
  /// them instead (M_MMAP_THRESHOLD 32 MiB, glibc's largest, and no trimming): char-lm's K-FAC statistics pass
  /// went from 32 to 11 ms on a 2-vCPU machine, a third of its page faults gone. The process's resident memory
  /// then stays at its peak. No effect without glibc.
  bool keep_freed_memory = true;
};

/// Applies `setup`; may not return (the BLAS relaunch). Returns the report after the changes.
RuntimeInfo configure_runtime(const RuntimeSetup& setup = {}, char** argv = nullptr);

/// The relaunch step alone: when openblas_kernel_to_select(info) has a value and KFAC_BLAS_AUTOSELECT is not "0",
/// sets OPENBLAS_CORETYPE and execv()s /proc/self/exe with `argv`; returns only if it did not (nothing to do, or
/// the exec failed, which is reported on stderr).
void relaunch_with_blas_kernel(const RuntimeInfo& info, char** argv);

/// Sets or clears FTZ/DAZ on the calling thread and on every thread of the OpenMP team. Returns whether the calling
/// thread's mode now matches (false where the CPU has no such mode).
bool set_flush_denormal(bool on);

/// Tells glibc's malloc to keep freed memory (see RuntimeSetup::keep_freed_memory). Returns whether it took effect
/// (false without glibc); runtime_info() reports it from then on.
bool keep_freed_memory();
/// Whether keep_freed_memory() took effect in this process.
bool freed_memory_kept();

}  // namespace kfac::runtime
