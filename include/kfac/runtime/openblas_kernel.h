// Which OpenBLAS kernel family a CPU deserves. OpenBLAS's DYNAMIC_ARCH builds pick their kernels from the CPU model;
// a model they do not know (Debian 12's OpenBLAS 0.3.21 on Intel's family 6 model 207, for one) gets the SSE3
// "Prescott" kernels, about 5x slower for float32 products. OPENBLAS_CORETYPE, read when the library loads,
// overrides the choice: the fix is to set it before the process starts (kfac::runtime::relaunch_with_blas_kernel).
//
// Kernel families are compared by the widest vector instruction set they use: SSE (0) < AVX (1) < AVX2 (2) <
// AVX-512 (3). Pure functions of names and flags, tested with a table of (core name, CPU flags).
#pragma once

#include <optional>
#include <string>

#include "kfac/runtime/runtime_info.h"

namespace kfac::runtime {

/// The instruction-set level of an OpenBLAS core name (case-insensitive): 0 SSE, 1 AVX, 2 AVX2, 3 AVX-512;
/// -1 for a name this table does not know (nothing is then decided from it).
int openblas_kernel_level(const std::string& core);

/// "SSE", "AVX", "AVX2" or "AVX-512" for a level; "unknown" otherwise.
std::string instruction_set_name(int level);

/// The best OpenBLAS core name whose kernels this CPU can run: "Cooperlake" (AVX-512 with BF16), "SkylakeX"
/// (AVX-512 F/CD/BW/DQ/VL), "Haswell" (AVX2 and FMA), "Sandybridge" (AVX); "" when only SSE kernels apply.
std::string best_openblas_kernel(const Cpu& cpu);

/// The OPENBLAS_CORETYPE value to start this process with, if any: the best kernel for the CPU when the BLAS is
/// OpenBLAS, OPENBLAS_CORETYPE is unset, and the chosen kernel is of a lower level than that. Never a value when the
/// variable is already set (a user's or machine's choice) or the chosen kernel's level is unknown.
std::optional<std::string> openblas_kernel_to_select(const RuntimeInfo& info);

}  // namespace kfac::runtime
