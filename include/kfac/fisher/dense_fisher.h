// The dense Fisher of a small network by brute force (float64): per-example gradients from autograd, summed
// densely. It is the oracle of the tests and of `kfac fisher`, and is independent of the statistics code: the true Fisher sums over the model's predictive distribution explicitly
// (Σ_c p_c ∇log p_c ∇log p_cᵀ for softmax; σ(1−σ)∇z∇zᵀ per unit for Bernoulli; J ᵀJ for Gaussian).
//
// Parameters are ordered layer by layer as in `layers`, each as vec([W | b]) column-major (kfac/layers/layer_kind.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "kfac/fisher/likelihood.h"
#include "kfac/layers/layer.h"

namespace kfac {

struct DenseFisher {
  at::Tensor matrix;             ///< [P, P]
  std::vector<int64_t> offsets;  ///< start of each layer's block, plus P at the end
  at::Tensor block(size_t i) const {
    return matrix.slice(0, offsets[i], offsets[i + 1]).slice(1, offsets[i], offsets[i + 1]);
  }
};

using Forward = std::function<at::Tensor(const at::Tensor&)>;

/// true = sum over the predictive distribution; false = empirical (gradient at `targets`).
DenseFisher exact_fisher(const Forward& forward, const std::vector<Layer>& layers, const at::Tensor& inputs,
                         LossKind loss, bool true_fisher, const at::Tensor& targets = {});

/// vec([W | b]) gradients of a scalar w.r.t. the layers' parameters, concatenated.
at::Tensor flat_grad(const at::Tensor& scalar, const std::vector<Layer>& layers);

/// Column-major vec of a matrix, and its inverse.
at::Tensor vec(const at::Tensor& m);
at::Tensor unvec(const at::Tensor& v, int64_t rows, int64_t cols);

}  // namespace kfac
