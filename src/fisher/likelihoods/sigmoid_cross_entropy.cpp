// Independent Bernoulli outputs: ℓ = Σ_c BCE(σ(z_c), y_c), output Fisher H = diag(σ(1 − σ)).
#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/fisher/likelihood.h"

namespace kfac {
namespace {

class SigmoidCrossEntropy final : public Likelihood {
 public:
  std::string name() const override { return "sigmoid-cross-entropy"; }
  void check_targets(const at::Tensor& z, const at::Tensor& targets) const override {
    KFAC_CHECK(targets.defined(), "targets are required for the ", name(), " loss");
    KFAC_CHECK(targets.numel() == z.numel(), "targets of the ", name(), " loss must have ", z.numel(),
               " elements like the output, got shape ", targets.sizes());
  }
  at::Tensor loss(const at::Tensor& z, const at::Tensor& targets) const override {
    return at::binary_cross_entropy_with_logits(z, targets.reshape_as(z).to(z.dtype()), {}, {}, at::Reduction::Sum) /
           z.size(0);
  }
  at::Tensor label_gradient(const at::Tensor& z, const at::Tensor& targets) const override {
    return at::sigmoid(z) - targets.reshape_as(z).to(z.dtype());
  }
  at::Tensor sample_gradients(const at::Tensor& z, int64_t samples, at::Generator generator) const override {
    const auto p = at::sigmoid(z).unsqueeze(0).expand({samples, z.size(0), z.size(1)});
    return p - at::bernoulli(p, std::move(generator));
  }
  at::Tensor fisher_factor(const at::Tensor& z) const override {
    const auto s = at::sigmoid(z);
    return at::eye(z.size(1), z.options()).unsqueeze(1) * (s * (1 - s)).sqrt().unsqueeze(0);  // [C, B, C]
  }
  at::Tensor hessian_product(const at::Tensor& z, const at::Tensor& v) const override {
    const auto s = at::sigmoid(z);
    return s * (1 - s) * v;
  }
  std::vector<std::pair<at::Tensor, double>> oracle_terms(const at::Tensor& z) const override {
    std::vector<std::pair<at::Tensor, double>> terms;
    for (int64_t c = 0; c < z.size(0); ++c) {
      const double s = at::sigmoid(z[c]).item<double>();
      terms.emplace_back(z[c], s * (1 - s));
    }
    return terms;
  }
};

}  // namespace

std::shared_ptr<const Likelihood> make_sigmoid_cross_entropy() { return std::make_shared<SigmoidCrossEntropy>(); }

}  // namespace kfac
