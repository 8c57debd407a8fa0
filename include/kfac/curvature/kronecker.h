// Methods whose approximation is a scaled Kronecker product, F ≈ c · L ⊗ R (L: d_A × d_A on the input side,
// R: d_G × d_G on the output side). K-FAC and TKFAC are such methods; their eigenvalue-corrected forms (EKFAC,
// TEKFAC) reuse the factors' eigenbasis (kfac/curvature/eigen_corrected.h).
#pragma once

#include "kfac/curvature/curvature.h"

namespace kfac {

class KroneckerCurvature : public Curvature {
 public:
  using Curvature::Curvature;
  /// L, the input-side factor.
  virtual const at::Tensor& input_factor() const = 0;
  /// R, the output-side factor.
  virtual const at::Tensor& output_factor() const = 0;
  /// c in F ≈ c · L ⊗ R.
  virtual double kronecker_scale() const = 0;
  /// The eigenvalue-corrected form's denominator for damping λ: its spectrum plus the Tikhonov term, computed on the
  /// spectrum's device (a step reads nothing from it).
  virtual at::Tensor damped_spectrum(const at::Tensor& spectrum, double damping) const { return spectrum + damping; }
  /// q_R q_Lᵀ for the factors' lowest eigenvectors: the eigenvalues of L ⊗ R are the products of theirs.
  at::Tensor lowest_mode() const override;

 private:
  mutable at::Tensor lowest_mode_;  // cached per refresh
  mutable int64_t lowest_mode_key_ = -1;
};

}  // namespace kfac
