#include "kfac/linalg/psd.h"

#include <ATen/ATen.h>

#include <atomic>
#include <functional>

#include "kfac/errors.h"

namespace kfac::linalg {

namespace {
// Blocks narrower than this are computed whole: smaller products lose more speed than the halving saves.
int64_t gram_min_block = 256;

// m ← β·m + α·XᵀX on a (possibly strided) square view: the diagonal blocks recursively, the upper-right block by
// one product, the lower-left mirrored. Depth d computes (1 + 2^-d)/2 of the full product's multiply-adds.
void gram_block_(at::Tensor m, const at::Tensor& x, double beta, double alpha) {
  const int64_t n = m.size(0);
  if (n < 2 * gram_min_block || m.stride(1) != 1) {
    m.addmm_(x.t(), x, beta, alpha);
    return;
  }
  const int64_t h = n / 2;
  const auto x1 = x.narrow(1, 0, h), x2 = x.narrow(1, h, n - h);
  auto m12 = m.narrow(0, 0, h).narrow(1, h, n - h);
  gram_block_(m.narrow(0, 0, h).narrow(1, 0, h), x1, beta, alpha);
  m12.addmm_(x1.t(), x2, beta, alpha);
  gram_block_(m.narrow(0, h, n - h).narrow(1, h, n - h), x2, beta, alpha);
  m.narrow(0, h, n - h).narrow(1, 0, h).copy_(m12.t());
}
}  // namespace

// Statistics rows in layouts BLAS handles badly, both from conv layers with few channels:
// * tall and narrow (128·676 patch rows of width 10): XᵀX runs on one thread at a few GFLOP/s; the Grams of row
//   blocks from one batched product are summed instead;
// * output gradients kept channels-major ([..., T, C] as a view of [..., C, T]): flattening them to rows copies the
//   tensor; one batched product over the examples reads them in place (when its [batch, C, C] result is small).
constexpr int64_t kNarrowWidth = 64, kRowBlock = 1024, kBatchedResultBytes = int64_t{32} << 20;

void gram_update_(at::Tensor& m, const at::Tensor& x, double beta, double alpha) {
  const int64_t n = x.size(-1);
  if (x.scalar_type() != m.scalar_type()) {  // products in x's precision (accumulated in float32), sums in m's
    const auto rows = x.reshape({-1, n});
    m.mul_(beta).add_(rows.t().mm(rows).to(m.scalar_type()), alpha);
    return;
  }
  if (x.dim() >= 3 && x.stride(-2) == 1 && x.size(-2) > 1 &&
      x.numel() / (x.size(-2) * n) * n * n * static_cast<int64_t>(x.element_size()) <= kBatchedResultBytes) {
    const auto xt = x.transpose(-1, -2).reshape({-1, n, x.size(-2)});  // [batch, n, r], a view here
    m.mul_(beta).add_(at::bmm(xt, xt.transpose(1, 2)).sum(0), alpha);
    return;
  }
  const auto rows = x.reshape({-1, n});
  const int64_t count = rows.size(0);
  if (n > kNarrowWidth || count < 8 * kRowBlock || !rows.is_contiguous()) return gram_block_(m, rows, beta, alpha);
  const int64_t blocks = count / kRowBlock, main = blocks * kRowBlock;
  const auto xb = rows.narrow(0, 0, main).view({blocks, kRowBlock, n});
  m.mul_(beta).add_(at::bmm(xb.transpose(1, 2), xb).sum(0), alpha);
  if (main < count) {
    const auto rest = rows.narrow(0, main, count - main);
    m.addmm_(rest.t(), rest, 1.0, alpha);
  }
}

void set_gram_min_block(int64_t columns) {
  KFAC_CHECK(columns >= 1, "gram min block must be >= 1, got ", columns);
  gram_min_block = columns;
}

namespace {
std::atomic<int> injected_failures{0};

void maybe_inject_failure() {
  int left = injected_failures.load();
  while (left > 0 && !injected_failures.compare_exchange_weak(left, left - 1)) {
  }
  TORCH_CHECK(left <= 0, "injected decomposition failure (kfac::linalg::testing)");
}

at::Tensor symmetrize(const at::Tensor& m) { return (m + m.transpose(0, 1)) * 0.5; }

// Runs `attempt` in the matrix's dtype, then in float64; returns the result cast back to the original dtype.
template <typename Result>
Result with_float64_retry(const at::Tensor& m, const std::string& what, const char* op,
                          const std::function<Result(const at::Tensor&)>& attempt,
                          const std::function<Result(const Result&, at::ScalarType)>& cast_back) {
  std::string first_error;
  try {
    maybe_inject_failure();
    return attempt(m);
  } catch (const c10::Error& e) {
    first_error = e.what_without_backtrace();
  }
  try {
    maybe_inject_failure();
    return cast_back(attempt(m.to(at::kDouble)), m.scalar_type());
  } catch (const c10::Error& e) {
    throw NumericalError(std::string("kfac: ") + op + " of " + what + " failed in " + c10::toString(m.scalar_type()) +
                         " and again in float64 (" + e.what_without_backtrace() +
                         "); raise the damping, lower the learning rate, or use "
                         "factor_dtype float64. First error: " +
                         first_error);
  }
}
}  // namespace

void check_finite(const at::Tensor& m, const std::string& what) {
  if (at::isfinite(m).all().item<bool>()) return;
  throw NumericalError("kfac: " + what + " has non-finite entries (NaN or Inf); check the inputs and gradients " +
                       "for NaN, lower the learning rate or raise the damping");
}

SymEig eigh_psd(const at::Tensor& m, const std::string& what, double floor) {
  check_finite(m, what);
  const auto sym = symmetrize(m);
  auto eig = with_float64_retry<SymEig>(
      sym, what, "eigendecomposition",
      [](const at::Tensor& x) {
        auto [values, vectors] = at::linalg_eigh(x);
        return SymEig{values, vectors};
      },
      [](const SymEig& e, at::ScalarType t) {
        return SymEig{e.values.to(t), e.vectors.to(t)};
      });
  eig.values.clamp_min_(floor);
  return eig;
}

RefinedBasis refine_eigenbasis(const at::Tensor& m, const at::Tensor& q, const std::string& what) {
  check_finite(m, what);
  const auto mq = at::matmul(m, q);        // the one product: the quotients and the QR's input both read it
  const auto quotients = (q * mq).sum(0);  // diag(qᵀ m q)
  auto order = at::argsort(quotients, /*dim=*/0, /*descending=*/true);
  auto [vectors, r] = at::linalg_qr(mq.index_select(1, order));
  return {vectors, order};
}

at::Tensor cholesky_inverse_psd(const at::Tensor& m, double shift, const std::string& what) {
  check_finite(m, what);
  const auto damped = symmetrize(m) + shift * at::eye(m.size(0), m.options());
  return with_float64_retry<at::Tensor>(
      damped, what, "Cholesky factorization",
      [](const at::Tensor& x) {
        // The upper factor, on purpose (see the header): LAPACK's xPOTRI with uplo 'L' crashes in OpenBLAS 0.3.21.
        return at::cholesky_inverse(at::linalg_cholesky(x, /*upper=*/true), /*upper=*/true);
      },
      [](const at::Tensor& x, at::ScalarType t) { return x.to(t); });
}

at::Tensor inverse_from_eig(const SymEig& eig, double shift) {
  return at::matmul(eig.vectors * (1.0 / (eig.values + shift)).unsqueeze(0), eig.vectors.t());
}

namespace testing {
void inject_decomposition_failures(int count) { injected_failures.store(count); }
int pending_decomposition_failures() { return injected_failures.load(); }
}  // namespace testing

}  // namespace kfac::linalg
