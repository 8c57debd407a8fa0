// Decompositions of many factors at once (docs/design.md §5, "Batched refreshes"). A refresh lists what it needs as
// FactorRequests (Curvature::plan_refresh); decompose() computes them all. On a GPU the full factors of one size,
// dtype, device, floor and kind go in one batched call (at::linalg_eigh, at::linalg_cholesky_ex, or the products and
// at::linalg_qr of a refined eigenbasis, on a stack: one library call and one host read of the finiteness checks
// where each factor alone took its own); a transformer has many same-shaped factors (every block's q, k, v and out
// projections), so its refresh is a few calls. On the CPU, where a batched LAPACK call is a loop over the matrices,
// they go one by one.
//
// Every result is what the one-factor functions of kfac/linalg/factor.h give, under the same policy (psd.h): a
// non-finite factor, a batch that LAPACK or cuSOLVER refuses, or a single Cholesky that fails is redone alone, so the
// float64 retry and the error that names the factor are those of the single calls.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "kfac/linalg/psd.h"

namespace kfac::linalg {

struct FactorRequest {
  enum class Kind {
    Eig,            ///< factor_eig_refined(factor, basis, iterations, what, floor)
    DampedInverse,  ///< factor_damped_inverse(factor, shift, cholesky, floor, what)
  };
  Kind kind = Kind::Eig;
  at::Tensor factor;  ///< [n, n] or [n] (kfac/linalg/factor.h)
  std::string what;   ///< names the factor in errors ("factor A of layer 'fc1'")
  double floor = 0;   ///< eigenvalue floor
  at::Tensor basis;   ///< Eig: a previous basis to refine, with iterations > 0 (not batched)
  int64_t iterations = 0;
  double shift = 0;  ///< DampedInverse: (factor + shift·I)⁻¹
  bool cholesky = false;

  SymEig eig;          ///< the result of an Eig
  at::Tensor inverse;  ///< the result of a DampedInverse
  std::string error;   ///< the NumericalError's message when it failed

  static FactorRequest eig_of(const at::Tensor& factor, const std::string& what, double floor,
                              const at::Tensor& basis = {}, int64_t iterations = 0);
  static FactorRequest damped_inverse_of(const at::Tensor& factor, double shift, bool cholesky, double floor,
                                         const std::string& what);
};

/// How decompose() runs the requests.
enum class DecomposeStrategy {
  /// Sequential when every factor is on the CPU, Batched otherwise.
  Auto,
  /// Same-shaped full factors stacked into one call each (what a GPU needs).
  Batched,
  /// Each factor alone, one after the other: on the CPU a batched LAPACK call is such a loop anyway. Factors of up to
  /// 512 rows run on one thread, where OpenBLAS's threads cost more than they save (batched.cpp).
  Sequential,
};

/// Computes every request in place (results or error).
void decompose(const std::vector<FactorRequest*>& requests, DecomposeStrategy strategy = DecomposeStrategy::Auto);
/// decompose() over a vector.
void decompose(std::vector<FactorRequest>& requests, DecomposeStrategy strategy = DecomposeStrategy::Auto);

/// Throws the NumericalError of the first failed request; a refresh calls it before it changes any state.
void throw_if_failed(const std::vector<FactorRequest>& requests);

}  // namespace kfac::linalg
