// TKFAC, trace-restricted K-FAC (Gao et al. 2020): F ≈ δ Φ ⊗ Ψ with δ = tr F, tr Φ = tr Ψ = 1.
//
// Per example b (rows s, locations t; Linear has T = 1):
//   Λ_b = Σ_t ā ā^T,  Γ_b = 1/|T| Σ_{s,t} g gᵀ           (the KFC per-example factors)
//   Φ_raw = E_b[tr(Γ_b) Λ_b],  Ψ_raw = E_b[tr(Λ_b) Γ_b]   (partial traces of F for Linear layers)
//   δ = E_b ‖∇_b‖²_F                                     (the exact trace of the block, Linear and Conv2d)
//   Φ = Φ_raw / tr Φ_raw,  Ψ = Ψ_raw / tr Ψ_raw.
// For Linear layers tr Φ_raw = tr Ψ_raw = δ, which is the paper's definition; for Conv2d the paper's exact form is
// unverified and this is the KFC analogue with the exact trace (docs/design.md). EMAs run on δ, Φ_raw, Ψ_raw.
//
// Damping (TraceDampingOptions::trace_damping):
//   Normal         (√δ Φ + √λ I) ⊗ (√δ Ψ + √λ I)     "TKFAC_nor", certain
//   TraceRelative  δ (Φ + √λ I) ⊗ (Ψ + √λ I)        "TKFAC_new", reconstructed: damping relative to the trace,
//                                                   so it cannot dominate the tiny Fisher of conv layers
#pragma once

#include <torch/arg.h>

#include <array>

#include "kfac/curvature/kronecker.h"

namespace kfac {

/// TKFAC / TEKFAC damping (docs/design.md, "TKFAC").
enum class TraceDamping {
  /// (√δ Φ + √λ I) ⊗ (√δ Ψ + √λ I): "TKFAC_nor".
  Normal,
  /// δ (Φ + √λ I) ⊗ (Ψ + √λ I): damping relative to the trace, for conv nets ("TKFAC_new", reconstructed).
  TraceRelative,
};
template <>
struct EnumNames<TraceDamping> {
  static constexpr const char* what = "trace damping";
  static constexpr std::array<std::pair<TraceDamping, const char*>, 2> names{
      {{TraceDamping::Normal, "normal"}, {TraceDamping::TraceRelative, "trace-relative"}}};
};

/// The options of TKFAC and TEKFAC.
struct TraceDampingOptions {
  static const OptionTable<TraceDampingOptions>& table();
  TORCH_ARG(TraceDamping, trace_damping) = TraceDamping::Normal;
};

class TkfacCurvature : public KroneckerCurvature {
 public:
  explicit TkfacCurvature(CurvatureContext context);
  std::string method() const override { return "tkfac"; }
  void update(const LayerStatistics& stats, double decay) override;
  void refresh(double damping) override { refresh_by_plan(damping); }
  std::vector<linalg::FactorRequest> plan_refresh(double damping) override;
  void finish_refresh(std::vector<linalg::FactorRequest>& decomposed, double damping) override;
  at::Tensor to_dense() const override;

  const at::Tensor& input_factor() const override { return phi_raw_; }
  const at::Tensor& output_factor() const override { return psi_raw_; }
  double kronecker_scale() const override;
  at::Tensor damped_spectrum(const at::Tensor& spectrum, double damping) const override;
  std::vector<std::pair<at::Tensor*, bool>> running_statistics() override {
    return {{&phi_raw_, true}, {&psi_raw_, true}, {&delta_, false}};
  }
  /// δ, the running trace estimate.
  double trace() const { return delta_.item<double>(); }

 protected:
  at::Tensor precondition_impl(const at::Tensor& grad_matrix, double damping) const override;
  std::vector<std::pair<std::string, at::Tensor*>> state_tensors() override;

  struct Scalars {
    double delta, trace_phi, trace_psi;
  };
  /// δ and the traces of Φ and Ψ, in one host read.
  Scalars read_scalars() const;

  at::Tensor phi_raw_, psi_raw_, delta_;  // running statistics
  double planned_delta_ = 1;              // δ as plan_refresh read it, for finish_refresh
  at::Tensor phi_inv_, psi_inv_;          // damped inverses
};

}  // namespace kfac
