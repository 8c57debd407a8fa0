#include "runtime_report.h"

#include "kfac/runtime/openblas_kernel.h"

namespace kfac::tool {

nlohmann::json runtime_json(const runtime::RuntimeInfo& r) {
  nlohmann::json j;
  j["torch"] = {{"version", r.torch.version},
                {"cuda_built", r.torch.cuda_built},
                {"cuda_devices", r.torch.cuda_devices},
                {"distributed_backends", r.torch.distributed_backends}};
  j["blas"] = {{"library", r.blas.library},
               {"config", r.blas.config},
               {"kernel", r.blas.kernel},
               {"kernel_instruction_set", runtime::instruction_set_name(runtime::openblas_kernel_level(r.blas.kernel))},
               {"best_kernel", runtime::best_openblas_kernel(r.cpu)},
               {"threads", r.blas.threads},
               {"openblas_coretype_env", r.blas.coretype_env},
               {"relaunched_from", r.blas.relaunched_from}};
  j["cpu"] = {{"vendor", r.cpu.vendor},
              {"model_name", r.cpu.model_name},
              {"family", r.cpu.family},
              {"model", r.cpu.model},
              {"flags", r.cpu.flags},
              {"logical_cores", r.cpu.logical_cores},
              {"available_cores", r.cpu.available_cores},
              {"physical_cores", r.cpu.physical_cores}};
  j["threads"] = {{"intra_op", r.threads.intra_op},
                  {"inter_op", r.threads.inter_op},
                  {"openmp", r.threads.openmp},
                  {"blas", r.blas.threads},
                  {"local_ranks", r.threads.local_ranks}};
  j["flush_denormal"] = r.flush_denormal;
  j["freed_memory_kept"] = r.freed_memory_kept;
  j["warnings"] = nlohmann::json::array();
  for (const auto& w : r.warnings) j["warnings"].push_back({{"id", w.id}, {"what", w.what}, {"fix", w.fix}});
  return j;
}

std::string runtime_summary(const runtime::RuntimeInfo& r) {
  return "LibTorch " + r.torch.version + ", " + r.blas.library +
         (r.blas.kernel.empty() ? std::string() : " kernel " + r.blas.kernel) + ", " +
         std::to_string(r.threads.intra_op) + " intra-op thread(s), " +
         (r.flush_denormal ? "subnormals flushed" : "subnormals kept") + ", CPU " + r.cpu.model_name;
}

}  // namespace kfac::tool
