// The runtime report (kfac/runtime/runtime_info.h) as JSON, for `kfac info --json`, the metrics JSON and the
// compare summary: every published figure says which kernel and how many threads produced it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "kfac/runtime/runtime_info.h"

namespace kfac::tool {

nlohmann::json runtime_json(const runtime::RuntimeInfo& info);

/// One line for report headers: "LibTorch 1.13.0, OpenBLAS kernel Haswell, 2 intra-op threads, subnormals flushed".
std::string runtime_summary(const runtime::RuntimeInfo& info);

}  // namespace kfac::tool
