// Layer kinds: how a layer's activations, output gradients and parameter gradient look as K-FAC matrices.
//
// Conventions (written once here; see also docs/design.md):
//  * Gradient matrix V = [W.view(d_out, -1) | b] of shape [d_G, d_A], d_G = output units, d_A = inputs (+1 if bias):
//    the bias is folded in as a homogeneous coordinate, ā = [a; 1].
//  * vec is column-major: vec(V) = V.t().reshape(-1), so vec(g āᵀ) = ā ⊗ g and a Fisher block is A ⊗ G
//    (torch::kron(A, G)).
//  * Conv2d (KFC): ā is a patch of the input (torch unfold order, channel-major (c, i, j) like weight.view) at each
//    of the |T| output locations, g the output gradient at that location. Expanded tensors are [B, T, d]; Linear
//    layers have T = 1.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace kfac {

class LayerKind {
 public:
  virtual ~LayerKind() = default;
  virtual std::string kind_name() const = 0;
  /// Rows of the A factor: inputs (+1 with bias). Columns of the gradient matrix.
  virtual int64_t dim_a() const = 0;
  /// Rows of the G factor: output units (channels). Rows of the gradient matrix.
  virtual int64_t dim_g() const = 0;
  virtual bool has_bias() const { return bias_.defined(); }
  /// Layer input x → ā of shape [B, T, d_A] (patches for Conv2d, with the homogeneous 1 when there is a bias).
  virtual at::Tensor expand_input(const at::Tensor& input) const = 0;
  /// dLoss/d(output) → [B, T, d_G]; accepts extra leading dims ([S, B, ...] → [S, B, T, d_G]).
  virtual at::Tensor expand_output_grad(const at::Tensor& grad_output) const = 0;

  /// The parameters' current gradient as the [d_G, d_A] matrix V (undefined if no gradient exists yet).
  at::Tensor grad_matrix() const;
  /// Writes a [d_G, d_A] matrix back into the parameters' .grad().
  void set_grad_matrix(const at::Tensor& matrix) const;
  /// Splits a [d_G, d_A] matrix into tensors shaped like parameters() (views where possible).
  std::vector<at::Tensor> split_matrix(const at::Tensor& matrix) const;
  /// The parameters as the [d_G, d_A] matrix [W | b] (a copy).
  at::Tensor param_matrix() const;
  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }
  std::vector<at::Tensor> parameters() const;

 protected:
  LayerKind(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  at::Tensor weight_, bias_;
};

class LinearKind final : public LayerKind {
 public:
  LinearKind(at::Tensor weight, at::Tensor bias);
  std::string kind_name() const override { return "Linear"; }
  int64_t dim_a() const override;
  int64_t dim_g() const override;
  at::Tensor expand_input(const at::Tensor& input) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
};

struct Conv2dGeometry {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
};

class Conv2dKind final : public LayerKind {
 public:
  Conv2dKind(at::Tensor weight, at::Tensor bias, Conv2dGeometry geometry);
  std::string kind_name() const override { return "Conv2d"; }
  int64_t dim_a() const override;
  int64_t dim_g() const override;
  at::Tensor expand_input(const at::Tensor& input) const override;
  at::Tensor expand_output_grad(const at::Tensor& grad_output) const override;
  const Conv2dGeometry& geometry() const { return geometry_; }

 private:
  Conv2dGeometry geometry_;
};

}  // namespace kfac
