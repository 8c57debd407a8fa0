// Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks"; torch.optim.Muon since
// PyTorch 2.9): momentum orthogonalized by a Newton-Schulz iteration, for the hidden layers' weight matrices.
//
// One step of a matrix W (conv weights flattened to [out, in·kh·kw]) with gradient G:
//   B ← μ B + (1 − μ) G                       (B = momentum_buffer)
//   U = G + μ (B − G)  (Nesterov)  or  B
//   O = NS₅(U) ≈ U_svd V_svdᵀ                 the polar factor's approximation below
//   W ← W (1 − η λ) − η s O,  s = √max(1, rows/cols) ("original") or 0.2 √max(rows, cols) ("match_rms_adamw")
// NS₅: X = U/max(‖U‖_F, 1e-7) (transposed when tall), then five times A = X Xᵀ, X ← aX + (bA + cA²)X with the
// published quintic's (a, b, c) = (3.4445, −4.7750, 2.0315). It maps every singular value of X into roughly
// [0.68, 1.13] (not exactly to 1: the coefficients trade accuracy for speed) and keeps the singular vectors.
//
// Embeddings, the output head, biases and norm gains are not hidden matrices: every Muon recipe gives them to AdamW.
// Here that is a parameter group with orthogonalize = false (AdamW with beta1, beta2, eps), which muon_groups()
// builds from a model and describes for the report. The arithmetic runs in the parameter's dtype (float32 at least).
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "kfac/optim/parameterwise_optimizer.h"
#include "kfac/util/option_table.h"

namespace kfac {

struct MuonOptions : public torch::optim::OptimizerCloneableOptions<MuonOptions> {
  MuonOptions(double lr = 0.02) : lr_(lr) {}  // NOLINT: implicit like torch::optim::AdamOptions
  static const OptionTable<MuonOptions>& table();
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(std::string, adjust_lr) = "original";
  TORCH_ARG(bool, orthogonalize) = true;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.95;
  TORCH_ARG(double, eps) = 1e-10;

  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Newton-Schulz's approximation of the polar factor U Vᵀ of g (g = U S Vᵀ), g viewed as [rows, rest].
at::Tensor newton_schulz_orthogonalize(const at::Tensor& g, int64_t steps = 5);

/// A model's parameters split the way Muon recipes split them: hidden weight matrices (dim ≥ 2) are orthogonalized;
/// embeddings, the output head (the last module holding a matrix) and every parameter of dim < 2 go to AdamW.
/// `report` says which went where. The rule is written once, over this description of a model's parameters, which
/// the C++ module walk below and the Python package (kronfac.Muon(model)) both build.
struct MuonParameter {
  std::string name;  ///< "0.weight"
  at::Tensor value;
  bool in_embedding;  ///< held by an embedding module
  int64_t module;     ///< index of the module holding it, in registration order
};
struct MuonSplit {
  std::vector<at::Tensor> orthogonalized, adamw;
  std::string report;
};
MuonSplit muon_split(const std::vector<MuonParameter>& params);
/// Over a C++ model: embeddings are torch::nn::Embedding and subclasses (kfac::nn::Embedding).
MuonSplit muon_split(const torch::nn::Module& model);
/// The split as two parameter groups: the orthogonalized ones with `options`, the rest with AdamW at `adamw_lr`.
std::vector<torch::optim::OptimizerParamGroup> muon_groups(const MuonSplit& split, const MuonOptions& options,
                                                           double adamw_lr);

class Muon : public ParameterwiseOptimizerOf<MuonOptions> {
 public:
  /// Every parameter orthogonalized (each must have dim ≥ 2).
  Muon(std::vector<at::Tensor> params, const MuonOptions& options = {}) : Muon(one_group(std::move(params)), options) {}
  /// Groups with their own options (orthogonalize = false: AdamW); a group without options takes `defaults`.
  Muon(std::vector<torch::optim::OptimizerParamGroup> groups, const MuonOptions& defaults = {});

 protected:
  ParameterUpdate update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                         const torch::optim::OptimizerOptions& options, int64_t t, const std::string& name) override;
  void validate_group(const torch::optim::OptimizerOptions& options, size_t group) const override;
};

}  // namespace kfac
