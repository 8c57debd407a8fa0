// Guarded linear algebra on symmetric positive semi-definite factors: the one place where decompositions can fail.
//
// Policy: a non-finite input is rejected before any decomposition; the matrix is symmetrized; a failure in the
// factor dtype is retried in float64; a failure there throws kfac::NumericalError (the preconditioner then keeps
// the previous decomposition and counts the failure, see Preconditioner). Eigenvalues are clamped to a floor >= 0.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace kfac::linalg {

struct SymEig {
  at::Tensor values;   ///< ascending, clamped to the floor
  at::Tensor vectors;  ///< columns are eigenvectors
};

/// Eigendecomposition of a symmetric PSD matrix under the policy above. `what` names it in error messages.
SymEig eigh_psd(const at::Tensor& m, const std::string& what, double floor = 0.0);

/// One step of subspace iteration refining an eigenbasis q of m (Vyas et al. 2025, SOAP's refresh): q's columns
/// sorted by their Rayleigh quotients diag(qᵀ m q), largest first (`order`, the permutation applied), then the Q of
/// QR(m q[:, order]). One product and one QR instead of an O(n³) eigendecomposition with its large constant.
struct RefinedBasis {
  at::Tensor vectors;  ///< [n, n], orthonormal columns
  at::Tensor order;    ///< [n] int64: new column j continues old column order[j]
};
RefinedBasis refine_eigenbasis(const at::Tensor& m, const at::Tensor& q, const std::string& what);

/// (m + shift·I)⁻¹ by Cholesky under the same policy.
///
/// It factors m + shift·I = UᵀU (the upper factor) and inverts with LAPACK's xPOTRI on 'U', never on 'L': with uplo
/// 'L', OpenBLAS 0.3.21 (Debian 12) computes L⁻¹ by its blocked single-threaded TRTRI, whose first block row calls
/// TRSM with m = 0 rows on the trailing n mod 128 columns; the SSE3 ("Prescott") strsm_kernel_RT, which OpenBLAS
/// falls back to on CPUs it does not know, then reads that packed block with an aligned load (movaps) at a 4-byte
/// offset and faults. That happens in float32 for n ≥ 133 with n mod 128 odd and ≥ 5 (785 = the autoencoder's
/// input + bias), whenever OpenBLAS runs single-threaded. The 'U' path's m = 0 call has k = 128 columns, aligned.
/// Tested at those sizes in tests/linalg/linalg_test.cpp; reproduced outside LibTorch with a ten-line C program.
at::Tensor cholesky_inverse_psd(const at::Tensor& m, double shift, const std::string& what);

/// Q diag(1 / (values + shift)) Qᵀ.
at::Tensor inverse_from_eig(const SymEig& eig, double shift);

/// m ← β·m + α·XᵀX for a symmetric m (a Gram update, as BLAS syrk, which LibTorch does not expose), X the rows of
/// x ([..., n]: leading dimensions flattened). Blocks of at least 2·256 columns are split: the diagonal blocks
/// recursively, the upper-right by one product, the lower-left mirrored, so one split computes 3/4 of the full
/// product's multiply-adds, two 5/8. Narrow tall X and channels-major conv gradients take batched products.
/// An x in a narrower dtype than m (bfloat16 statistics, option statistics_precision) is multiplied in its dtype,
/// whole, and the product added to m in m's.
void gram_update_(at::Tensor& m, const at::Tensor& x, double beta, double alpha);
/// Benchmarks: the narrowest block gram_update_ computes whole (default 256; a huge value disables the split).
void set_gram_min_block(int64_t columns);

/// Throws NumericalError naming `what` if `m` has a NaN or an infinity.
void check_finite(const at::Tensor& m, const std::string& what);

namespace testing {
/// Test seam: the next `count` decomposition attempts (each try, including float64 retries) fail as LinAlgError.
void inject_decomposition_failures(int count);
/// How many injected failures are still to come (batched decompositions go one at a time while any are).
int pending_decomposition_failures();
}  // namespace testing

}  // namespace kfac::linalg
