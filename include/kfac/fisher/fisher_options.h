// The option block of the statistics: which Fisher they estimate, and from how much of the batch
// (kfac/preconditioner/options.h gathers every block).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>

#include "kfac/util/option_table.h"

namespace kfac {

/// Which Fisher the statistics estimate (docs/design.md §4, decision 8).
enum class FisherType {
  /// True Fisher, targets sampled from the model's predictive distribution (the papers' default).
  Sampled,
  /// Empirical Fisher, from the training labels.
  Empirical,
  /// True Fisher computed exactly: one backward pass per output unit. For tiny models and tests.
  Exact,
};

template <>
struct EnumNames<FisherType> {
  static constexpr const char* what = "Fisher type";
  static constexpr std::array<std::pair<FisherType, const char*>, 3> names{
      {{FisherType::Sampled, "sampled"}, {FisherType::Empirical, "empirical"}, {FisherType::Exact, "exact"}}};
};

struct FisherOptions {
  static const OptionTable<FisherOptions>& table();
  TORCH_ARG(FisherType, fisher) = FisherType::Sampled;
  TORCH_ARG(int64_t, fisher_samples) = 1;
  TORCH_ARG(double, stats_fraction) = 1.0;
  TORCH_ARG(int64_t, stats_positions) = 64;  ///< 0: every shared position; see StatisticsPass::positions_to_sample
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(bool, retain_statistics) = false;
};

}  // namespace kfac
