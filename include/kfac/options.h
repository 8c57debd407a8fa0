// Options of the preconditioner: plain values with fluent setters, validated once when a Preconditioner is built.
//
//   auto opts = kfac::PreconditionerOptions().damping(1e-3).refresh_period(20).fisher(kfac::FisherType::Sampled);
//
// Every option is documented with its meaning, valid range and default. Presets reproduce published setups.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "kfac/global/two_level_options.h"

namespace kfac {

/// How the damping λ enters the Kronecker-factored inverse (docs/design.md, "Damping").
enum class DampingMode {
  /// (D1) Factored Tikhonov with π (Martens & Grosse §6.3): (A + π√λ I) ⊗ (G + √λ/π I). Cheapest to apply.
  Factored,
  /// (D2) Exact Tikhonov on the Kronecker product in its eigenbasis: (A ⊗ G + λ I)⁻¹. Needs eigendecompositions.
  Eigen,
};

/// How the damped factors are inverted at each refresh (only for DampingMode::Factored).
enum class InverseMethod {
  /// Cholesky when it gives the same inverse: factored damping and no eigenvalue floor; Eigen otherwise.
  Auto,
  /// From the eigendecomposition (applies eigenvalue_floor).
  Eigen,
  /// Cholesky factorization of the damped factor: 3–5 times cheaper than the eigendecomposition (bench/README.md).
  Cholesky,
};

/// Which Fisher the statistics estimate (docs/design.md, "Which Fisher").
enum class FisherType {
  /// True Fisher, targets sampled from the model's predictive distribution (the papers' default).
  Sampled,
  /// Empirical Fisher, from the training labels.
  Empirical,
  /// True Fisher computed exactly: one backward pass per output unit. For tiny models and tests.
  Exact,
};

/// TKFAC / TEKFAC damping (docs/design.md, "TKFAC").
enum class TraceDamping {
  /// (√δ Φ + √λ I) ⊗ (√δ Ψ + √λ I): "TKFAC_nor".
  Normal,
  /// δ (Φ + √λ I) ⊗ (Ψ + √λ I): damping relative to the trace, for conv nets ("TKFAC_new", reconstructed).
  TraceRelative,
};

struct PreconditionerOptions {
  /// Curvature method, by registered name: "kfac", "ekfac", "tkfac", "tekfac". Default "kfac".
  TORCH_ARG(std::string, method) = "kfac";
  /// Tikhonov damping λ added to the Fisher block, same meaning for Linear and Conv2d layers. > 0. Default 1e-3.
  TORCH_ARG(double, damping) = 1e-3;
  /// Damping form. Default Factored (D1).
  TORCH_ARG(DampingMode, damping_mode) = DampingMode::Factored;
  /// Inversion of damped factors for DampingMode::Factored. Cholesky is invalid with DampingMode::Eigen. Default Auto.
  TORCH_ARG(InverseMethod, inverse_method) = InverseMethod::Auto;
  /// Steps between statistics (factor) updates. >= 1. Default 1.
  TORCH_ARG(int64_t, stats_period) = 1;
  /// Steps between refreshes of the inverses / eigendecompositions. >= 1. Default 10.
  TORCH_ARG(int64_t, refresh_period) = 10;
  /// Recompute the decompositions on a worker thread while training continues with the current ones, adopting
  /// them at the next scheduled refresh (kfac/background_refresh.h: staleness at most 2·refresh_period − 1 steps).
  /// One process only. Default false.
  TORCH_ARG(bool, background_refresh) = false;
  /// Cap ε of the factor EMA: the k-th statistics update uses decay min(1 - 1/k, ema_decay). In [0, 1). Default 0.95.
  TORCH_ARG(double, ema_decay) = 0.95;
  /// Which Fisher the statistics estimate. Default Sampled.
  TORCH_ARG(FisherType, fisher) = FisherType::Sampled;
  /// Targets sampled per example for FisherType::Sampled. >= 1. Default 1.
  TORCH_ARG(int64_t, fisher_samples) = 1;
  /// Fraction of the minibatch used by the statistics pass (the first ceil(f·B) examples). In (0, 1]. Default 1.
  TORCH_ARG(double, stats_fraction) = 1.0;
  /// Dtype of factors and decompositions (Float or Double); nullopt = each layer's parameter dtype.
  TORCH_ARG(c10::optional<c10::ScalarType>, factor_dtype) = c10::nullopt;
  /// Eigenvalues below this are clamped to it (after the float64 retry). >= 0. Default 0.
  TORCH_ARG(double, eigenvalue_floor) = 0.0;
  /// Consecutive failed refreshes of one layer tolerated before step() throws. >= 1. Default 3.
  TORCH_ARG(int64_t, max_consecutive_failures) = 3;
  /// EKFAC / TEKFAC: statistics updates between spectrum updates (the spectrum's own period). >= 1. Default 1.
  TORCH_ARG(int64_t, spectrum_period) = 1;
  /// EKFAC / TEKFAC: reset the spectrum to the base method's eigenvalues at each refresh. Default true.
  TORCH_ARG(bool, reset_spectrum) = true;
  /// TKFAC / TEKFAC damping form. Default Normal.
  TORCH_ARG(TraceDamping, trace_damping) = TraceDamping::Normal;
  /// The global stage after the per-layer preconditioning (two-level coarse correction, block-tridiagonal).
  TORCH_ARG(TwoLevelOptions, two_level) = {};
  /// Keep the last statistics step's per-example data for Fisher–vector products (Preconditioner::captured_fisher).
  /// Implied by a two-level coarse space. Default false.
  TORCH_ARG(bool, retain_statistics) = false;
  /// Distributed runs (kfac/distributed/placement.h): the fraction of ranks that hold each layer's decompositions and
  /// precondition its gradient (KAISA's gradient workers). 1/ranks = memory-optimal, 1 = communication-optimal.
  /// In (0, 1]. Default 1.
  TORCH_ARG(double, grad_worker_fraction) = 1.0;
  /// Seed of the sampled targets; step k uses a generator seeded from (seed, k), so runs resume exactly. Default 0.
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Throws c10::Error naming the first invalid option, its value and the valid range.
void validate(const PreconditionerOptions& options);
/// Whether refreshes invert the damped factors by Cholesky (InverseMethod::Auto resolved).
bool inverts_by_cholesky(const PreconditionerOptions& options);

std::string to_string(DampingMode mode);
std::string to_string(InverseMethod method);
std::string to_string(FisherType type);
std::string to_string(TraceDamping damping);
TraceDamping parse_trace_damping(const std::string& name);
DampingMode parse_damping_mode(const std::string& name);
InverseMethod parse_inverse_method(const std::string& name);
FisherType parse_fisher_type(const std::string& name);

namespace presets {
/// Martens & Grosse 2015 as far as the preconditioner goes: statistics on 1/8 of the batch every step,
/// refresh every 20 steps (T3), factored damping with π, sampled true Fisher.
PreconditionerOptions kfac_paper();
/// The widely used PyTorch ports (alecwang, kfac-pytorch): eigen-Tikhonov damping 1e-3, full-batch statistics.
PreconditionerOptions pytorch_ports();
}  // namespace presets

}  // namespace kfac
