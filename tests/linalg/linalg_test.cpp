// The guarded decompositions of kfac/linalg/psd.h against each other, at the sizes and thread counts where the
// BLAS's kernels take their edge paths.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kfac/linalg/psd.h"

namespace {

// Restores LibTorch's (and with it OpenMP's and an OpenMP OpenBLAS's) thread count at scope exit.
struct ThreadCount {
  int saved = at::get_num_threads();
  explicit ThreadCount(int n) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(saved); }
};

at::Tensor random_psd(int64_t n, at::ScalarType dtype) {
  const auto x = torch::randn({n + 7, n}, torch::dtype(torch::kDouble));
  return (x.t().mm(x) / static_cast<double>(n)).to(dtype);
}

// n ≥ 133 with n mod 128 odd and ≥ 5 are the sizes at which OpenBLAS 0.3.21's single-threaded lower TRTRI faults
// under its SSE3 kernels (see psd.h); 785 is the autoencoder's first factor A. The others bracket them.
class CholeskyInverse : public ::testing::TestWithParam<std::tuple<int64_t, at::ScalarType, int>> {};

TEST_P(CholeskyInverse, EqualsTheEigendecompositionInverseAndInvertsTheDampedMatrix) {
  const auto [n, dtype, threads] = GetParam();
  torch::manual_seed(n);
  ThreadCount scope(threads > 0 ? threads : at::get_num_threads());
  const auto m = random_psd(n, dtype);
  const double shift = 0.1;
  const auto by_cholesky = kfac::linalg::cholesky_inverse_psd(m, shift, "m");
  const auto by_eigen = kfac::linalg::inverse_from_eig(kfac::linalg::eigh_psd(m, "m"), shift);
  ASSERT_EQ(by_cholesky.scalar_type(), dtype);
  const double tol = dtype == at::kFloat ? 2e-4 : 1e-10;
  const auto scale = by_eigen.abs().max().item<double>();
  EXPECT_LT((by_cholesky - by_eigen).abs().max().item<double>(), tol * scale) << "n = " << n;
  const auto damped = m.to(at::kDouble) + shift * torch::eye(n, torch::dtype(torch::kDouble));
  const auto residual = damped.mm(by_cholesky.to(at::kDouble)) - torch::eye(n, torch::dtype(torch::kDouble));
  EXPECT_LT(residual.abs().max().item<double>(), dtype == at::kFloat ? 1e-3 : 1e-9) << "n = " << n;
}

INSTANTIATE_TEST_SUITE_P(Sizes, CholeskyInverse,
                         ::testing::Combine(::testing::Values(5, 128, 129, 133, 135, 261, 511, 785),
                                            ::testing::Values(at::kFloat, at::kDouble),
                                            ::testing::Values(1, 0)),  // one thread; the default count
                         [](const auto& info) {
                           return "n" + std::to_string(std::get<0>(info.param)) + "_" +
                                  (std::get<1>(info.param) == at::kFloat ? "float32" : "float64") +
                                  (std::get<2>(info.param) == 1 ? "_one_thread" : "_default_threads");
                         });

}  // namespace
