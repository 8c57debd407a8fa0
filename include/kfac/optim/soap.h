// SOAP (Vyas et al., ICLR 2025, "SOAP: Improving and Stabilizing Shampoo using Adam"): Adam run in the eigenbasis of
// Shampoo's factors, the basis refreshed every precondition_frequency steps. It is EKFAC's structure (a Kronecker
// eigenbasis, a diagonal scaling learnt in it) with the gradient's factors in place of K-FAC's.
//
// A weight W (conv weights flattened to [out, in·kh·kw]) with gradient G keeps, as the published algorithm does,
//   factors  L ← β_s L + (1 − β_s) G Gᵀ,  R ← β_s R + (1 − β_s) Gᵀ G   ("left", "right"; β_s = shampoo_beta)
//   bases    Q_L, Q_R: eigenvectors by eigh on the first step, then every precondition_frequency steps one power
//            iteration + QR from the previous basis (basis_refresh = qr, published) or eigh again (eigh)
//   moments  m ← β₁ m + (1 − β₁) G in the weight's own coordinates, v ← β₂ v + (1 − β₂) (Q_Lᵀ G Q_R)² in the basis
// and steps W ← W − η √(1 − β₂^k)/(1 − β₁^k) · Q_L [(Q_Lᵀ m Q_R) / (√v + eps)] Q_Rᵀ, then W ← W − ηλW (λ =
// weight_decay), then updates the factors with G and refreshes. k counts the steps since the parameter's first,
// which only builds the factors and bases and leaves the weight unchanged, as published. On a QR refresh v's
// coordinates follow their eigenvectors (the sort's permutation); m needs nothing, being unrotated.
// A side larger than max_preconditioner_dim, and a vector, stays in its own coordinates (Adam there).
#pragma once

#include "kfac/optim/parameterwise_optimizer.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct SoapOptions : public torch::optim::OptimizerCloneableOptions<SoapOptions> {
  SoapOptions(double lr = 3e-3) : lr_(lr) {}  // NOLINT: implicit like torch::optim::AdamOptions
  static const OptionTable<SoapOptions>& table();
  TORCH_ARG(double, lr);
  TORCH_ARG(double, beta1) = 0.95;
  TORCH_ARG(double, beta2) = 0.95;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.01;
  TORCH_ARG(double, shampoo_beta) = 0.95;
  TORCH_ARG(int64_t, precondition_frequency) = 10;
  TORCH_ARG(int64_t, max_preconditioner_dim) = 10000;
  TORCH_ARG(std::string, basis_refresh) = "qr";
  TORCH_ARG(bool, normalize_grads) = false;

  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

class Soap : public ParameterwiseOptimizerOf<SoapOptions> {
 public:
  Soap(std::vector<at::Tensor> params, const SoapOptions& options = {}) : Soap(one_group(std::move(params)), options) {}
  Soap(std::vector<torch::optim::OptimizerParamGroup> groups, const SoapOptions& defaults = {});

 protected:
  ParameterUpdate update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                         const torch::optim::OptimizerOptions& options, int64_t t, const std::string& name) override;
};

}  // namespace kfac
