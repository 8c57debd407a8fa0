// Exact curvature-vector products on a minibatch, for the supported losses: the Gauss-Newton matrix
// G = (1/B) Σ_b J_bᵀ H_b J_b, which equals the Fisher for these canonical-link losses (kfac/fisher/likelihood.h).
//
// `output` is the network output on the batch with its autograd graph alive; `params` the parameters the vectors
// live on; a "vector" is a list of tensors shaped like `params`. J v is computed with the double-backward trick
// (J v = ∂/∂u [(Jᵀu)ᵀ v]), which every LibTorch version supports; the graph is retained, so several products can
// be taken from one forward pass.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "kfac/fisher/likelihood.h"

namespace kfac {

using ParamVector = std::vector<at::Tensor>;

/// J v: the directional derivative of `output` along v, shaped like `output`.
at::Tensor jacobian_vector_product(const at::Tensor& output, const ParamVector& params, const ParamVector& v);

/// H z per example: the loss's Hessian with respect to the output (the output-space Fisher), z shaped like output.
at::Tensor output_hessian_product(const at::Tensor& output, const at::Tensor& z, LossKind loss);

/// uᵀ G w from precomputed J u and J w (mean over the batch).
double gauss_newton_form(const at::Tensor& output, const at::Tensor& ju, const at::Tensor& jw, LossKind loss);

/// G v as a vector shaped like `params`.
ParamVector gauss_newton_vector_product(const at::Tensor& output, const ParamVector& params, const ParamVector& v,
                                        LossKind loss);

}  // namespace kfac
