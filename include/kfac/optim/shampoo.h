// Shampoo (Gupta, Koren & Singer 2018) as Distributed Shampoo runs it (Shi et al. 2023, the AlgoPerf winner):
// Kronecker factors of each weight's gradient, inverse fourth roots refreshed every precondition_frequency steps,
// and the step's size grafted from Adam.
//
// A weight W (conv weights flattened to [out, in·kh·kw]) is cut into tiles of at most max_preconditioner_dim rows and
// columns; each tile (i, j), with gradient G and Adam's moments m, v of the whole weight, keeps
//   L ← β_s L + (1 − β_s) G Gᵀ,  R ← β_s R + (1 − β_s) Gᵀ G        (β_s = shampoo_beta; "left.i.j", "right.i.j")
// and, at steps t with t mod precondition_frequency = 0, the roots of the bias-corrected factors
//   L̃ = (L / (1 − β_s^t) + ε I)^(−1/4),  R̃ = (R / (1 − β_s^t) + ε I)^(−1/4)   (ε = root_epsilon; by eigh_psd)
// Its direction is P = L̃ m̂ R̃ with m̂ = m / (1 − β₁^t), scaled to the norm of Adam's direction on the tile,
// a = m̂ / (√v̂ + eps) (grafting = adam; none keeps P). Before a tile has roots, and for parameters of dim < 2, the
// direction is a. The update is W ← W (1 − η λ) − η D (decoupled weight decay λ).
// A refresh that fails keeps the previous roots (or Adam's direction) and is counted in last_stats().
#pragma once

#include "kfac/optim/parameterwise_optimizer.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct ShampooOptions : public torch::optim::OptimizerCloneableOptions<ShampooOptions> {
  ShampooOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit like torch::optim::AdamOptions
  static const OptionTable<ShampooOptions>& table();
  TORCH_ARG(double, lr);
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, shampoo_beta) = 0.999;
  TORCH_ARG(double, root_epsilon) = 1e-12;
  TORCH_ARG(int64_t, precondition_frequency) = 10;
  TORCH_ARG(int64_t, max_preconditioner_dim) = 1024;
  TORCH_ARG(std::string, grafting) = "adam";

  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// [begin, end) ranges cutting n into pieces of at most `size` (the last may be shorter).
std::vector<std::pair<int64_t, int64_t>> block_ranges(int64_t n, int64_t size);

class Shampoo : public ParameterwiseOptimizerOf<ShampooOptions> {
 public:
  Shampoo(std::vector<at::Tensor> params, const ShampooOptions& options = {})
      : Shampoo(one_group(std::move(params)), options) {}
  Shampoo(std::vector<torch::optim::OptimizerParamGroup> groups, const ShampooOptions& defaults = {});

 protected:
  ParameterUpdate update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                         const torch::optim::OptimizerOptions& options, int64_t t, const std::string& name) override;
};

}  // namespace kfac
