#include "kfac/runtime/openblas_kernel.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace kfac::runtime {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
}  // namespace

int openblas_kernel_level(const std::string& core) {
  // OpenBLAS's x86-64 core names (driver/others/dynamic.c) by the kernels they select. Excavator and Steamroller
  // run the Haswell kernels; Bulldozer and Piledriver AVX ones.
  static const std::pair<const char*, int> table[] = {
      {"katmai", 0},      {"coppermine", 0},    {"northwood", 0},    {"prescott", 0},   {"banias", 0},
      {"atom", 0},        {"core2", 0},         {"penryn", 0},       {"dunnington", 0}, {"nehalem", 0},
      {"athlon", 0},      {"opteron", 0},       {"opteron_sse3", 0}, {"barcelona", 0},  {"nano", 0},
      {"bobcat", 0},      {"sandybridge", 1},   {"bulldozer", 1},    {"piledriver", 1}, {"haswell", 2},
      {"steamroller", 2}, {"excavator", 2},     {"zen", 2},          {"dhyana", 2},     {"skylakex", 3},
      {"cooperlake", 3},  {"sapphirerapids", 3}};
  const auto name = lower(core);
  for (const auto& [n, level] : table)
    if (name == n) return level;
  return -1;
}

std::string instruction_set_name(int level) {
  switch (level) {
    case 0:
      return "SSE";
    case 1:
      return "AVX";
    case 2:
      return "AVX2";
    case 3:
      return "AVX-512";
    default:
      return "unknown";
  }
}

std::string best_openblas_kernel(const Cpu& cpu) {
  const bool avx512 = cpu.has("avx512f") && cpu.has("avx512cd") && cpu.has("avx512bw") && cpu.has("avx512dq") &&
                      cpu.has("avx512vl");
  if (avx512 && cpu.has("avx512_bf16")) return "Cooperlake";
  if (avx512) return "SkylakeX";
  if (cpu.has("avx2") && cpu.has("fma")) return "Haswell";
  if (cpu.has("avx")) return "Sandybridge";
  return "";
}

std::optional<std::string> openblas_kernel_to_select(const RuntimeInfo& info) {
  if (info.blas.library != "OpenBLAS" || !info.blas.coretype_env.empty()) return std::nullopt;
  const int chosen = openblas_kernel_level(info.blas.kernel);
  const auto best = best_openblas_kernel(info.cpu);
  if (chosen < 0 || best.empty() || chosen >= openblas_kernel_level(best)) return std::nullopt;
  return best;
}

}  // namespace kfac::runtime
