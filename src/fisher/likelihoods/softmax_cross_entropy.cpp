// Categorical likelihood: ℓ = -log softmax(z)[y], output Fisher H = diag(p) − p pᵀ.
#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/fisher/likelihood.h"

namespace kfac {
namespace {

class SoftmaxCrossEntropy final : public Likelihood {
 public:
  std::string name() const override { return "softmax-cross-entropy"; }
  bool positionwise() const override { return true; }
  void check_targets(const at::Tensor& z, const at::Tensor& targets) const override {
    KFAC_CHECK(targets.defined(), "targets are required for the ", name(), " loss");
    KFAC_CHECK(targets.dim() == 1 && targets.size(0) == z.size(0) && !at::isFloatingType(targets.scalar_type()),
               "softmax-cross-entropy targets must be integer class indices of shape [", z.size(0), "], got ",
               targets.scalar_type(), " ", targets.sizes());
  }
  at::Tensor loss(const at::Tensor& z, const at::Tensor& targets) const override {
    return at::nll_loss(at::log_softmax(z, 1), targets.to(at::kLong));
  }
  at::Tensor label_gradient(const at::Tensor& z, const at::Tensor& targets) const override {
    return at::softmax(z, 1) - at::one_hot(targets.to(at::kLong), z.size(1)).to(z.dtype());
  }
  at::Tensor sample_gradients(const at::Tensor& z, int64_t samples, at::Generator generator) const override {
    const auto p = at::softmax(z, 1);
    const auto y = at::multinomial(p, samples, /*replacement=*/true, std::move(generator));  // [B, S]
    return p.unsqueeze(0) - at::one_hot(y.t(), z.size(1)).to(z.dtype());                     // [S, B, C]
  }
  at::Tensor fisher_factor(const at::Tensor& z) const override {
    // H = Σ_c p_c (e_c − p)(e_c − p)ᵀ.
    const auto p = at::softmax(z, 1);
    const auto eye = at::eye(z.size(1), z.options());
    return (p.unsqueeze(0) - eye.unsqueeze(1)) * p.t().sqrt().unsqueeze(2);  // [C, B, C]
  }
  at::Tensor hessian_product(const at::Tensor& z, const at::Tensor& v) const override {
    const auto p = at::softmax(z, 1);
    return p * v - p * (p * v).sum(1, true);
  }
  std::vector<std::pair<at::Tensor, double>> oracle_terms(const at::Tensor& z) const override {
    // F = Σ_c p_c ∇log p_c ∇log p_cᵀ.
    const auto logp = at::log_softmax(z, 0);
    const auto p = logp.exp().detach();
    std::vector<std::pair<at::Tensor, double>> terms;
    for (int64_t c = 0; c < z.size(0); ++c) terms.emplace_back(logp[c], p[c].item<double>());
    return terms;
  }
};

}  // namespace

std::shared_ptr<const Likelihood> make_softmax_cross_entropy() { return std::make_shared<SoftmaxCrossEntropy>(); }

}  // namespace kfac
