// The option block of the layer kinds: how they form their blocks (kfac/preconditioner/options.h gathers every
// block).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>

#include "kfac/layers/weight_sharing.h"
#include "kfac/util/option_table.h"

namespace kfac {

/// How the layer kinds form their blocks (docs/design.md §13).
struct LayerOptions {
  static const OptionTable<LayerOptions>& table();
  TORCH_ARG(WeightSharing, weight_sharing) = WeightSharing::Expand;
  TORCH_ARG(int64_t, norm_full_max_features) = 256;
  TORCH_ARG(int64_t, factor_full_max_dim) = 2048;
  TORCH_ARG(std::string, exclude) = "";
};

}  // namespace kfac
