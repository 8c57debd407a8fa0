// The K-FAC paper's own step rule (Martens & Grosse 2015, §6-7): the update δ = αΔ + μδ₀ minimises the exact
// quadratic model M(δ) = h + ∇hᵀδ + ½δᵀ(G + (λ + η)I)δ on the minibatch, where Δ = −F̃_γ⁻¹∇h is the preconditioned
// direction, δ₀ the previous update and G the exact Gauss-Newton matrix (kfac/fisher/curvature_products.h). Two dampings
// adapt themselves:
//   λ (Levenberg-Marquardt, every T1 steps): ρ = (h(θ+δ) − h(θ)) / (M(δ) − M(0)) on the same minibatch;
//       ρ < 1/4 or NaN → λ ← λ/ω1,  ρ > 3/4 → λ ← ω1·λ,  ω1 = lambda_decay^T1.
//   γ (the preconditioner's damping, used as γ² by it; every T2 steps): the best of {ω2γ, γ, γ/ω2} by the
//       objective after the full update, ω2 = gamma_decay^T2, clamped to [√η, gamma_max].
// η is an L2 term of the objective (added to the gradient and to h). Decisions: docs/design.md §4, decision 4.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "kfac/fisher/likelihood.h"
#include "kfac/preconditioner/preconditioner.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct QModelOptions {
  /// The fields described once (the Python keywords come from it).
  static const OptionTable<QModelOptions>& table();
  /// λ₀, the initial Levenberg-Marquardt damping. > 0. Default 150 (the paper).
  TORCH_ARG(double, initial_lambda) = 150.0;
  /// η, the L2 coefficient of the objective (all parameters, biases included). >= 0. Default 1e-5.
  TORCH_ARG(double, l2) = 1e-5;
  /// T1, steps between λ updates. >= 1. Default 5.
  TORCH_ARG(int64_t, lambda_period) = 5;
  /// ω1 = lambda_decay^T1. In (0, 1). Default 0.95 (19/20).
  TORCH_ARG(double, lambda_decay) = 0.95;
  /// T2, steps between γ adaptations. >= 1. Default 20.
  TORCH_ARG(int64_t, gamma_period) = 20;
  /// ω2 = gamma_decay^T2. In (0, 1). Default √(19/20).
  TORCH_ARG(double, gamma_decay) = 0.974679434480896;
  /// Adapt γ by trying candidates; false: γ = √(λ + η) at every step (tselepidis adapt_gamma=0).
  TORCH_ARG(bool, adapt_gamma) = true;
  /// Upper bound on γ; 0 = none (the paper). grosse-jax uses 1.
  TORCH_ARG(double, gamma_max) = 0.0;
  /// ρ's denominator includes the λ‖δ‖²/2 term (grosse-jax, default) or not (tf-kfac, kfac-jax).
  TORCH_ARG(bool, rho_includes_damping) = true;
  /// Use the previous update as a second direction (momentum from the quadratic model).
  TORCH_ARG(bool, momentum) = true;
  /// Decay of the iterate average used for evaluation: θ̄ ← d θ̄ + (1 − d) θ from zero, debiased by 1 − dᵏ.
  /// 0 disables. Default 0.99.
  TORCH_ARG(double, averaging_decay) = 0.99;
};

void validate(const QModelOptions& options);

/// Minimiser of ½ xᵀ M x + cᵀ x for the leading n×n block (n = 1 or 2): x = −M⁻¹c. `change` = ½ cᵀx = M(x) − M(0).
/// Falls back to the single direction if the 2×2 system is singular.
struct QuadraticSolution {
  double alpha = 0, mu = 0, change = 0;
};
QuadraticSolution solve_quadratic_model(const std::array<std::array<double, 2>, 2>& m, const std::array<double, 2>& c,
                                        int n);

/// The Levenberg-Marquardt rule: λ/ω1 if ρ < 1/4 or NaN, ω1·λ if ρ > 3/4, else λ.
double update_lambda(double lambda, double rho, double omega1);

/// The γ candidates {ω2γ, γ, γ/ω2}, clamped to [√η, gamma_max] (gamma_max 0 = none), duplicates removed.
std::vector<double> gamma_candidates(double gamma, double omega2, double eta, double gamma_max);

struct QModelStats {
  StepStats preconditioner;
  double alpha = 0, mu = 0;
  double lambda = 0, gamma = 0;
  double rho = NAN;         ///< reduction ratio, when λ was updated this step
  double model_change = 0;  ///< M(δ) − M(0) (as used in ρ)
  bool gamma_adapted = false;
};

class QModelOptimizer {
 public:
  /// All trainable parameters must belong to the preconditioner's layers.
  QModelOptimizer(std::shared_ptr<Preconditioner> preconditioner, QModelOptions options = {});

  /// One update. Before it: the statistics pass (if due), the forward `output` of the batch (graph kept), and
  /// backward of the data loss with retain_graph, so that .grad() holds its gradient. `loss_value` is that loss;
  /// `evaluate()` recomputes the data loss on the same batch at the current parameters (under no-grad).
  /// Distributed (the preconditioner has a communicator): every rank passes its shard's output, loss and evaluate;
  /// gradients, losses and curvature terms are averaged over ranks, so all ranks take the same step.
  QModelStats step(const at::Tensor& output, LossKind loss, double loss_value, const std::function<double()>& evaluate);

  double lambda() const { return lambda_; }
  double gamma() const { return gamma_; }
  /// Swaps the parameters with their iterate averages (call again to swap back).
  void swap_averages();
  Preconditioner& preconditioner() { return *preconditioner_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  double l2_term() const;
  std::shared_ptr<Preconditioner> preconditioner_;
  QModelOptions options_;
  double lambda_, gamma_;
  int64_t steps_ = 0;
  std::vector<at::Tensor> previous_;  // δ₀ per layer, [d_G, d_A]
  std::vector<at::Tensor> averages_;  // per parameter
};

}  // namespace kfac
