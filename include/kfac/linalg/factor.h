// A Kronecker factor's structure (docs/design.md §16, "Factor structure"): a factor is either full, a symmetric PSD
// [n, n] matrix, or diagonal, held as its diagonal [n] and standing for diag(d). The diagonal keeps the full
// factor's exact diagonal and drops the correlations between its coordinates, so its cost is O(n) memory and an
// O(n) refresh instead of O(n²) and O(n³). A curvature holds one tensor per side and calls these functions, which
// dispatch on the tensor's rank, so one code path serves both structures.
//
// The operators derived from a factor follow the same rule: a damped inverse is [n, n] or [n]; an eigenbasis is
// [n, n], or undefined for a diagonal factor, whose eigenbasis is the identity.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "kfac/linalg/psd.h"

namespace kfac::linalg {

/// Whether a side of n rows is full under the threshold `full_max` (0: always full).
inline bool factor_is_full(int64_t n, int64_t full_max) { return full_max == 0 || n <= full_max; }
inline bool is_diagonal_factor(const at::Tensor& f) { return f.dim() == 1; }

/// A zero factor of n rows: [n, n] when full, [n] when diagonal.
at::Tensor zero_factor(int64_t n, bool full, const at::TensorOptions& options);

/// f ← β·f + α·XᵀX (full, gram_update_) or its diagonal β·f + α·Σ_rows x² (diagonal); X: the rows of x.
void factor_update_(at::Tensor& f, const at::Tensor& x, double beta, double alpha);

/// tr(f)/n, the mean eigenvalue: a 0-dim float64 tensor on f's device (read it once with the others it goes with).
at::Tensor factor_mean_eigenvalue(const at::Tensor& f);

/// π of K-FAC's factored damping (A + π√λ I) ⊗ (G + √λ/π I): √((tr A/d_A) / (tr G/d_G)) (Martens & Grosse 2015
/// §6.3, the trace norm), 1 when that is not a positive number (a zero or non-finite trace). One host read.
double factored_damping_pi(const at::Tensor& a, const at::Tensor& g);

/// The eigendecomposition under eigh_psd's policy; for a diagonal factor the values are the diagonal (clamped to
/// the floor, in coordinate order) and the vectors are undefined (the identity).
SymEig factor_eig(const at::Tensor& f, const std::string& what, double floor);

/// factor_eig, or with `iterations` > 0 and a previous basis `q` of a full factor: q refined by that many steps of
/// subspace iteration (refine_eigenbasis), its columns kept in q's order (column j goes on tracking column j), with
/// the Rayleigh quotients diag(Qᵀ f Q) clamped to the floor as the values. For a factor that moves slowly between
/// refreshes (an EMA) the warm-started basis follows it at the cost of products and QRs instead of an eigh; the
/// values are the exact diagonal of f in that basis, so the eigenvalue-corrected methods lose nothing beyond the
/// basis's own error (docs/design.md §5, "Refined eigenbases").
SymEig factor_eig_refined(const at::Tensor& f, const at::Tensor& q, int64_t iterations, const std::string& what,
                          double floor);

/// (f + shift·I)⁻¹, [n, n] or [n]: by Cholesky when `cholesky`, else from factor_eig.
at::Tensor factor_damped_inverse(const at::Tensor& f, double shift, bool cholesky, double floor,
                                 const std::string& what);

/// The unit eigenvector with the smallest eigenvalue, [n].
at::Tensor factor_lowest_eigenvector(const at::Tensor& f, const std::string& what);

/// The factor as a dense [n, n] matrix (tests, dense oracles, small global stages).
at::Tensor factor_dense(const at::Tensor& f);
/// An eigenbasis as a dense contiguous [n, n] matrix (at::kron needs one): the identity when undefined.
at::Tensor basis_dense(const at::Tensor& q, int64_t n, const at::TensorOptions& options);

// Products with a factor-shaped operator m ([n, n], [n] for a diagonal, undefined for the identity) from the side
// it acts on: the output side multiplies V [d_G, d_A] from the left, the input side from the right.
at::Tensor left_multiply(const at::Tensor& m, const at::Tensor& v);     ///< m v
at::Tensor left_multiply_t(const at::Tensor& m, const at::Tensor& v);   ///< mᵀ v
at::Tensor right_multiply(const at::Tensor& v, const at::Tensor& m);    ///< v m
at::Tensor right_multiply_t(const at::Tensor& v, const at::Tensor& m);  ///< v mᵀ

}  // namespace kfac::linalg
