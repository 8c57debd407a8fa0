// Options of the preconditioner, in blocks, each described once by its OptionTable (kfac/util/option_table.h):
//
//   schedule      when statistics are updated and decompositions refreshed, the EMA
//   fisher        which Fisher the statistics estimate, and from how much of the batch
//   layers        how the layer kinds form their blocks (weight sharing, normalization layers)
//   damping       λ and how it enters the inverse
//   numerics      factor dtype, inversion, eigenvalue floor, failure policy
//   distributed   how the work is shared among ranks
//   global_stage  what follows the per-layer preconditioning, by registered name (kfac/global/stage_registry.h)
//   own blocks    the options of one curvature method or global stage, declared in its own header
//                 (EigenCorrectedOptions, TwoLevelOptions, ...) and set with with()
//
// A curvature method receives only the damping and numerics blocks and its own (CurvatureContext); a global stage
// its own (GlobalStageContext). The fields are
// also reachable flat, with fluent setters, and validated once when a Preconditioner is built:
//
//   auto opts = kfac::PreconditionerOptions().damping(1e-3).refresh_period(20).fisher(kfac::FisherType::Sampled)
//                   .with(kfac::EigenCorrectedOptions().spectrum_period(5));
//   auto two = kfac::PreconditionerOptions().global_stage("two-level").with(kfac::two_level(kfac::CoarseSpace::Residual));
//
// Presets reproduce published setups.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kfac/curvature/curvature_options.h"
#include "kfac/fisher/fisher_options.h"
#include "kfac/global/global_stage_options.h"
#include "kfac/layers/layer_options.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct ScheduleOptions {
  static const OptionTable<ScheduleOptions>& table();
  TORCH_ARG(int64_t, stats_period) = 1;
  TORCH_ARG(int64_t, refresh_period) = 10;
  TORCH_ARG(double, ema_decay) = 0.95;
  TORCH_ARG(bool, background_refresh) = false;
};

struct DistributedOptions {
  static const OptionTable<DistributedOptions>& table();
  TORCH_ARG(double, grad_worker_fraction) = 1.0;
};

/// What the parameters that no layer kind covers get (src/preconditioner/fallback.h).
enum class FallbackKind {
  /// Their raw gradient.
  Identity,
  /// Adam's second-moment normalization g / (√v̂ + ε), times fallback_scale.
  Adam,
};
template <>
struct EnumNames<FallbackKind> {
  static constexpr const char* what = "fallback";
  static constexpr std::array<std::pair<FallbackKind, const char*>, 2> names{
      {{FallbackKind::Identity, "identity"}, {FallbackKind::Adam, "adam"}}};
};

struct FallbackOptions {
  static const OptionTable<FallbackOptions>& table();
  TORCH_ARG(FallbackKind, fallback) = FallbackKind::Identity;
  TORCH_ARG(double, fallback_beta2) = 0.999;
  TORCH_ARG(double, fallback_epsilon) = 1e-8;
  TORCH_ARG(double, fallback_scale) = 1.0;
};

// clang-format off
// A flat accessor pair for a field of a shared block.
#define KFAC_FLAT_OPTION(block, T, name)                          \
  PreconditionerOptions& name(const T& value) {                   \
    block##_.name(value);                                         \
    return *this;                                                 \
  }                                                               \
  const T& name() const noexcept { return block##_.name(); }
// clang-format on

struct PreconditionerOptions {
  /// The root fields (the method).
  static const OptionTable<PreconditionerOptions>& table();

  /// Curvature method, by registered name: "kfac", "ekfac", "tkfac", "tekfac". Default "kfac".
  TORCH_ARG(std::string, method) = "kfac";
  TORCH_ARG(ScheduleOptions, schedule_options);
  TORCH_ARG(FisherOptions, fisher_options);
  TORCH_ARG(LayerOptions, layer_options);
  TORCH_ARG(DampingOptions, damping_options);
  TORCH_ARG(NumericsOptions, numerics_options);
  TORCH_ARG(DistributedOptions, distributed_options);
  TORCH_ARG(GlobalStageOptions, global_options);
  TORCH_ARG(FallbackOptions, fallback_options);

 public:
  /// Sets the block of a method or a global stage (EigenCorrectedOptions, TraceDampingOptions, TwoLevelOptions, a
  /// user method's own).
  template <class B>
  PreconditionerOptions& with(B block) {
    own_blocks_.set(std::move(block));
    return *this;
  }
  /// A method's or stage's block as set, or its defaults.
  template <class B>
  const B& get() const {
    return own_blocks_.get<B>();
  }
  const OptionBlocks& own_blocks() const { return own_blocks_; }
  OptionBlocks& own_blocks() { return own_blocks_; }

  // The shared blocks' fields, flat. Meaning, range and default: each block's table (src/preconditioner/options.cpp;
  // listed in docs/options.md and `kfac train --help`).
  KFAC_FLAT_OPTION(schedule_options, int64_t, stats_period)
  KFAC_FLAT_OPTION(schedule_options, int64_t, refresh_period)
  KFAC_FLAT_OPTION(schedule_options, double, ema_decay)
  KFAC_FLAT_OPTION(schedule_options, bool, background_refresh)
  KFAC_FLAT_OPTION(fisher_options, FisherType, fisher)
  KFAC_FLAT_OPTION(fisher_options, int64_t, fisher_samples)
  KFAC_FLAT_OPTION(fisher_options, double, stats_fraction)
  KFAC_FLAT_OPTION(fisher_options, int64_t, stats_positions)
  KFAC_FLAT_OPTION(fisher_options, uint64_t, seed)
  KFAC_FLAT_OPTION(fisher_options, bool, retain_statistics)
  KFAC_FLAT_OPTION(layer_options, WeightSharing, weight_sharing)
  KFAC_FLAT_OPTION(layer_options, int64_t, norm_full_max_features)
  KFAC_FLAT_OPTION(layer_options, int64_t, factor_full_max_dim)
  KFAC_FLAT_OPTION(layer_options, std::string, exclude)
  KFAC_FLAT_OPTION(damping_options, double, damping)
  KFAC_FLAT_OPTION(damping_options, DampingMode, damping_mode)
  KFAC_FLAT_OPTION(numerics_options, c10::optional<c10::ScalarType>, factor_dtype)
  KFAC_FLAT_OPTION(numerics_options, InverseMethod, inverse_method)
  KFAC_FLAT_OPTION(numerics_options, double, eigenvalue_floor)
  KFAC_FLAT_OPTION(numerics_options, int64_t, eigenbasis_iterations)
  KFAC_FLAT_OPTION(numerics_options, int64_t, max_consecutive_failures)
  KFAC_FLAT_OPTION(numerics_options, StatisticsPrecision, statistics_precision)
  KFAC_FLAT_OPTION(distributed_options, double, grad_worker_fraction)
  KFAC_FLAT_OPTION(global_options, std::string, global_stage)
  KFAC_FLAT_OPTION(fallback_options, FallbackKind, fallback)
  KFAC_FLAT_OPTION(fallback_options, double, fallback_beta2)
  KFAC_FLAT_OPTION(fallback_options, double, fallback_epsilon)
  KFAC_FLAT_OPTION(fallback_options, double, fallback_scale)

 private:
  OptionBlocks own_blocks_;
};
#undef KFAC_FLAT_OPTION

/// Throws c10::Error naming the first invalid option, its value and the valid range.
void validate(const PreconditionerOptions& options);

// Generic access through the tables: what the CLI, config files, JSON, checkpoints and Python use.
/// The blocks in effect: the root, the shared blocks, then the blocks of options.method() and of
/// options.global_stage() (or, with `every_method`, of every registered method and stage, each once).
std::vector<OptionBlockRef> option_blocks(const PreconditionerOptions& options, bool every_method = false);
/// Every option's spec, in block order (every registered method's and stage's blocks included).
std::vector<OptionSpec> option_specs();
/// The option called `name` (any block). Unknown names throw naming the closest valid one.
OptionValue get_option(const PreconditionerOptions& options, const std::string& name);
/// Sets the option called `name` (any block) from a value of its type or its text form; checks its range.
void set_option(PreconditionerOptions& options, const std::string& name, const OptionValue& value);
/// The options in effect as (block, field name, value) rows: the metrics JSON and the checkpoint record.
struct OptionRecord {
  std::string block, name;
  OptionValue value;
};
std::vector<OptionRecord> option_records(const PreconditionerOptions& options);
/// "refresh_period: 10 (saved) -> 20 (now)" for every option in effect that differs.
std::vector<std::string> option_differences(const std::vector<OptionRecord>& saved, const PreconditionerOptions& now);
bool operator==(const PreconditionerOptions& a, const PreconditionerOptions& b);
inline bool operator!=(const PreconditionerOptions& a, const PreconditionerOptions& b) { return !(a == b); }

namespace presets {
/// Martens & Grosse 2015 as far as the preconditioner goes: statistics on 1/8 of the batch every step,
/// refresh every 20 steps (T3), factored damping with π, sampled true Fisher.
PreconditionerOptions kfac_paper();
/// The widely used PyTorch ports (alecwang, kfac-pytorch): eigen-Tikhonov damping 1e-3, full-batch statistics.
PreconditionerOptions pytorch_ports();
}  // namespace presets

}  // namespace kfac
