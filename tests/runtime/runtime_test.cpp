// The runtime report's decisions (kfac/runtime/), with injected machine facts: no test depends on the CPU, the BLAS
// kernel or the thread counts of the machine it runs on.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kfac/runtime/openblas_kernel.h"
#include "kfac/runtime/runtime_info.h"
#include "kfac/runtime/setup.h"

namespace {

using kfac::runtime::RuntimeInfo;

const std::vector<std::string> kSse = {"sse3", "ssse3", "sse4_1", "sse4_2"};
std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}
const auto kAvx = with(kSse, {"avx"});
const auto kAvx2 = with(kAvx, {"avx2", "fma", "f16c"});
const auto kAvx512 = with(kAvx2, {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"});
const auto kAvx512Bf16 = with(kAvx512, {"avx512_bf16", "avx512_vnni"});

// A machine with nothing to warn about, then changed by each case.
RuntimeInfo healthy() {
  RuntimeInfo r;
  r.blas.library = "OpenBLAS";
  r.blas.kernel = "Haswell";
  r.blas.threads = 4;
  r.cpu.flags = kAvx2;
  r.cpu.available_cores = r.cpu.logical_cores = 4;
  r.threads.intra_op = 4;
  r.flush_denormal = true;
  return r;
}

bool has_warning(const RuntimeInfo& r, const std::string& id) {
  const auto w = kfac::runtime::diagnose(r);
  return std::any_of(w.begin(), w.end(), [&](const auto& x) { return x.id == id; });
}

std::string warning_text(const RuntimeInfo& r, const std::string& id) {
  for (const auto& w : kfac::runtime::diagnose(r))
    if (w.id == id) return w.what + " | " + w.fix;
  return "";
}

TEST(RuntimeInfo, AHealthyMachineHasNoWarnings) { EXPECT_TRUE(kfac::runtime::diagnose(healthy()).empty()); }

struct KernelCase {
  std::string core;
  std::vector<std::string> flags;
  std::string expected;  ///< the OPENBLAS_CORETYPE chosen; "" = none, and no kernel warning
};

class KernelChoice : public ::testing::TestWithParam<KernelCase> {};

TEST_P(KernelChoice, SelectsTheBestKernelOnlyWhenTheChosenOneIsBelowTheCpu) {
  const auto& c = GetParam();
  auto r = healthy();
  r.blas.kernel = c.core;
  r.cpu.flags = c.flags;
  const auto choice = kfac::runtime::openblas_kernel_to_select(r);
  EXPECT_EQ(choice.value_or(""), c.expected);
  EXPECT_EQ(has_warning(r, "blas-kernel"), !c.expected.empty());
  if (!c.expected.empty()) {
    EXPECT_NE(warning_text(r, "blas-kernel").find("export OPENBLAS_CORETYPE=" + c.expected), std::string::npos)
        << warning_text(r, "blas-kernel");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, KernelChoice,
    ::testing::Values(KernelCase{"Prescott", kAvx512Bf16, "Cooperlake"},  // Sapphire/Emerald Rapids on 0.3.21
                      KernelCase{"Prescott", kAvx512, "SkylakeX"}, KernelCase{"Prescott", kAvx2, "Haswell"},
                      KernelCase{"prescott", kAvx2, "Haswell"},  // names compare case-insensitively
                      KernelCase{"Prescott", kAvx, "Sandybridge"}, KernelCase{"Nehalem", kAvx2, "Haswell"},
                      KernelCase{"Sandybridge", kAvx2, "Haswell"}, KernelCase{"Haswell", kAvx512, "SkylakeX"},
                      KernelCase{"Prescott", kSse, ""},  // nothing better for an SSE-only CPU
                      KernelCase{"Haswell", kAvx2, ""}, KernelCase{"Zen", kAvx2, ""},
                      KernelCase{"SkylakeX", kAvx512, ""}, KernelCase{"Cooperlake", kAvx512Bf16, ""},
                      KernelCase{"SkylakeX", kAvx512Bf16, ""},    // same level: no relaunch for BF16 alone
                      KernelCase{"SomeFutureCore", kAvx512, ""},  // unknown name: decide nothing
                      KernelCase{"", kAvx512, ""}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(RuntimeInfo, AValueAlreadySetIsKeptAndTheWarningSaysSo) {
  auto r = healthy();
  r.blas.kernel = "Prescott";
  r.cpu.flags = kAvx512;
  r.blas.coretype_env = "Prescott";
  EXPECT_FALSE(kfac::runtime::openblas_kernel_to_select(r).has_value());
  const auto text = warning_text(r, "blas-kernel");
  EXPECT_NE(text.find("OPENBLAS_CORETYPE=Prescott is set"), std::string::npos) << text;
  EXPECT_NE(text.find("SkylakeX"), std::string::npos) << text;
  EXPECT_FALSE(has_warning(r, "blas-coretype-ignored"));  // it was applied
}

TEST(RuntimeInfo, ACoretypeThatOpenblasDidNotApplyIsReported) {
  auto r = healthy();
  r.blas.coretype_env = "NoSuchCore";
  EXPECT_TRUE(has_warning(r, "blas-coretype-ignored"));
  r.blas.coretype_env = "haswell";
  EXPECT_FALSE(has_warning(r, "blas-coretype-ignored"));
}

TEST(RuntimeInfo, OtherBlasLibrariesAreNeverRelaunched) {
  auto r = healthy();
  r.blas.library = "MKL";
  r.blas.kernel = "Prescott";
  EXPECT_FALSE(kfac::runtime::openblas_kernel_to_select(r).has_value());
  EXPECT_FALSE(has_warning(r, "blas-kernel"));
}

TEST(RuntimeInfo, FewerThreadsThanCoresWarnsUnlessAskedForOrShared) {
  auto r = healthy();
  r.cpu.available_cores = 2;
  r.threads.intra_op = 1;  // LibTorch 1.13 on two vCPUs of one physical core
  EXPECT_NE(warning_text(r, "threads").find("at::set_num_threads(2)"), std::string::npos);
  r.threads.requested = true;  // OMP_NUM_THREADS=1 or --threads 1
  EXPECT_FALSE(has_warning(r, "threads"));
  r.threads.requested = false;
  r.threads.local_ranks = 2;  // two local ranks, one core each
  EXPECT_FALSE(has_warning(r, "threads"));
}

TEST(RuntimeInfo, BlasThreadsBelowLibTorchsWarn) {
  auto r = healthy();
  r.blas.threads = 1;
  EXPECT_TRUE(has_warning(r, "blas-threads"));
  r.blas.threads = -1;  // unknown
  EXPECT_FALSE(has_warning(r, "blas-threads"));
}

TEST(RuntimeInfo, AnInvalidOmpNumThreadsWarnsByName) {
  auto r = healthy();
  for (const char* bad : {"-3", "0", "two", "2x", " "}) {
    r.threads.omp_env = bad;
    EXPECT_NE(warning_text(r, "omp-num-threads").find(std::string("OMP_NUM_THREADS='") + bad + "'"), std::string::npos)
        << bad;
  }
  for (const char* good : {"1", "16"}) {
    r.threads.omp_env = good;
    EXPECT_FALSE(has_warning(r, "omp-num-threads")) << good;
  }
}

TEST(RuntimeInfo, KeptSubnormalsWarn) {
  auto r = healthy();
  r.flush_denormal = false;
  EXPECT_NE(warning_text(r, "subnormals").find("setFlushDenormal(true)"), std::string::npos);
}

TEST(RuntimeInfo, ReturnedFreedMemoryWarnsUnderGlibcOnly) {
  auto r = healthy();
  r.glibc = true;
  r.freed_memory_kept = false;
  EXPECT_NE(warning_text(r, "freed-memory").find("keep_freed_memory()"), std::string::npos);
  r.glibc = false;
  EXPECT_FALSE(has_warning(r, "freed-memory"));
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
// A 20 MiB block after keep_freed_memory(): served from the heap (glibc would mmap it by default, as any block over
// 128 KiB until its adaptive threshold grows), and still held by the process after free (no trim).
TEST(RuntimeSetup, KeepFreedMemoryServesLargeBlocksFromTheHeapAndKeepsThem) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer's allocator replaces glibc's: mallopt is refused, and keep_freed_memory() says so.
  EXPECT_FALSE(kfac::runtime::keep_freed_memory());
  GTEST_SKIP() << "malloc is the sanitizer's here, not glibc's";
#endif
  ASSERT_TRUE(kfac::runtime::keep_freed_memory());
  EXPECT_TRUE(kfac::runtime::runtime_info().freed_memory_kept);
  EXPECT_FALSE(has_warning(kfac::runtime::runtime_info(), "freed-memory"));
  constexpr size_t kBlock = 20u << 20;
  const auto mapped_before = mallinfo2().hblkhd;
  void* block = std::malloc(kBlock);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBlock);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before) << "the block was mmap'd";
  const auto held = mallinfo2().arena;
  std::free(block);
  EXPECT_EQ(mallinfo2().arena, held) << "the heap was trimmed";
}
#endif

TEST(RuntimeInfo, ProbeReportsThisProcess) {
  const auto r = kfac::runtime::runtime_info();
  EXPECT_EQ(r.torch.version, TORCH_VERSION);
  EXPECT_GE(r.cpu.available_cores, 1);
  EXPECT_GE(r.cpu.logical_cores, r.cpu.available_cores);
  EXPECT_EQ(r.threads.intra_op, at::get_num_threads());
  EXPECT_EQ(r.torch.cuda_devices, static_cast<int>(torch::cuda::device_count()));
  if (r.blas.library == "OpenBLAS") {
    EXPECT_FALSE(r.blas.kernel.empty());
  }
  EXPECT_EQ(r.warnings.size(), kfac::runtime::diagnose(r).size());
}

#if defined(__x86_64__) || defined(__i386__)
// Whether a subnormal input survives a multiplication on the calling thread.
bool subnormals_survive() {
  volatile float tiny = 1e-39f, one = 1.0f;
  return tiny * one != 0.0f;
}

// For each thread of the calling thread's OpenMP team (the one LibTorch's intra-op work and an OpenMP OpenBLAS run
// on): 1 if subnormals survive there, 0 if flushed. This file is compiled with OpenMP (tests/CMakeLists.txt).
std::vector<int> survival_in_team(int threads) {
  std::vector<int> survived(static_cast<size_t>(threads), -1);
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  survived[static_cast<size_t>(omp_get_thread_num())] = subnormals_survive() ? 1 : 0;
#endif
  return survived;
}

TEST(RuntimeSetup, FlushDenormalReachesEveryThreadOfTheTeam) {
#ifndef _OPENMP
  GTEST_SKIP() << "built without OpenMP";
#endif
  const int saved = at::get_num_threads(), threads = std::max(2, saved);
  at::set_num_threads(threads);
  for (int s : survival_in_team(threads)) ASSERT_EQ(s, 1);  // the team exists before the mode changes
  ASSERT_TRUE(kfac::runtime::set_flush_denormal(true));
  EXPECT_TRUE(kfac::runtime::runtime_info().flush_denormal);
  EXPECT_FALSE(subnormals_survive());
  for (int s : survival_in_team(threads)) EXPECT_EQ(s, 0);
  kfac::runtime::set_flush_denormal(false);
  EXPECT_FALSE(kfac::runtime::runtime_info().flush_denormal);
  for (int s : survival_in_team(threads)) EXPECT_EQ(s, 1);
  at::set_num_threads(saved);
}
#endif

}  // namespace
