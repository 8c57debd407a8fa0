// The losses K-FAC understands, as negative log-likelihoods, and the output-gradients the statistics pass needs.
//
// Every loss here is per example a negative log-likelihood of the network output z (logits or means):
//   SoftmaxCrossEntropy  -log softmax(z)[y]                 y ~ Categorical(softmax z)
//   SigmoidCrossEntropy  Σ_c BCE(σ(z_c), y_c)                y_c ~ Bernoulli(σ z_c)
//   SquaredError         ½‖z − y‖²                           y ~ N(z, I)
// The statistics pass needs, per example, rows r with Σ_r E[r rᵀ] = the output-space Fisher (the GGN's Hessian):
// sampled targets give one row per sample (scaled by 1/√S), the empirical Fisher the label's gradient, and the
// exact Fisher one row per output unit from a square-root factorization of the output Fisher.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>

#include "kfac/options.h"

namespace kfac {

enum class LossKind { SoftmaxCrossEntropy, SigmoidCrossEntropy, SquaredError };

std::string to_string(LossKind kind);
LossKind parse_loss_kind(const std::string& name);

/// Mean over examples of the per-example loss (summed over output units). `output` is [B, C] (or [B, ...], flattened);
/// targets: class indices [B] for SoftmaxCrossEntropy, same shape as output otherwise.
at::Tensor loss(const at::Tensor& output, const at::Tensor& targets, LossKind kind);

/// Gradients of per-example losses with respect to `output` for the statistics pass: shape [S, B, C], where the
/// Fisher of the outputs is Σ_s E_b[r_sb r_sbᵀ]. S = `samples` (Sampled), 1 (Empirical), C (Exact).
/// `output` must be detached. `targets` is used only for FisherType::Empirical.
at::Tensor output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
                                const at::Tensor& targets, at::Generator generator);

}  // namespace kfac
