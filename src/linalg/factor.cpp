#include "kfac/linalg/factor.h"

#include <ATen/ATen.h>

#include <cmath>

namespace kfac::linalg {

at::Tensor zero_factor(int64_t n, bool full, const at::TensorOptions& options) {
  return full ? at::zeros({n, n}, options) : at::zeros({n}, options);
}

void factor_update_(at::Tensor& f, const at::Tensor& x, double beta, double alpha) {
  if (!is_diagonal_factor(f)) return gram_update_(f, x, beta, alpha);
  const auto rows = x.reshape({-1, f.size(0)}).to(f.scalar_type());  // a sum of squares: no product to speed up
  f.mul_(beta).add_(rows.square().sum(0), alpha);
}

at::Tensor factor_mean_eigenvalue(const at::Tensor& f) {
  return (is_diagonal_factor(f) ? f.sum() : f.trace()).to(at::kDouble) / static_cast<double>(f.size(0));
}

double factored_damping_pi(const at::Tensor& a, const at::Tensor& g) {
  const double pi = std::sqrt((factor_mean_eigenvalue(a) / factor_mean_eigenvalue(g)).item<double>());
  return std::isfinite(pi) && pi > 0 ? pi : 1.0;
}

SymEig factor_eig(const at::Tensor& f, const std::string& what, double floor) {
  if (!is_diagonal_factor(f)) return eigh_psd(f, what, floor);
  check_finite(f, what);
  return {f.clamp_min(floor), at::Tensor()};
}

SymEig factor_eig_refined(const at::Tensor& f, const at::Tensor& q, int64_t iterations, const std::string& what,
                          double floor) {
  if (iterations <= 0 || !q.defined() || is_diagonal_factor(f)) return factor_eig(f, what, floor);
  auto basis = q;
  for (int64_t i = 0; i < iterations; ++i) {
    auto refined = refine_eigenbasis(f, basis, what);
    // refine_eigenbasis sorts the columns for the QR; put each back in the place of the column it continues.
    basis = at::empty_like(refined.vectors).index_copy_(1, refined.order, refined.vectors);
  }
  auto values = (basis * at::matmul(f, basis)).sum(0).clamp_min(floor);
  return {values, basis};
}

at::Tensor factor_damped_inverse(const at::Tensor& f, double shift, bool cholesky, double floor,
                                 const std::string& what) {
  if (is_diagonal_factor(f)) return factor_eig(f, what, floor).values.add(shift).reciprocal_();
  return cholesky ? cholesky_inverse_psd(f, shift, what) : inverse_from_eig(eigh_psd(f, what, floor), shift);
}

at::Tensor factor_lowest_eigenvector(const at::Tensor& f, const std::string& what) {
  if (!is_diagonal_factor(f)) return eigh_psd(f, what).vectors.select(1, 0);
  check_finite(f, what);
  auto e = at::zeros_like(f);
  e[f.argmin().item<int64_t>()] = 1;
  return e;
}

at::Tensor factor_dense(const at::Tensor& f) { return is_diagonal_factor(f) ? at::diag(f) : f; }

at::Tensor basis_dense(const at::Tensor& q, int64_t n, const at::TensorOptions& options) {
  return q.defined() ? q.contiguous() : at::eye(n, options);
}

at::Tensor left_multiply(const at::Tensor& m, const at::Tensor& v) {
  if (!m.defined()) return v;
  return is_diagonal_factor(m) ? v * m.unsqueeze(1) : m.mm(v);
}

at::Tensor left_multiply_t(const at::Tensor& m, const at::Tensor& v) {
  if (!m.defined()) return v;
  return is_diagonal_factor(m) ? v * m.unsqueeze(1) : m.t().mm(v);
}

at::Tensor right_multiply(const at::Tensor& v, const at::Tensor& m) {
  if (!m.defined()) return v;
  return is_diagonal_factor(m) ? v * m.unsqueeze(0) : v.mm(m);
}

at::Tensor right_multiply_t(const at::Tensor& v, const at::Tensor& m) {
  if (!m.defined()) return v;
  return is_diagonal_factor(m) ? v * m.unsqueeze(0) : v.mm(m.t());
}

}  // namespace kfac::linalg
