// Flags that have no effect on the method they are given with (`--damping` on adam, `--spectrum-period` on kfac,
// `--initial-lambda` without the quadratic model): one warning each, naming the flag, the method and what the flag
// applies to, so that a run is never silently different from what its command line seems to ask for. `kfac train`
// and `kfac compare` (per method) print them before training.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "train.h"

namespace kfac::tool {

/// The warnings for the flags given to `cmd` (on the command line or in a config file) under `method`.
std::vector<std::string> ineffective_flags(const CLI::App& cmd, const TrainConfig& cfg, const std::string& method);

}  // namespace kfac::tool
