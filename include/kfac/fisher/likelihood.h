// The losses K-FAC understands, as negative log-likelihoods of the network output z (logits or means), one class
// per loss. Each owns everything the library needs from it:
//
//   loss             the mean over examples of the per-example negative log-likelihood
//   label_gradient   ∂ℓ/∂z at the training label (the empirical Fisher's rows)
//   sample_gradients ∂ℓ/∂z at targets sampled from the model's predictive distribution (the sampled Fisher's rows)
//   fisher_factor    rows r_c with Σ_c r_c r_cᵀ = H, the output-space Fisher (= the loss's Hessian in z)
//   hessian_product  H v (Gauss–Newton products, the quadratic model)
//   oracle_terms     the dense oracle's form F = Σ_k w_k ∇s_k ∇s_kᵀ, written independently of the rows above
//
// Built in (src/fisher/likelihoods/):
//   SoftmaxCrossEntropy  -log softmax(z)[y]                 y ~ Categorical(softmax z)
//   SigmoidCrossEntropy  Σ_c BCE(σ(z_c), y_c)                y_c ~ Bernoulli(σ z_c)
//   SquaredError         ½‖z − y‖²                           y ~ N(z, I)
// A new loss is one file with a Likelihood subclass plus one line in src/fisher/likelihood.cpp (or a call to
// register_likelihood). It is then selected everywhere by its LossKind, LossKind::named("my-loss").
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kfac/fisher/fisher_options.h"

namespace kfac {

/// One loss. Outputs z are [B, C] (flattened per example); per-example quantities are [B, C] or [R, B, C].
class Likelihood {
 public:
  virtual ~Likelihood() = default;
  virtual std::string name() const = 0;
  /// Throws naming the expected shape and dtype of the targets.
  virtual void check_targets(const at::Tensor& z, const at::Tensor& targets) const = 0;
  /// Mean over examples of the per-example loss (summed over output units).
  virtual at::Tensor loss(const at::Tensor& z, const at::Tensor& targets) const = 0;
  /// ∂ℓ_b/∂z_b at the labels, [B, C].
  virtual at::Tensor label_gradient(const at::Tensor& z, const at::Tensor& targets) const = 0;
  /// ∂ℓ_b/∂z_b at `samples` targets drawn from the predictive distribution, [S, B, C].
  virtual at::Tensor sample_gradients(const at::Tensor& z, int64_t samples, at::Generator generator) const = 0;
  /// Rows of a square root of the output Fisher per example, [R, B, C] with Σ_r r_rb r_rbᵀ = H_b.
  virtual at::Tensor fisher_factor(const at::Tensor& z) const = 0;
  /// H_b v_b per example, [B, C].
  virtual at::Tensor hessian_product(const at::Tensor& z, const at::Tensor& v) const = 0;
  /// For one example's output z ([C], attached to its graph): scalars s_k and weights w_k with
  /// F = Σ_k w_k ∇s_k ∇s_kᵀ (the dense oracle differentiates the s_k).
  virtual std::vector<std::pair<at::Tensor, double>> oracle_terms(const at::Tensor& z) const = 0;
  /// Whether outputs [B, ..., C] are one distribution per position over the last dimension (softmax), rather than
  /// independent units that may be flattened. The library then applies the methods above to the [B·T, C] rows; see
  /// loss() and output_gradient_rows() below for what that means per example.
  virtual bool positionwise() const { return false; }
};

/// Names a registered likelihood; cheap to copy and compare. The built-in ones are constants.
class LossKind {
 public:
  static const LossKind SoftmaxCrossEntropy, SigmoidCrossEntropy, SquaredError;
  /// The registered likelihood called `name`; throws naming the valid ones (and the closest) otherwise.
  static LossKind named(const std::string& name);
  const char* name() const { return name_; }
  const Likelihood& likelihood() const;
  friend bool operator==(LossKind a, LossKind b) { return std::strcmp(a.name_, b.name_) == 0; }
  friend bool operator!=(LossKind a, LossKind b) { return !(a == b); }

 private:
  constexpr explicit LossKind(const char* name) : name_(name) {}
  const char* name_;  // a literal or a name owned by the registry: stable for the program's life
};
inline constexpr LossKind LossKind::SoftmaxCrossEntropy{"softmax-cross-entropy"};
inline constexpr LossKind LossKind::SigmoidCrossEntropy{"sigmoid-cross-entropy"};
inline constexpr LossKind LossKind::SquaredError{"squared-error"};

/// Registers (or replaces) a likelihood under its name().
LossKind register_likelihood(std::shared_ptr<const Likelihood> likelihood);
std::vector<std::string> registered_likelihoods();

inline std::string to_string(LossKind kind) { return kind.name(); }
inline LossKind parse_loss_kind(const std::string& name) { return LossKind::named(name); }

/// Mean over examples of the per-example loss (summed over output units). `output` is [B, C] (or [B, ...], flattened);
/// targets: class indices [B] for SoftmaxCrossEntropy, same shape as output otherwise. A positionwise likelihood on
/// [B, T, ..., C] takes targets [B, T, ...] and returns the mean over examples and positions (the per-token loss of
/// a language model, torch's cross_entropy).
at::Tensor loss(const at::Tensor& output, const at::Tensor& targets, LossKind kind);

/// The number of terms loss() averages over for these targets: the examples, or examples × positions for a
/// positionwise likelihood (targets [B, T, ...]). It is the grad_scale under which Preconditioner::capture_backward
/// turns the training backward of loss() into the empirical Fisher's rows (those of output_gradient_rows with
/// FisherType::Empirical): the gradient of a mean over n terms is 1/n times the rows.
int64_t loss_terms(const at::Tensor& targets, LossKind kind);

/// Gradients of per-example losses with respect to `output` for the statistics pass: shape [S, B, C], where the
/// Fisher of the outputs is Σ_s E_b[r_sb r_sbᵀ]. S = `samples` (Sampled, scaled by 1/√S), 1 (Empirical), the
/// factor's rows (Exact). `output` must be detached. `targets` is used only for FisherType::Empirical. For a
/// positionwise likelihood on [B, T, ..., C] the rows are those of each example's summed per-position losses,
/// [S, B, T·C]: sampled and empirical rows concatenate the positions (their cross terms vanish in expectation,
/// resp. are the empirical Fisher's), exact rows are block-diagonal over positions ([T·C, B, T·C]).
at::Tensor output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
                                const at::Tensor& targets, at::Generator generator);

/// [B, ...] → [B, C]; throws for outputs without a batch dimension.
at::Tensor flatten_output(const at::Tensor& output);

}  // namespace kfac
