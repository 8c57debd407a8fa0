// Gaussian outputs of unit variance: ℓ = ½‖z − y‖², output Fisher H = I.
#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/fisher/likelihood.h"

namespace kfac {
namespace {

class SquaredError final : public Likelihood {
 public:
  std::string name() const override { return "squared-error"; }
  void check_targets(const at::Tensor& z, const at::Tensor& targets) const override {
    KFAC_CHECK(targets.defined(), "targets are required for the ", name(), " loss");
    KFAC_CHECK(targets.numel() == z.numel(), "targets of the ", name(), " loss must have ", z.numel(),
               " elements like the output, got shape ", targets.sizes());
  }
  at::Tensor loss(const at::Tensor& z, const at::Tensor& targets) const override {
    return 0.5 * (z - targets.reshape_as(z).to(z.dtype())).pow(2).sum() / z.size(0);
  }
  at::Tensor label_gradient(const at::Tensor& z, const at::Tensor& targets) const override {
    return z - targets.reshape_as(z).to(z.dtype());
  }
  at::Tensor sample_gradients(const at::Tensor& z, int64_t samples, at::Generator generator) const override {
    return -at::normal(0.0, 1.0, {samples, z.size(0), z.size(1)}, std::move(generator), z.options());
  }
  at::Tensor fisher_factor(const at::Tensor& z) const override {
    return at::eye(z.size(1), z.options()).unsqueeze(1).expand({z.size(1), z.size(0), z.size(1)}).clone();
  }
  at::Tensor hessian_product(const at::Tensor& z, const at::Tensor& v) const override { return v; }
  std::vector<std::pair<at::Tensor, double>> oracle_terms(const at::Tensor& z) const override {
    std::vector<std::pair<at::Tensor, double>> terms;
    for (int64_t c = 0; c < z.size(0); ++c) terms.emplace_back(z[c], 1.0);
    return terms;
  }
};

}  // namespace

std::shared_ptr<const Likelihood> make_squared_error() { return std::make_shared<SquaredError>(); }

}  // namespace kfac
